// Package codehash computes the code hash: one digest of the source files
// that make the build artifacts, so a build of the same sources under another
// commit can be found.
package codehash

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Scheme tags the hash layout; changing the layout changes the tag.
const Scheme = "s3-asset-manager code hash v1"

// ErrNoMatch: a positive pattern selects no source file (it matches none,
// only ignored ones, or later '!' patterns exclude all it matches). A typo in
// the filter would otherwise leave files out of the hash, or hash nothing, and
// silently serve stale builds.
var ErrNoMatch = errors.New("no source file matches")

// Result is a computed code hash and the files it covers, in path order.
type Result struct {
	Hash  string
	Files []gitrepo.File
}

// Compute selects the source files matching pats (see Match: the last
// matching pattern wins, '!' excludes) and hashes them.
//
// The source files are those git considers source: tracked files with their
// working-tree contents as git would store them, plus untracked files that
// are not ignored (see gitrepo.Repo.SourceFiles for the rules). The hash is the lower-case hex SHA-256 of
//
//	s3-asset-manager code hash v1\n
//	<salt>\n
//
// followed, for each selected file in byte order of path, by
//
//	<path>\x00<mode>\x00<id>\n
//
// where path is relative to the repository root and '/'-separated, as git
// stores it; mode is git's, in octal (100644, 100755, 120000 for a symlink,
// 160000 for a submodule); and id is the git object id in lower-case hex: the
// blob id of the clean content (of the link target text for a symlink), or
// the commit checked out in a submodule. So a rename, a mode change or an
// edit changes the hash; mtimes, line endings a checkout converted, clone
// depth, linked worktrees and sparse checkouts do not.
//
// The salt must be a single line. A positive pattern that selects no source
// file is an error wrapping ErrNoMatch, naming the patterns (and the setting
// they come from, CODE_HASH_FIND_FILTER). Errors carry no "code hash"
// context: the caller says what it was doing.
func Compute(ctx context.Context, repo *gitrepo.Repo, pats []Pattern, salt string) (Result, error) {
	files, err := selectFiles(ctx, repo, pats, salt)
	if err != nil {
		return Result{}, err
	}
	return Result{Hash: digest(files, salt), Files: files}, nil
}

// ComputeList is NewList of Compute's result, with its EncodeStored made
// too, beside the digest: the digest takes one core after the walk (200,000
// files: 15-20 ms), and the list a miss keeps (12.8-13.6 ms) was encoded only
// after it, on the miss's critical path after the cache lookup. The list's
// EncodeStored then returns it as made; its fields must not change.
func ComputeList(ctx context.Context, repo *gitrepo.Repo, pats []Pattern, salt string) (*List, error) {
	files, err := selectFiles(ctx, repo, pats, salt)
	if err != nil {
		return nil, err
	}
	l := NewList(Result{Files: files}, pats, salt)
	// The code hash has a fixed length: the list is encoded with a
	// placeholder, its digits written in once known.
	type made struct {
		s   storedBlocks
		err error
	}
	done := make(chan made, 1)
	tmp := *l
	tmp.CodeHash = strings.Repeat("0", sha256.Size*2)
	go func() {
		s, err := tmp.storedText()
		done <- made{s, err}
	}()
	l.CodeHash = digest(files, salt)
	m := <-done
	if m.err != nil {
		return nil, m.err
	}
	at := len(gzipHeader) + storedHeaderLen + len(ListFormat+"\ncode-hash ")
	copy(m.s.b[at:at+len(l.CodeHash)], l.CodeHash)
	l.stored = m.s.close()
	return l, nil
}

// selectFiles is the source files Compute hashes.
func selectFiles(ctx context.Context, repo *gitrepo.Repo, pats []Pattern, salt string) ([]gitrepo.File, error) {
	if strings.ContainsAny(salt, "\n\r\x00") {
		return nil, errors.New("the salt must be a single line")
	}
	var positives []Pattern
	for _, p := range pats {
		if !p.Negate {
			positives = append(positives, p)
		}
	}
	if len(positives) == 0 {
		return nil, fmt.Errorf("CODE_HASH_FIND_FILTER: %w: it names no files to include", ErrNoMatch)
	}
	files, err := repo.SourceFiles(ctx, func(path string) bool { return Match(pats, path) }, descender(positives))
	if err != nil {
		return nil, err
	}
	if unmatched := selectsNothing(positives, files); len(unmatched) > 0 {
		return nil, fmt.Errorf("CODE_HASH_FIND_FILTER: %w %s", ErrNoMatch, whyNoMatch(repo, unmatched))
	}
	return files, nil
}

// selectsNothing lists the positive patterns that match none of the selected
// files: those that matched only ignored files, or whose every match a later
// '!' pattern excluded, are as much a mistake as a typo.
func selectsNothing(positives []Pattern, files []gitrepo.File) []Pattern {
	var none []Pattern
next:
	for _, p := range positives {
		for _, f := range files {
			if doublestar.MatchUnvalidated(p.Glob, f.Path) {
				continue next
			}
		}
		none = append(none, p)
	}
	return none
}

