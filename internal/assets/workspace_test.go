package assets

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

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
