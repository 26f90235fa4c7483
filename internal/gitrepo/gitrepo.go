// Package gitrepo wraps go-git for what the tool needs of a checkout: which
// commit HEAD is, and (for the code hash) which files git considers source.
//
// It builds go-git's storage directly instead of calling git.PlainOpen, whose
// extension check refuses repositories that `git sparse-checkout` touched
// (extensions.worktreeConfig); the storage reads them fine. Linked worktrees
// (.git file + commondir) and submodules (.git file) are resolved here too.
package gitrepo

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/filesystem/dotgit"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

var (
	// ErrUnknownRevision: Resolve found nothing of that name.
	ErrUnknownRevision = errors.New("no such commit, branch or tag")
	// ErrNotRepository: no .git at the path or above it.
	ErrNotRepository = errors.New("not a git repository")
	// ErrNoCommits: HEAD points at a branch with no commit yet.
	ErrNoCommits = errors.New("the repository has no commits")
	// ErrUnsupported: a repository format go-git cannot read (SHA-256 object ids).
	ErrUnsupported = errors.New("unsupported repository format")
)

// Repo is an opened checkout.
type Repo struct {
	// Root is the working tree's top directory (where .git is).
	Root string
	// GitDir is the repository directory of this worktree (.git, or the
	// directory a .git file points at).
	GitDir string
	// CommonDir holds objects and shared refs (GitDir unless a linked worktree).
	CommonDir string

	core    coreConfig
	storage *filesystem.Storage
	ignored []string // slash paths under Root whose untracked files are left out; "" is all
}

// Open finds the repository at path or in a directory above it.
func Open(path string) (*Repo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(abs); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w (the directory does not exist)", path, ErrNotRepository)
		}
		return nil, err
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("%s: %w (a file, not a directory)", path, ErrNotRepository)
	}
	root, gitDir, err := findGitDir(abs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	common := gitDir
	if b, err := os.ReadFile(filepath.Join(gitDir, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(gitDir, c)
		}
		common = filepath.Clean(c)
	}
	fs := dotgit.NewRepositoryFilesystem(osfs.New(gitDir), osfs.New(common))
	storage := filesystem.NewStorage(fs, cache.NewObjectLRUDefault())
	core, err := readConfig(storage)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", root, err)
	}
	return &Repo{
		Root:      root,
		GitDir:    gitDir,
		CommonDir: common,
		core:      core,
		storage:   storage,
	}, nil
}

// Head returns the full id of the commit HEAD points at.
func (r *Repo) Head() (string, error) {
	if r.core.refsErr != nil {
		return "", fmt.Errorf("resolve HEAD in %s: %w", r.Root, r.core.refsErr)
	}
	ref, err := storer.ResolveReference(r.storage, plumbing.HEAD)
	if err != nil {
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			return "", fmt.Errorf("resolve HEAD in %s: %w", r.Root, ErrNoCommits)
		}
		return "", fmt.Errorf("resolve HEAD in %s: %w", r.Root, err)
	}
	if ref.Hash().IsZero() {
		return "", fmt.Errorf("resolve HEAD in %s: %w", r.Root, ErrNoCommits)
	}
	return ref.Hash().String(), nil
}

// IgnoreUntracked makes SourceFiles leave out the untracked files under dir
// (absolute, or relative to the working directory; it need not exist yet),
// as if a .gitignore listed it: the tool's own output directory, whose
// markers and build leftovers are no source. Tracked files there still
// count: a directory git tracks files in is source, and leaving those out
// would serve builds of other sources. A directory outside the working tree
// (or one holding it) changes nothing.
func (r *Repo) IgnoreUntracked(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("ignore %s: %w", dir, err)
	}
	// Compare real paths: either may have been reached through a symlink.
	// The directory itself may be one, in the repository (an untracked
	// link to a directory elsewhere): its name is left out too.
	root := realPath(r.Root)
	for _, p := range []string{realPath(abs), filepath.Join(realPath(filepath.Dir(abs)), filepath.Base(abs))} {
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			continue
		}
		if rel == "." {
			rel = ""
		}
		if rel = filepath.ToSlash(rel); !slices.Contains(r.ignored, rel) {
			r.ignored = append(r.ignored, rel)
		}
	}
	return nil
}

// isIgnored reports whether p (slash-separated, relative) is under a
// directory given to IgnoreUntracked.
func (r *Repo) isIgnored(p string) bool {
	for _, d := range r.ignored {
		if d == "" || p == d || strings.HasPrefix(p, d) && p[len(d)] == '/' {
			return true
		}
	}
	return false
}

// realPath resolves the symlinks in the longest part of p that exists.
func realPath(p string) string {
	if real, err := filepath.EvalSymlinks(p); err == nil {
		return real
	}
	parent := filepath.Dir(p)
	if parent == p {
		return p
	}
	return filepath.Join(realPath(parent), filepath.Base(p))
}

// submoduleHead gives the commit checked out in the submodule at dir; ok is
// false when it is not checked out (no .git in it: not initialised, or
// outside a sparse checkout's cone).
func submoduleHead(dir string) (id plumbing.Hash, ok bool, err error) {
	if _, err := os.Lstat(filepath.Join(dir, ".git")); errors.Is(err, os.ErrNotExist) || errors.Is(err, errNotDir) {
		return plumbing.ZeroHash, false, nil
	}
	sub, err := Open(dir)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	head, err := sub.Head()
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	return plumbing.NewHash(head), true, nil
}

