package codehash

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
	"github.com/nsmithuk/s3-asset-manager/internal/gittest"
)

// The shared helpers, under the names these tests use.
var (
	git         = gittest.Git
	writeFiles  = gittest.WriteFiles
	nextOldTime = gittest.NextOldTime
	initRepo    = gittest.TempRepo
)

// fixture is a checkout with a filter's worth of everything: dot-files, an
// executable, a symlink, a submodule, ignored and unselected files.
func fixture(t *testing.T) string {
	t.Helper()
	sub := initRepo(t, map[string]string{"lib.py": "lib"})
	dir := initRepo(t, map[string]string{
		".gitignore":           "node_modules/\n*.log\n",
		"lambdas/fn1/main.py":  "print('fn1')\n",
		"lambdas/fn1/util.py":  "def util(): pass\n",
		"lambdas/fn1/.config":  "dot=1\n",
		"lambdas/fn2/index.js": "exports.handler = 1\n",
		"lambdas/fn2/run.sh":   "#!/bin/sh\n",
		"shared/lib.py":        "shared\n",
		"docs/readme.md":       "docs\n",
	})
	if err := os.Chmod(filepath.Join(dir, "lambdas/fn2/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../shared/lib.py", filepath.Join(dir, "lambdas/fn1/shared.py")); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "add", "-A")
	git(t, dir, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "file://"+sub, "lambdas/vendor")
	git(t, dir, "commit", "-q", "-m", "fixture")
	return dir
}

func compute(t *testing.T, dir, filter, salt string) Result {
	t.Helper()
	pats, err := ParsePatterns(filter)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := gitrepo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Compute(context.Background(), repo, pats, salt)
	if err != nil {
		t.Fatalf("Compute(%q): %v", filter, err)
	}
	return res
}

func list(r Result) string {
	var b bytes.Buffer
	if err := r.WriteList(&b); err != nil {
		panic(err)
	}
	return b.String()
}

func TestComputeChanges(t *testing.T) {
	const filter = "lambdas/**"
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		same   bool
	}{
		{"nothing", func(t *testing.T, dir string) {}, true},
		{"touch (mtime only)", func(t *testing.T, dir string) {
			mt := nextOldTime()
			if err := os.Chtimes(filepath.Join(dir, "lambdas/fn1/main.py"), mt, mt); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"every mtime changed", func(t *testing.T, dir string) { gittest.TouchAll(t, dir) }, true},
		{"ignored directory", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"lambdas/fn2/node_modules/dep/index.js": "dep"})
		}, true},
		{"ignored file", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"lambdas/fn1/debug.log": "log"})
		}, true},
		{"untracked file outside the filter", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"docs/new.md": "new"})
		}, true},
		{"edit outside the filter", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"docs/readme.md": "edited"})
		}, true},
		{"submodule not checked out (deinit): the recorded commit, the same", func(t *testing.T, dir string) {
			git(t, dir, "submodule", "deinit", "-q", "lambdas/vendor")
		}, true},
		{"untracked file", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"lambdas/fn1/new.py": "new"})
		}, false},
		{"untracked dot-file", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"lambdas/fn1/.env": "A=1"})
		}, false},
		{"edit, same size", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"lambdas/fn1/main.py": "print('fnX')\n"})
		}, false},
		{"edit to a dot-file", func(t *testing.T, dir string) {
			writeFiles(t, dir, map[string]string{"lambdas/fn1/.config": "dot=2\n"})
		}, false},
		{"rename", func(t *testing.T, dir string) {
			git(t, dir, "mv", "lambdas/fn1/util.py", "lambdas/fn1/utils.py")
		}, false},
		{"rename without git", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "lambdas/fn1/util.py"), filepath.Join(dir, "lambdas/fn1/utils.py")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"chmod +x", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "lambdas/fn1/util.py"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"delete", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "lambdas/fn1/util.py")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"symlink retargeted", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "lambdas/fn1/shared.py")
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../../docs/readme.md", p); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"submodule checked out at another commit, gitlink unchanged (what is built changed)", func(t *testing.T, dir string) {
			git(t, filepath.Join(dir, "lambdas/vendor"), "commit", "-q", "--allow-empty", "-m", "more")
		}, false},
		{"submodule moved to another commit", func(t *testing.T, dir string) {
			git(t, filepath.Join(dir, "lambdas/vendor"), "commit", "-q", "--allow-empty", "-m", "more")
			git(t, dir, "add", "lambdas/vendor")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fixture(t)
			before := compute(t, dir, filter, "")
			tt.change(t, dir)
			after := compute(t, dir, filter, "")
			if same := before.Hash == after.Hash; same != tt.same {
				t.Errorf("same hash = %v, want %v\nbefore:\n%s\nafter:\n%s", same, tt.same, list(before), list(after))
			}
			if tt.same && list(before) != list(after) {
				t.Errorf("same hash but different lists:\n%s\n%s", list(before), list(after))
			}
		})
	}
}

