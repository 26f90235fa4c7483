package s3store

import (
	"strings"
	"testing"
)

// Which credentials the variables select, as the SDK would from the process
// environment: a profile wins over keys, keys over web identity.
func TestAWSEnvPrecedence(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		env         map[string]string
		keys        bool
		webIdentity string
	}{
		{"keys", map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s"}, true, ""},
		{"old names", map[string]string{"AWS_ACCESS_KEY": "a", "AWS_SECRET_KEY": "s"}, true, ""},
		{"half a key pair", map[string]string{"AWS_ACCESS_KEY_ID": "a"}, false, ""},
		{"profile over keys", map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_PROFILE": "p"}, false, ""},
		{"keys over web identity", map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}, true, ""},
		{"web identity", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "/t"}, false, "/t"},
	}
	for _, tt := range tests {
		e := awsEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
		if _, _, ok := e.keys(); ok != tt.keys {
			t.Errorf("%s: keys = %v, want %v", tt.name, ok, tt.keys)
		}
		if got := e.webIdentity(); got != tt.webIdentity {
			t.Errorf("%s: web identity = %q, want %q", tt.name, got, tt.webIdentity)
		}
	}
}

// A bad AWS_* value is an error naming the variable.
func TestAWSEnvBadValues(t *testing.T) {
	t.Parallel()
	for _, kv := range [][2]string{{"AWS_MAX_ATTEMPTS", "ten"}, {"AWS_MAX_ATTEMPTS", "-1"}, {"AWS_CA_BUNDLE", "/nonexistent/ca.pem"}} {
		k, v := kv[0], kv[1]
		e := awsEnv(func(key string) (string, bool) { return v, key == k })
		if _, err := e.loadOptions(); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: err = %v, want one naming %s", k, v, err, k)
		}
	}
	// 0 leaves the default, as the SDK does with it in the environment.
	e := awsEnv(func(key string) (string, bool) { return "0", key == "AWS_MAX_ATTEMPTS" })
	if opts, err := e.loadOptions(); err != nil || len(opts) != 0 {
		t.Errorf("AWS_MAX_ATTEMPTS=0: %d options, err %v; want none", len(opts), err)
	}
}