// findGitDir walks up from dir to the first directory holding .git, a
// directory or a "gitdir: <path>" file (linked worktrees, submodules).
func findGitDir(dir string) (root, gitDir string, err error) {
	for d := dir; ; {
		p := filepath.Join(d, ".git")
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.IsDir():
			return d, p, nil
		case err == nil:
			b, err := os.ReadFile(p)
			if err != nil {
				return "", "", err
			}
			line := strings.TrimSpace(string(b))
			target, ok := strings.CutPrefix(line, "gitdir:")
			if !ok {
				return "", "", fmt.Errorf("%s: %w (a .git file without a gitdir: line)", p, ErrNotRepository)
			}
			target = strings.TrimSpace(target)
			if !filepath.IsAbs(target) {
				target = filepath.Join(d, target)
			}
			if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
				return "", "", fmt.Errorf("%s points at %s, which is not a directory: %w", p, target, ErrNotRepository)
			}
			return d, filepath.Clean(target), nil
		case !errors.Is(err, os.ErrNotExist):
			return "", "", err
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", "", fmt.Errorf("%w (no .git here or in any parent directory)", ErrNotRepository)
		}
		d = parent
	}
}

// readConfig reads the repository's config (from the common directory, for
// a linked worktree) once: it refuses what go-git v5 would misread (SHA-256
// object ids) and returns the core settings the scan follows.
func readConfig(storage *filesystem.Storage) (coreConfig, error) {
	cfg, err := storage.Config()
	if err != nil {
		return coreConfig{}, fmt.Errorf("read git config: %w", err)
	}
	// Raw is always set; a missing section or key reads as "".
	ext := cfg.Raw.Section("extensions").Options
	// The values are printed as words.Printable gives them: a config file
	// is anyone's text, and a control character in it reaches the log.
	if f := ext.Get("objectformat"); f != "" && !strings.EqualFold(f, "sha1") {
		return coreConfig{}, fmt.Errorf("%w: object format %s (only SHA-1 repositories are supported)", ErrUnsupported, words.Printable(f))
	}
	core := cfg.Raw.Section("core").Options
	c := coreConfig{
		fileMode: gitBool(core.Get("filemode"), true),
		symlinks: gitBool(core.Get("symlinks"), true),
	}
	if f := ext.Get("refstorage"); f != "" && !strings.EqualFold(f, "files") {
		// go-git reads refs as files alone: in a reftable repository HEAD
		// names refs/heads/.invalid, which would read as no commits. The
		// index and objects are as usual, so only reading refs fails.
		c.refsErr = fmt.Errorf("%w: refs in the %s format (extensions.refStorage); "+
			"only the files format can be read: `git refs migrate --ref-format=files` converts them", ErrUnsupported, words.Printable(f))
	}
	return c, nil
}

// Resolve returns the full id of the commit a revision names, in git's
// revision syntax as go-git reads it (gitrevisions(7): HEAD~2, main^,
// v1.2.0 with an annotated tag peeled to its commit, an abbreviated id of 4+
// hex digits, a branch, tag or remote-tracking branch). A full id is
// returned as it is, whether or not the checkout has it; a name whose commit
// is not here (a tag in a shallow clone) gives the id its ref holds.
func (r *Repo) Resolve(rev string) (string, error) {
	if len(rev) == 40 && isHex(rev) {
		return strings.ToLower(rev), nil
	}
	if r.core.refsErr != nil {
		return "", fmt.Errorf("resolve %s in %s: %w", rev, r.Root, r.core.refsErr)
	}
	h, err := (&gogit.Repository{Storer: r.storage}).ResolveRevision(plumbing.Revision(rev))
	if err == nil {
		return h.String(), nil
	}
	if id, nerr := r.resolveName(rev); nerr == nil {
		return id, nil
	} else if !errors.Is(nerr, ErrUnknownRevision) {
		return "", nerr
	}
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		// HEAD~3 in a depth-1 clone: the name is fine, the history is not here.
		return "", unknownRevision(fmt.Sprintf("%s goes back further than the history in %s (a shallow clone? fetch more, or give the commit id)", rev, r.Root))
	}
	return "", fmt.Errorf("%w in %s", ErrUnknownRevision, r.Root)
}

// unknownRevision is ErrUnknownRevision with its own words.
type unknownRevision string

func (e unknownRevision) Error() string        { return string(e) }
func (e unknownRevision) Is(target error) bool { return target == ErrUnknownRevision }

// resolveName is Resolve for a plain name or abbreviated id, reading refs
// alone: no commit object is needed.
func (r *Repo) resolveName(rev string) (string, error) {
	if rev == "HEAD" {
		return r.Head()
	}
	for _, name := range []string{rev, "refs/" + rev, "refs/tags/" + rev, "refs/heads/" + rev, "refs/remotes/" + rev, "refs/remotes/" + rev + "/HEAD"} {
		if ref, err := storer.ResolveReference(r.storage, plumbing.ReferenceName(name)); err == nil && !ref.Hash().IsZero() {
			return ref.Hash().String(), nil
		}
	}
	if len(rev) >= 4 && len(rev) <= 40 && isHex(rev) {
		if len(rev) == 40 {
			return strings.ToLower(rev), nil
		}
		prefix, err := hex.DecodeString(rev[:len(rev)&^1])
		if err == nil {
			hashes, err := r.storage.HashesWithPrefix(prefix)
			if err != nil {
				return "", fmt.Errorf("look up %q in %s: %w", rev, r.Root, err)
			}
			var match []string
			for _, h := range hashes {
				if s := h.String(); strings.HasPrefix(s, strings.ToLower(rev)) {
					match = append(match, s)
				}
			}
			switch len(match) {
			case 1:
				return match[0], nil
			case 0:
			default:
				return "", fmt.Errorf("%q is ambiguous in %s: %d objects start with it", rev, r.Root, len(match))
			}
		}
	}
	return "", ErrUnknownRevision
}

func isHex(s string) bool {
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
