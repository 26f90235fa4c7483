package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"github.com/nsmithuk/s3-asset-manager/internal/gittest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

func sourceFiles(t *testing.T, dir string, include func(string) bool, descend func(string) bool) []File {
	t.Helper()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := r.SourceFiles(context.Background(), include, descend)
	if err != nil {
		t.Fatalf("SourceFiles: %v", err)
	}
	return files
}

// lsFiles renders files as `git ls-files -s` does, without the stage.
func lsFiles(files []File) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%06o %s\t%s\n", uint32(f.Mode), f.ID, f.Path)
	}
	return b.String()
}

// gitSource is what git itself calls the source: everything `git add -A`
// stages. It changes the index, so call it last.
func gitSource(t *testing.T, dir string) string {
	t.Helper()
	git(t, dir, "add", "-A")
	var b strings.Builder
	// -z: names as they are, not C-quoted (a backslash, a trailing space).
	for line := range strings.SplitSeq(git(t, dir, "ls-files", "-s", "-z"), "\x00") {
		if line == "" {
			continue
		}
		mode, rest, _ := strings.Cut(line, " ")
		id, rest, _ := strings.Cut(rest, " ")
		_, path, _ := strings.Cut(rest, "\t")
		fmt.Fprintf(&b, "%s %s\t%s\n", mode, id, path)
	}
	return b.String()
}

func hashObject(t *testing.T, content string) plumbing.Hash {
	t.Helper()
	cmd := exec.Command("git", "hash-object", "--stdin")
	cmd.Stdin = strings.NewReader(content)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return plumbing.NewHash(strings.TrimSpace(string(out)))
}

