package gitrepo

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/gittest"
)

// headTree renders HEAD's tree as lsFiles does: the ids git stored.
func headTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	for line := range strings.Lines(git(t, dir, "ls-tree", "-r", "HEAD")) {
		meta, path, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		f := strings.Fields(meta) // mode type id
		fmt.Fprintf(&b, "%s %s\t%s\n", f[0], f[2], path)
	}
	return b.String()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lineEndingFiles are committed on Linux (core.autocrlf unset): text with LF,
// text committed with CRLF, and files that only look a little like text.
var lineEndingFiles = map[string]string{
	"a.txt":              "one\ntwo\n",
	"sub/b.py":           "x = 1\n",
	"crlf-committed.txt": "one\r\ntwo\r\n",
	"mixed.txt":          "one\r\ntwo\n",
	"bin.dat":            "\x00\r\nbinary\r\n",
	"lone-cr.txt":        "a\rb\n",
	"eof.txt":            "text\r\n\x1a",
	"empty.txt":          "",
}

// TestSourceFilesLineEndings: a checkout that converted line endings, with
// every file read again (new mtimes), hashes as the commit: the ids git
// stored, whatever core.autocrlf and the attributes made of the working tree.
func TestSourceFilesLineEndings(t *testing.T) {
	clone := func(t *testing.T, src string, args ...string) string {
		dst := filepath.Join(t.TempDir(), "clone")
		git(t, src, append(append([]string{"clone", "-q"}, args...), "file://"+src, dst)...)
		return dst
	}
	tests := []struct {
		name  string
		attrs string // .gitattributes committed with the files
		make  func(t *testing.T, src string) string
		crlf  []string // files the checkout must have written with CRLF (checks the fixture)
	}{
		{name: "core.autocrlf=true (a Windows runner)", make: func(t *testing.T, src string) string {
			return clone(t, src, "-c", "core.autocrlf=true")
		}, crlf: []string{"a.txt", "sub/b.py"}},
		{name: "core.autocrlf=true in a config the tool does not read", make: func(t *testing.T, src string) string {
			// Git for Windows sets it in its system config; emulate by
			// removing it from the repository's after the checkout.
			dst := clone(t, src, "-c", "core.autocrlf=true")
			git(t, dst, "config", "--unset", "core.autocrlf")
			return dst
		}, crlf: []string{"a.txt", "sub/b.py"}},
		{name: "eol=crlf attribute", attrs: "*.txt eol=crlf\n*.py text eol=crlf\n", make: func(t *testing.T, src string) string {
			return clone(t, src)
		}, crlf: []string{"a.txt", "sub/b.py"}},
		{name: "text=auto attribute and core.autocrlf=true", attrs: "* text=auto\n*.dat -text\n", make: func(t *testing.T, src string) string {
			return clone(t, src, "-c", "core.autocrlf=true")
		}, crlf: []string{"a.txt", "sub/b.py"}},
		{name: "core.eol=crlf with text attributes", attrs: "*.txt text\n", make: func(t *testing.T, src string) string {
			return clone(t, src, "-c", "core.eol=crlf")
		}, crlf: []string{"a.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := maps(lineEndingFiles)
			if tt.attrs != "" {
				files[".gitattributes"] = tt.attrs
			}
			src := initRepo(t, files)
			dir := tt.make(t, src)
			for _, p := range tt.crlf {
				if c := readFile(t, filepath.Join(dir, p)); !strings.Contains(c, "\r\n") {
					t.Fatalf("fixture: %s checked out without CRLF: %q", p, c)
				}
			}
			gittest.TouchAll(t, dir)
			got := sourceFiles(t, dir, nil, nil)
			if want := headTree(t, dir); lsFiles(got) != want {
				t.Errorf("got\n%s\nwant (the commit)\n%s", lsFiles(got), want)
			}
			for _, f := range got {
				if f.FromIndex {
					t.Errorf("%s: from the index, but its mtime changed", f.Path)
				}
			}
		})
	}
}

