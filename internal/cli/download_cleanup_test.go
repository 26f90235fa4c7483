package cli

import (
	"bytes"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// A download refused by the lookup (an object replaced or deleted, the
// record altered) or by the bytes (an unsigned record whose sha256 was
// edited: the record and the object disagree, exit 6 naming the file)
// leaves no file of the set's names that it did not verify: an older
// deploy's a.zip, b.zip, c.zip are removed, each named in the log; a file
// of another name stays.
func TestDownloadRefusedRemovesNames(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		artifacts := map[string][]byte{"a.zip": []byte("one"), "b.zip": randomBytes(4000, 2), "c.zip": []byte("three")}
		const key = "the-real-signing-key-0123"
		for _, tc := range []struct {
			name    string
			signed  bool
			spoil   func(t *testing.T, bucket, prefix string)
			says    []string
			removed []string // of the older deploy's files; the others are verified
		}{
			{"replaced", false, func(t *testing.T, bucket, prefix string) {
				putObject(t, srv, bucket, prefix+"b.zip", []byte("another build"))
			}, []string{"b.zip was replaced"}, []string{"a.zip", "b.zip", "c.zip"}},
			{"deleted", false, func(t *testing.T, bucket, prefix string) {
				deleteObject(t, srv, bucket, prefix+"c.zip")
			}, []string{"c.zip was deleted"}, []string{"a.zip", "b.zip", "c.zip"}},
			{"altered signed record", true, func(t *testing.T, bucket, prefix string) {
				_, rec := srv.Get(t, bucket, prefix+".s3-asset-manager.json")
				putObject(t, srv, bucket, prefix+".s3-asset-manager.json", bytes.Replace(rec, []byte(`"size": 3`), []byte(`"size": 4`), 1))
			}, []string{"altered"}, []string{"a.zip", "b.zip", "c.zip"}},
			{"sha256 edited, unsigned", false, func(t *testing.T, bucket, prefix string) {
				_, rec := srv.Get(t, bucket, prefix+".s3-asset-manager.json")
				sum := sha256hex(artifacts["b.zip"])
				edited := bytes.Replace(rec, []byte(sum), []byte(strings.Repeat("0", 64)), 1)
				if bytes.Equal(edited, rec) {
					t.Fatal("the record was not edited")
				}
				putObject(t, srv, bucket, prefix+".s3-asset-manager.json", edited)
			}, []string{"b.zip", "the record and the object disagree"}, []string{"b.zip"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				var signing map[string]string
				if tc.signed {
					signing = map[string]string{"PACKAGE_ASSETS_SIGNING_KEY": key}
				}
				_, d := uploadedWith(t, srv, bucket, signing, artifacts)
				tc.spoil(t, bucket, "artifacts/"+d.head+"/")
				denv, dir := deployEnv(t, srv, bucket, d.head)
				maps.Copy(denv, signing)
				writeFiles(t, dir, map[string]string{"a.zip": "older a", "b.zip": "older b", "c.zip": "older c", "keep.txt": "not the set's"})
				r := run(t, denv, "download")
				if r.code != ExitNotFound {
					t.Fatalf("want exit 6: %v", r)
				}
				for _, s := range tc.says {
					if !strings.Contains(r.stderr, s) {
						t.Errorf("the log does not say %q:\n%s", s, r.stderr)
					}
				}
				for _, name := range tc.removed {
					if exists(filepath.Join(dir, name)) {
						t.Errorf("%s is left", name)
					}
					if !strings.Contains(r.stderr, "removed "+filepath.Join(dir, name)) {
						t.Errorf("the log does not say %s was removed:\n%s", name, r.stderr)
					}
				}
				for name, b := range artifacts {
					if got, err := os.ReadFile(filepath.Join(dir, name)); err == nil && !bytes.Equal(got, b) {
						t.Errorf("%s is left and not the recorded bytes: %q", name, got)
					}
				}
				if b, _ := os.ReadFile(filepath.Join(dir, "keep.txt")); string(b) != "not the set's" {
					t.Errorf("keep.txt, not of the set, was touched")
				}
			})
		}
	})
}