// whyNoMatch names the patterns that select nothing, with what each may
// be: one whose literal start lies inside a submodule reaches for files
// that never count (the submodule counts as its commit), the others are
// noMatchWhy's guesses, said once after them.
func whyNoMatch(repo *gitrepo.Repo, unmatched []Pattern) string {
	subs, _ := repo.Submodules() // best effort: the index was read already
	var parts, plain []string
	flush := func() {
		if len(plain) > 0 {
			parts = append(parts, strings.Join(plain, ", ")+" ("+noMatchWhy+")")
			plain = nil
		}
	}
	for _, p := range unmatched {
		if sub := submoduleOf(subs, p.Glob); sub != "" {
			flush()
			parts = append(parts, fmt.Sprintf("pattern %s (inside submodule %s, whose files never count: "+
				"a submodule counts as the commit checked out in it; select it with %s)", p, words.Printable(sub), words.Printable(sub)))
			continue
		}
		plain = append(plain, "pattern "+p.String())
	}
	flush()
	return strings.Join(parts, ", ")
}

// submoduleOf gives the submodule whose directory the literal start of
// glob (its names before any glob syntax) reaches into, or "".
func submoduleOf(subs []string, glob string) string {
	segs := strings.Split(glob, "/")
	n := 0
	for n < len(segs)-1 && !strings.ContainsAny(segs[n], `*?[]{}\`) {
		n++
	}
	lit := strings.Join(segs[:n], "/") + "/" // the directories named before the last name or a glob
	for _, s := range subs {
		if strings.HasPrefix(lit, s+"/") {
			return s
		}
	}
	return ""
}

// digest is the layout documented on Compute; files must be sorted by path.
func digest(files []gitrepo.File, salt string) string {
	return digestWith(Scheme+"\n"+salt+"\n", files)
}

// digestWith hashes the header, then a line a file (see Compute).
//
// The lines are made in place in one buffer, hashed each time it fills, and
// the usual modes are written as constants: this runs after the walk, on
// the hash's critical path, and at 200,000 files making the lines (copied
// twice, the mode formatted) took as long as SHA-256 itself.
func digestWith(header string, files []gitrepo.File) string {
	h := sha256.New()
	buf := make([]byte, 0, 256<<10)
	buf = append(buf, header...)
	for _, f := range files {
		if len(buf) > cap(buf)-len(f.Path)-64 {
			h.Write(buf)
			buf = buf[:0]
		}
		buf = append(buf, f.Path...)
		buf = append(buf, 0)
		switch f.Mode {
		case filemode.Regular:
			buf = append(buf, "100644"...)
		case filemode.Executable:
			buf = append(buf, "100755"...)
		default:
			buf = strconv.AppendUint(buf, uint64(f.Mode), 8)
		}
		buf = append(buf, 0)
		buf = hex.AppendEncode(buf, f.ID[:])
		buf = append(buf, '\n')
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}

// WriteList writes one line per file, "<mode as 6 octal digits> <id> <path>"
// (as `git ls-files -s` without the stage), for `hash --verbose`, so two runs
// can be compared with diff.
func (r Result) WriteList(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, f := range r.Files {
		fmt.Fprintf(bw, "%06o %s %s\n", uint32(f.Mode), f.ID, words.Printable(f.Path))
	}
	return bw.Flush()
}

// descender returns the walk's pruning check: could any positive pattern match
// a path under dir? It compares dir with each pattern's literal leading
// segments and answers true as soon as it meets a segment with glob syntax, so
// it never prunes a directory that holds a match.
func descender(positives []Pattern) func(dir string) bool {
	type lit struct {
		segs []string // literal leading segments
		all  bool     // the whole pattern is literal
	}
	lits := make([]lit, len(positives))
	for i, p := range positives {
		segs := strings.Split(p.Glob, "/")
		n := 0
		for n < len(segs) && !strings.ContainsAny(segs[n], `*?[]{}\`) {
			n++
		}
		lits[i] = lit{segs: segs[:n], all: n == len(segs)}
	}
	return func(dir string) bool {
		if dir == "" {
			return true
		}
		d := strings.Split(dir, "/")
	next:
		for _, l := range lits {
			for i, seg := range d {
				if i == len(l.segs) {
					if l.all {
						continue next // a literal path this short cannot name something under dir
					}
					return true // glob syntax from here on
				}
				if l.segs[i] != seg {
					continue next
				}
			}
			// dir is a prefix of the literal part (or equal to it).
			if l.all && len(l.segs) == len(d) {
				continue // the pattern names dir itself, nothing under it
			}
			return true
		}
		return false
	}
}
