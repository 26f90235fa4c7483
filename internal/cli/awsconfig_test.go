package cli

import (
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// A wrong or missing AWS setting is a settings problem (exit 2, naming the
// variable), found before any request is sent and before anything is written.
func TestAWSConfigProblems(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for _, c := range []struct {
			name  string
			set   map[string]string
			unset []string
			names string // in the message
		}{
			{"no region on AWS", nil, []string{"AWS_REGION", "PACKAGE_ASSETS_ENDPOINT"}, "AWS_REGION"},
			{"max attempts not a number", map[string]string{"AWS_MAX_ATTEMPTS": "abc"}, nil, "AWS_MAX_ATTEMPTS"},
			{"max attempts with a space", map[string]string{"AWS_MAX_ATTEMPTS": " 3"}, nil, "AWS_MAX_ATTEMPTS"},
			{"unknown profile", map[string]string{"AWS_PROFILE": "no-such-profile"}, nil, "AWS_PROFILE"},
			{"web identity without a role", map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": "token"}, []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}, "AWS_ROLE_ARN"},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				for k, v := range c.set {
					env[k] = v
				}
				for _, k := range c.unset {
					delete(env, k)
				}
				for _, cmd := range []string{"check", "upload", "download", "prune"} {
					r := run(t, env, cmd)
					if r.code != ExitUsage || !strings.Contains(r.stderr, c.names) {
						t.Errorf("%s: want exit %d naming %s, got %v", cmd, ExitUsage, c.names, r)
					}
					if exists(d.pkg) {
						t.Fatalf("%s: the package directory was made", cmd)
					}
				}
				if objs := listAll(t, srv, bucket); len(objs) > 0 {
					t.Errorf("wrote to the bucket: %v", keysOf(objs))
				}
			})
		}
	})
}

// An STS endpoint that does not answer (assuming AWS_ROLE) is S3's exit 4,
// said to be STS's, not the bucket's endpoint.
func TestSTSUnreachable(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + l.Addr().String()
		l.Close()
		env, d := setup(t, srv, srv.NewBucket(t))
		env["AWS_ROLE"] = "arn:aws:iam::123456789012:role/ci"
		env["AWS_ENDPOINT_URL_STS"] = closed
		env["AWS_MAX_ATTEMPTS"] = "1"
		r := run(t, env, "check")
		if r.code != ExitS3 || !strings.Contains(r.stderr, "STS endpoint unreachable (no answer from "+closed+")") {
			t.Errorf("want exit %d naming the STS endpoint, got %v", ExitS3, r)
		}
		if exists(filepath.Join(d.pkg, ".found")) {
			t.Error(".found written")
		}
	})
}

// No credentials anywhere (no keys, no profile, no web identity, IMDS
// disabled) is the credentials' exit 4, said so, not the SDK's chain of
// failures alone.
func TestNoCredentials(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		env, d := setup(t, srv, srv.NewBucket(t))
		for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"} {
			delete(env, k)
		}
		none := filepath.Join(t.TempDir(), "none")
		env["AWS_CONFIG_FILE"], env["AWS_SHARED_CREDENTIALS_FILE"] = none, none
		// Instance metadata with no role: 404 to every request.
		imds := httptest.NewServer(http.NotFoundHandler())
		t.Cleanup(imds.Close)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + l.Addr().String()
		l.Close()
		for _, c := range []struct{ name, k, v, says string }{
			{"instance metadata disabled", "AWS_EC2_METADATA_DISABLED", "true", "AWS credentials missing or refused"},
			{"instance metadata without a role", "AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL, "AWS credentials missing or refused"},
			// Its client takes AWS_MAX_ATTEMPTS too: one, so no backoff is waited out.
			{"no instance metadata", "AWS_EC2_METADATA_SERVICE_ENDPOINT", closed,
				"AWS credentials missing or refused: none found (no keys, profile or web identity; instance metadata unreachable, no answer from " + closed + ")"},
		} {
			env := maps.Clone(env)
			env["AWS_EC2_METADATA_DISABLED"] = "false" // srv.Env's and the process's say true
			env["AWS_MAX_ATTEMPTS"] = "1"
			env[c.k] = c.v
			r := run(t, env, "check")
			if r.code != ExitS3 || !strings.Contains(r.stderr, c.says) {
				t.Errorf("%s: want exit %d saying %q, got %v", c.name, ExitS3, c.says, r)
			}
			if exists(filepath.Join(d.pkg, ".found")) {
				t.Errorf("%s: .found written", c.name)
			}
		}
	})
}