// TestComputeSameAcrossCheckouts: the hash depends on the sources, not on how
// they were checked out.
func TestComputeSameAcrossCheckouts(t *testing.T) {
	src := fixture(t)
	filters := []string{"lambdas/**", "**"}
	want := map[string]Result{}
	for _, f := range filters {
		want[f] = compute(t, src, f, "salt")
	}
	if n := len(want["lambdas/**"].Files); n != 7 {
		t.Fatalf("fixture: %d files selected, want 7:\n%s", n, list(want["lambdas/**"]))
	}

	tests := []struct {
		name         string
		make         func(t *testing.T) string
		allRehashed  bool // no file's id came from the index
		filtersToUse []string
	}{
		{name: "fresh clone", make: func(t *testing.T) string {
			dst := filepath.Join(t.TempDir(), "clone")
			git(t, src, "clone", "-q", "file://"+src, dst)
			return dst
		}},
		{name: "shallow clone", make: func(t *testing.T) string {
			dst := filepath.Join(t.TempDir(), "clone")
			git(t, src, "clone", "-q", "--depth", "1", "file://"+src, dst)
			return dst
		}},
		{name: "clone with submodules", make: func(t *testing.T) string {
			dst := filepath.Join(t.TempDir(), "clone")
			git(t, src, "-c", "protocol.file.allow=always", "clone", "-q", "--recurse-submodules", "file://"+src, dst)
			return dst
		}},
		{name: "linked worktree", make: func(t *testing.T) string {
			wt := filepath.Join(t.TempDir(), "wt")
			git(t, src, "worktree", "add", "-q", "--detach", wt)
			return wt
		}},
		{name: "sparse checkout of the cone", make: func(t *testing.T) string {
			dst := filepath.Join(t.TempDir(), "clone")
			git(t, src, "clone", "-q", "file://"+src, dst)
			git(t, dst, "sparse-checkout", "set", "--cone", "lambdas")
			if _, err := os.Stat(filepath.Join(dst, "docs")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("docs/ should be outside the cone: %v", err)
			}
			return dst
		}},
		// What a Windows runner's checkout does (core.autocrlf=true: text
		// files with CRLF; core.filemode=false: no executable bits;
		// core.symlinks=false: a link is a file holding its target), each
		// file read again (new mtimes), on Linux.
		{name: "windows: core.autocrlf=true", allRehashed: true, make: func(t *testing.T) string {
			return windowsClone(t, src, "core.autocrlf=true")
		}},
		{name: "windows: core.filemode=false", allRehashed: true, make: func(t *testing.T) string {
			return windowsClone(t, src, "core.filemode=false")
		}},
		{name: "windows: core.symlinks=false", allRehashed: true, make: func(t *testing.T) string {
			return windowsClone(t, src, "core.symlinks=false")
		}},
		{name: "windows: all three", allRehashed: true, make: func(t *testing.T) string {
			return windowsClone(t, src, "core.autocrlf=true", "core.filemode=false", "core.symlinks=false")
		}},
		{name: "tar copy (every mtime changed)", allRehashed: true, make: func(t *testing.T) string {
			dst := t.TempDir()
			// -m: extracted files get the time of extraction, not the archived mtimes.
			cmd := exec.Command("sh", "-c", `tar -C "$1" -cf - . | tar -C "$2" -xmf -`, "sh", src, dst)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			return dst
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := tt.make(t)
			for _, f := range filters {
				got := compute(t, dir, f, "salt")
				if got.Hash != want[f].Hash {
					t.Errorf("%s: hash differs from the original checkout\n got:\n%s\nwant:\n%s", f, list(got), list(want[f]))
				}
				if !tt.allRehashed {
					continue
				}
				for _, file := range got.Files {
					if file.FromIndex && file.Mode != filemode.Submodule {
						t.Errorf("%s: id from the index, but its mtime changed", file.Path)
					}
				}
			}
		})
	}
}

