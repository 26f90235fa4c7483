package ghaction

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ghaction")

const goldenDir = "../../testdata/ghaction"

// runner is a fake Actions environment: the variables the runner sets and
// the files it reads back after the step.
type runner struct {
	env     map[string]string
	stdout  bytes.Buffer
	output  string
	summary string
}

func newRunner(t *testing.T) *runner {
	t.Helper()
	dir := t.TempDir()
	r := &runner{output: filepath.Join(dir, "output"), summary: filepath.Join(dir, "summary")}
	// The runner creates both files empty before the step.
	for _, f := range []string{r.output, r.summary} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.env = map[string]string{
		"GITHUB_ACTIONS":      "true",
		"GITHUB_OUTPUT":       r.output,
		"GITHUB_STEP_SUMMARY": r.summary,
	}
	return r
}

func (r *runner) lookup(k string) (string, bool) { v, ok := r.env[k]; return v, ok }

func (r *runner) reporter() *Reporter { return New(r.lookup, &r.stdout) }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseOutputs(t *testing.T, text string) map[string]string {
	t.Helper()
	out, err := ParseOutputFile(text)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSetOutputs(t *testing.T) {
	for _, o := range []Outputs{
		{},
		{Found: true, CacheHit: true, CommitHash: strings.Repeat("a", 40), CodeHash: "c0de"},
		{Found: true, CommitHash: strings.Repeat("b", 40)},
		{CommitHash: strings.Repeat("b", 40), Components: []Component{
			{Name: "api", Found: true, CodeHash: "c1"},
			{Name: "fn1", Build: true, CodeHash: "c2"},
			{Name: "fn2", Found: true, CacheHit: true, CodeHash: "c3"},
			{Name: "fn3", Build: true, CodeHash: "c4"},
		}},
		{Found: true, CommitHash: strings.Repeat("c", 40), Prefix: "p/artifacts/cc/", Files: []File{
			{Name: "fn1.zip", Key: "p/artifacts/cc/fn1.zip", Size: 3, PackageHash: "n4bQ+/="},
			{Name: "a&b <c>.zip", Key: "p/artifacts/cc/a&b <c>.zip", Size: 0, PackageHash: "47DE"},
		}},
	} {
		r := newRunner(t)
		if err := r.reporter().SetOutputs(o); err != nil {
			t.Fatal(err)
		}
		got := parseOutputs(t, readFile(t, r.output))
		want := map[string]string{
			"found":               map[bool]string{true: "true", false: "false"}[o.Found],
			"cache-hit":           map[bool]string{true: "true", false: "false"}[o.CacheHit],
			"commit-hash":         o.CommitHash,
			"code-hash":           o.CodeHash,
			"components-to-build": "[]",
			"components":          "{}",
			"prefix":              o.Prefix,
			"files":               "{}",
		}
		if o.Files != nil {
			// Keyed by name, sorted, one line, not escaped for HTML.
			want["files"] = `{"a&b <c>.zip":{"key":"p/artifacts/cc/a&b <c>.zip","size":0,"packageHash":"47DE"},` +
				`"fn1.zip":{"key":"p/artifacts/cc/fn1.zip","size":3,"packageHash":"n4bQ+/="}}`
		}
		if len(o.Components) > 0 {
			want["components-to-build"] = `["fn1","fn3"]`
			want["components"] = `{"api":{"found":true,"cacheHit":false,"build":false,"codeHash":"c1"},` +
				`"fn1":{"found":false,"cacheHit":false,"build":true,"codeHash":"c2"},` +
				`"fn2":{"found":true,"cacheHit":true,"build":false,"codeHash":"c3"},` +
				`"fn3":{"found":false,"cacheHit":false,"build":true,"codeHash":"c4"}}`
		}
		if len(got) != len(want) {
			t.Errorf("%+v: outputs %v, want %v", o, got, want)
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("%+v: output %s = %q (set: %t), want %q", o, k, g, ok, v)
			}
		}
		if r.stdout.Len() != 0 {
			t.Errorf("outputs went to stdout too: %q", r.stdout.String())
		}
	}
}