func maps(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// TestSourceFilesChangedLineEndings: files a checkout did not write, with
// CRLF, are stored as git would store them with core.autocrlf=true or the
// attributes: an edited file keeps CRLF where the committed version has CRLF
// (git's "safer autocrlf"), and loses it otherwise.
func TestSourceFilesChangedLineEndings(t *testing.T) {
	tests := []struct {
		name   string
		attrs  string
		config []string // git config set in the repository before git adds
	}{
		{name: "core.autocrlf=true", config: []string{"core.autocrlf", "true"}},
		{name: "text=auto", attrs: "* text=auto\n"},
		{name: "text", attrs: "*.txt text\n"},
		{name: "-text", attrs: "*.txt -text\n"},
		// A byte order mark (Windows editors write one) is skipped, as git does.
		{name: "-text after a byte order mark", attrs: "\ufeff*.txt -text\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"crlf.txt": "a\r\nb\r\n", "lf.txt": "a\nb\n"}
			if tt.attrs != "" {
				files[".gitattributes"] = tt.attrs
			}
			// Commit the files as they are, then turn the rule on.
			dir := initRepo(t, files)
			if tt.config != nil {
				git(t, dir, "config", tt.config[0], tt.config[1])
			}
			writeFiles(t, dir, map[string]string{
				"crlf.txt":      "a\r\nchanged\r\n",
				"lf.txt":        "a\r\nchanged\r\n",
				"untracked.txt": "new\r\nfile\r\n",
			})
			got := lsFiles(sourceFiles(t, dir, nil, nil))
			if want := gitSource(t, dir); got != want {
				t.Errorf("got\n%s\nwant (git add -A)\n%s", got, want)
			}
		})
	}
}