func paths(files []File) []string {
	var p []string
	for _, f := range files {
		p = append(p, f.Path)
	}
	return p
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestSourceFiles checks the whole selection against what `git add -A`
// would stage, on a checkout with every kind of entry.
func TestSourceFiles(t *testing.T) {
	sub := initRepo(t, map[string]string{"lib.txt": "lib"})
	dir := initRepo(t, map[string]string{
		".gitignore":          "node_modules/\n*.log\n!keep.log\n",
		".env.example":        "A=1\n",
		"app/main.py":         "print('hi')\n",
		"app/run.sh":          "#!/bin/sh\n",
		"app/sub/.gitignore":  "generated/\n",
		"app/deleted.py":      "gone\n",
		"app/was-file":        "becomes a directory\n",
		"app/edited.py":       "before\n",
		"app/sparse/keep.txt": "k",
	})
	if err := os.Chmod(filepath.Join(dir, "app/run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	symlink(t, "main.py", filepath.Join(dir, "app/link"))
	symlink(t, "../nowhere", filepath.Join(dir, "app/dangling"))
	writeFiles(t, dir, map[string]string{"node_modules/forced.js": "forced"})
	git(t, dir, "add", "-f", "node_modules/forced.js")
	git(t, dir, "add", "-A")
	git(t, dir, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "file://"+sub, "vendor/lib")
	git(t, dir, "commit", "-q", "-m", "fixture")

	// The working tree moves on from the commit.
	writeFiles(t, dir, map[string]string{
		"app/new.py":                "new\n",
		".hidden":                   "dot files count\n",
		"build.log":                 "ignored\n",
		"keep.log":                  "negated ignore: counted\n",
		"node_modules/pkg/index.js": "ignored directory\n",
		"app/sub/generated/x.py":    "ignored by a nested .gitignore\n",
		"excluded.txt":              "ignored by info/exclude\n",
		"app/edited.py":             "after, longer\n",
	})
	if err := os.Remove(filepath.Join(dir, "app/deleted.py")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".git/info/exclude"), []byte("# comment\nexcluded.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	nested := filepath.Join(dir, "nested")
	if err := os.Mkdir(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, nested, "init", "-q")
	writeFiles(t, nested, map[string]string{"inner.txt": "not ours"})
	// app/was-file: a tracked file replaced by a directory.
	if err := os.Remove(filepath.Join(dir, "app/was-file")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"app/was-file/inside.txt": "now a file in a directory\n"})

	files := sourceFiles(t, dir, nil, nil)

	wantPaths := []string{
		".env.example", ".gitignore", ".gitmodules", ".hidden",
		"app/dangling", "app/edited.py", "app/link", "app/main.py", "app/new.py", "app/run.sh",
		"app/sparse/keep.txt", "app/sub/.gitignore", "app/was-file/inside.txt",
		"keep.log", "node_modules/forced.js", "vendor/lib",
	}
	if got := paths(files); !slices.Equal(got, wantPaths) {
		t.Errorf("paths:\n got %q\nwant %q", got, wantPaths)
	}
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	checks := []struct {
		path    string
		mode    filemode.FileMode
		tracked bool
		id      plumbing.Hash // zero: not checked here
	}{
		{"app/run.sh", filemode.Executable, true, hashObject(t, "#!/bin/sh\n")},
		{"app/link", filemode.Symlink, true, hashObject(t, "main.py")},
		{"app/dangling", filemode.Symlink, true, hashObject(t, "../nowhere")},
		{"app/edited.py", filemode.Regular, true, hashObject(t, "after, longer\n")},
		{"app/new.py", filemode.Regular, false, hashObject(t, "new\n")},
		{".hidden", filemode.Regular, false, hashObject(t, "dot files count\n")},
		{"vendor/lib", filemode.Submodule, true, plumbing.NewHash(git(t, sub, "rev-parse", "HEAD"))},
	}
	for _, c := range checks {
		f := byPath[c.path]
		if f.Mode != c.mode || f.Tracked != c.tracked || f.ID != c.id {
			t.Errorf("%s: mode %o tracked %v id %s, want mode %o tracked %v id %s", c.path, f.Mode, f.Tracked, f.ID, c.mode, c.tracked, c.id)
		}
	}

	// git would stage the same, nested repository aside.
	if err := os.RemoveAll(nested); err != nil {
		t.Fatal(err)
	}
	if got, want := lsFiles(files), gitSource(t, dir); got != want {
		t.Errorf("SourceFiles differs from `git add -A; git ls-files -s`:\n got:\n%s\nwant:\n%s", got, want)
	}
}

// TestSourceFilesIndexTrust covers when the index's id is used and when the
// file is read again.
func TestSourceFilesIndexTrust(t *testing.T) {
	const path = "src/a.txt"
	setTimes := func(t *testing.T, p string, mt time.Time) {
		t.Helper()
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// editKeepingMtime writes "jello" over "hello" (same size) and puts the
	// old mtime back, returning it.
	editKeepingMtime := func(t *testing.T, p string) time.Time {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("jello"), 0o644); err != nil {
			t.Fatal(err)
		}
		setTimes(t, p, fi.ModTime())
		return fi.ModTime()
	}
	tests := []struct {
		name          string
		change        func(t *testing.T, dir string)
		wantFromIndex bool
		wantContent   string // the content whose id must be reported
		wantMode      filemode.FileMode
	}{
		{
			name:          "fresh index",
			change:        func(t *testing.T, dir string) {},
			wantFromIndex: true, wantContent: "hello", wantMode: filemode.Regular,
		},
		{
			name: "touched (mtime only)",
			change: func(t *testing.T, dir string) {
				setTimes(t, filepath.Join(dir, path), nextOldTime())
			},
			wantFromIndex: false, wantContent: "hello", wantMode: filemode.Regular,
		},
		{
			name: "edited, same size and mtime as before",
			change: func(t *testing.T, dir string) {
				// Stat data matches the index entry, and the index is newer:
				// git would trust it too. This documents the rule.
				editKeepingMtime(t, filepath.Join(dir, path))
			},
			wantFromIndex: true, wantContent: "hello", wantMode: filemode.Regular,
		},
		{
			name: "racy: edited in the index's own timestamp",
			change: func(t *testing.T, dir string) {
				// Same size, and the mtime git recorded, but that mtime is the
				// index file's own: the edit may have come after the index
				// was written, so the file must be read.
				mt := editKeepingMtime(t, filepath.Join(dir, path))
				setTimes(t, filepath.Join(dir, ".git", "index"), mt)
			},
			wantFromIndex: false, wantContent: "jello", wantMode: filemode.Regular,
		},
		{
			name: "racy: file newer than the index",
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, path)
				fi, _ := os.Stat(p)
				setTimes(t, filepath.Join(dir, ".git", "index"), fi.ModTime().Add(-time.Second))
			},
			wantFromIndex: false, wantContent: "hello", wantMode: filemode.Regular,
		},
		{
			name: "chmod +x",
			change: func(t *testing.T, dir string) {
				if err := os.Chmod(filepath.Join(dir, path), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantFromIndex: false, wantContent: "hello", wantMode: filemode.Executable,
		},
		{
			name: "chmod +x with core.fileMode false",
			change: func(t *testing.T, dir string) {
				git(t, dir, "config", "core.fileMode", "false")
				if err := os.Chmod(filepath.Join(dir, path), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			wantFromIndex: true, wantContent: "hello", wantMode: filemode.Regular,
		},
		{
			name: "no index file (rehash, all tracked lost)",
			change: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, ".git", "index")); err != nil {
					t.Fatal(err)
				}
			},
			wantFromIndex: false, wantContent: "hello", wantMode: filemode.Regular,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := initRepo(t, map[string]string{path: "hello", "other.txt": "other"})
			tt.change(t, dir)
			var got *File
			files := sourceFiles(t, dir, nil, nil)
			for i := range files {
				if files[i].Path == path {
					got = &files[i]
				}
			}
			if got == nil {
				t.Fatalf("%s missing from %q", path, paths(files))
			}
			if want := hashObject(t, tt.wantContent); got.ID != want {
				t.Errorf("ID = %s, want %s (of %q)", got.ID, want, tt.wantContent)
			}
			if got.FromIndex != tt.wantFromIndex {
				t.Errorf("FromIndex = %v, want %v", got.FromIndex, tt.wantFromIndex)
			}
			if got.Mode != tt.wantMode {
				t.Errorf("Mode = %o, want %o", got.Mode, tt.wantMode)
			}
		})
	}
}

// TestSourceFilesAllMtimesChanged: a copy of the checkout with new mtimes
// rehashes every file and must give the ids the index holds.
func TestSourceFilesAllMtimesChanged(t *testing.T) {
	files := map[string]string{"a.txt": "a", "b/c.py": "c", "b/d/.e": "", ".gitignore": "*.o\n"}
	for i := range 200 {
		files[fmt.Sprintf("many/f%03d.txt", i)] = strings.Repeat("x", i)
	}
	dir := initRepo(t, files)
	symlink(t, "../a.txt", filepath.Join(dir, "b/link"))
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "link")
	before := sourceFiles(t, dir, nil, nil)
	for _, f := range before {
		if !f.FromIndex {
			t.Fatalf("%s: not from the index in a fresh checkout", f.Path)
		}
	}
	gittest.TouchAll(t, dir)
	after := sourceFiles(t, dir, nil, nil)
	if got, want := lsFiles(after), lsFiles(before); got != want {
		t.Errorf("after changing every mtime:\n%s\nwant\n%s", got, want)
	}
	for _, f := range after {
		if f.FromIndex {
			t.Errorf("%s: FromIndex after its mtime changed", f.Path)
		}
	}
}

