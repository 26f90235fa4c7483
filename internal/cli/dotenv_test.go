package cli

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// A RESULT_DOTENV_FILE that can never be written (a file where one of its
// directories goes) is a settings problem found before anything is done:
// exit 2 naming it, no package directory, and no cache copy into the bucket
// on a hit. One in a directory not made yet (the package directory's, on a
// fresh clone) is written, its directory made.
func TestDotenvFileInMissingDirectory(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "function one"})
		commit(t, d.repo, map[string]string{"README.md": "better docs\n"}) // a cache hit
		pkg := freshPackages(t, env)
		file := filepath.Join(t.TempDir(), "file")
		writeFiles(t, filepath.Dir(file), map[string]string{"file": "x"})
		env["RESULT_DOTENV_FILE"] = filepath.Join(file, "x.env")
		before := listAll(t, srv, bucket)
		for _, cmd := range []string{"check", "download"} {
			r := run(t, env, cmd)
			if r.code != ExitUsage || !strings.Contains(r.stderr, "RESULT_DOTENV_FILE") {
				t.Errorf("%s: want exit %d naming RESULT_DOTENV_FILE, got %v", cmd, ExitUsage, r)
			}
			if exists(pkg) {
				t.Fatalf("%s: the package directory was made", cmd)
			}
		}
		if after := listAll(t, srv, bucket); !reflect.DeepEqual(keysOf(after), keysOf(before)) {
			t.Errorf("the bucket changed: %v, was %v", keysOf(after), keysOf(before))
		}
		env["RESULT_DOTENV_FILE"] = filepath.Join(pkg, "out", ".assets.env")
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Fatalf("check with the dotenv file in the package directory: %v", r)
		}
		if b, err := os.ReadFile(env["RESULT_DOTENV_FILE"]); err != nil || !strings.Contains(string(b), "CACHE_HIT=true") {
			t.Errorf("dotenv file %q, %v", b, err)
		}
		if r := run(t, env, "hash"); r.code != ExitOK {
			t.Errorf("hash with a dotenv file it never writes: %v", r)
		}
	})
}

// A file of outputs that cannot be written once the check is done (a full
// disk: /dev/full) fails it with exit 5, naming the file, and the check
// leaves no marker, as any failed check.
func TestOutputsNotWritten(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		env, d := setup(t, srv, srv.NewBucket(t))
		run(t, env, "check")
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "x"})
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		for _, c := range []struct {
			name string
			set  map[string]string
		}{
			{"RESULT_DOTENV_FILE", map[string]string{"RESULT_DOTENV_FILE": "/dev/full"}},
			{"GITHUB_OUTPUT", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "/dev/full"}},
			{"GITHUB_STEP_SUMMARY", map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": "/dev/full"}},
		} {
			e := maps.Clone(env)
			maps.Copy(e, c.set)
			pkg := freshPackages(t, e)
			r := run(t, e, "check")
			if r.code != ExitPackage || !strings.Contains(r.stderr, c.name) {
				t.Errorf("%s: want exit %d naming it, got %v", c.name, ExitPackage, r)
			}
			for _, m := range []string{".found", ".commit-hash"} {
				if exists(filepath.Join(pkg, m)) {
					t.Errorf("%s: %s left behind", c.name, m)
				}
			}
		}
	})
}
