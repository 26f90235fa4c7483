package cli

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// A user without rights on the bucket gets "access denied", never "not found".
func TestAccessDenied(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setup(t, srv, bucket)
		if srv.CreateUser(t, "s3am-other", "s3am-other-secret-0123") {
			env["AWS_ACCESS_KEY_ID"] = "s3am-other"
			env["AWS_SECRET_ACCESS_KEY"] = "s3am-other-secret-0123"
		} else {
			// What AWS answers for a missing key when s3:ListBucket is not granted.
			proxy := s3test.NewProxy(t, srv.Endpoint)
			proxy.Plan = func(int64, *http.Request) s3test.Fault { return s3test.Forbidden }
			env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		}
		for _, cmd := range []string{"check", "upload"} {
			if cmd == "upload" {
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "x", ".commit-hash": d.head})
				os.Remove(filepath.Join(d.pkg, ".found"))
			}
			r := run(t, env, cmd)
			if r.code != ExitS3 || !strings.Contains(r.stderr, "access denied") {
				t.Errorf("%s: want exit %d naming access denied, got %v", cmd, ExitS3, r)
			}
			if exists(filepath.Join(d.pkg, ".found")) {
				t.Errorf("%s: .found written", cmd)
			}
		}
		if objs := listAll(t, srv, bucket); len(objs) > 0 {
			t.Errorf("wrote to the bucket: %v", keysOf(objs))
		}
	})
}

// A completion record that is not ours (damaged, or another tool's) is a
// miss with a warning naming the key, never an error: the build runs, and
// its upload replaces the record.
func TestCorruptRecord(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for name, body := range map[string]string{
			"garbage":   "\x00\x01 not json",
			"foreign":   `{"format":"other-tool/v9","files":[]}`,
			"oversized": strings.Repeat(" ", 16<<20+1),
		} {
			t.Run(name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				key := "artifacts/" + d.head + "/.s3-asset-manager.json"
				putObject(t, srv, bucket, key, []byte(body))
				r := checkMiss(t, env, d.pkg, "want a miss")
				if !strings.Contains(r.stderr, "invalid completion record") || !strings.Contains(r.stderr, key) {
					t.Errorf("the warning does not name the record:\n%s", r.stderr)
				}
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatalf("upload over the record: %v", r)
				}
				checkFound(t, env, d.pkg, "the record was not replaced")
			})
		}
	})
}

func TestSHA256Repository(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	git(t, base, "init", "-q", "--object-format=sha256")
	writeFiles(t, base, map[string]string{"a": "a"})
	git(t, base, "add", "-A")
	git(t, base, "commit", "-q", "-m", "x")
	r := run(t, map[string]string{"PACKAGE_ASSETS_BUCKET": "some-bucket", "AWS_REGION": s3test.Region, "GIT_REPO_PATH": base, "PACKAGE_DIRECTORY": t.TempDir()}, "check")
	if r.code != ExitGit || !strings.Contains(r.stderr, "sha256") {
		t.Errorf("want exit %d naming sha256, got %v", ExitGit, r)
	}
}

// A symlink in the package directory is followed: the target's bytes are
// stored under the link's name.
func TestSymlinkInPackageDirectory(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setup(t, srv, bucket)
		run(t, env, "check")
		target := filepath.Join(t.TempDir(), "build-output.zip")
		if err := os.WriteFile(target, []byte("built elsewhere"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(d.pkg, "fn1.zip")); err != nil {
			t.Fatal(err)
		}
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		if _, got := srv.Get(t, bucket, "artifacts/"+d.head+"/fn1.zip"); string(got) != "built elsewhere" {
			t.Errorf("stored %q", got)
		}
	})
}

// A package file rewritten or removed while it is being sent fails the
// upload with exit 5, and no completion record is written.
func TestFileChangesDuringUpload(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for name, change := range map[string]func(path string) error{
			"grows":     func(p string) error { return os.WriteFile(p, randomBytes(41<<20, 5), 0o644) },
			"truncated": func(p string) error { return os.Truncate(p, 1<<20) },
			"removed":   os.Remove,
		} {
			t.Run(name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				proxy := s3test.NewProxy(t, srv.Endpoint)
				// Hold the first part until the file has been changed.
				started, release := make(chan struct{}), make(chan struct{})
				var once sync.Once
				proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
					if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "1" {
						once.Do(func() { close(started) })
						select {
						case <-release:
						case <-r.Context().Done():
						}
					}
					return s3test.Pass
				}
				cmd, stderr, _, d := startUpload(t, srv, proxy, bucket)
				waitStarted(t, cmd, started, stderr)
				if err := change(filepath.Join(d.pkg, "big.bin")); err != nil {
					t.Fatal(err)
				}
				close(release)
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				var err error
				select {
				case err = <-done:
				case <-time.After(2 * time.Minute): // a bound on a hang, not synchronisation
					cmd.Process.Kill()
					t.Fatalf("upload did not finish:\n%s", stderr)
				}
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitPackage || !strings.Contains(stderr.String(), "changed during upload") {
					t.Fatalf("want exit %d and 'changed during upload', got %v:\n%s", ExitPackage, err, stderr)
				}
				for _, o := range listAll(t, srv, bucket) {
					if strings.HasSuffix(o.Key, ".s3-asset-manager.json") {
						t.Errorf("completion record written: %s", o.Key)
					}
				}
			})
		}
	})
}
