// Package config reads the tool's settings: a GitHub Action input when set,
// else the environment variable, else the default. Every problem is reported
// at once, before anything is read from git or written anywhere.
package config

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
)

// Lookup returns an environment variable's value and whether it is set.
type Lookup func(name string) (string, bool)

// Setting describes one setting: its environment variable, its action input
// and its default. The table drives Load, --help, and the tests of action.yml
// and of docs/configuration.md (internal/docscheck).
type Setting struct {
	Env     string
	Input   string
	Default string
	// ActionDefault, when set, is the default in a GitHub action's step (its
	// mode input set) instead of Default. Not the input's default in
	// action.yml: the runner would pass it as the input, which wins over
	// the step's or job's environment variable.
	ActionDefault string
	Secret        bool
	Doc           string
}

// Settings is every setting the tool reads itself. The AWS SDK's own
// variables (credentials, region, AWS_ENDPOINT_URL, AWS_CA_BUNDLE,
// AWS_MAX_ATTEMPTS, ...) are read by the SDK as usual and are not listed.
var Settings = []Setting{
	{Env: "PACKAGE_ASSETS_BUCKET", Input: "bucket", Doc: "S3 bucket holding the artifacts (required for check, upload and download)."},
	{Env: "GIT_REPO_PATH", Input: "git-repo-path", Default: "./repo", ActionDefault: ".", Doc: "Root (or any directory) of the git checkout; check and hash."},
	{Env: "PACKAGE_DIRECTORY", Input: "package-directory", Default: "./packages", Doc: "Directory for the marker files and the files to upload; must persist between tasks."},
	{Env: "CODE_HASH_FIND_FILTER", Input: "code-hash-find-filter", Doc: "Patterns of the files whose contents make the artifacts; enables the code-hash cache."},
	{Env: "PACKAGE_COMPONENTS", Input: "components", Doc: "Components of a monorepo, one a line: \"name: pattern ...\" or a directory glob such as lambdas/*. Each is looked up, cached, built and uploaded on its own; CODE_HASH_FIND_FILTER then names the sources every component shares."},
	{Env: "PACKAGE_COMPONENT", Input: "component", Doc: "One component's name: check and upload deal with that component alone (a matrix job per component); download fetches that component's set alone."},
	{Env: "AWS_ROLE", Input: "aws-role", Doc: "Role ARN to assume (session name s3-asset-manager), refreshed before it expires."},
	{Env: "PACKAGE_ASSETS_KEY_PREFIX", Input: "key-prefix", Doc: "Prefix before artifacts/ and cache/ in every key, e.g. team-a/."},
	{Env: "PACKAGE_ASSETS_ENDPOINT", Input: "endpoint", Doc: "S3 endpoint URL of an S3-compatible store; empty: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS."},
	{Env: "PACKAGE_ASSETS_PATH_STYLE", Input: "path-style", Default: "auto", Doc: "Path-style addressing: true, false, or auto (on with a custom endpoint)."},
	{Env: "PACKAGE_UPLOAD_CONCURRENCY", Input: "upload-concurrency", Default: "128", Doc: "Most S3 requests in flight at once (1-256), for uploads, copies and downloads; a store answering 503 SlowDown lowers it for a while."},
	{Env: "PACKAGE_ASSETS_REQUEST_TIMEOUT", Input: "request-timeout", Default: "2m", Doc: "Longest one attempt of one S3 request may go without finishing before it is retried (e.g. 30s, 2m)."},
	{Env: "PACKAGE_ASSETS_CONTENT_MD5", Input: "content-md5", Default: "false", Doc: "Also send Content-MD5 with every upload: for a store that checks neither the signed SHA-256 of a body nor a CRC32C checksum, and for buckets with Object Lock retention."},
	{Env: "PACKAGE_ASSETS_ACCEPT_LEGACY", Input: "accept-legacy", Default: "false", Doc: "Count objects under artifacts/<commit>/ without a completion record as found, as the original tool did (migration only)."},
	{Env: "CODE_HASH_SALT", Input: "code-hash-salt", Doc: "Mixed into the code hash (e.g. a toolchain version): change it to invalidate the cache on purpose."},
	{Env: "CODE_HASH_CACHE_READ_ONLY", Input: "cache-read-only", Default: "false", Doc: "Read the cache but never write it (builds of untrusted code, such as pull requests from forks)."},
	{Env: "PACKAGE_ASSETS_SIGNING_KEY", Input: "signing-key", Secret: true, Doc: "Secret for signing completion records (HMAC-SHA256); unsigned or wrongly signed sets then count as missing."},
	{Env: "PACKAGE_ASSETS_COMMIT", Input: "commit", Doc: "download: the commit whose artifacts to fetch (full 40 or 64 hex id); else .commit-hash in the package directory, else HEAD of GIT_REPO_PATH."},
	{Env: "PACKAGE_ASSETS_WAIT", Input: "wait", Default: "0", Doc: "download: how long to wait for the set to be complete (e.g. 10m), polling with backoff; 0 fails at once when it is not there."},
	{Env: "PACKAGE_ASSETS_FAIL_ON_MISS", Input: "fail-on-miss", Default: "false", Doc: "check: a miss (not found, no cache hit; with components, any component to build) ends with exit 6 instead of 0, for pipelines that must never build."},
	{Env: "PACKAGE_ASSETS_PRUNE_APPLY", Input: "prune-apply", Default: "false", Doc: "prune: delete what the plan lists; false (the default) prints the plan and deletes nothing."},
	{Env: "PACKAGE_ASSETS_PRUNE_COMMIT_AGE", Input: "prune-commit-age", Default: "90d", Doc: "prune: a commit's set (with components, each component's) recorded longer ago than this goes, unless among the newest PACKAGE_ASSETS_PRUNE_KEEP_COMMITS; 'off' keeps every one (e.g. 30d, 720h)."},
	{Env: "PACKAGE_ASSETS_PRUNE_KEEP_COMMITS", Input: "prune-keep-commits", Default: "10", Doc: "prune: the newest this many commit sets (with components, of each component) are kept whatever their age, for a rollback."},
	{Env: "PACKAGE_ASSETS_PRUNE_CACHE_AGE", Input: "prune-cache-age", Default: "30d", Doc: "prune: a cache entry not used (filled, or copied from by a hit) for longer than this goes; 'off' keeps every one."},
	{Env: "PACKAGE_ASSETS_PRUNE_GRACE", Input: "prune-grace", Default: "24h", Doc: "prune: nothing written more recently than this is touched (an upload or copy in progress); sets without a record and multipart uploads older than this go (at least 1h)."},
	{Env: "RESULT_DOTENV_FILE", Input: "dotenv-file", Doc: "Also write the result as FOUND=, CACHE_HIT=, COMMIT_HASH=, CODE_HASH=, COMPONENTS_TO_BUILD=, COMPONENTS=, PREFIX= lines to this file (GitLab artifacts:reports:dotenv); prune writes PRUNE_SETS=, PRUNE_FILES=, PRUNE_BYTES= alone."},
}

