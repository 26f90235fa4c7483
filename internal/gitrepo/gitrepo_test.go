package gitrepo

import (
	"errors"
	"fmt"
	"github.com/nsmithuk/s3-asset-manager/internal/gittest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The shared helpers, under the names these tests use.
var (
	git         = gittest.Git
	writeFiles  = gittest.WriteFiles
	nextOldTime = gittest.NextOldTime
	initRepo    = gittest.TempRepo
)

func TestOpenHead(t *testing.T) {
	tests := []struct {
		name string
		// setup returns the path to open and the directory where
		// `git rev-parse HEAD` gives the expected commit.
		setup      func(t *testing.T) (path, headDir string)
		wantRoot   func(path string) string
		wantLinked bool // GitDir differs from CommonDir
	}{
		{
			name:  "normal repository",
			setup: func(t *testing.T) (string, string) { d := initRepo(t, map[string]string{"a.txt": "a"}); return d, d },
		},
		{
			name: "subdirectory",
			setup: func(t *testing.T) (string, string) {
				d := initRepo(t, map[string]string{"sub/deeper/a.txt": "a"})
				return filepath.Join(d, "sub", "deeper"), d
			},
			wantRoot: func(p string) string { return filepath.Dir(filepath.Dir(p)) },
		},
		{
			name: "detached HEAD",
			setup: func(t *testing.T) (string, string) {
				d := initRepo(t, map[string]string{"a.txt": "a"})
				writeFiles(t, d, map[string]string{"a.txt": "b"})
				git(t, d, "commit", "-q", "-am", "second")
				git(t, d, "checkout", "-q", "--detach", "HEAD~1")
				return d, d
			},
		},
		{
			name: "shallow clone",
			setup: func(t *testing.T) (string, string) {
				src := initRepo(t, map[string]string{"a.txt": "a"})
				writeFiles(t, src, map[string]string{"a.txt": "b"})
				git(t, src, "commit", "-q", "-am", "second")
				dst := filepath.Join(t.TempDir(), "clone")
				git(t, src, "clone", "-q", "--depth", "1", "file://"+src, dst)
				if _, err := os.Stat(filepath.Join(dst, ".git", "shallow")); err != nil {
					t.Fatalf("not a shallow clone: %v", err)
				}
				return dst, dst
			},
		},
		{
			name: "linked worktree",
			setup: func(t *testing.T) (string, string) {
				src := initRepo(t, map[string]string{"a.txt": "a"})
				wt := filepath.Join(t.TempDir(), "wt")
				git(t, src, "worktree", "add", "-q", "-b", "other", wt)
				return wt, wt
			},
			wantLinked: true,
		},
		{
			name: "submodule checkout",
			setup: func(t *testing.T) (string, string) {
				sub := initRepo(t, map[string]string{"lib.txt": "lib"})
				super := initRepo(t, map[string]string{"main.txt": "main"})
				git(t, super, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "file://"+sub, "vendor/lib")
				git(t, super, "commit", "-q", "-m", "add submodule")
				p := filepath.Join(super, "vendor", "lib")
				if fi, err := os.Lstat(filepath.Join(p, ".git")); err != nil || fi.IsDir() {
					t.Fatalf("submodule should have a .git file: %v", err)
				}
				return p, p
			},
		},
		{
			name: "sparse checkout",
			setup: func(t *testing.T) (string, string) {
				d := initRepo(t, map[string]string{"app/a.txt": "a", "other/b.txt": "b"})
				git(t, d, "sparse-checkout", "set", "--cone", "app")
				if got := git(t, d, "config", "extensions.worktreeConfig"); got != "true" {
					t.Fatalf("extensions.worktreeConfig = %q, want true", got)
				}
				return d, d
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, headDir := tt.setup(t)
			r, err := Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			got, err := r.Head()
			if err != nil {
				t.Fatalf("Head: %v", err)
			}
			if want := git(t, headDir, "rev-parse", "HEAD"); got != want {
				t.Errorf("Head = %s, want %s", got, want)
			}
			wantRoot := path
			if tt.wantRoot != nil {
				wantRoot = tt.wantRoot(path)
			}
			if r.Root != wantRoot {
				t.Errorf("Root = %s, want %s", r.Root, wantRoot)
			}
			if linked := r.GitDir != r.CommonDir; linked != tt.wantLinked {
				t.Errorf("GitDir %s, CommonDir %s: linked = %v, want %v", r.GitDir, r.CommonDir, linked, tt.wantLinked)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T) string
		openErr error // from Open
		headErr error // from Head, when Open succeeds
		msg     string
	}{
		{
			name: "no commits",
			setup: func(t *testing.T) string {
				d := t.TempDir()
				git(t, d, "-c", "init.defaultBranch=main", "init", "-q")
				return d
			},
			headErr: ErrNoCommits,
		},
		{
			name:    "not a repository",
			setup:   func(t *testing.T) string { return t.TempDir() },
			openErr: ErrNotRepository,
		},
		{
			name:    "missing directory",
			setup:   func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") },
			openErr: ErrNotRepository,
		},
		{
			name: "a file, not a directory",
			setup: func(t *testing.T) string {
				return filepath.Join(gittest.TempRepo(t, map[string]string{"a.txt": "1"}), "a.txt")
			},
			openErr: ErrNotRepository,
		},
		{
			name: "SHA-256 repository",
			setup: func(t *testing.T) string {
				d := t.TempDir()
				git(t, d, "-c", "init.defaultBranch=main", "init", "-q", "--object-format=sha256")
				return d
			},
			openErr: ErrUnsupported,
		},
		{
			// What git 2.45+ makes with --ref-format=reftable (git's
			// default from 3.0): HEAD names an invalid branch, the refs are
			// in .git/reftable. The git here may be older: written by hand.
			name: "reftable refs",
			setup: func(t *testing.T) string {
				d := gittest.TempRepo(t, map[string]string{"a": "1"})
				reftable(t, filepath.Join(d, ".git"), "reftable")
				return d
			},
			headErr: ErrUnsupported,
			msg:     "refs in the reftable format",
		},
		{
			// A config file is anyone's text: its values reach the log
			// quoted when they hold a control character.
			name: "an odd refStorage",
			setup: func(t *testing.T) string {
				d := gittest.TempRepo(t, map[string]string{"a": "1"})
				reftable(t, filepath.Join(d, ".git"), "x\x1b[2Jy")
				return d
			},
			headErr: ErrUnsupported,
			msg:     `refs in the "x\x1b[2Jy" format`,
		},
		{
			name: "an odd objectFormat",
			setup: func(t *testing.T) string {
				d := gittest.TempRepo(t, map[string]string{"a": "1"})
				appendFile(t, filepath.Join(d, ".git", "config"), "[extensions]\n\tobjectFormat = sha\x1b[2J\n")
				return d
			},
			openErr: ErrUnsupported,
			msg:     `object format "sha\x1b[2J"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(tt.setup(t))
			if tt.openErr != nil {
				if !errors.Is(err, tt.openErr) || !strings.Contains(fmt.Sprint(err), tt.msg) {
					t.Fatalf("Open error = %v, want %v, saying %s", err, tt.openErr, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if _, err := r.Head(); !errors.Is(err, tt.headErr) || !strings.Contains(fmt.Sprint(err), tt.msg) {
				t.Fatalf("Head error = %v, want %v, saying %s", err, tt.headErr, tt.msg)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	dir := gittest.TempRepo(t, map[string]string{"a": "1"})
	first := gittest.Git(t, dir, "rev-parse", "HEAD")
	gittest.WriteFiles(t, dir, map[string]string{"a": "2"})
	gittest.Git(t, dir, "commit", "-qam", "second")
	second := gittest.Git(t, dir, "rev-parse", "HEAD")
	gittest.Git(t, dir, "tag", "v1", first)
	gittest.Git(t, dir, "tag", "-a", "-m", "release", "v2.0.0", second) // annotated: peeled to its commit
	gittest.Git(t, dir, "branch", "old", first)
	gittest.Git(t, dir, "pack-refs", "--all") // refs from packed-refs too
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ rev, want string }{
		{"HEAD", second},
		{"v1", first},
		{"old", first},
		{"refs/heads/old", first},
		{first, first},
		{first[:7], first},
		{strings.ToUpper(second[:9]), second},
		{strings.Repeat("0", 40), strings.Repeat("0", 40)}, // a full id need not be here
		// git's revision syntax, as every git user types it
		{"HEAD~1", first},
		{"HEAD^", first},
		{"main^", first},
		{"main~0", second},
		{second[:7] + "~1", first},
		{"v2.0.0", second},
		{"v2.0.0^", first},
	} {
		got, err := r.Resolve(tc.rev)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.rev, got, err, tc.want)
		}
	}
	for _, rev := range []string{"nope", "0000000", "abc", "v1\n", "HEAD~2", "nope~1", "HEAD^^^"} {
		if got, err := r.Resolve(rev); !errors.Is(err, ErrUnknownRevision) {
			t.Errorf("Resolve(%q) = %q, %v; want ErrUnknownRevision", rev, got, err)
		}
	}

	// A shallow clone has HEAD but not its parents: named as such.
	shallow := filepath.Join(t.TempDir(), "shallow")
	gittest.Git(t, dir, "clone", "-q", "--depth", "1", "file://"+dir, shallow)
	sr, err := Open(shallow)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sr.Resolve("HEAD~1"); !errors.Is(err, ErrUnknownRevision) || !strings.Contains(err.Error(), "shallow") {
		t.Errorf("Resolve(HEAD~1) in a shallow clone = %q, %v; want ErrUnknownRevision naming a shallow clone", got, err)
	}
}

// reftable makes the repository at gitDir look as git 2.45+ makes one with
// --ref-format=reftable (git's default from 3.0): HEAD names an invalid
// branch, the refs are in gitDir/reftable. The git here may be older:
// written by hand, refStorage = format.
func reftable(t *testing.T, gitDir, format string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(gitDir, "refs", "heads")); err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{
		"HEAD":                 "ref: refs/heads/.invalid\n",
		"refs/heads":           "this repository uses the reftable format\n",
		"reftable/tables.list": "",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(gitDir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(gitDir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	appendFile(t, filepath.Join(gitDir, "config"), "[extensions]\n\trefStorage = "+format+"\n")
}

func appendFile(t *testing.T, name, text string) {
	t.Helper()
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(text)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
}
