package assets

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// errRepo is a checkout whose code hash fails, after HEAD answered.
type errRepo struct {
	fakeRepo
	err error
}

func (r errRepo) CodeHash(context.Context) (*codehash.List, error) { return nil, r.err }
func (r errRepo) Components(context.Context) ([]ComponentCode, error) {
	return nil, r.err
}

// A check that fails, of whatever kind, leaves no marker it wrote: an upload
// right after finds no commit to store a build under, and stores nothing.
// (A marker of an earlier run is removed all the same.)
func TestFailedCheckRemovesItsMarkers(t *testing.T) {
	for _, tt := range []struct {
		name       string
		components bool
		setup      func(t *testing.T, f *fakeStore, r *Runner)
		kind       Kind
	}{
		{"components declared wrong", true, func(t *testing.T, f *fakeStore, r *Runner) {
			r.OpenRepo = func(string) (Repo, error) {
				return errRepo{fakeRepo{commitA, hashX}, &Failure{Kind: KindConfig, Err: errors.New("PACKAGE_COMPONENTS: no source file matches lambdas/*")}}, nil
			}
		}, KindConfig},
		{"PACKAGE_COMPONENT not a component", true, func(t *testing.T, f *fakeStore, r *Runner) {
			r.Config.Component = "nope"
		}, KindConfig},
		{"S3 refuses", false, func(t *testing.T, f *fakeStore, r *Runner) {
			f.readErr = s3store.ErrAccessDenied
		}, KindS3},
		{"S3 refuses the cache lookup", false, func(t *testing.T, f *fakeStore, r *Runner) {
			// The commit's lookup passes, the cache's fails: .code-hash is
			// written by then.
			f.failReadsFrom = "cache/"
		}, KindS3},
		{"the code hash fails", false, func(t *testing.T, f *fakeStore, r *Runner) {
			r.OpenRepo = func(string) (Repo, error) { return errRepo{fakeRepo{commitA, hashX}, errors.New("index damaged")}, nil }
		}, KindGit},
		{"a component's directory is a file", true, func(t *testing.T, f *fakeStore, r *Runner) {
			seedComponent(f, commitA, "api", nil)
			writeFile(t, filepath.Join(r.Config.PackageDir, "api"), "not a directory")
		}, KindPackage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			var r *Runner
			if tt.components {
				r, _ = newMonoRunner(t, f, "", "")
			} else {
				r, _ = newRunner(t, f, "", true, false)
			}
			dir := r.Config.PackageDir
			// What an earlier run left, and what the build will write.
			writePackage(t, dir, commitB, hashY, map[string]string{FoundFile: ""})
			tt.setup(t, f, r)
			before := treeOf(t, dir)
			_, err := r.Check(context.Background())
			if k := KindOf(err); k != tt.kind {
				t.Fatalf("check: kind %d (%v), want %d", k, err, tt.kind)
			}
			for name := range treeOf(t, dir) {
				if _, ok := before[name]; !ok || strings.HasPrefix(filepath.Base(name), ".") {
					t.Errorf("%s left after the failed check", name)
				}
			}
			f.readErr, f.failReadsFrom = nil, ""
			r.Config.Component = ""
			writeFile(t, filepath.Join(dir, "fn1.zip"), "built")
			objs := len(f.objs)
			if _, err := r.Upload(context.Background()); !errors.Is(err, ErrNoCommitHash) {
				t.Errorf("upload after the failed check: %v, want %v", err, ErrNoCommitHash)
			}
			if len(f.objs) != objs || len(f.writes) != 0 {
				t.Errorf("upload stored something: %d objects, %v", len(f.objs)-objs, f.writes)
			}
		})
	}
}