// Config is the validated settings of one run.
type Config struct {
	Bucket     string
	RepoPath   string
	PackageDir string
	Filter     []codehash.Pattern // empty: cache off (with Components: the shared sources)
	// FilterComments: the comment lines of a multi-line filter, skipped (logged with -v).
	FilterComments []string
	// Components of a monorepo (PACKAGE_COMPONENTS); empty: one set a commit.
	Components []codehash.Component
	// Component, when set, is the one component check and upload deal with.
	Component   string
	Role        string
	KeyPrefix   string // "" or ends in "/"
	Endpoint    string
	PathStyle   bool
	Concurrency int
	// RequestTimeout bounds one attempt of one S3 request.
	RequestTimeout time.Duration
	// ContentMD5 adds Content-MD5 to every upload.
	ContentMD5 bool
	// AcceptLegacy counts unrecorded objects under artifacts/<commit>/ as found.
	AcceptLegacy  bool
	Salt          string
	CacheReadOnly bool
	SigningKey    []byte
	// Commit is the commit download fetches; empty: .commit-hash, then HEAD.
	Commit string
	// Wait is how long download waits for the set to be complete.
	Wait time.Duration
	// FailOnMiss makes a check that finds nothing a failure (exit 6).
	FailOnMiss bool
	// Prune: see PruneSettings.
	Prune PruneSettings
	// Secrets are the values of the settings marked Secret, for masking in logs.
	Secrets    []string
	DotenvFile string
}

// PruneSettings say what prune deletes. An age of 0 turns its rule off.
type PruneSettings struct {
	// Apply deletes; without it prune only prints its plan.
	Apply bool
	// CommitAge: commit sets (per component, with components) recorded
	// longer ago go, except the newest KeepCommits.
	CommitAge   time.Duration
	KeepCommits int
	// CacheAge: cache entries not used for longer go.
	CacheAge time.Duration
	// Grace: nothing written more recently is touched; sets without a
	// record and multipart uploads older than this go.
	Grace time.Duration
}