func TestSourceFilesSparse(t *testing.T) {
	files := map[string]string{"app/a.txt": "a", "app/b/c.txt": "c", "other/d.txt": "d", "top.txt": "t"}
	full := initRepo(t, files)
	want := lsFiles(sourceFiles(t, full, nil, nil))

	t.Run("sparse checkout", func(t *testing.T) {
		dir := initRepo(t, files)
		git(t, dir, "sparse-checkout", "set", "--cone", "app")
		if _, err := os.Stat(filepath.Join(dir, "other")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("other/ should not be checked out: %v", err)
		}
		got := sourceFiles(t, dir, nil, nil)
		if lsFiles(got) != want {
			t.Errorf("sparse:\n%s\nwant\n%s", lsFiles(got), want)
		}
		for _, f := range got {
			if f.Path == "other/d.txt" && !f.FromIndex {
				t.Errorf("%s: skip-worktree entry should come from the index", f.Path)
			}
		}
	})
	t.Run("partial clone (actions/checkout with sparse-checkout)", func(t *testing.T) {
		// actions/checkout fetches with --filter=blob:none when given
		// sparse-checkout: the blobs outside the cone, a .gitattributes
		// among them, are not in the clone.
		withAttrs := maps(files)
		withAttrs["other/.gitattributes"] = "*.txt -text\n"
		src := initRepo(t, withAttrs)
		want := lsFiles(sourceFiles(t, src, nil, nil))
		git(t, src, "config", "uploadpack.allowFilter", "true")
		dir := filepath.Join(t.TempDir(), "clone")
		git(t, src, "clone", "-q", "--filter=blob:none", "--sparse", "file://"+src, dir)
		git(t, dir, "sparse-checkout", "set", "--cone", "app")
		if missing := git(t, dir, "rev-list", "--objects", "--missing=print", "HEAD"); !strings.Contains(missing, "?") {
			t.Fatalf("fixture: no blob is missing from the partial clone:\n%s", missing)
		}
		if got := lsFiles(sourceFiles(t, dir, nil, nil)); got != want {
			t.Errorf("partial clone:\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("sparse index", func(t *testing.T) {
		dir := initRepo(t, files)
		git(t, dir, "sparse-checkout", "set", "--cone", "--sparse-index", "app")
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.SourceFiles(context.Background(), nil, nil); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("SourceFiles error = %v, want ErrUnsupported", err)
		}
	})
}

func TestSourceFilesIncludeDescend(t *testing.T) {
	dir := initRepo(t, map[string]string{"a/x.py": "x", "a/y.txt": "y", "b/z.py": "z"})
	writeFiles(t, dir, map[string]string{"a/new.py": "n", "b/new.py": "n", "c/new.py": "n"})
	isPy := func(p string) bool { return strings.HasSuffix(p, ".py") }
	tests := []struct {
		name    string
		include func(string) bool
		descend func(string) bool
		want    []string
	}{
		{"everything", nil, nil, []string{"a/new.py", "a/x.py", "a/y.txt", "b/new.py", "b/z.py", "c/new.py"}},
		{"include", isPy, nil, []string{"a/new.py", "a/x.py", "b/new.py", "b/z.py", "c/new.py"}},
		// descend prunes the untracked walk only: tracked files are known from the index.
		{"descend", isPy, func(d string) bool { return d != "b" && d != "c" }, []string{"a/new.py", "a/x.py", "b/z.py"}},
		{"nothing", func(string) bool { return false }, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := paths(sourceFiles(t, dir, tt.include, tt.descend)); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSourceFilesMergeConflict(t *testing.T) {
	dir := initRepo(t, map[string]string{"a.txt": "base\n"})
	git(t, dir, "checkout", "-q", "-b", "other")
	writeFiles(t, dir, map[string]string{"a.txt": "other\n"})
	git(t, dir, "commit", "-q", "-am", "other")
	git(t, dir, "checkout", "-q", "main")
	writeFiles(t, dir, map[string]string{"a.txt": "main\n"})
	git(t, dir, "commit", "-q", "-am", "main")
	cmd := exec.Command("git", "merge", "-q", "other")
	cmd.Dir = dir
	if err := cmd.Run(); err == nil {
		t.Fatal("merge should conflict")
	}
	files := sourceFiles(t, dir, nil, nil)
	if len(files) != 1 || files[0].Path != "a.txt" || files[0].FromIndex {
		t.Fatalf("got %+v, want a.txt once, read from disk", files)
	}
	content, err := os.ReadFile(filepath.Join(dir, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := hashObject(t, string(content)); files[0].ID != want {
		t.Errorf("ID = %s, want %s (the conflicted file as it is)", files[0].ID, want)
	}
}

func TestSourceFilesCanceled(t *testing.T) {
	dir := initRepo(t, map[string]string{"a.txt": "a"})
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.SourceFiles(ctx, nil, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}

func TestBlobID(t *testing.T) {
	for _, content := range []string{"", "a", "hello\n", "\x00binary\xff", strings.Repeat("long line\n", 10000)} {
		if got, want := blobID([]byte(content)), hashObject(t, content); got != want {
			t.Errorf("blobID(%.10q) = %s, want %s", content, got, want)
		}
		p := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		got, _, err := hashPath(p, filemode.Regular, make([]byte, 4096))
		if err != nil || got != hashObject(t, content) {
			t.Errorf("hashPath(%.10q) = %s, %v, want %s", content, got, err, hashObject(t, content))
		}
	}
}

// TestSourceFilesIndexFormats: the same checkout under each index layout git
// writes gives the same files, or a clear error for what go-git cannot read.
func TestSourceFilesIndexFormats(t *testing.T) {
	files := map[string]string{"a.txt": "a", "b/c.txt": "c", "b/d/e.txt": "e"}
	want := lsFiles(sourceFiles(t, initRepo(t, files), nil, nil))
	tests := []struct {
		name    string
		change  func(t *testing.T, dir string)
		wantErr error
	}{
		{name: "version 4 (path compression)", change: func(t *testing.T, dir string) {
			git(t, dir, "update-index", "--index-version", "4")
		}},
		{name: "version 3 with intent-to-add", change: func(t *testing.T, dir string) {
			// git add -N records the empty blob; the file's content counts.
			git(t, dir, "rm", "-q", "--cached", "b/c.txt")
			git(t, dir, "add", "-N", "b/c.txt")
			if v := indexVersion(t, dir); v != 3 {
				t.Fatalf("index version %d, want 3", v)
			}
		}},
		{name: "index.skipHash (zero checksum)", change: func(t *testing.T, dir string) {
			// git 2.40+ writes this with feature.manyFiles; make it by hand.
			p := filepath.Join(dir, ".git", "index")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			clear(b[len(b)-20:])
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "split index", wantErr: ErrUnsupported, change: func(t *testing.T, dir string) {
			git(t, dir, "update-index", "--split-index")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := initRepo(t, files)
			tt.change(t, dir)
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.SourceFiles(context.Background(), nil, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SourceFiles: %v", err)
			}
			if lsFiles(got) != want {
				t.Errorf("got\n%s\nwant\n%s", lsFiles(got), want)
			}
		})
	}

	t.Run("corrupt checksum", func(t *testing.T) {
		dir := initRepo(t, files)
		p := filepath.Join(dir, ".git", "index")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.SourceFiles(context.Background(), nil, nil); err == nil {
			t.Fatal("a corrupt index should be an error")
		}
	})
}

func indexVersion(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".git", "index"))
	if err != nil || len(b) < 8 {
		t.Fatalf("read index: %v", err)
	}
	return int(b[4])<<24 | int(b[5])<<16 | int(b[6])<<8 | int(b[7])
}

// TestSourceFilesCoreSymlinksFalse: where symlinks are off, git checks a link
// out as a plain file holding the target; it still counts as the link.
func TestSourceFilesCoreSymlinksFalse(t *testing.T) {
	src := initRepo(t, map[string]string{"a.txt": "a"})
	symlink(t, "a.txt", filepath.Join(src, "link"))
	git(t, src, "add", "link")
	git(t, src, "commit", "-q", "-m", "link")
	want := lsFiles(sourceFiles(t, src, nil, nil))

	dst := filepath.Join(t.TempDir(), "clone")
	git(t, src, "clone", "-q", "-c", "core.symlinks=false", "file://"+src, dst)
	if fi, err := os.Lstat(filepath.Join(dst, "link")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("link should be a plain file: %v", err)
	}
	mt := nextOldTime()
	if err := os.Chtimes(filepath.Join(dst, "link"), mt, mt); err != nil { // rehash it
		t.Fatal(err)
	}
	if got := lsFiles(sourceFiles(t, dst, nil, nil)); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// TestSourceFilesDirectoryBecameSymlink: a tracked directory replaced by a
// symlink (to another directory of the checkout) is what `git add -A`
// makes of it: the link, and none of the files git tracked under the
// directory, which git never reads through a link.
func TestSourceFilesDirectoryBecameSymlink(t *testing.T) {
	t.Parallel()
	dir := initRepo(t, map[string]string{"lib/x.py": "lib x\n", "lib/y.py": "lib y\n", "common/x.py": "common x\n"})
	if err := os.RemoveAll(filepath.Join(dir, "lib")); err != nil {
		t.Fatal(err)
	}
	symlink(t, "common", filepath.Join(dir, "lib"))
	got := lsFiles(sourceFiles(t, dir, nil, nil))
	if want := gitSource(t, dir); got != want {
		t.Errorf("got\n%s\nwant (git add -A)\n%s", got, want)
	}
}

// TestSourceFilesInSubmoduleNotCheckedOut: the directory of a submodule
// that is not checked out (no .git in it) belongs to the submodule: files a
// step wrote there, or a copy of its content, are not the superproject's
// untracked files, which is what `git add -A` says too. The submodule
// counts as the commit the index records.
func TestSourceFilesInSubmoduleNotCheckedOut(t *testing.T) {
	t.Parallel()
	sub := initRepo(t, map[string]string{"lib.txt": "lib"})
	src := initRepo(t, map[string]string{"a.txt": "a"})
	git(t, src, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "file://"+sub, "vendor/lib")
	git(t, src, "commit", "-q", "-m", "submodule")
	dir := filepath.Join(t.TempDir(), "clone")
	git(t, src, "clone", "-q", "file://"+src, dir) // not recursive: vendor/lib is an empty directory
	writeFiles(t, dir, map[string]string{"vendor/lib/generated.txt": "a step wrote this", "vendor/lib/deep/x.txt": "x"})
	got := lsFiles(sourceFiles(t, dir, nil, nil))
	if want := gitSource(t, dir); got != want {
		t.Errorf("got\n%s\nwant (git add -A)\n%s", got, want)
	}
}

// TestSourceFilesAttributesInSubmoduleNotCheckedOut: a .gitattributes in
// the directory of a submodule that is not checked out is not read, as git
// reads none there: one that cannot be read fails nothing. (Unreadable for
// root too: descend, called once the walk has listed vendor/lib, puts a
// directory in the file's place, so reading it fails with EISDIR.)
func TestSourceFilesAttributesInSubmoduleNotCheckedOut(t *testing.T) {
	t.Parallel()
	sub := initRepo(t, map[string]string{"lib.txt": "lib"})
	src := initRepo(t, map[string]string{"a.txt": "a"})
	git(t, src, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "file://"+sub, "vendor/lib")
	git(t, src, "commit", "-q", "-m", "submodule")
	dir := filepath.Join(t.TempDir(), "clone")
	git(t, src, "clone", "-q", "file://"+src, dir) // not recursive: vendor/lib is an empty directory
	writeFiles(t, dir, map[string]string{"vendor/lib/.gitattributes": "* filter=git-crypt\n", "vendor/lib/deep/x.txt": "x"})
	attrs := filepath.Join(dir, "vendor", "lib", ".gitattributes")
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := r.SourceFiles(context.Background(), nil, func(d string) bool {
		if d == "vendor/lib/deep" {
			if err := os.Remove(attrs); err != nil {
				t.Error(err)
			}
			if err := os.Mkdir(attrs, 0o755); err != nil {
				t.Error(err)
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("SourceFiles: %v", err)
	}
	if err := os.Remove(attrs); err != nil {
		t.Fatal(err)
	}
	if got, want := lsFiles(files), gitSource(t, dir); got != want {
		t.Errorf("got\n%s\nwant (git add -A)\n%s", got, want)
	}
}

// TestSourceFilesReftableSubmodule: a checked-out submodule whose refs are
// in the reftable format has a HEAD go-git cannot read, and a submodule
// counts as the commit checked out in it: the hash is refused
// (ErrUnsupported, exit 3), naming the submodule, not computed from the
// commit the index records.
func TestSourceFilesReftableSubmodule(t *testing.T) {
	t.Parallel()
	sub := initRepo(t, map[string]string{"lib.txt": "lib"})
	dir := initRepo(t, map[string]string{"a.txt": "a"})
	git(t, dir, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "file://"+sub, "vendor/lib")
	git(t, dir, "commit", "-q", "-m", "submodule")
	reftable(t, filepath.Join(dir, ".git", "modules", "vendor", "lib"), "reftable")
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.SourceFiles(context.Background(), nil, nil)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "submodule vendor/lib:") {
		t.Fatalf("SourceFiles error = %v, want ErrUnsupported naming submodule vendor/lib", err)
	}
}
