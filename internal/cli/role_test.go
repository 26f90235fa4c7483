package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// fakeSTS answers AssumeRole and AssumeRoleWithWebIdentity with the test
// server's real credentials, and records what it was asked. S3 stays real:
// only the credential exchange, which MinIO and versitygw cannot do for the
// root user, is stood in for.
type fakeSTS struct {
	URL   string
	mu    sync.Mutex
	calls []map[string]string
	// lifetimes[n] is how long the credentials of the nth answer last (the
	// last one for every later answer); an hour when empty.
	lifetimes []time.Duration
}

func newFakeSTS(t *testing.T) *fakeSTS {
	t.Helper()
	f := &fakeSTS{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		call := map[string]string{}
		for k := range r.Form {
			call[k] = r.Form.Get(k)
		}
		f.mu.Lock()
		f.calls = append(f.calls, call)
		lifetime := time.Hour
		if n := len(f.lifetimes); n > 0 {
			lifetime = f.lifetimes[min(len(f.calls), n)-1]
		}
		f.mu.Unlock()
		action := r.Form.Get("Action")
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult>
<Credentials><AccessKeyId>%[2]s</AccessKeyId><SecretAccessKey>%[3]s</SecretAccessKey><SessionToken></SessionToken><Expiration>%[4]s</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/ci/s3-asset-manager</Arn><AssumedRoleId>AROA:s3-asset-manager</AssumedRoleId></AssumedRoleUser>
</%[1]sResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></%[1]sResponse>`,
			action, s3test.AccessKey, s3test.SecretKey, time.Now().Add(lifetime).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

func (f *fakeSTS) Calls() []map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]string(nil), f.calls...)
}

// AWS_ROLE: the tool assumes the role (session name s3-asset-manager) and
// uses the role's credentials, not the ones it started with.
func TestAssumeRole(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		sts := newFakeSTS(t)
		env, d := setup(t, srv, srv.NewBucket(t))
		env["AWS_ENDPOINT_URL_STS"] = sts.URL
		env["AWS_ROLE"] = "arn:aws:iam::123456789012:role/ci"
		// Used directly these would be refused: success proves the role's were used.
		env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-0000000000"
		r := run(t, env, "check")
		if r.code != ExitOK {
			t.Fatalf("check with AWS_ROLE: %v", r)
		}
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "x"})
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatalf("upload with AWS_ROLE: %v", r)
		}
		calls := sts.Calls()
		if len(calls) == 0 || calls[0]["Action"] != "AssumeRole" || calls[0]["RoleArn"] != env["AWS_ROLE"] || calls[0]["RoleSessionName"] != "s3-asset-manager" {
			t.Errorf("STS calls = %v", calls)
		}
	})
}

// GitHub OIDC and other web identity: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE,
// through the SDK's default chain.
func TestWebIdentity(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		sts := newFakeSTS(t)
		env, _ := setup(t, srv, srv.NewBucket(t))
		token := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(token, []byte("header.payload.signature"), 0o600); err != nil {
			t.Fatal(err)
		}
		env["AWS_ENDPOINT_URL_STS"] = sts.URL
		delete(env, "AWS_ACCESS_KEY_ID")
		delete(env, "AWS_SECRET_ACCESS_KEY")
		env["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/gha"
		env["AWS_WEB_IDENTITY_TOKEN_FILE"] = token
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Fatalf("check with web identity: %v", r)
		}
		calls := sts.Calls()
		if len(calls) == 0 || calls[0]["Action"] != "AssumeRoleWithWebIdentity" || calls[0]["WebIdentityToken"] != "header.payload.signature" {
			t.Errorf("STS calls = %v", calls)
		}
	})
}

// In GitHub Actions with `id-token: write`, AWS_ROLE_ARN alone is enough:
// the tool asks the runner for the job's OIDC token itself.
func TestActionsIDToken(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		sts := newFakeSTS(t)
		var asked []string
		var mu sync.Mutex
		idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			asked = append(asked, r.Header.Get("Authorization")+" "+r.URL.Query().Get("audience"))
			mu.Unlock()
			fmt.Fprint(w, `{"value":"gha.oidc.token"}`)
		}))
		t.Cleanup(idp.Close)
		env, _ := setup(t, srv, srv.NewBucket(t))
		env["AWS_ENDPOINT_URL_STS"] = sts.URL
		delete(env, "AWS_ACCESS_KEY_ID")
		delete(env, "AWS_SECRET_ACCESS_KEY")
		for k, v := range map[string]string{
			"GITHUB_ACTIONS":                 "true",
			"ACTIONS_ID_TOKEN_REQUEST_URL":   idp.URL + "/token?api-version=2.0",
			"ACTIONS_ID_TOKEN_REQUEST_TOKEN": "runner-request-token",
			"AWS_ROLE_ARN":                   "arn:aws:iam::123456789012:role/gha",
		} {
			env[k] = v
		}
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Fatalf("check with the Actions ID token: %v", r)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(asked) == 0 || asked[0] != "Bearer runner-request-token sts.amazonaws.com" {
			t.Errorf("ID token requests = %q", asked)
		}
		calls := sts.Calls()
		if len(calls) == 0 || calls[0]["Action"] != "AssumeRoleWithWebIdentity" || calls[0]["WebIdentityToken"] != "gha.oidc.token" || calls[0]["RoleSessionName"] != "s3-asset-manager" {
			t.Errorf("STS calls = %v", calls)
		}
	})
}

// Credentials from a role are replaced a while before they expire, not at
// the instant: a request signed in their last moments (with many in
// flight, one often is) reaches S3 expired and fails (ExpiredToken). The
// stand-in STS first gives credentials that expire within that while: the
// next request after the first lookup's must get new ones, whichever way
// the role is assumed.
func TestCredentialsRefreshedBeforeExpiry(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for _, how := range []string{"AWS_ROLE", "web identity", "profile"} {
			t.Run(how, func(t *testing.T) {
				sts := newFakeSTS(t)
				sts.lifetimes = []time.Duration{time.Minute, time.Hour}
				env, _ := setup(t, srv, srv.NewBucket(t))
				env["AWS_ENDPOINT_URL_STS"] = sts.URL
				env["CODE_HASH_FIND_FILTER"] = "src/**" // a cache lookup after the commit's
				switch how {
				case "AWS_ROLE":
					env["AWS_ROLE"] = "arn:aws:iam::123456789012:role/ci"
				case "web identity":
					token := filepath.Join(t.TempDir(), "token")
					if err := os.WriteFile(token, []byte("header.payload.signature"), 0o600); err != nil {
						t.Fatal(err)
					}
					delete(env, "AWS_ACCESS_KEY_ID")
					delete(env, "AWS_SECRET_ACCESS_KEY")
					env["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/gha"
					env["AWS_WEB_IDENTITY_TOKEN_FILE"] = token
				case "profile": // the SDK's own chain: a profile that assumes a role
					cfg := filepath.Join(t.TempDir(), "config")
					text := fmt.Sprintf("[profile ci]\nrole_arn = arn:aws:iam::123456789012:role/ci\nsource_profile = base\nservices = local\n"+
						"[profile base]\naws_access_key_id = %s\naws_secret_access_key = %s\nservices = local\n"+
						"[services local]\nsts =\n  endpoint_url = %s\n", s3test.AccessKey, s3test.SecretKey, sts.URL)
					if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
						t.Fatal(err)
					}
					delete(env, "AWS_ACCESS_KEY_ID")
					delete(env, "AWS_SECRET_ACCESS_KEY")
					env["AWS_CONFIG_FILE"] = cfg
					env["AWS_PROFILE"] = "ci"
				}
				if r := run(t, env, "check"); r.code != ExitOK {
					t.Fatal(r)
				}
				if n := len(sts.Calls()); n != 2 {
					t.Errorf("STS asked %d times, want 2: credentials that expire in a minute were used, not replaced first", n)
				}
			})
		}
	})
}