// treeOf lists every file and directory under dir, relative to it.
func treeOf(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A check rewrites the markers an earlier run left in their own files
// (moved aside first, so none survives the check unless written again):
// each comes out with this run's content and modification time, and
// nothing else is left, whether the check finds, misses or fails, and
// whatever an earlier check, killed half way, left aside. Creating the
// files again each run is what a found check of many components spent
// most of its time on (docs/benchmarks-history.md, figure 21).
func TestFoundCheckReusesEarlierMarkers(t *testing.T) {
	for _, tt := range []struct {
		name    string
		spoil   func(f *fakeStore, r *Runner)
		want    []string // the markers the check leaves (all others gone)
		failure bool
	}{
		{name: "found", want: []string{FoundFile, CommitFile, ComponentsFile, ToBuildFile, "api/" + FoundFile, "fn1/" + FoundFile, "fn2/" + FoundFile}},
		{name: "a component to build", spoil: func(f *fakeStore, r *Runner) {
			f.del(componentPrefix(commitA, "fn2") + "fn2.zip")
		}, want: []string{CommitFile, ComponentsFile, ToBuildFile, "api/" + FoundFile, "fn1/" + FoundFile}},
		{name: "S3 refuses", spoil: func(f *fakeStore, r *Runner) { f.readErr = s3store.ErrAccessDenied }, failure: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			seedCommitOfComponents(f, nil)
			r, logs := newMonoRunner(t, f, "", "")
			dir := r.Config.PackageDir
			if _, err := r.Check(context.Background()); err != nil {
				t.Fatalf("first check: %v\n%s", err, logs)
			}
			// What the next run meets: the first run's markers, one of them
			// not empty, one a link (removed, not followed: its target
			// stays), one moved aside by a check that was killed, all from
			// long ago; and a .commit-hash of another commit.
			old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
			writeFile(t, filepath.Join(dir, "api", FoundFile), "junk")
			target := filepath.Join(t.TempDir(), "target")
			writeFile(t, target, "not a marker")
			os.Remove(filepath.Join(dir, "fn1", FoundFile))
			if err := os.Symlink(target, filepath.Join(dir, "fn1", FoundFile)); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, "fn2", FoundFile), filepath.Join(dir, "fn2", FoundFile+spareSuffix)); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, CommitFile), commitB)
			// Each earlier file held open: a file removed and created again
			// cannot have the same inode while it is. (Not a hard link: a
			// file with another name is never rewritten.)
			before := map[string]os.FileInfo{}
			for name := range treeOf(t, dir) {
				p := filepath.Join(dir, name)
				os.Chtimes(p, old, old)
				if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
					before[strings.TrimSuffix(name, spareSuffix)] = holdOpen(t, p)
				}
			}
			if tt.spoil != nil {
				tt.spoil(f, r)
			}
			_, err := r.Check(context.Background())
			if (err != nil) != tt.failure {
				t.Fatalf("second check: %v\n%s", err, logs)
			}
			var left []string
			for name := range treeOf(t, dir) {
				if strings.HasPrefix(filepath.Base(name), ".") {
					left = append(left, name)
				}
			}
			if slices.Sort(left); !slices.Equal(left, slices.Sorted(slices.Values(tt.want))) {
				t.Errorf("left %q, want %q\n%s", left, tt.want, logs)
			}
			for _, name := range tt.want {
				fi, err := os.Lstat(filepath.Join(dir, name))
				if err != nil || !fi.Mode().IsRegular() || !fi.ModTime().After(old) {
					t.Fatalf("%s: %v, %v: want a regular file written by this check", name, fi, err)
				}
				if earlier, ok := before[name]; ok {
					if !os.SameFile(earlier, fi) {
						t.Errorf("%s: a new file, not the earlier run's rewritten", name)
					}
				}
				if strings.HasSuffix(name, FoundFile) && fi.Size() != 0 {
					t.Errorf("%s: %d bytes, want an empty marker", name, fi.Size())
				}
			}
			if b, _ := os.ReadFile(filepath.Join(dir, CommitFile)); !tt.failure && string(b) != commitA {
				t.Errorf("%s holds %q, want %s", CommitFile, b, commitA)
			}
			if b, err := os.ReadFile(target); string(b) != "not a marker" {
				t.Errorf("the link's target: %q, %v", b, err)
			}
		})
	}
}

