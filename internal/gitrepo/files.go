package gitrepo

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"golang.org/x/sync/errgroup"

	"github.com/nsmithuk/s3-asset-manager/internal/pool"
)

// File is one file git considers source.
type File struct {
	Path      string            // slash-separated, relative to Repo.Root
	Mode      filemode.FileMode // filemode.Regular, Executable, Symlink or Submodule
	ID        plumbing.Hash     // git blob id of the content (symlink: of its target text), commit id for a submodule
	Tracked   bool              // in the index
	FromIndex bool              // id taken from the index without reading the file
}

// SourceFiles lists the files git considers the source: tracked files (from
// the index, contents as in the working tree), plus untracked files that are
// not ignored (.gitignore files at every level and info/exclude; the user's
// global core.excludesFile is left out on purpose, so two machines agree).
// Ignored directories are never walked. include(path) selects files;
// descend(dir) lets the untracked walk skip directories that cannot hold a
// selected file (dir is a slash-separated relative path, "" is the root).
// Either may be nil (everything) and both may be called concurrently.
// Results are sorted by Path (byte order).
//
// What counts, as `git add -A` would store it:
//   - A tracked file's id comes from the index when its size, mtime and mode
//     match the file and the file is older than the index (git's racy rule);
//     otherwise the file is read and hashed as git would store it: its clean
//     content, line endings normalised, a git-lfs file as its pointer (see
//     storedID). Inode, device and owner are never compared: they change
//     across container bind mounts.
//   - Symlinks are not followed: the id is that of the target text.
//   - A submodule counts as the commit checked out in it (what a build uses,
//     and what `git add` records), or the commit the index records when it is
//     not checked out. Submodules are not walked, and neither are untracked
//     nested repositories (left out).
//   - Skip-worktree entries (sparse checkout) are not on disk: the index id counts.
//   - A tracked file deleted from the working tree is left out; an unmerged
//     one counts as the file on disk.
//   - Untracked files under a directory given to IgnoreUntracked are left out.
//   - A sparse index (directory entries) is refused with ErrUnsupported
//     rather than expanded: expanding needs the trees from the object store,
//     and `git sparse-checkout init --no-sparse-index` turns it off.
//   - A selected file with an attribute whose clean content cannot be
//     computed here (a filter driver other than git-lfs, ident,
//     working-tree-encoding) is an error wrapping ErrUnsupportedAttribute,
//     whether or not its stat data matches the index, so that the answer
//     does not depend on the checkout.
func (r *Repo) SourceFiles(ctx context.Context, include func(path string) bool, descend func(dir string) bool) ([]File, error) {
	if include == nil {
		include = func(string) bool { return true }
	}
	if descend == nil {
		descend = func(string) bool { return true }
	}
	if len(r.ignored) > 0 {
		d := descend
		descend = func(dir string) bool { return !r.isIgnored(dir) && d(dir) }
	}
	s := &scan{
		repo:     r,
		root:     r.Root,
		cfg:      r.core,
		include:  include,
		descend:  descend,
		workers:  max(4, runtime.GOMAXPROCS(0)),
		excludes: readIgnore(filepath.Join(r.CommonDir, "info", "exclude"), nil),
	}

	// Decoding the index and walking the tree (which stats every selected
	// file) are the slow parts and need nothing of each other: run them together.
	// The entries are kept one a path beside the walk too (the walk takes
	// longest: at 200,000 files, 7 ms off its critical path).
	var (
		idx  *index.Index
		todo tracked
		dirs []*walkDir
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		if idx, err = r.readIndex(); err != nil {
			return err
		}
		if todo, err = trackedEntries(idx.Entries); err != nil {
			return fmt.Errorf("read index of %s: %w", r.Root, err)
		}
		return nil
	})
	g.Go(func() (err error) {
		dirs, err = s.walk(gctx)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	s.idxTime = idx.ModTime

	// Hand the walk's stat results to the tracked entries; what is left is
	// untracked. A directory at a time, on every worker: each walked file
	// is its own entry, and this runs after the walk, on its critical path
	// (200,000 files: 55 ms on one core).
	infos := make([]fs.FileInfo, len(todo.entries))
	var (
		untracked []walkFile
		attrFiles []string // .gitattributes files the walk saw
	)
	strays := make([][]walkFile, len(dirs)) // a directory's untracked files
	err := pool.Run(ctx, s.workers, len(dirs), func(_ context.Context, k int) error {
		d := dirs[k]
		if len(d.files) == 0 {
			return nil
		}
		prefix := d.files[0].path[:len(d.files[0].path)-len(d.files[0].info.Name())]
		if todo.inSubmodule(prefix) {
			return nil // a submodule not checked out: its directory is not ours
		}
		in := todo.dir(prefix)
		for _, f := range d.files {
			if i, ok := in.find(f.path); ok {
				infos[i] = f.info
			} else if !d.ignore.Match(append(slices.Clip(d.domain), f.info.Name()), false) && !r.isIgnored(f.path) {
				strays[k] = append(strays[k], f)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for k, d := range dirs {
		// git reads no .gitattributes in a submodule's directory that is
		// not checked out, as it adds none of its files: nor here (one
		// unreadable failed the hash, and its rules cost every lookup).
		if d.attributes && (d.domain == nil || !todo.inSubmodule(strings.Join(d.domain, "/")+"/")) {
			attrFiles = append(attrFiles, strings.Join(append(slices.Clip(d.domain), ".gitattributes"), "/"))
		}
		untracked = append(untracked, strays[k]...)
	}
	if s.attrs, err = r.loadAttributes(todo.entries, attrFiles); err != nil {
		return nil, fmt.Errorf("read the gitattributes of %s: %w", r.Root, err)
	}

	nt := len(todo.entries)
	out := make([]File, nt+len(untracked))
	keep := make([]bool, len(out))
	err = pool.RunWith(ctx, s.workers, len(out), func() []byte { return make([]byte, 64<<10) }, func(_ context.Context, buf []byte, i int) (err error) {
		if i < nt {
			out[i], keep[i], err = s.trackedFile(todo.entries[i], infos[i], buf)
		} else {
			out[i], keep[i], err = s.untrackedFile(untracked[i-nt], buf)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	files := out[:0]
	for i, f := range out {
		if keep[i] {
			files = append(files, f)
		}
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// tracked is the index with one entry a path, and how to find a path in it.
type tracked struct {
	entries []*index.Entry
	// names are the entries' paths, side by side: what the searches compare
	// (through entries, each comparison read an entry of its own, from
	// anywhere in memory).
	names      []string
	byPath     map[string]int // for an index out of path order; nil when sorted
	submodules []string       // the gitlinks' paths
}

// inSubmodule reports whether the directory prefix ("dir/") lies in a
// submodule's directory.
func (t tracked) inSubmodule(prefix string) bool {
	for _, s := range t.submodules {
		if strings.HasPrefix(prefix, s+"/") {
			return true
		}
	}
	return false
}

// trackedEntries keeps one entry a path: an unmerged path (several stages)
// counts as the file as it is now. git writes the index sorted by path, the
// stages of a path next to each other, so a path is found by binary search
// within its directory's entries (a map of 200,000 paths was a tenth of the
// time of the hash); an index out of order, which git does not write, is
// looked up through a map, with the same result.
func trackedEntries(entries []*index.Entry) (tracked, error) {
	t := tracked{entries: make([]*index.Entry, 0, len(entries))}
	for _, e := range entries {
		switch e.Mode {
		case filemode.Dir:
			return tracked{}, fmt.Errorf("%w: sparse index (directory entry %s/); "+
				"run `git sparse-checkout init --no-sparse-index`", ErrUnsupported, e.Name)
		case filemode.Submodule:
			t.submodules = append(t.submodules, e.Name)
		}
	}
	t.names = make([]string, 0, len(entries))
	for _, e := range entries {
		if n := len(t.entries); n > 0 {
			if prev := t.names[n-1]; e.Name == prev {
				t.entries[n-1] = &index.Entry{Name: e.Name, Stage: e.Stage}
				continue
			} else if e.Name < prev {
				u := trackedUnsorted(entries)
				u.submodules = t.submodules
				return u, nil
			}
		}
		t.entries = append(t.entries, e)
		t.names = append(t.names, e.Name)
	}
	return t, nil
}

func trackedUnsorted(entries []*index.Entry) tracked {
	t := tracked{entries: make([]*index.Entry, 0, len(entries)), byPath: make(map[string]int, len(entries))}
	for _, e := range entries {
		if i, dup := t.byPath[e.Name]; dup {
			t.entries[i] = &index.Entry{Name: e.Name, Stage: e.Stage}
			continue
		}
		t.byPath[e.Name] = len(t.entries)
		t.entries = append(t.entries, e)
	}
	return t
}

// dir narrows the search to the entries under prefix ("dir/", or "" for
// the root).
func (t tracked) dir(prefix string) trackedRange {
	r := trackedRange{t: t, hi: len(t.entries), plen: len(prefix)}
	if t.byPath == nil && prefix != "" {
		// "dir0" is the first path after every "dir/...": '0' follows '/'.
		r.lo = t.search(prefix)
		r.hi = t.searchFrom(r.lo, prefix[:len(prefix)-1]+"0")
	}
	return r
}

// search gives the place of the first entry not before path.
func (t tracked) search(path string) int {
	i, _ := slices.BinarySearch(t.names, path)
	return i
}

// searchFrom is search when every entry before lo is before path, and the
// place is likely near lo (the end of a directory's entries, most of which
// hold a few dozen): steps of 1, 2, 4, ... from lo, then a binary search
// within the last step, instead of one over the whole index.
func (t tracked) searchFrom(lo int, path string) int {
	hi, step := lo, 1
	for hi < len(t.names) && t.names[hi] < path {
		lo = hi + 1
		hi += step
		step <<= 1
	}
	hi = min(hi, len(t.names))
	return lo + tracked{names: t.names[lo:hi]}.search(path)
}

type trackedRange struct {
	t      tracked
	lo, hi int
	plen   int // the length of the prefix every entry of the range starts with
}

// find gives the place in the entries of path, which must be under the
// range's prefix. Only what follows the prefix is compared: every entry of
// the range starts with it.
func (r trackedRange) find(path string) (int, bool) {
	if r.t.byPath != nil {
		i, ok := r.t.byPath[path]
		return i, ok
	}
	i, ok := slices.BinarySearchFunc(r.t.names[r.lo:r.hi], path[r.plen:], func(n, name string) int {
		return strings.Compare(n[r.plen:], name)
	})
	return r.lo + i, ok
}

type coreConfig struct {
	fileMode bool  // core.fileMode: trust the executable bit
	symlinks bool  // core.symlinks: symlinks are checked out as links
	refsErr  error // refs in a format that cannot be read (reftable)
}

func gitBool(v string, def bool) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "false", "no", "off", "0":
		return false
	case "true", "yes", "on", "1":
		return true
	}
	return def
}

type scan struct {
	repo     *Repo
	attrs    *attributes
	root     string
	cfg      coreConfig
	idxTime  time.Time // the index file's mtime
	include  func(string) bool
	descend  func(string) bool
	workers  int
	excludes []gitignore.Pattern // info/exclude
	linkDirs sync.Map            // directory → it or one above it is a symlink (underSymlink)
}

// trackedFile gives the file for an index entry, trusting the index where
// git would and hashing otherwise; info is the walk's lstat of it, or nil
// when the walk did not see it (not selected, in a pruned or ignored
// directory, or gone). keep is false for a file to leave out.
func (s *scan) trackedFile(e *index.Entry, info fs.FileInfo, buf []byte) (f File, keep bool, err error) {
	f = File{Path: e.Name, Tracked: true}
	// Joined only where needed: most files are clean, and the join was 4%
	// of the time of hashing 200,000 of them.
	abs := func() string { return filepath.Join(s.root, filepath.FromSlash(e.Name)) }
	if e.Mode == filemode.Submodule || e.SkipWorktree {
		if !s.include(e.Name) {
			return f, false, nil
		}
		f.Mode, f.ID, f.FromIndex = e.Mode, e.Hash, true
		if e.Mode != filemode.Submodule {
			return f, true, s.refuse(e.Name)
		}
		if e.SkipWorktree {
			return f, true, nil
		}
		// Attributes never apply to a submodule: git converts no gitlink.
		id, ok, err := submoduleHead(abs())
		if err != nil {
			return f, false, fmt.Errorf("submodule %s: %w", e.Name, err)
		}
		if ok {
			f.ID, f.FromIndex = id, false
		}
		return f, true, nil
	}
	if info == nil {
		if !s.include(e.Name) {
			return f, false, nil
		}
		if s.underSymlink(path.Dir(e.Name)) {
			return f, false, nil // git reads nothing through a link: the tracked file is gone
		}
		if info, err = os.Lstat(abs()); err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
				return f, false, nil // deleted in the working tree
			}
			return f, false, fmt.Errorf("stat %s: %w", e.Name, err)
		}
	}
	mode, ok := s.mode(info, e.Mode)
	if !ok {
		return f, false, nil // now a directory or a special file: the tracked file is gone
	}
	f.Mode = mode
	if err := s.refuse(e.Name); err != nil {
		return f, false, err
	}
	if s.clean(e, info, mode) {
		f.ID, f.FromIndex = e.Hash, true
		return f, true, nil
	}
	if f.ID, err = s.storedID(e.Name, abs(), mode, e.Hash, buf); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return f, false, nil // deleted since the stat
		}
		return f, false, fmt.Errorf("hash %s: %w", e.Name, err)
	}
	return f, true, nil
}

// underSymlink reports whether dir (slash-separated, "." for the root) or
// a directory above it is a symlink in the working tree. Only a tracked file
// the walk did not see asks (the walk never follows a link), so the answers
// are kept a directory each, for the files of an ignored directory.
func (s *scan) underSymlink(dir string) bool {
	if dir == "." {
		return false
	}
	if v, ok := s.linkDirs.Load(dir); ok {
		return v.(bool)
	}
	link := s.underSymlink(path.Dir(dir))
	if !link {
		fi, err := os.Lstat(filepath.Join(s.root, filepath.FromSlash(dir)))
		link = err == nil && fi.Mode()&fs.ModeSymlink != 0
	}
	s.linkDirs.Store(dir, link)
	return link
}

func (s *scan) untrackedFile(w walkFile, buf []byte) (File, bool, error) {
	mode, ok := s.mode(w.info, 0)
	if !ok {
		return File{}, false, nil
	}
	if err := s.refuse(w.path); err != nil {
		return File{}, false, err
	}
	id, err := s.storedID(w.path, filepath.Join(s.root, filepath.FromSlash(w.path)), mode, plumbing.ZeroHash, buf)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return File{}, false, nil
		}
		return File{}, false, fmt.Errorf("hash %s: %w", w.path, err)
	}
	return File{Path: w.path, Mode: mode, ID: id}, true, nil
}

// clean reports whether the index's id can be trusted for the file: the stat
// data git recorded still matches, and the file was not modified within the
// index's own timestamp granularity (racy git: a same-size edit just after
// the index was written would otherwise go unseen).
func (s *scan) clean(e *index.Entry, fi fs.FileInfo, mode filemode.FileMode) bool {
	mt := fi.ModTime()
	return e.Mode == mode &&
		!e.IntentToAdd &&
		e.Size == uint32(fi.Size()) &&
		e.ModifiedAt.Equal(mt) &&
		mt.Before(s.idxTime)
}

// mode is the git mode of a working file, following git's ce_mode_from_stat:
// with core.fileMode or core.symlinks off, the index's mode stands in for
// what the file system cannot say. ok is false for what git does not track.
// indexMode is 0 for untracked files.
func (s *scan) mode(fi fs.FileInfo, indexMode filemode.FileMode) (m filemode.FileMode, ok bool) {
	switch t := fi.Mode(); {
	case t&fs.ModeSymlink != 0:
		return filemode.Symlink, true
	case t.IsRegular():
		if !s.cfg.symlinks && indexMode == filemode.Symlink {
			return filemode.Symlink, true
		}
		if !s.cfg.fileMode {
			if indexMode == filemode.Regular || indexMode == filemode.Executable {
				return indexMode, true
			}
			return filemode.Regular, true
		}
		if t.Perm()&0o100 != 0 {
			return filemode.Executable, true
		}
		return filemode.Regular, true
	}
	return 0, false
}

// refuse fails for a selected file whose stored content cannot be computed
// here (see attributes.refuses).
func (s *scan) refuse(path string) error {
	if !s.attrs.refuses {
		return nil
	}
	if u := s.attrs.lookup(path).unsupported; u != "" {
		return fmt.Errorf("%s: %w %s: git stores what a program configured on each machine makes of it, "+
			"which the code hash cannot compute; leave it out with a !pattern in the filter", path, ErrUnsupportedAttribute, u)
	}
	return nil
}

// hashPath computes the blob id of the file as it is: of the link target
// text for a symlink (never followed), else of the content; sawCR reports a
// CR in the content. crypto/sha1 is twice as fast here as go-git's
// collision-detecting hasher and gives the same ids for anything but a
// crafted collision.
func hashPath(abs string, mode filemode.FileMode, buf []byte) (id plumbing.Hash, sawCR bool, err error) {
	if mode == filemode.Symlink {
		if target, err := os.Readlink(abs); err == nil {
			return blobID([]byte(target)), false, nil
		} else if !errors.Is(err, errInvalid) {
			return plumbing.ZeroHash, false, err
		}
		// core.symlinks=false: a plain file holding the target text.
	}
	f, err := os.Open(abs)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	size := fi.Size()
	h := sha1.New()
	h.Write(blobHeader(size))
	var n int64
	for {
		m, err := f.Read(buf)
		n += int64(m)
		h.Write(buf[:m])
		// IndexByte is vectorised: telling files with CR apart costs little.
		sawCR = sawCR || bytes.IndexByte(buf[:m], '\r') >= 0
		if err == io.EOF {
			break
		}
		if err != nil {
			return plumbing.ZeroHash, false, err
		}
	}
	if n != size {
		return plumbing.ZeroHash, false, fmt.Errorf("the file changed while it was read (%d bytes, then %d)", size, n)
	}
	return sum(h), sawCR, nil
}

var (
	errNotDir  error = syscall.ENOTDIR // a path component is now a file
	errInvalid error = syscall.EINVAL  // readlink of something that is not a link
)

func blobID(content []byte) plumbing.Hash {
	h := sha1.New()
	h.Write(blobHeader(int64(len(content))))
	h.Write(content)
	return sum(h)
}

type walkDir struct {
	domain     []string          // the directory's path segments
	ignore     gitignore.Matcher // the patterns that apply in it
	files      []walkFile
	attributes bool // it holds a .gitattributes file
}

type walkFile struct {
	path string
	info fs.FileInfo // from lstat
}

type walker struct {
	*scan
	sem chan struct{} // bounds the goroutines walking directories
	wg  sync.WaitGroup

	mu   sync.Mutex
	dirs []*walkDir
	errs []error
}

// walk lists and stats the selected files of the working tree, leaving out
// ignored directories, directories descend rejects and nested repositories
// (submodules among them). Whether a file is tracked is decided later, so
// files are not checked against the ignore rules here.
func (s *scan) walk(ctx context.Context) ([]*walkDir, error) {
	w := &walker{scan: s, sem: make(chan struct{}, s.workers)}
	w.wg.Add(1)
	w.dir(ctx, "", s.excludes)
	w.wg.Wait()
	if err := errors.Join(w.errs...); err != nil {
		return nil, err
	}
	return w.dirs, ctx.Err()
}

// dir reads one directory (rel is "" for the root) with the ignore patterns
// that apply above it, and walks its subdirectories, on new goroutines while
// the semaphore allows.
func (w *walker) dir(ctx context.Context, rel string, ignore []gitignore.Pattern) {
	defer w.wg.Done()
	if ctx.Err() != nil {
		return
	}
	od, err := readDirAt(filepath.Join(w.root, filepath.FromSlash(rel)))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, errNotDir) {
			w.fail(fmt.Errorf("read directory %s: %w", cmp.Or(rel, "."), err))
		}
		return
	}
	ents := od.ents
	d := &walkDir{files: make([]walkFile, 0, len(ents))}
	if rel != "" {
		d.domain = strings.Split(rel, "/")
	}
	for _, e := range ents {
		switch e.name {
		case ".git":
			if rel != "" {
				od.close()
				return // a nested repository or submodule: not ours to walk
			}
		case ".gitignore":
			if e.typ.IsRegular() { // git does not follow a symlink here
				ignore = append(slices.Clip(ignore), readIgnore(filepath.Join(w.root, filepath.FromSlash(rel), ".gitignore"), d.domain)...)
			}
		case ".gitattributes":
			d.attributes = e.typ.IsRegular()
		}
	}
	d.ignore = gitignore.NewMatcher(ignore)
	// The files first, then the subdirectories, so the directory is closed
	// before the walk goes deeper.
	var subdirs []string
	for _, e := range ents {
		name := e.name
		if name == ".git" {
			continue
		}
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		if e.typ.IsDir() {
			if w.descend(p) && !d.ignore.Match(append(slices.Clip(d.domain), name), true) {
				subdirs = append(subdirs, p)
			}
			continue
		}
		if e.typ&^(fs.ModeSymlink) != 0 || !w.include(p) {
			continue // sockets, pipes and devices are not source
		}
		info, err := od.lstat(name)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				w.fail(fmt.Errorf("stat %s: %w", p, err))
			}
			continue
		}
		d.files = append(d.files, walkFile{p, info})
	}
	od.close()
	if len(d.files) > 0 || d.attributes {
		w.mu.Lock()
		w.dirs = append(w.dirs, d)
		w.mu.Unlock()
	}
	for _, p := range subdirs {
		w.wg.Add(1)
		select {
		case w.sem <- struct{}{}:
			go func() {
				defer func() { <-w.sem }()
				w.dir(ctx, p, ignore)
			}()
		default:
			w.dir(ctx, p, ignore)
		}
	}
}

func (w *walker) fail(err error) {
	w.mu.Lock()
	w.errs = append(w.errs, err)
	w.mu.Unlock()
}