// windowsClone clones src with the settings a Windows runner has, and makes
// the working tree what such a checkout writes: the settings' effects are
// checked, executable bits are dropped where core.filemode is off, and every
// mtime is new, so every file is read again.
func windowsClone(t *testing.T, src string, settings ...string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "clone")
	args := []string{"clone", "-q"}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	git(t, src, append(args, "file://"+src, dst)...)
	for _, s := range settings {
		switch s {
		case "core.autocrlf=true":
			if b, _ := os.ReadFile(filepath.Join(dst, "lambdas/fn1/main.py")); !bytes.Contains(b, []byte("\r\n")) {
				t.Fatalf("fixture: main.py checked out without CRLF: %q", b)
			}
		case "core.filemode=false":
			if err := os.Chmod(filepath.Join(dst, "lambdas/fn2/run.sh"), 0o644); err != nil {
				t.Fatal(err)
			}
		case "core.symlinks=false":
			if fi, err := os.Lstat(filepath.Join(dst, "lambdas/fn1/shared.py")); err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("fixture: the symlink should be a plain file: %v", err)
			}
		}
	}
	gittest.TouchAll(t, dst)
	return dst
}

func TestComputeSalt(t *testing.T) {
	dir := fixture(t)
	a, b := compute(t, dir, "lambdas/**", ""), compute(t, dir, "lambdas/**", "go1.26")
	if a.Hash == b.Hash {
		t.Error("salt does not change the hash")
	}
	if list(a) != list(b) {
		t.Error("salt changed the file list")
	}
	repo, err := gitrepo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compute(context.Background(), repo, []Pattern{{Glob: "**"}}, "two\nlines"); err == nil {
		t.Error("a salt with a line break should be refused")
	}
}

func TestComputeNoMatch(t *testing.T) {
	dir := fixture(t)
	repo, err := gitrepo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		filter  string
		mention []string
		clean   []string // must not be named
	}{
		{filter: "lamdbas/**", mention: []string{"lamdbas/**"}, clean: []string{"submodule"}},
		// A submodule's files never count: the error says so, not "a typo".
		{filter: "lambdas/vendor/*.py", mention: []string{"pattern lambdas/vendor/*.py (inside submodule lambdas/vendor"}, clean: []string{"typo"}},
		{filter: "lambdas/vendor/** lambdas/vendor/src/** lamdbas/**", mention: []string{
			"pattern lambdas/vendor/src/** (inside submodule lambdas/vendor", "pattern lamdbas/** (a typo"}},
		{filter: "lambdas/** lamdbas/** sahred/**", mention: []string{"lamdbas/**", "sahred/**"}, clean: []string{"pattern lambdas/**"}},
		{filter: "lambdas/** !lambdas/**", mention: []string{"lambdas/**"}},
		{filter: "lambdas/**/*.log", mention: []string{"lambdas/**/*.log"}}, // matches only ignored files
		{filter: "lambdas/fn1", mention: []string{"lambdas/fn1"}},           // a directory is not a file
	}
	for _, tt := range tests {
		pats, err := ParsePatterns(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		writeFiles(t, dir, map[string]string{"lambdas/fn1/debug.log": "ignored"})
		_, err = Compute(context.Background(), repo, pats, "")
		if !errors.Is(err, ErrNoMatch) {
			t.Errorf("%q: error %v, want ErrNoMatch", tt.filter, err)
			continue
		}
		for _, m := range tt.mention {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("%q: error %q does not name %s", tt.filter, err, m)
			}
		}
		for _, c := range tt.clean {
			if strings.Contains(err.Error(), c) {
				t.Errorf("%q: error %q names %s, which matches", tt.filter, err, c)
			}
		}
	}
	if _, err := Compute(context.Background(), repo, nil, ""); !errors.Is(err, ErrNoMatch) {
		t.Errorf("no patterns: error %v, want ErrNoMatch", err)
	}
}

