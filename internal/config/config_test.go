package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func lookupOf(m map[string]string) Lookup {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// mustLoad is the configuration of env, which must load.
func mustLoad(t *testing.T, env map[string]string, req Requirements) *Config {
	t.Helper()
	c, err := Load(lookupOf(env), req)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadDefaults(t *testing.T) {
	c := mustLoad(t, map[string]string{"PACKAGE_ASSETS_BUCKET": "my-bucket"}, Requirements{Bucket: true})
	want := Config{Bucket: "my-bucket", RepoPath: "./repo", PackageDir: "./packages", Concurrency: 128}
	if c.Bucket != want.Bucket || c.RepoPath != want.RepoPath || c.PackageDir != want.PackageDir ||
		c.Concurrency != want.Concurrency || c.PathStyle || c.KeyPrefix != "" || c.CacheEnabled() || c.AcceptLegacy || c.CacheReadOnly {
		t.Errorf("defaults = %+v", c)
	}
}

func TestLoadPrecedence(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"default", map[string]string{}, "./packages"},
		{"env", map[string]string{"PACKAGE_DIRECTORY": "env-dir"}, "env-dir"},
		{"input wins", map[string]string{"PACKAGE_DIRECTORY": "env-dir", "INPUT_PACKAGE-DIRECTORY": "in-dir"}, "in-dir"},
		{"empty input is unset", map[string]string{"PACKAGE_DIRECTORY": "env-dir", "INPUT_PACKAGE-DIRECTORY": ""}, "env-dir"},
		{"blank env is unset", map[string]string{"PACKAGE_DIRECTORY": "  "}, "./packages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["PACKAGE_ASSETS_BUCKET"] = "bucket"
			c := mustLoad(t, tt.env, Requirements{Bucket: true})
			if c.PackageDir != tt.want {
				t.Errorf("PackageDir = %q, want %q", c.PackageDir, tt.want)
			}
		})
	}
}

// In an action's step (its mode input set, as both actions set it), the
// repository defaults to the workspace root; a GIT_REPO_PATH of the step or
// the job still applies, as every other setting's variable does (the
// action's empty git-repo-path input leaves it in force).
func TestLoadRepoPathInAction(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no action", map[string]string{}, "./repo"},
		{"action", map[string]string{"INPUT_MODE": "check", "INPUT_GIT-REPO-PATH": ""}, "."},
		{"action, env", map[string]string{"INPUT_MODE": "check", "INPUT_GIT-REPO-PATH": "", "GIT_REPO_PATH": "other"}, "other"},
		{"action, input", map[string]string{"INPUT_MODE": "check", "INPUT_GIT-REPO-PATH": "in", "GIT_REPO_PATH": "other"}, "in"},
		{"empty mode", map[string]string{"INPUT_MODE": " "}, "./repo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["PACKAGE_ASSETS_BUCKET"] = "bucket"
			if c := mustLoad(t, tt.env, Requirements{Bucket: true}); c.RepoPath != tt.want {
				t.Errorf("RepoPath = %q, want %q", c.RepoPath, tt.want)
			}
		})
	}
}