func TestOutputNamesMatchSetOutputs(t *testing.T) {
	r := newRunner(t)
	if err := r.reporter().SetOutputs(Outputs{}); err != nil {
		t.Fatal(err)
	}
	got := parseOutputs(t, readFile(t, r.output))
	for _, n := range OutputNames {
		if _, ok := got[n]; !ok {
			t.Errorf("OutputNames has %q, SetOutputs does not write it", n)
		}
	}
	if len(got) != len(OutputNames) {
		t.Errorf("SetOutputs wrote %d outputs, OutputNames lists %d", len(got), len(OutputNames))
	}
}

func TestCommands(t *testing.T) {
	r := newRunner(t)
	gh := r.reporter()
	if !gh.Enabled() {
		t.Fatal("not enabled with GITHUB_ACTIONS=true")
	}
	gh.Mask("s3cr3t-value")
	gh.Mask("line-one\nline-two")
	gh.Mask("   ") // nothing to hide: masking blanks would star out the log
	end := gh.Group("s3-asset-manager check")
	end()
	gh.Error("invalid settings: a\nb: 100%")
	want := strings.Join([]string{
		"::add-mask::s3cr3t-value",
		"::add-mask::line-one%0Aline-two",
		"::add-mask::line-one",
		"::add-mask::line-two",
		"::group::s3-asset-manager check",
		"::endgroup::",
		"::error title=s3-asset-manager::invalid settings: a%0Ab: 100%25",
		"",
	}, "\n")
	if got := r.stdout.String(); got != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", got, want)
	}
	for _, f := range []string{r.output, r.summary} {
		if s := readFile(t, f); s != "" {
			t.Errorf("%s written by commands: %q", filepath.Base(f), s)
		}
	}
}

// Outside Actions nothing is written anywhere, even when the file variables
// happen to be set (a developer's shell copied from a CI log).
func TestInactiveOutsideActions(t *testing.T) {
	for _, v := range []string{"", "false", "1", "TRUE"} {
		r := newRunner(t)
		os.Remove(r.output)
		os.Remove(r.summary)
		if v == "" {
			delete(r.env, "GITHUB_ACTIONS")
		} else {
			r.env["GITHUB_ACTIONS"] = v
		}
		gh := r.reporter()
		if gh.Enabled() {
			t.Errorf("GITHUB_ACTIONS=%q: enabled", v)
		}
		exercise(t, gh)
		if r.stdout.Len() != 0 {
			t.Errorf("GITHUB_ACTIONS=%q: stdout %q", v, r.stdout.String())
		}
		for _, f := range []string{r.output, r.summary} {
			if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("GITHUB_ACTIONS=%q: %s was created (%v)", v, filepath.Base(f), err)
			}
		}
	}
}

// go-githubactions panics when GITHUB_OUTPUT or GITHUB_STEP_SUMMARY is
// unset; the Reporter skips those parts instead.
func TestActionsWithoutFiles(t *testing.T) {
	r := newRunner(t)
	delete(r.env, "GITHUB_OUTPUT")
	delete(r.env, "GITHUB_STEP_SUMMARY")
	gh := r.reporter()
	exercise(t, gh)
	if !strings.Contains(r.stdout.String(), "::group::") {
		t.Errorf("workflow commands not written: %q", r.stdout.String())
	}
}

// exercise calls every method and fails on an error or a panic.
func exercise(t *testing.T, gh *Reporter) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("panic: %v", p)
		}
	}()
	gh.Mask("secret-value")
	gh.Group("g")()
	gh.Error("boom")
	if err := gh.SetOutputs(Outputs{Found: true}); err != nil {
		t.Errorf("SetOutputs: %v", err)
	}
	if err := gh.SummarizeCheck(checkCases[0].s); err != nil {
		t.Errorf("SummarizeCheck: %v", err)
	}
	if err := gh.SummarizeUpload(uploadCases[0].s); err != nil {
		t.Errorf("SummarizeUpload: %v", err)
	}
}