// Hidden partial files a killed download left (.<name>.s3am-partial-...),
// whatever their name, are removed by the next download before it starts; a
// hidden file of another kind stays.
func TestDownloadRemovesStalePartials(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		artifacts := map[string][]byte{"fn1.zip": []byte("one")}
		_, d := uploaded(t, srv, bucket, artifacts)
		env, dir := deployEnv(t, srv, bucket, d.head)
		writeFiles(t, dir, map[string]string{
			".fn1.zip.s3am-partial-3k9x2a": "half of an earlier run",
			".gone.zip.s3am-partial-1":     "of a name no longer in the set",
			".keep":                        "someone's hidden file",
		})
		r := run(t, env, "download")
		if r.code != ExitOK {
			t.Fatal(r)
		}
		for _, name := range []string{".fn1.zip.s3am-partial-3k9x2a", ".gone.zip.s3am-partial-1"} {
			if exists(filepath.Join(dir, name)) {
				t.Errorf("%s is left", name)
			}
			if !strings.Contains(r.stderr, "removed "+filepath.Join(dir, name)) {
				t.Errorf("the log does not say %s was removed:\n%s", name, r.stderr)
			}
		}
		if !exists(filepath.Join(dir, ".keep")) {
			t.Error(".keep, not a download's, was removed")
		}
	})
}

// A target directory no file can be written to (under a regular file, or
// without write permission) is exit 5 before any request is made to S3, even
// with PACKAGE_ASSETS_WAIT (which would wait first).
func TestDownloadBadTargetDir(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		_, d := uploaded(t, srv, bucket, map[string][]byte{"fn1.zip": []byte("one")})
		base := t.TempDir()
		writeFiles(t, base, map[string]string{"file": "a regular file"})
		readOnly := filepath.Join(base, "ro")
		if err := os.Mkdir(readOnly, 0o555); err != nil {
			t.Fatal(err)
		}
		cases := map[string]string{
			"under a regular file":     filepath.Join(base, "file", "deploy"),
			"a regular file":           filepath.Join(base, "file"),
			"in a read-only directory": filepath.Join(readOnly, "deploy"),
			"a read-only directory":    readOnly,
		}
		for what, dir := range cases {
			if strings.Contains(what, "read-only") && os.Geteuid() == 0 {
				continue // root writes anywhere
			}
			proxy := s3test.NewProxy(t, srv.Endpoint)
			var requests atomic.Int64
			proxy.SetPlan(func(int64, *http.Request) s3test.Fault { requests.Add(1); return s3test.Pass })
			env, _ := deployEnv(t, srv, bucket, d.head)
			env["PACKAGE_DIRECTORY"] = dir
			env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
			env["PACKAGE_ASSETS_WAIT"] = "1h"
			r := run(t, env, "download")
			if r.code != ExitPackage || !strings.Contains(r.stderr, dir) {
				t.Errorf("%s: want exit 5 naming %s: %v", what, dir, r)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("%s: %d requests made to S3 before the directory was refused", what, n)
			}
		}
	})
}

// A directory where one of the set's files goes is the download
// directory's problem, exit 5 naming it, found before any file is fetched;
// the directory and what is in it are left alone.
func TestDownloadDirectoryAtFileName(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		_, d := uploaded(t, srv, bucket, map[string][]byte{"a.zip": []byte("one"), "b.zip": []byte("two")})
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var fetched atomic.Int64
		proxy.SetPlan(func(_ int64, req *http.Request) s3test.Fault {
			if strings.HasSuffix(req.URL.Path, ".zip") {
				fetched.Add(1)
			}
			return s3test.Pass
		})
		env, dir := deployEnv(t, srv, bucket, d.head)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		writeFiles(t, dir, map[string]string{"a.zip/inner": "x"})
		r := run(t, env, "download")
		if r.code != ExitPackage || !strings.Contains(r.stderr, filepath.Join(dir, "a.zip")) {
			t.Errorf("want exit %d naming %s, got %v", ExitPackage, filepath.Join(dir, "a.zip"), r)
		}
		if n := fetched.Load(); n != 0 {
			t.Errorf("%d files fetched before the directory was refused", n)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "a.zip", "inner")); err != nil || string(b) != "x" {
			t.Errorf("a.zip/inner = %q, %v", b, err)
		}
		if exists(filepath.Join(dir, "b.zip")) {
			t.Error("b.zip written")
		}
	})
}