func TestLoadValues(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		check func(*Config) bool
	}{
		{"prefix gets a slash", map[string]string{"PACKAGE_ASSETS_KEY_PREFIX": "team-a"}, func(c *Config) bool { return c.KeyPrefix == "team-a/" }},
		{"prefix leading slash dropped", map[string]string{"PACKAGE_ASSETS_KEY_PREFIX": "/x/y/"}, func(c *Config) bool { return c.KeyPrefix == "x/y/" }},
		{"path style auto with endpoint", map[string]string{"PACKAGE_ASSETS_ENDPOINT": "http://127.0.0.1:9000"}, func(c *Config) bool { return c.PathStyle }},
		{"path style auto with AWS_ENDPOINT_URL", map[string]string{"AWS_ENDPOINT_URL": "http://x"}, func(c *Config) bool { return c.PathStyle }},
		{"path style auto on AWS", map[string]string{}, func(c *Config) bool { return !c.PathStyle }},
		{"path style forced off", map[string]string{"PACKAGE_ASSETS_ENDPOINT": "http://x", "PACKAGE_ASSETS_PATH_STYLE": "false"}, func(c *Config) bool { return !c.PathStyle }},
		{"concurrency", map[string]string{"PACKAGE_UPLOAD_CONCURRENCY": "4"}, func(c *Config) bool { return c.Concurrency == 4 }},
		{"filter on", map[string]string{"CODE_HASH_FIND_FILTER": "lambdas/** !lambdas/**/*.md"}, func(c *Config) bool { return c.CacheEnabled() && len(c.Filter) == 2 }},
		{"content-md5 off by default", map[string]string{}, func(c *Config) bool { return !c.ContentMD5 }},
		{"content-md5 input", map[string]string{"INPUT_CONTENT-MD5": "on"}, func(c *Config) bool { return c.ContentMD5 }},
		{"legacy yes", map[string]string{"PACKAGE_ASSETS_ACCEPT_LEGACY": "YES"}, func(c *Config) bool { return c.AcceptLegacy }},
		{"read-only", map[string]string{"INPUT_CACHE-READ-ONLY": "true"}, func(c *Config) bool { return c.CacheReadOnly }},
		{"signing key", map[string]string{"PACKAGE_ASSETS_SIGNING_KEY": "0123456789abcdef0123"}, func(c *Config) bool {
			return string(c.SigningKey) == "0123456789abcdef0123" && len(c.Secrets) == 1 && c.Secrets[0] == "0123456789abcdef0123"
		}},
		{"no secrets", map[string]string{}, func(c *Config) bool { return len(c.Secrets) == 0 }},
		{"no components", map[string]string{}, func(c *Config) bool { return !c.ComponentsEnabled() && c.Component == "" }},
		{"components input", map[string]string{"INPUT_COMPONENTS": "lambdas/*\napi: services/api/**\n", "CODE_HASH_FIND_FILTER": "libs/**"}, func(c *Config) bool {
			return c.ComponentsEnabled() && len(c.Components) == 2 && c.Components[0].DirGlob == "lambdas/*" && c.Components[1].Name == "api" && len(c.Filter) == 1
		}},
		{"one named component", map[string]string{"PACKAGE_COMPONENTS": "api: a/**\nweb: w/**", "INPUT_COMPONENT": "web"}, func(c *Config) bool { return c.Component == "web" }},
		// A directory's name is known once the tree is read.
		{"one component of a directory glob", map[string]string{"PACKAGE_COMPONENTS": "lambdas/*", "PACKAGE_COMPONENT": "fn1"}, func(c *Config) bool { return c.Component == "fn1" }},
		// Upload reads the components from what check wrote.
		{"a component without components", map[string]string{"PACKAGE_COMPONENT": "fn1"}, func(c *Config) bool { return c.Component == "fn1" && !c.ComponentsEnabled() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["PACKAGE_ASSETS_BUCKET"] = "bucket"
			c := mustLoad(t, tt.env, Requirements{Bucket: true})
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

// Every problem is reported at once, each naming its variable.
func TestLoadReportsEveryProblem(t *testing.T) {
	_, err := Load(lookupOf(map[string]string{
		"PACKAGE_ASSETS_PATH_STYLE":    "maybe",
		"PACKAGE_UPLOAD_CONCURRENCY":   "0",
		"CODE_HASH_FIND_FILTER":        "/abs a/[b",
		"PACKAGE_ASSETS_ENDPOINT":      "localhost:9000",
		"PACKAGE_ASSETS_ACCEPT_LEGACY": "perhaps",
		"PACKAGE_ASSETS_CONTENT_MD5":   "md5",
		"CODE_HASH_CACHE_READ_ONLY":    "2",
		"PACKAGE_ASSETS_SIGNING_KEY":   "s3cr3t-v4l",
		"PACKAGE_ASSETS_KEY_PREFIX":    "a/../b",
		"CODE_HASH_SALT":               "go1.26\nnode22",
		"PACKAGE_COMPONENTS":           ".api: a/**\nlambdas/* services/*",
		"PACKAGE_COMPONENT":            "a/b",
	}), Requirements{Bucket: true})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"PACKAGE_ASSETS_BUCKET: required",
		"PACKAGE_ASSETS_PATH_STYLE:",
		"PACKAGE_UPLOAD_CONCURRENCY:",
		`CODE_HASH_FIND_FILTER: pattern "/abs"`,
		`CODE_HASH_FIND_FILTER: pattern "a/[b"`,
		"PACKAGE_ASSETS_ENDPOINT:",
		"PACKAGE_ASSETS_ACCEPT_LEGACY:",
		"PACKAGE_ASSETS_CONTENT_MD5:",
		"CODE_HASH_CACHE_READ_ONLY:",
		"PACKAGE_ASSETS_SIGNING_KEY:",
		"PACKAGE_ASSETS_KEY_PREFIX:",
		"CODE_HASH_SALT: must be a single line",
		`PACKAGE_COMPONENTS: line 1 ".api: a/**"`,
		`PACKAGE_COMPONENTS: line 2 "lambdas/* services/*"`,
		`PACKAGE_COMPONENT: bad component name: "a/b"`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "s3cr3t-v4l") {
		t.Errorf("error prints the signing key:\n%s", msg)
	}
}

func TestComponentNotDeclared(t *testing.T) {
	for _, env := range []map[string]string{
		{"PACKAGE_COMPONENTS": "api: a/**", "PACKAGE_COMPONENT": "web"},
		{"PACKAGE_COMPONENTS": "# nothing but a comment"},
	} {
		_, err := Load(lookupOf(env), Requirements{})
		if err == nil || !strings.Contains(err.Error(), "PACKAGE_COMPONENT") {
			t.Errorf("%v: error %v, want one naming the setting", env, err)
		}
	}
}

func TestBucketNames(t *testing.T) {
	for _, b := range []string{"s3://bucket", "bucket/prefix", "ab", "my bucket"} {
		if _, err := Load(lookupOf(map[string]string{"PACKAGE_ASSETS_BUCKET": b}), Requirements{Bucket: true}); err == nil {
			t.Errorf("bucket %q accepted", b)
		}
	}
	if _, err := Load(lookupOf(map[string]string{}), Requirements{}); err != nil {
		t.Errorf("bucket not required: %v", err)
	}
}

func TestSettingsTable(t *testing.T) {
	envs, inputs := map[string]bool{}, map[string]bool{}
	for _, s := range Settings {
		if envs[s.Env] || inputs[s.Input] {
			t.Errorf("duplicate setting %s / %s", s.Env, s.Input)
		}
		envs[s.Env], inputs[s.Input] = true, true
		if s.Input != strings.ToLower(s.Input) || strings.ContainsAny(s.Input, "_ ") {
			t.Errorf("input %q is not kebab-case", s.Input)
		}
		if s.Doc == "" {
			t.Errorf("%s has no doc", s.Env)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("bucket", "lambdas/**", "16", "auto", "team/")
	f.Add("", "!x", "0", "maybe", "../x")
	f.Add("b/c", "a/[b {a,b}/**", "257", "true", "//")
	f.Fuzz(func(t *testing.T, bucket, filter, conc, pathStyle, prefix string) {
		c, err := Load(lookupOf(map[string]string{
			"PACKAGE_ASSETS_BUCKET":      bucket,
			"CODE_HASH_FIND_FILTER":      filter,
			"PACKAGE_UPLOAD_CONCURRENCY": conc,
			"PACKAGE_ASSETS_PATH_STYLE":  pathStyle,
			"PACKAGE_ASSETS_KEY_PREFIX":  prefix,
		}), Requirements{Bucket: true})
		if err != nil {
			return
		}
		if c.Concurrency < 1 || c.Concurrency > 256 || c.Bucket == "" {
			t.Fatalf("invalid config accepted: %+v", c)
		}
		if c.KeyPrefix != "" && (!strings.HasSuffix(c.KeyPrefix, "/") || strings.HasPrefix(c.KeyPrefix, "/") || strings.Contains(c.KeyPrefix, "//")) {
			t.Fatalf("bad prefix %q accepted", c.KeyPrefix)
		}
	})
}

// Prune's settings: defaults, days, off, and every problem at once.
func TestPruneSettings(t *testing.T) {
	c := mustLoad(t, map[string]string{}, Requirements{})
	want := PruneSettings{CommitAge: 90 * 24 * time.Hour, KeepCommits: 10, CacheAge: 30 * 24 * time.Hour, Grace: 24 * time.Hour}
	if c.Prune != want {
		t.Errorf("defaults %+v, want %+v", c.Prune, want)
	}
	c = mustLoad(t, map[string]string{"INPUT_PRUNE-APPLY": "true", "PACKAGE_ASSETS_PRUNE_COMMIT_AGE": "off",
		"PACKAGE_ASSETS_PRUNE_CACHE_AGE": "36h", "PACKAGE_ASSETS_PRUNE_GRACE": "2h", "PACKAGE_ASSETS_PRUNE_KEEP_COMMITS": "0"}, Requirements{})
	want = PruneSettings{Apply: true, CacheAge: 36 * time.Hour, Grace: 2 * time.Hour}
	if c.Prune != want {
		t.Errorf("set %+v, want %+v", c.Prune, want)
	}
	_, err := Load(lookupOf(map[string]string{"PACKAGE_ASSETS_PRUNE_APPLY": "please", "PACKAGE_ASSETS_PRUNE_COMMIT_AGE": "30",
		"PACKAGE_ASSETS_PRUNE_CACHE_AGE": "10m", "PACKAGE_ASSETS_PRUNE_GRACE": "off", "PACKAGE_ASSETS_PRUNE_KEEP_COMMITS": "-1"}), Requirements{})
	if err == nil {
		t.Fatal("no error")
	}
	for _, env := range []string{"PACKAGE_ASSETS_PRUNE_APPLY:", "PACKAGE_ASSETS_PRUNE_COMMIT_AGE:", "PACKAGE_ASSETS_PRUNE_CACHE_AGE:",
		"PACKAGE_ASSETS_PRUNE_GRACE: cannot be off", "PACKAGE_ASSETS_PRUNE_KEEP_COMMITS:"} {
		if !strings.Contains(err.Error(), env) {
			t.Errorf("error lacks %q:\n%v", env, err)
		}
	}
	_, err = Load(lookupOf(map[string]string{"PACKAGE_ASSETS_PRUNE_CACHE_AGE": "2d", "PACKAGE_ASSETS_PRUNE_GRACE": "3d"}), Requirements{})
	if err == nil || !strings.Contains(err.Error(), `PACKAGE_ASSETS_PRUNE_CACHE_AGE: "2d" is shorter than PACKAGE_ASSETS_PRUNE_GRACE ("3d")`) {
		t.Errorf("cache age below the grace: %v", err)
	}
	// The ages as written, the defaults too (a grace of 100d alone is
	// longer than both: not 2160h0m0s, which the user never wrote).
	_, err = Load(lookupOf(map[string]string{"PACKAGE_ASSETS_PRUNE_GRACE": "100d"}), Requirements{})
	if err == nil || !strings.Contains(err.Error(), `PACKAGE_ASSETS_PRUNE_COMMIT_AGE: "90d" is shorter than PACKAGE_ASSETS_PRUNE_GRACE ("100d")`) ||
		!strings.Contains(err.Error(), `PACKAGE_ASSETS_PRUNE_CACHE_AGE: "30d" is shorter`) {
		t.Errorf("a grace longer than the default ages: %v", err)
	}
}

// RESULT_DOTENV_FILE is written after the run: a path that cannot be is
// refused with the other settings, before anything is done.
func TestDotenvFilePath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		ok   bool
	}{
		{filepath.Join(dir, "result.env"), true},
		{file, true}, // written over
		{"result.env", true},
		{filepath.Join(dir, "nodir", "deeper", "result.env"), true}, // made when written
		{filepath.Join(file, "result.env"), false},
		{filepath.Join(file, "sub", "result.env"), false},
		{dir, false},
	} {
		_, err := Load(lookupOf(map[string]string{"RESULT_DOTENV_FILE": c.path}), Requirements{})
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.path, err)
		}
		if !c.ok && (err == nil || !strings.Contains(err.Error(), "RESULT_DOTENV_FILE: ")) {
			t.Errorf("%s: error %v, want one naming RESULT_DOTENV_FILE", c.path, err)
		}
	}
}