// TestDigestLayout pins the documented layout the README quotes.
func TestDigestLayout(t *testing.T) {
	files := []gitrepo.File{
		{Path: "a/b.py", Mode: filemode.Regular, ID: plumbing.NewHash("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391")},
		{Path: "a/run.sh", Mode: filemode.Executable, ID: plumbing.NewHash("1111111111111111111111111111111111111111")},
		{Path: "a/link", Mode: filemode.Symlink, ID: plumbing.NewHash("2222222222222222222222222222222222222222")},
		{Path: "vendor/lib", Mode: filemode.Submodule, ID: plumbing.NewHash("3333333333333333333333333333333333333333")},
	}
	layout := "s3-asset-manager code hash v1\nmy salt\n" +
		"a/b.py\x00100644\x00e69de29bb2d1d6434b8b29ae775ad8c2e48c5391\n" +
		"a/run.sh\x00100755\x001111111111111111111111111111111111111111\n" +
		"a/link\x00120000\x002222222222222222222222222222222222222222\n" +
		"vendor/lib\x00160000\x003333333333333333333333333333333333333333\n"
	sum := sha256.Sum256([]byte(layout))
	if got, want := digest(files, "my salt"), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("digest = %s, want %s", got, want)
	}

	// Many files, past the buffer the lines are hashed from, and a mode of
	// an old git (100664) among them.
	var many []gitrepo.File
	var long strings.Builder // not +=: the 20,000 lines copied again at each one took 17 s under -race
	long.WriteString("s3-asset-manager code hash v1\n\n")
	for i := range 20000 {
		f := gitrepo.File{Path: fmt.Sprintf("dir%03d/%s/file%05d.js", i/100, strings.Repeat("x", i%300), i), Mode: filemode.Regular, ID: plumbing.ComputeHash(plumbing.BlobObject, []byte{byte(i), byte(i >> 8)})}
		switch i % 7 {
		case 1:
			f.Mode = filemode.Executable
		case 2:
			f.Mode = filemode.Symlink
		case 3:
			f.Mode = filemode.Deprecated
		}
		many = append(many, f)
		fmt.Fprintf(&long, "%s\x00%o\x00%s\n", f.Path, uint32(f.Mode), f.ID)
	}
	sum = sha256.Sum256([]byte(long.String()))
	if got, want := digest(many, ""), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("digest of %d files = %s, want %s", len(many), got, want)
	}

	var b strings.Builder
	if err := (Result{Files: files}).WriteList(&b); err != nil {
		t.Fatal(err)
	}
	wantList := "100644 e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 a/b.py\n" +
		"100755 1111111111111111111111111111111111111111 a/run.sh\n" +
		"120000 2222222222222222222222222222222222222222 a/link\n" +
		"160000 3333333333333333333333333333333333333333 vendor/lib\n"
	if b.String() != wantList {
		t.Errorf("WriteList:\n%s\nwant\n%s", b.String(), wantList)
	}
}