// TestSourceFilesLFS: a git-lfs file counts as its pointer, computed from the
// content, whether the checkout smudged it (git-lfs installed) or left the
// pointer (no git-lfs): the pointers are made here by hand, as git-lfs would.
func TestSourceFilesLFS(t *testing.T) {
	content := strings.Repeat("large binary \x00\xff\r\n", 100)
	pointer := func(c string) string {
		if c == "" {
			return "" // git-lfs keeps an empty file empty
		}
		return fmt.Sprintf("version https://git-lfs.github.com/spec/v1\noid sha256:%x\nsize %d\n", sha256.Sum256([]byte(c)), len(c))
	}
	// git without git-lfs stores the files as they are: commit the pointers.
	dir := initRepo(t, map[string]string{
		".gitattributes": "*.bin filter=lfs diff=lfs merge=lfs -text\n",
		"big.bin":        pointer(content),
		"empty.bin":      "",
		"plain.txt":      "not lfs\n",
	})
	want := headTree(t, dir)

	t.Run("pointer left in the working tree", func(t *testing.T) {
		gittest.TouchAll(t, dir)
		if got := lsFiles(sourceFiles(t, dir, nil, nil)); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("smudged: the content in the working tree", func(t *testing.T) {
		writeFiles(t, dir, map[string]string{"big.bin": content})
		files := sourceFiles(t, dir, nil, nil)
		if got := lsFiles(files); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("untracked", func(t *testing.T) {
		writeFiles(t, dir, map[string]string{"new.bin": "new content"})
		for _, f := range sourceFiles(t, dir, nil, nil) {
			if f.Path == "new.bin" && f.ID != hashObject(t, pointer("new content")) {
				t.Errorf("new.bin: %s, want the id of its pointer %s", f.ID, hashObject(t, pointer("new content")))
			}
		}
	})
}

// TestSourceFilesUnsupportedAttributes: a selected file whose stored content
// needs a program (a filter driver), or a conversion not done here, is
// refused, whether or not the index could vouch for it; an unselected one is
// no problem.
func TestSourceFilesUnsupportedAttributes(t *testing.T) {
	dir := initRepo(t, map[string]string{
		".gitattributes":  "*.enc filter=crypt\n*.v ident\n*.u16 working-tree-encoding=UTF-16LE\n*.bin filter=lfs\n",
		"secret.enc":      "encrypted by a filter",
		"version.v":       "$Id$\n",
		"utf16.u16":       "text",
		"ok/a.txt":        "fine",
		"ok/b.bin":        "",
		"ok/sub/.gitkeep": "",
	})
	only := func(suffix string) func(string) bool {
		return func(p string) bool { return strings.HasSuffix(p, suffix) }
	}
	for _, touched := range []bool{false, true} {
		if touched {
			gittest.TouchAll(t, dir)
		}
		for _, sel := range []struct {
			suffix, want string
		}{{".enc", "secret.enc: unsupported gitattribute filter=crypt"}, {".v", "version.v: unsupported gitattribute ident"}, {".u16", "working-tree-encoding=UTF-16LE"}} {
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.SourceFiles(context.Background(), only(sel.suffix), nil)
			if !errors.Is(err, ErrUnsupportedAttribute) || !strings.Contains(err.Error(), sel.want) {
				t.Errorf("touched=%v, %s selected: error %v, want ErrUnsupportedAttribute naming %q", touched, sel.suffix, err, sel.want)
			}
		}
		files := sourceFiles(t, dir, func(p string) bool { return strings.HasPrefix(p, "ok/") }, nil)
		if got, want := paths(files), []string{"ok/a.txt", "ok/b.bin", "ok/sub/.gitkeep"}; !slices.Equal(got, want) {
			t.Errorf("touched=%v: got %q, want %q", touched, got, want)
		}
	}
}

// TestIgnoreUntracked: the package directory's untracked files are left out
// wherever it is given from; tracked files there still count.
func TestIgnoreUntracked(t *testing.T) {
	dir := initRepo(t, map[string]string{"src/a.go": "a", "packages/.gitkeep": ""})
	writeFiles(t, dir, map[string]string{
		"src/new.go":            "new",
		"packages/.commit-hash": "0123",
		"packages/fn1.zip":      "leftover",
		"packages/sub/x.zip":    "x",
		"packagesX/y":           "a sibling with a longer name",
	})
	link := filepath.Join(t.TempDir(), "link")
	symlink(t, dir, link)
	all := []string{"packages/.commit-hash", "packages/.gitkeep", "packages/fn1.zip", "packages/sub/x.zip", "packagesX/y", "src/a.go", "src/new.go"}
	inside := []string{"packages/.gitkeep", "packagesX/y", "src/a.go", "src/new.go"}
	tests := []struct {
		name string
		dir  func(t *testing.T) string
		want []string
	}{
		{"inside", func(t *testing.T) string { return filepath.Join(dir, "packages") }, inside},
		{"inside, with a trailing slash", func(t *testing.T) string { return filepath.Join(dir, "packages") + "/" }, inside},
		{"inside, relative to the working directory", func(t *testing.T) string { t.Chdir(dir); return "./packages" }, inside},
		{"inside, through a symlink", func(t *testing.T) string { return filepath.Join(link, "packages") }, inside},
		{"inside, not there yet", func(t *testing.T) string { return filepath.Join(dir, "src", "out") }, all},
		{"the root: only tracked files", func(t *testing.T) string { return dir }, []string{"packages/.gitkeep", "src/a.go"}},
		{"inside, an untracked symlink to a directory elsewhere", func(t *testing.T) string {
			p := filepath.Join(dir, "pkglink")
			symlink(t, t.TempDir(), p)
			t.Cleanup(func() { os.Remove(p) })
			return p
		}, all},
		{"outside", func(t *testing.T) string { return t.TempDir() }, all},
		{"a directory holding the repository", func(t *testing.T) string { return filepath.Dir(dir) }, all},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.IgnoreUntracked(tt.dir(t)); err != nil {
				t.Fatal(err)
			}
			files, err := r.SourceFiles(context.Background(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := paths(files); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSourceFilesCommittedBeforeTheAttribute: files committed before an
// attribute that would convert them (CRLF before "text", raw content before
// "filter=lfs") count as committed whether or not the index vouches for
// them, so a touch does not change the answer.
func TestSourceFilesCommittedBeforeTheAttribute(t *testing.T) {
	dir := initRepo(t, map[string]string{"a.txt": "a\r\nb\r\n", "big.bin": "raw\x00content"})
	writeFiles(t, dir, map[string]string{".gitattributes": "*.txt text\n*.bin filter=lfs -text\n"})
	git(t, dir, "add", ".gitattributes")
	git(t, dir, "commit", "-q", "-m", "attributes")
	want := headTree(t, dir)
	for _, touched := range []bool{false, true} {
		if touched {
			gittest.TouchAll(t, dir)
		}
		if got := lsFiles(sourceFiles(t, dir, nil, nil)); got != want {
			t.Errorf("touched=%v: got\n%s\nwant\n%s", touched, got, want)
		}
	}
}