// parseAge reads an age: "off" (0), a number of days ("30d"), or a Go
// duration ("12h"); at least an hour.
func parseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "off" {
		return 0, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("not a number of days: %q", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d < time.Hour {
		return 0, fmt.Errorf("%s is less than an hour", d)
	}
	return d, nil
}

// CacheEnabled reports whether a code-hash filter is set.
func (c *Config) CacheEnabled() bool { return len(c.Filter) > 0 }

// ComponentsEnabled reports whether PACKAGE_COMPONENTS is set.
func (c *Config) ComponentsEnabled() bool { return len(c.Components) > 0 }

// Requirements say which settings a command needs.
type Requirements struct {
	Bucket bool
}

// Load fills a Config from lookup, reporting every problem at once.
func Load(lookup Lookup, req Requirements) (*Config, error) {
	vals := make(map[string]string, len(Settings))
	for _, s := range Settings {
		vals[s.Env] = value(lookup, s)
	}
	var errs []error
	bad := func(env, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, args...)))
	}

	c := &Config{
		Bucket:     vals["PACKAGE_ASSETS_BUCKET"],
		RepoPath:   vals["GIT_REPO_PATH"],
		PackageDir: vals["PACKAGE_DIRECTORY"],
		Role:       vals["AWS_ROLE"],
		Endpoint:   vals["PACKAGE_ASSETS_ENDPOINT"],
	}
	if req.Bucket && c.Bucket == "" {
		bad("PACKAGE_ASSETS_BUCKET", "required, not set (the S3 bucket that holds the artifacts)")
	} else if c.Bucket != "" {
		if err := validBucket(c.Bucket); err != nil {
			bad("PACKAGE_ASSETS_BUCKET", "%v", err)
		}
	}
	if c.RepoPath == "" {
		bad("GIT_REPO_PATH", "empty")
	}
	if c.PackageDir == "" {
		bad("PACKAGE_DIRECTORY", "empty")
	}
	if raw := vals["CODE_HASH_FIND_FILTER"]; raw != "" {
		f, comments, err := codehash.ParseFilter(raw)
		for _, e := range flatten(err) {
			bad("CODE_HASH_FIND_FILTER", "%v", e)
		}
		c.Filter, c.FilterComments = f, comments
	}
	componentsOK := true
	if raw := vals["PACKAGE_COMPONENTS"]; raw != "" {
		// With problems, the lines without one are kept (see LoadError).
		comps, err := codehash.ParseComponents(raw)
		for _, e := range flatten(err) {
			bad("PACKAGE_COMPONENTS", "%v", e)
		}
		if err == nil && len(comps) == 0 {
			bad("PACKAGE_COMPONENTS", "only comments: declare one component a line")
		}
		c.Components, componentsOK = comps, err == nil
	}
	if name := vals["PACKAGE_COMPONENT"]; name != "" {
		if err := codehash.ValidName(name); err != nil {
			bad("PACKAGE_COMPONENT", "%v", err)
		}
		// Only a named component can be checked here; a directory's name is
		// known once the tree is read.
		if known, named := c.componentNamed(name); named && !known && componentsOK {
			bad("PACKAGE_COMPONENT", "%q is not one of the components PACKAGE_COMPONENTS declares", name)
		}
		c.Component = name
	}
	if p := vals["PACKAGE_ASSETS_KEY_PREFIX"]; p != "" {
		p = strings.TrimLeft(p, "/")
		if p != "" && !strings.HasSuffix(p, "/") {
			p += "/"
		}
		if p != "" && (path.Clean("/"+p) != "/"+strings.TrimSuffix(p, "/") || strings.Contains(p, "//")) {
			bad("PACKAGE_ASSETS_KEY_PREFIX", "%q has empty, '.' or '..' segments", vals["PACKAGE_ASSETS_KEY_PREFIX"])
		}
		c.KeyPrefix = p
	}
	if c.Endpoint != "" && !strings.HasPrefix(c.Endpoint, "http://") && !strings.HasPrefix(c.Endpoint, "https://") {
		bad("PACKAGE_ASSETS_ENDPOINT", "%q is not an http:// or https:// URL", c.Endpoint)
	}
	switch ps := strings.ToLower(vals["PACKAGE_ASSETS_PATH_STYLE"]); ps {
	case "auto":
		c.PathStyle = c.Endpoint != "" || hasCustomEndpoint(lookup)
	default:
		b, err := parseBool(ps)
		if err != nil {
			bad("PACKAGE_ASSETS_PATH_STYLE", "%q is not true, false or auto", ps)
		}
		c.PathStyle = b
	}
	if n, err := strconv.Atoi(vals["PACKAGE_UPLOAD_CONCURRENCY"]); err != nil || n < 1 || n > 256 {
		bad("PACKAGE_UPLOAD_CONCURRENCY", "%q is not a whole number from 1 to 256", vals["PACKAGE_UPLOAD_CONCURRENCY"])
	} else {
		c.Concurrency = n
	}
	if d, err := time.ParseDuration(vals["PACKAGE_ASSETS_REQUEST_TIMEOUT"]); err != nil || d < 100*time.Millisecond || d > 24*time.Hour {
		bad("PACKAGE_ASSETS_REQUEST_TIMEOUT", "%q is not a duration from 100ms to 24h (e.g. 30s, 2m)", vals["PACKAGE_ASSETS_REQUEST_TIMEOUT"])
	} else {
		c.RequestTimeout = d
	}
	flag := func(env string) bool {
		b, err := parseBool(vals[env])
		if err != nil {
			bad(env, "%q is not true or false", vals[env])
		}
		return b
	}
	c.ContentMD5 = flag("PACKAGE_ASSETS_CONTENT_MD5")
	c.AcceptLegacy = flag("PACKAGE_ASSETS_ACCEPT_LEGACY")
	c.CacheReadOnly = flag("CODE_HASH_CACHE_READ_ONLY")
	c.Salt = vals["CODE_HASH_SALT"]
	if strings.ContainsAny(c.Salt, "\n\r\x00") {
		bad("CODE_HASH_SALT", "must be a single line")
	}
	if k := vals["PACKAGE_ASSETS_SIGNING_KEY"]; k != "" {
		if len(k) < 16 {
			bad("PACKAGE_ASSETS_SIGNING_KEY", "shorter than 16 characters; use a long random secret")
		}
		c.SigningKey = []byte(k)
	}
	if v := vals["PACKAGE_ASSETS_COMMIT"]; v != "" {
		var ok bool
		if c.Commit, ok = manifest.ParseCommit(v); !ok {
			bad("PACKAGE_ASSETS_COMMIT", "%q is not a full commit id (40 or 64 hex digits; a short id cannot be resolved without the repository)", v)
		}
	}
	if d, err := time.ParseDuration(vals["PACKAGE_ASSETS_WAIT"]); err != nil || d < 0 || d > 24*time.Hour {
		bad("PACKAGE_ASSETS_WAIT", "%q is not a duration from 0 to 24h (e.g. 0, 30s, 10m)", vals["PACKAGE_ASSETS_WAIT"])
	} else {
		c.Wait = d
	}
	c.FailOnMiss = flag("PACKAGE_ASSETS_FAIL_ON_MISS")
	c.DotenvFile = vals["RESULT_DOTENV_FILE"]
	if c.DotenvFile != "" {
		// Written last, after the check or download: a path that cannot be
		// would fail a run that has done its work (and, for check, leave
		// the markers it then removes).
		if err := writablePath(c.DotenvFile); err != nil {
			bad("RESULT_DOTENV_FILE", "%v", err)
		}
	}
	c.Prune.Apply = flag("PACKAGE_ASSETS_PRUNE_APPLY")
	age := func(env string) time.Duration {
		d, err := parseAge(vals[env])
		if err != nil {
			bad(env, "%q is not an age of at least 1h (e.g. 30d, 12h) or off", vals[env])
		}
		return d
	}
	c.Prune.CommitAge = age("PACKAGE_ASSETS_PRUNE_COMMIT_AGE")
	c.Prune.CacheAge = age("PACKAGE_ASSETS_PRUNE_CACHE_AGE")
	if g := vals["PACKAGE_ASSETS_PRUNE_GRACE"]; strings.EqualFold(g, "off") {
		bad("PACKAGE_ASSETS_PRUNE_GRACE", "cannot be off: it protects uploads and copies in progress")
	} else {
		c.Prune.Grace = age("PACKAGE_ASSETS_PRUNE_GRACE")
	}
	for _, a := range []struct {
		env string
		d   time.Duration
	}{{"PACKAGE_ASSETS_PRUNE_COMMIT_AGE", c.Prune.CommitAge}, {"PACKAGE_ASSETS_PRUNE_CACHE_AGE", c.Prune.CacheAge}} {
		if a.d > 0 && c.Prune.Grace > 0 && a.d < c.Prune.Grace {
			// As written (a default too: "90d", not 2160h0m0s).
			bad(a.env, "%q is shorter than PACKAGE_ASSETS_PRUNE_GRACE (%q)", vals[a.env], vals["PACKAGE_ASSETS_PRUNE_GRACE"])
		}
	}
	if n, err := strconv.Atoi(vals["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"]); err != nil || n < 0 || n > 1000000 {
		bad("PACKAGE_ASSETS_PRUNE_KEEP_COMMITS", "%q is not a whole number from 0 to 1000000", vals["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"])
	} else {
		c.Prune.KeepCommits = n
	}
	if len(errs) > 0 {
		return nil, &LoadError{Problems: errs, Partial: c}
	}
	for _, st := range Settings {
		if st.Secret && vals[st.Env] != "" {
			c.Secrets = append(c.Secrets, vals[st.Env])
		}
	}
	return c, nil
}

