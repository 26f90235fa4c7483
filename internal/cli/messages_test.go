package cli

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the tests get")

// The error lines the program prints for the common failures are its
// interface: each is compared with a golden file under testdata/cli/errors
// (go test ./internal/cli -run TestErrorMessages -update rewrites them).
// Paths, the bucket and the endpoint are replaced by $TMP, $BUCKET and
// $ENDPOINT; every server must print the same.
func TestErrorMessages(t *testing.T) {
	t.Parallel()
	// A port nothing listens on, for an unreachable endpoint.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	type tcase struct {
		name string
		args []string
		// change makes the failure from a working setup.
		change func(t *testing.T, srv *s3test.Server, env map[string]string, d dirs)
		code   int
	}
	components := func(decl string) func(*testing.T, *s3test.Server, map[string]string, dirs) {
		return func(_ *testing.T, _ *s3test.Server, env map[string]string, _ dirs) { env["PACKAGE_COMPONENTS"] = decl }
	}
	cases := []tcase{
		{"check-no-bucket", []string{"check"}, func(_ *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			delete(env, "PACKAGE_ASSETS_BUCKET")
		}, ExitUsage},
		{"check-bad-settings", []string{"check"}, func(_ *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			env["PACKAGE_UPLOAD_CONCURRENCY"] = "many"
			env["CODE_HASH_FIND_FILTER"] = "src/[x"
		}, ExitUsage},
		{"check-filter-selects-nothing", []string{"check"}, func(_ *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			env["CODE_HASH_FIND_FILTER"] = "src/** lambdas/**"
		}, ExitUsage},
		{"check-components-no-match", []string{"check"}, components("api: services/api/**\nlambdas/*"), ExitUsage},
		{"check-components-declaration", []string{"check"}, components("api: src/**\napi: docs/**\nweb:\nlambdas/*\nlambdas/*\n.bad: x/**\ndocs: docs/**\n"), ExitUsage},
		{"check-components-same-name", []string{"check"}, components("src: README.md\n*\n"), ExitUsage},
		{"check-not-a-repository", []string{"check"}, func(t *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			env["GIT_REPO_PATH"] = t.TempDir()
		}, ExitGit},
		{"check-missing-bucket", []string{"check"}, func(_ *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			env["PACKAGE_ASSETS_BUCKET"] += "-missing"
		}, ExitS3},
		{"check-unreachable", []string{"check"}, func(t *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			env["PACKAGE_ASSETS_ENDPOINT"] = closed
			env["AWS_MAX_ATTEMPTS"] = "1"
		}, ExitS3},
		{"check-access-denied", []string{"check"}, func(t *testing.T, srv *s3test.Server, env map[string]string, _ dirs) {
			proxy := s3test.NewProxy(t, srv.Endpoint)
			proxy.Plan = func(int64, *http.Request) s3test.Fault { return s3test.Forbidden }
			env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		}, ExitS3},
		{"check-foreign-404", []string{"check"}, func(t *testing.T, srv *s3test.Server, env map[string]string, _ dirs) {
			proxy := s3test.NewProxy(t, srv.Endpoint)
			proxy.Plan = func(int64, *http.Request) s3test.Fault { return s3test.HTMLNotFound }
			env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		}, ExitS3},
		{"upload-access-denied", []string{"upload"}, func(t *testing.T, srv *s3test.Server, env map[string]string, d dirs) {
			if r := run(t, env, "check"); r.code != ExitOK {
				t.Fatal(r)
			}
			writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
			proxy := s3test.NewProxy(t, srv.Endpoint)
			proxy.Plan = func(_ int64, r *http.Request) s3test.Fault { // reads allowed, writes not
				if r.Method == http.MethodPut {
					return s3test.Forbidden
				}
				return s3test.Pass
			}
			env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		}, ExitS3},
		{"upload-nothing-built", []string{"upload"}, func(t *testing.T, srv *s3test.Server, env map[string]string, d dirs) {
			if r := run(t, env, "check"); r.code != ExitOK {
				t.Fatal(r)
			}
		}, ExitPackage},
		{"download-access-denied", []string{"download"}, func(t *testing.T, srv *s3test.Server, env map[string]string, d dirs) {
			env["PACKAGE_ASSETS_COMMIT"] = d.head
			proxy := s3test.NewProxy(t, srv.Endpoint)
			proxy.Plan = func(int64, *http.Request) s3test.Fault { return s3test.Forbidden }
			env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		}, ExitS3},
		{"upload-without-check", []string{"upload"}, nil, ExitPackage},
		{"download-not-stored", []string{"download"}, func(_ *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			env["PACKAGE_ASSETS_COMMIT"] = strings.Repeat("ab", 20)
		}, ExitNotFound},
		{"hash-filter-selects-nothing", []string{"hash"}, func(_ *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			env["CODE_HASH_FIND_FILTER"] = "lambdas/**"
		}, ExitUsage},
		{"hash-components-no-match", []string{"hash"}, components("api: services/api/**\nsrc: src/**"), ExitUsage},
		{"hash-unknown-component", []string{"hash"}, func(_ *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			env["PACKAGE_COMPONENTS"] = "src: src/**"
			env["PACKAGE_COMPONENT"] = "web"
		}, ExitUsage},
		{"hash-diff-unknown-revision", []string{"hash", "--diff", "no-such-branch"}, func(_ *testing.T, _ *s3test.Server, env map[string]string, _ dirs) {
			env["CODE_HASH_FIND_FILTER"] = "src/**"
		}, ExitUsage},
	}
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				if tc.change != nil {
					tc.change(t, srv, env, d)
				}
				r := run(t, env, tc.args...)
				if r.code != tc.code {
					t.Errorf("exit %d, want %d\n%v", r.code, tc.code, r)
				}
				got := fmt.Sprintf("exit %d\n%s", r.code, errorLines(r.stderr, []string{
					env["GIT_REPO_PATH"], "$REPO", env["PACKAGE_DIRECTORY"], "$PKG", closed, "$CLOSED", env["PACKAGE_ASSETS_ENDPOINT"], "$ENDPOINT", srv.Endpoint, "$ENDPOINT", bucket, "$BUCKET",
				}))
				golden(t, filepath.Join("errors", tc.name+".txt"), got)
			})
		}
	})
}

var (
	loopbackPort = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	// A lookup reads the record and lists the set at once: either may fail first.
	lookupRequest = regexp.MustCompile(`(get|list) (s3://\S*/artifacts/[0-9a-f]+/)(\.s3-asset-manager\.json)?:`)
)

// errorLines keeps the lines from the first "error:" on, with the values of
// this run (subst: value, name, ...) replaced by their names, in order, and
// loopback ports by PORT, the request of a lookup that failed by "look up".
func errorLines(stderr string, subst []string) string {
	i := strings.Index(stderr, "error: ")
	if i < 0 {
		return "(no error line)\n" + stderr
	}
	out := stderr[i:]
	for k := 0; k < len(subst); k += 2 {
		out = strings.ReplaceAll(out, subst[k], subst[k+1])
	}
	out = lookupRequest.ReplaceAllString(out, "look up $2:")
	return loopbackPort.ReplaceAllString(out, "127.0.0.1:PORT")
}

// golden compares got with testdata/cli/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	root, err := s3test.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "testdata", "cli", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./internal/cli -run %s -update writes it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("differs from %s (-update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