// An unwritable file is an error to report, not a panic.
func TestWriteFailureIsError(t *testing.T) {
	r := newRunner(t)
	dir := t.TempDir() // a directory cannot be opened for appending
	r.env["GITHUB_OUTPUT"] = dir
	r.env["GITHUB_STEP_SUMMARY"] = dir
	gh := r.reporter()
	if err := gh.SetOutputs(Outputs{}); err == nil {
		t.Error("SetOutputs into a directory: no error")
	}
	if err := gh.SummarizeCheck(CheckSummary{}); err == nil {
		t.Error("SummarizeCheck into a directory: no error")
	}
}

const (
	commit   = "3f786850e387550fdab836ed7e6dc881de23001b"
	codeHash = "9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab"
	bucket   = "ci-artifacts"
	where    = "s3://ci-artifacts/team-a/artifacts/" + commit + "/"
)

var checkCases = []struct {
	name string
	s    CheckSummary
}{
	{"check-not-found", CheckSummary{Bucket: bucket, Commit: commit}},
	{"check-not-found-cache", CheckSummary{Bucket: bucket, Commit: commit, CodeHash: codeHash}},
	{"check-miss-explained", CheckSummary{Bucket: bucket, Commit: commit, CodeHash: codeHash,
		Miss:      "the patterns changed and 3 files differ from the build of 4f2a9c1 (2 hours ago)",
		MissLines: []string{"patterns were lambdas/**, now lambdas/** !**/*.md", "modified lambdas/fn1/index.js", "added lambdas/fn1/<b>util</b>.js", "mode changed lambdas/fn2/run.sh (100644 → 100755)"}}},
	{"check-miss-unexplained", CheckSummary{Bucket: bucket, Commit: commit, CodeHash: codeHash,
		Miss: "no earlier build in the cache yet"}},
	{"check-found", CheckSummary{Bucket: bucket, Commit: commit, Found: true, Where: where, Files: 3, Bytes: 5<<20 + 123}},
	{"check-cache-hit", CheckSummary{Bucket: bucket, Commit: commit, CodeHash: codeHash, Found: true, CacheHit: true, Where: where, Files: 1, Bytes: 2048}},
	{"check-found-legacy", CheckSummary{Bucket: bucket, Commit: commit, Found: true, Where: where}},
	{"check-components", CheckSummary{Bucket: bucket, Commit: commit, Where: where, Components: []Component{
		{Name: "api", Found: true, CodeHash: codeHash},
		{Name: "fn1", Build: true, CodeHash: codeHash},
		{Name: "fn2", Found: true, CacheHit: true, CodeHash: codeHash},
		{Name: "fn3", Build: true, CodeHash: codeHash, Reason: "2 files differ from 4f2a9c1: modified lambdas/fn3/index.js; added lambdas/fn3/<b>x</b>.js"},
	}}},
	{"check-components-found", CheckSummary{Bucket: bucket, Commit: commit, Found: true, Where: where, Components: []Component{
		{Name: "api", Found: true, CodeHash: codeHash},
		{Name: "fn|1", Found: true, CacheHit: true, CodeHash: codeHash},
	}}},
}

