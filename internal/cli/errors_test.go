package cli

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// AWS answers a conditional write that races another on the same key with
// 409 ConditionalRequestConflict, to be retried. The upload retries it and
// completes the set.
func TestConditionalRequestConflictIsRetried(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var conflicts atomic.Int64
		proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
			// The record is the only conditional write: answer the first two attempts as AWS would.
			if r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*" && conflicts.Add(1) <= 2 {
				return s3test.Conflict
			}
			return s3test.Pass
		}
		env, d := setup(t, srv, bucket)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Fatal(r)
		}
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
		r := run(t, env, "upload")
		if r.code != ExitOK {
			t.Fatalf("upload after a 409 ConditionalRequestConflict: %v\nproxy: %s", r, proxy.Counts())
		}
		if n := proxy.Count(s3test.Conflict); n != 2 {
			t.Errorf("the proxy answered 409 %d times, want 2: %s", n, proxy.Counts())
		}
		checkFound(t, env, d.pkg, "check after the upload does not find it")
	})
}

// A conflict that does not clear is an error that says what it is.
func TestPersistentConflictIsNamed(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*" {
				return s3test.Conflict
			}
			return s3test.Pass
		}
		env, d := setup(t, srv, bucket)
		env["AWS_MAX_ATTEMPTS"] = "3"
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		run(t, env, "check")
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
		r := run(t, env, "upload")
		if r.code != ExitS3 || !strings.Contains(r.stderr, "ConditionalRequestConflict") || !strings.Contains(r.stderr, "concurrent") {
			t.Fatalf("want exit %d naming the conflict, got %v", ExitS3, r)
		}
		if n := proxy.Count(s3test.Conflict); n != 3 {
			t.Errorf("the record write was tried %d times, want 3 (AWS_MAX_ATTEMPTS)", n)
		}
	})
}

// A 404 that is not S3's NoSuchKey (a web server's or proxy's page, a wrong
// endpoint) is an error naming the likely cause, never "not found": a
// rebuild would otherwise run, and the upload fail, for the wrong reason.
func TestForeign404IsAnError(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for _, f := range []s3test.Fault{s3test.HTMLNotFound, s3test.EmptyNotFound} {
			t.Run(f.String(), func(t *testing.T) {
				bucket := srv.NewBucket(t)
				proxy := s3test.NewProxy(t, srv.Endpoint)
				// Object reads only: listings pass, so only the record's
				// 404 can make the set look missing.
				proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
					if r.Method == http.MethodGet && !r.URL.Query().Has("list-type") {
						return f
					}
					return s3test.Pass
				}
				env, d := setupWith(t, srv, bucket, map[string]string{"lambdas/fn1/index.py": "v1\n"})
				env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
				env["CODE_HASH_FIND_FILTER"] = "lambdas/**"
				r := run(t, env, "check")
				if r.code != ExitS3 || !strings.Contains(r.stderr, "HTTP 404 without NoSuchKey") || strings.Contains(r.stderr, "result: not found") {
					t.Fatalf("want exit %d naming a foreign 404, got %v", ExitS3, r)
				}
				if exists(filepath.Join(d.pkg, ".found")) {
					t.Error(".found written")
				}
			})
		}
		// A wrong endpoint: a web server that is not S3 at all.
		t.Run("web server", func(t *testing.T) {
			web := httptest.NewServer(http.NotFoundHandler())
			defer web.Close()
			env, _ := setup(t, srv, srv.NewBucket(t))
			env["PACKAGE_ASSETS_ENDPOINT"] = web.URL
			r := run(t, env, "check")
			if r.code != ExitS3 || !strings.Contains(r.stderr, "HTTP 404 without NoSuchKey") {
				t.Fatalf("want exit %d naming a foreign 404, got %v", ExitS3, r)
			}
		})
	})
}

// An endpoint whose TLS certificate is not trusted is reported as a
// certificate problem after one attempt of each request, not retried as "unreachable".
// With the certificate in AWS_CA_BUNDLE the same endpoint works.
func TestUntrustedCertificate(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		valid := time.Now().Add(24 * time.Hour)
		tests := []struct {
			name     string
			notAfter time.Time
			hosts    []string
			trusted  bool // the certificate is in AWS_CA_BUNDLE
			want     string
		}{
			{"self-signed", valid, []string{"127.0.0.1"}, false, "signed by unknown authority"},
			{"other host", valid, []string{"127.0.0.2"}, true, "valid for 127.0.0.2, not 127.0.0.1"},
			{"expired", time.Now().Add(-time.Hour), []string{"127.0.0.1"}, true, "expired"},
			{"trusted", valid, []string{"127.0.0.1"}, true, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cert, pemBytes := s3test.SelfSignedCert(t, tt.notAfter, tt.hosts...)
				proxy := s3test.NewTLSProxy(t, srv.Endpoint, cert)
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				if tt.trusted {
					bundle := filepath.Join(t.TempDir(), "ca.pem")
					if err := os.WriteFile(bundle, pemBytes, 0o644); err != nil {
						t.Fatal(err)
					}
					env["AWS_CA_BUNDLE"] = bundle
				}
				env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
				r := run(t, env, "check")
				if tt.want == "" {
					if r.code != ExitOK {
						t.Fatalf("check through a trusted TLS proxy: %v", r)
					}
					return
				}
				if r.code != ExitS3 || !strings.Contains(r.stderr, "TLS certificate") || !strings.Contains(r.stderr, tt.want) ||
					!strings.Contains(r.stderr, "AWS_CA_BUNDLE") || strings.Contains(r.stderr, "unreachable") {
					t.Fatalf("want exit %d naming the certificate (%q), got %v", ExitS3, tt.want, r)
				}
				// The lookup reads the record and lists the prefix at once:
				// one handshake each (the second may be cancelled before
				// it starts), never one per retry.
				if n := proxy.Handshakes(); n < 1 || n > 2 {
					t.Errorf("%d TLS handshakes, want 1 or 2 (one per request): a certificate problem is not retried", n)
				}
				if exists(filepath.Join(d.pkg, ".found")) {
					t.Error(".found written")
				}
			})
		}
	})
}