func TestDescender(t *testing.T) {
	tests := []struct {
		filter string
		dir    string
		want   bool
	}{
		{"lambdas/**", "", true},
		{"lambdas/**", "lambdas", true},
		{"lambdas/**", "lambdas/fn1/src", true},
		{"lambdas/**", "docs", false},
		{"lambdas/**", "lambdasx", false},
		{"lambdas/fn1/**", "lambdas", true},
		{"lambdas/fn1/**", "lambdas/fn2", false},
		{"lambdas/*/src/**", "lambdas/fn9", true}, // glob segment: can't tell
		{"lambdas/*/src/**", "other", false},
		{"**/*.py", "anything/at/all", true},
		{"{lambdas,shared}/**", "docs", true}, // braces: in doubt
		{"lambdas/fn1/main.py", "lambdas/fn1", true},
		{"lambdas/fn1/main.py", "lambdas/fn2", false},
		{"lambdas/fn1/main.py", "lambdas/fn1/main.py", false}, // names the path itself, nothing under it
		{"lambdas/fn1", "lambdas/fn1", false},
		{"docs/** lambdas/**", "lambdas/x", true},
		{"docs/** lambdas/**", "shared", false},
		{"l?mbdas/**", "docs", true},
		{"lambdas/[ab]/**", "lambdas/c", true},
	}
	for _, tt := range tests {
		pats, err := ParsePatterns(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		if got := descender(pats)(tt.dir); got != tt.want {
			t.Errorf("descend(%q) under %q = %v, want %v", tt.dir, tt.filter, got, tt.want)
		}
	}
}

// TestDescenderNeverPrunesAMatch checks the safety property over many paths:
// every directory above a path a pattern matches must be walked.
func TestDescenderNeverPrunesAMatch(t *testing.T) {
	filters := []string{
		"lambdas/**", "lambdas/fn1/**", "lambdas/*/src/**", "**/*.py", "{lambdas,shared}/**",
		"lambdas/fn1/main.py", "l?mbdas/**", "lambdas/[!b]*/**", "lambdas/fn{1,2}/**", "*/fn1/**",
		"lambdas/**/x/*.py", ".github/**", "lambdas/fn1/*",
	}
	paths := []string{
		"lambdas/fn1/main.py", "lambdas/fn2/src/a.py", "lambdas/fn1/x/y.py", "lambdas/a/x/b.py",
		"shared/lib.py", "docs/x.md", "top.py", ".github/workflows/ci.yml", "lambdas/fn1/deep/er/x.py",
	}
	for _, filter := range filters {
		pats, err := ParsePatterns(filter)
		if err != nil {
			t.Fatal(err)
		}
		descend := descender(pats)
		for _, p := range paths {
			if !doublestar.MatchUnvalidated(pats[0].Glob, p) {
				continue
			}
			segs := strings.Split(p, "/")
			for i := range len(segs) - 1 {
				if d := strings.Join(segs[:i+1], "/"); !descend(d) {
					t.Errorf("%q: descend(%q) = false, but %s matches", filter, d, p)
				}
			}
		}
	}
}

// ComputeList is Compute's hash and NewList of it, with the stored encoding
// made beside the digest (the code hash written in afterwards): the same
// bytes EncodeStored makes of the list.
func TestComputeList(t *testing.T) {
	big := map[string]string{}
	for i := range 1500 { // several of gzip's stored blocks
		big[fmt.Sprintf("lambdas/fn%d/a-rather-long-directory-name/file-%04d.py", i%7, i)] = fmt.Sprint(i)
	}
	for name, dir := range map[string]string{"fixture": fixture(t), "several blocks": initRepo(t, big)} {
		for _, salt := range []string{"", "pepper"} {
			pats, err := ParsePatterns("lambdas/** !lambdas/**/*.md")
			if err != nil {
				t.Fatal(err)
			}
			repo, err := gitrepo.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ComputeList(context.Background(), repo, pats, salt)
			if err != nil {
				t.Fatal(err)
			}
			want := NewList(compute(t, dir, "lambdas/** !lambdas/**/*.md", salt), pats, salt)
			if l.CodeHash != want.CodeHash || !Compare(want, l).Same() {
				t.Fatalf("%s: ComputeList's list differs from Compute's: %s, %v", name, l.CodeHash, Compare(want, l).Lines(0))
			}
			got, err := l.EncodeStored()
			if err != nil {
				t.Fatal(err)
			}
			if enc := must(t, want.EncodeStored); !bytes.Equal(got, enc) {
				t.Errorf("%s, salt %q: the list made beside the digest: %d bytes, not EncodeStored's %d (first difference at %d)", name, salt, len(got), len(enc), firstDiff(got, enc))
			}
		}
	}
}