// A check that misses writes its file list over the earlier run's, as it
// does its markers: the same file, with exactly this run's content, also
// when the earlier one was longer.
func TestMissedCheckReusesEarlierList(t *testing.T) {
	f := newFake()
	r, logs := newRunner(t, f, "", true, false)
	path := filepath.Join(r.Config.PackageDir, CodeHashListFile)
	list, _ := fakeRepo{commitA, hashX}.CodeHash(context.Background())
	want, err := list.EncodeStored()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("first check: %v\n%s", err, logs)
	}
	earlier := holdOpen(t, path)
	fa, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	fa.WriteString("trailing junk")
	fa.Close()
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	os.Chtimes(path, old, old)
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("second check: %v\n%s", err, logs)
	}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(data, want) {
		t.Errorf("%s: %d bytes, %v; want this run's %d", CodeHashListFile, len(data), err, len(want))
	}
	fi, err := os.Lstat(path)
	if err != nil || !os.SameFile(fi, earlier) || !fi.ModTime().After(old) {
		t.Errorf("%s: a new file, or not written by this check (%v)", CodeHashListFile, fi.ModTime())
	}
	if _, err := os.Lstat(path + spareSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the spare is left: %v", err)
	}
}

// holdOpen opens path until the test ends, so that its inode cannot be
// freed and given to a new file, and returns what it is.
func holdOpen(t *testing.T, path string) os.FileInfo {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

// .commit-hash is read as PACKAGE_ASSETS_COMMIT is: hex of either case (a
// script's `git rev-parse` is lower-case, a person's paste may not be), the
// lower-case id for keys and records; anything else is the package
// directory's problem.
func TestCommitMarkerParsed(t *testing.T) {
	const lower = "0123456789abcdef0123456789abcdef01234567"
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{lower, lower, true},
		{strings.ToUpper(lower) + "\n", lower, true},
		{"main", "", false},
		{lower[:12], "", false},
	} {
		w := newWorkspace(t.TempDir(), t.Logf)
		if err := os.WriteFile(w.path(CommitFile), []byte(tt.in), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := w.commit()
		if tt.ok && (err != nil || got != tt.want) || !tt.ok && err == nil {
			t.Errorf("%q: %q, %v; want %q (ok %t)", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// Without components, check never writes <name>/.found, so a link in the
// package directory to a directory elsewhere is not followed: a .found
// there is another tool's (or another job's), not an earlier check's.
func TestCheckLeavesLinkedDirectoriesWithoutComponents(t *testing.T) {
	f := newFake()
	r, logs := newRunner(t, f, "", false, false)
	elsewhere := t.TempDir()
	writeFile(t, filepath.Join(elsewhere, FoundFile), "")
	writeFile(t, filepath.Join(r.Config.PackageDir, "placeholder"), "")
	if err := os.Symlink(elsewhere, filepath.Join(r.Config.PackageDir, "other")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("check: %v\n%s", err, logs)
	}
	if !exists(filepath.Join(elsewhere, FoundFile)) {
		t.Errorf("check removed %s through a link, without components\n%s", filepath.Join(elsewhere, FoundFile), logs)
	}
}

// With components, check follows a link in the package directory only when
// it is named after a component (it writes <name>/.found through it): an
// earlier run's .found there is moved aside, so the component is built; a
// link named otherwise (packages/shared -> ../shared) leads to a directory
// whose .found is not an earlier check's, and is left.
func TestCheckFollowsOnlyComponentLinks(t *testing.T) {
	f := newFake()
	r, logs := newMonoRunner(t, f, "", "")
	shared, built := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(shared, FoundFile), "")
	writeFile(t, filepath.Join(built, FoundFile), "") // fn1's, of an earlier run
	for name, target := range map[string]string{"shared": shared, "fn1": built} {
		if err := os.Symlink(target, filepath.Join(r.Config.PackageDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("check: %v\n%s", err, logs)
	}
	if !exists(filepath.Join(shared, FoundFile)) {
		t.Errorf("check removed %s through a link not named after a component\n%s", filepath.Join(shared, FoundFile), logs)
	}
	if exists(filepath.Join(built, FoundFile)) || exists(filepath.Join(built, FoundFile+spareSuffix)) {
		t.Errorf("the earlier run's fn1/.found is left behind fn1's link: its build would be skipped\n%s", logs)
	}
}