// LoadError is every problem Load found, one error a setting's problem,
// and the settings as far as they could be read (Partial: what was valid of
// each), so that a caller can report with them what only the repository
// shows (see codehash.ComputeComponents).
type LoadError struct {
	Problems []error
	Partial  *Config
}

func (e *LoadError) Error() string   { return errors.Join(e.Problems...).Error() }
func (e *LoadError) Unwrap() []error { return e.Problems }

// Mentions reports whether a problem is of the setting env.
func (e *LoadError) Mentions(env string) bool {
	for _, p := range e.Problems {
		if strings.HasPrefix(p.Error(), env+": ") {
			return true
		}
	}
	return false
}

// componentNamed reports whether name is a named component, and whether
// every component is named (so that the answer is final).
func (c *Config) componentNamed(name string) (known, allNamed bool) {
	allNamed = len(c.Components) > 0
	for _, comp := range c.Components {
		known = known || comp.Name == name
		allNamed = allNamed && comp.DirGlob == ""
	}
	return known, allNamed
}

// InputEnv is the variable through which GitHub passes an action input to a
// docker action: upper-cased, spaces to '_', hyphens kept.
func InputEnv(input string) string {
	return "INPUT_" + strings.ToUpper(strings.ReplaceAll(input, " ", "_"))
}