var uploadCases = []struct {
	name string
	s    UploadSummary
}{
	{"upload-files", UploadSummary{Commit: commit, Where: where, Files: []File{
		{Name: "fn1.zip", Size: 1536, PackageHash: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="},
		{Name: "lib/tricky|name `x`.tar.gz", Size: 12 << 20, PackageHash: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
		{Name: "empty", Size: 0, PackageHash: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
	}}},
	{"upload-skipped-found", UploadSummary{Skipped: "found by check"}},
	{"upload-skipped-complete", UploadSummary{Commit: commit, Where: where, Skipped: "already complete", Files: []File{
		{Name: "fn1.zip", Size: 1536, PackageHash: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="},
	}}},
}

func TestSummaryGolden(t *testing.T) {
	type tc struct {
		name string
		run  func(*Reporter) error
	}
	var cases []tc
	for _, c := range checkCases {
		cases = append(cases, tc{c.name, func(gh *Reporter) error { return gh.SummarizeCheck(c.s) }})
	}
	for _, c := range uploadCases {
		cases = append(cases, tc{c.name, func(gh *Reporter) error { return gh.SummarizeUpload(c.s) }})
	}
	cases = append(cases, tc{"download-files", func(gh *Reporter) error {
		return gh.SummarizeDownload(DownloadSummary{Commit: commit, Where: where, Files: uploadCases[0].s.Files})
	}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRunner(t)
			if err := c.run(r.reporter()); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, c.name+".md", readFile(t, r.summary))
		})
	}
}

// checkGolden compares got with the file testdata/ghaction/name.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/ghaction -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./internal/ghaction -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// Check and upload run as separate steps, but a step may write twice: the
// summary is appended to, never replaced.
func TestSummaryAppends(t *testing.T) {
	r := newRunner(t)
	gh := r.reporter()
	if err := gh.SummarizeCheck(checkCases[0].s); err != nil {
		t.Fatal(err)
	}
	if err := gh.SummarizeUpload(uploadCases[0].s); err != nil {
		t.Fatal(err)
	}
	got := readFile(t, r.summary)
	if !strings.HasPrefix(got, CheckMarkdown(checkCases[0].s)) || !strings.Contains(got, UploadMarkdown(uploadCases[0].s)) {
		t.Errorf("summary is not both parts in order:\n%s", got)
	}
}

func TestCodeSpan(t *testing.T) {
	for in, want := range map[string]string{
		"":         "-",
		"a.zip":    "`a.zip`",
		"a|b":      "`a\\|b`",
		"a`b":      "`` a`b ``",
		"`x":       "`` `x ``",
		"two\nrow": "`two row`",
	} {
		if got := code(in); got != want {
			t.Errorf("code(%q) = %q, want %q", in, got, want)
		}
	}
}

var delimiter = regexp.MustCompile(`ghadelimiter_[A-Z2-7]{26}`)

// The GITHUB_OUTPUT file is the runner's contract: every value in a
// "name<<delimiter" block with a random delimiter of its own, as the Actions
// toolkit writes it (go-githubactions uses one fixed delimiter for all).
func TestOutputFileGolden(t *testing.T) {
	o := Outputs{Found: true, CacheHit: true, CommitHash: commit, CodeHash: codeHash}
	var delims []string
	var text string
	for range 2 {
		r := newRunner(t)
		if err := r.reporter().SetOutputs(o); err != nil {
			t.Fatal(err)
		}
		text = readFile(t, r.output)
		for _, line := range strings.Split(text, "\n") {
			if name, d, ok := strings.Cut(line, "<<"); ok {
				if !delimiter.MatchString(d) {
					t.Errorf("%s: delimiter %q is not a random one", name, d)
				}
				delims = append(delims, d)
			}
		}
	}
	seen := map[string]bool{}
	for _, d := range delims {
		if seen[d] {
			t.Errorf("delimiter %s used twice", d)
		}
		seen[d] = true
	}
	if len(delims) != 2*len(OutputNames) {
		t.Errorf("%d delimiters in two runs, want %d", len(delims), 2*len(OutputNames))
	}
	checkGolden(t, "github-output.txt", delimiter.ReplaceAllString(text, "ghadelimiter_<random>"))
}

func TestDotenvGolden(t *testing.T) {
	path := filepath.Join(t.TempDir(), "result.env")
	for _, c := range []struct {
		name string
		o    Outputs
	}{
		{"dotenv-found.env", Outputs{Found: true, CacheHit: true, CommitHash: commit, CodeHash: codeHash, Prefix: "artifacts/" + commit + "/",
			Files: []File{{Name: "fn1.zip", Key: "artifacts/" + commit + "/fn1.zip", Size: 3, PackageHash: "n4bQ"}}}},
		{"dotenv-not-found.env", Outputs{CommitHash: commit}},
		{"dotenv-components.env", Outputs{CommitHash: commit, Components: []Component{
			{Name: "api", Found: true, CodeHash: codeHash},
			{Name: "fn1", Build: true, CodeHash: codeHash},
		}}},
	} {
		if _, err := WriteDotenv(path, c.o); err != nil {
			t.Fatal(err)
		}
		checkGolden(t, c.name, readFile(t, path))
	}
}

// A value with a line break or another control character is not written to
// either file, and says so; the other outputs still are (found and
// cache-hit are never empty).
func TestUnsafeValuesRefused(t *testing.T) {
	for _, v := range []string{"a\nb", "a\rb", "a\r\n", "\n", "a\x1b[31mb", "a\x00b", "a\x7f", "a\u0085b", "a\u009bb"} {
		r := newRunner(t)
		err := r.reporter().SetOutputs(Outputs{Found: true, CommitHash: commit, CodeHash: v})
		if !errors.Is(err, ErrUnsafeValue) || !strings.Contains(err.Error(), OutputCodeHash) {
			t.Errorf("SetOutputs(code-hash %q): %v, want ErrUnsafeValue naming %s", v, err, OutputCodeHash)
		}
		got := parseOutputs(t, readFile(t, r.output))
		want := map[string]string{OutputFound: "true", OutputCacheHit: "false", OutputCommitHash: commit, OutputComponentsToBuild: "[]", OutputComponents: "{}", OutputPrefix: "", OutputFiles: "{}"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("code-hash %q: outputs %q, want %q", v, got, want)
		}

		path := filepath.Join(t.TempDir(), "result.env")
		_, err = WriteDotenv(path, Outputs{CommitHash: v, CodeHash: codeHash})
		if !errors.Is(err, ErrUnsafeValue) || !strings.Contains(err.Error(), "COMMIT_HASH") {
			t.Errorf("WriteDotenv(commit %q): %v, want ErrUnsafeValue naming COMMIT_HASH", v, err)
		}
		if got, want := readFile(t, path), "FOUND=false\nCACHE_HIT=false\nCODE_HASH="+codeHash+"\nCOMPONENTS_TO_BUILD=[]\nCOMPONENTS={}\nPREFIX=\n"; got != want {
			t.Errorf("commit %q: dotenv file %q, want %q", v, got, want)
		}
	}
}

// The dotenv file (a GitLab job's report, written by a container running as
// root over the runner's build directory) belongs to the directory's owner,
// as do the directories made for it.
func TestDotenvFileOwner(t *testing.T) {
	if os.Geteuid() != 0 || runtime.GOOS == "windows" {
		t.Skip("needs root on a Unix system: only root makes files for another user")
	}
	t.Parallel()
	dir := t.TempDir()
	if err := os.Chown(dir, 1001, 1001); err != nil {
		t.Fatal(err)
	}
	// In directories not made yet: made, and the user's too.
	path := filepath.Join(dir, "out", "reports", "assets.env")
	if _, err := WriteDotenv(path, Outputs{Found: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "out"), filepath.Dir(path), path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if uid := fileUID(fi); uid != 1001 {
			t.Errorf("%s belongs to %d, want the directory's owner 1001", p, uid)
		}
	}
}

// A dotenv file over GitLab's 5 KiB is a warning naming its size, the
// limit and what to do; at the limit or under, nothing. WriteDotenv gives
// the size it wrote.
func TestDotenvSizeWarning(t *testing.T) {
	for _, size := range []int{0, 300, GitLabDotenvLimit - 1, GitLabDotenvLimit} {
		if w := DotenvSizeWarning("assets.env", size); w != "" {
			t.Errorf("%d bytes: warning %q, want none", size, w)
		}
	}
	w := DotenvSizeWarning("assets.env", GitLabDotenvLimit+1)
	for _, want := range []string{"warning: ", "assets.env is 5121 bytes", "limit of 5120 bytes", "leave RESULT_DOTENV_FILE unset", ".components-to-build", ".components.json"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning %q lacks %q", w, want)
		}
	}

	path := filepath.Join(t.TempDir(), "big.env")
	o := Outputs{CommitHash: strings.Repeat("a", 40)}
	for i := range 40 {
		o.Components = append(o.Components, Component{Name: fmt.Sprintf("payments-api-%02d", i), Build: true, CodeHash: strings.Repeat("c", 64),
			Reason: "1 file differs from 94461d2: modified libs/shared.js"})
	}
	size, err := WriteDotenv(path, o)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != int64(size) || size <= GitLabDotenvLimit {
		t.Errorf("WriteDotenv gave %d bytes; the file: %v, %v; want its size, over the limit", size, fi, err)
	}
}