// value: a non-empty action input wins, then a set environment variable, then the default
// (in an action's step, its default there: actions/checkout puts the repository at the
// workspace root).
func value(lookup Lookup, s Setting) string {
	if s.Input != "" {
		if v, ok := lookup(InputEnv(s.Input)); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	if v, ok := lookup(s.Env); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	if s.ActionDefault != "" {
		if m, ok := lookup(InputEnv("mode")); ok && strings.TrimSpace(m) != "" {
			return s.ActionDefault
		}
	}
	return s.Default
}

func hasCustomEndpoint(lookup Lookup) bool {
	for _, k := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if v, ok := lookup(k); ok && v != "" {
			return true
		}
	}
	return false
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", s)
}

// validBucket checks the S3 bucket naming rules that catch typos (a URL or a
// key pasted in place of a name) without refusing the looser names some
// S3-compatible stores allow.
func validBucket(b string) error {
	if strings.Contains(b, "://") || strings.HasPrefix(b, "s3:") {
		return fmt.Errorf("%q is a URL; give the bare bucket name", b)
	}
	if strings.ContainsAny(b, "/ \t\n") {
		return fmt.Errorf("%q contains '/' or white space; give the bare bucket name (use PACKAGE_ASSETS_KEY_PREFIX for a prefix)", b)
	}
	if len(b) < 3 || len(b) > 255 {
		return fmt.Errorf("%q must be 3 to 255 characters long", b)
	}
	return nil
}

// writablePath reports what stops a file from ever being written at path:
// a file where one of its directories goes, or a directory at the path
// itself. A directory not made yet is no problem: the file's directories
// are made when it is written (the package directory, say, on a fresh
// clone), and hash never writes it.
func writablePath(p string) error {
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return fmt.Errorf("%q is a directory", p)
	}
	for d := filepath.Dir(p); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("%q: %s is not a directory", p, d)
		case err == nil:
			return nil
		case !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return fmt.Errorf("%q: %w", p, err)
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

// flatten lists the errors inside an errors.Join, so each gets its own line.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
