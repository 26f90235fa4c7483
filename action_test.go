package main

// End-to-end tests of action.yml: the binary runs the way the GitHub runner
// runs a docker action (INPUT_* variables with the defaults filled in, the
// image's ENV, runs.args as argv, the workspace as working directory,
// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files), against real S3 servers.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nsmithuk/s3-asset-manager/internal/cli"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/ghaction"
	"github.com/nsmithuk/s3-asset-manager/internal/gittest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// toolBin is the binary under test, built once by TestMain; testDir is a
// directory for the whole run, removed at its end.
var toolBin, testDir string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	s3test.SetEnv()
	defer s3test.StopAll()
	dir, err := os.MkdirTemp("", "s3am-main-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	defer removeImages()
	testDir = dir
	toolBin = filepath.Join(dir, "s3-asset-manager")
	cmd := exec.Command("go", "build", "-o", toolBin, ".")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the binary under test:", err)
		return 1
	}
	return m.Run()
}

// actionInput is one input of an action.
type actionInput struct {
	Description string  `yaml:"description"`
	Required    bool    `yaml:"required"`
	Default     *string `yaml:"default"`
}

// actionMeta is the part of action.yml the runner reads.
type actionMeta struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Author      string `yaml:"author"`
	Branding    struct {
		Icon  string `yaml:"icon"`
		Color string `yaml:"color"`
	} `yaml:"branding"`
	Inputs  map[string]actionInput `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
	} `yaml:"outputs"`
	Runs struct {
		Using      string            `yaml:"using"`
		Image      string            `yaml:"image"`
		Entrypoint string            `yaml:"entrypoint"`
		Args       []string          `yaml:"args"`
		Env        map[string]string `yaml:"env"`
	} `yaml:"runs"`
}

func loadAction(t *testing.T) actionMeta {
	t.Helper()
	b, err := os.ReadFile("action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var a actionMeta
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true) // a misspelt key is silently ignored by the runner
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	return a
}

func TestActionMetadata(t *testing.T) {
	t.Parallel()
	a := loadAction(t)
	if a.Name == "" || a.Description == "" || a.Branding.Icon == "" || a.Branding.Color == "" {
		t.Errorf("name, description and branding are needed for the Marketplace: %q %q %+v", a.Name, a.Description, a.Branding)
	}

	want := []string{"mode"}
	for _, s := range config.Settings {
		if s.Input == "" {
			t.Errorf("setting %s has no action input", s.Env)
			continue
		}
		want = append(want, s.Input)
	}
	var got []string
	for name := range a.Inputs {
		got = append(got, name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("action.yml inputs\n  %v\nwant mode + config.Settings\n  %v", got, want)
	}
	for _, s := range config.Settings {
		// Users reading the action's docs should learn the variable too.
		if in, ok := a.Inputs[s.Input]; ok && !strings.Contains(in.Description, s.Env) {
			t.Errorf("input %s: description does not name its variable %s", s.Input, s.Env)
		}
	}
	for name, in := range a.Inputs {
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
		def := ""
		if in.Default != nil {
			def = *in.Default
		}
		switch name {
		case "mode":
			if !in.Required || def != "" {
				t.Errorf("input mode: required %t, default %q; want required, no default", in.Required, def)
			}
		default:
			// Empty means unset, so the environment variable can still apply
			// (a default here would be passed as the input, and win over it:
			// git-repo-path's ".", the workspace root, is config's ActionDefault).
			if in.Required || def != "" {
				t.Errorf("input %s: required %t, default %q; want optional with an empty default", name, in.Required, def)
			}
		}
	}

	written := slices.Concat(ghaction.OutputNames, ghaction.PruneOutputNames)
	for name, out := range a.Outputs {
		if !slices.Contains(written, name) {
			t.Errorf("output %s is not one the tool writes (%v)", name, written)
		}
		if out.Description == "" {
			t.Errorf("output %s has no description", name)
		}
	}
	for _, name := range written {
		if _, ok := a.Outputs[name]; !ok {
			t.Errorf("output %s is written but not declared", name)
		}
	}

	if a.Runs.Using != "docker" {
		t.Errorf("runs.using %q, want docker", a.Runs.Using)
	}
	image, ok := strings.CutPrefix(a.Runs.Image, "docker://")
	if !ok || !strings.Contains(image, ":") {
		t.Errorf("runs.image %q, want a prebuilt docker://IMAGE:TAG, not a Dockerfile built on every run", a.Runs.Image)
	}
	if !slices.Equal(a.Runs.Args, []string{"${{ inputs.mode }}"}) {
		t.Errorf("runs.args %q, want [${{ inputs.mode }}]", a.Runs.Args)
	}

	// The image the action pulls is the one the release pushes.
	repo, tag, _ := strings.Cut(image, ":")
	c := loadGoreleaser(t)
	d := c.docker(t, "image")
	if !slices.Contains(d.Images, repo) {
		t.Errorf(".goreleaser.yaml pushes %v, not %s", d.Images, repo)
	}
	// A release of the action's major version moves the tag it pulls.
	if tags := c.tags(t, "image"); !slices.Contains(tags, tag) {
		t.Errorf("action.yml pulls tag %s; a %s release is tagged %q", tag, releaseTag, tags)
	}
}

// newWorkspace makes a workspace with a git repository at its root, as
// actions/checkout leaves it, and returns it with the HEAD commit.
func newWorkspace(t *testing.T) (string, string) {
	t.Helper()
	ws := t.TempDir()
	gittest.Git(t, ws, "-c", "init.defaultBranch=main", "init", "-q")
	if err := os.WriteFile(filepath.Join(ws, "main.c"), []byte("int main(void) { return 0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, ws, "add", "-A")
	gittest.Git(t, ws, "commit", "-q", "-m", "first")
	return ws, gittest.Git(t, ws, "rev-parse", "HEAD")
}

var expr = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// runAction runs the action's container entry point as the runner would,
// with the workspace as working directory, and returns the exit code, the
// step outputs and the job summary. The S3 credentials come from this
// process's AWS_* variables (a step's env: passes them the same way).
func runAction(t *testing.T, workspace string, inputs map[string]string) (exitCode int, outputs map[string]string, summary string) {
	t.Helper()
	r := runActionFull(t, workspace, inputs)
	return r.code, r.outputs, r.summary
}

// actionRun is everything one run of the action left behind.
type actionRun struct {
	code           int
	outputs        map[string]string
	summary        string
	stdout, stderr string
}

// runActionFull is runAction with the container's stdout and stderr.
func runActionFull(t *testing.T, workspace string, inputs map[string]string) actionRun {
	t.Helper()
	return runActionOn(t, runOnHost, workspace, inputs, nil)
}

// runnerDirs are the directories the runner mounts into a docker action's
// container (ContainerActionHandler in actions/runner), as the host sees them.
type runnerDirs struct {
	workspace    string // /github/workspace, the working directory
	home         string // /github/home, HOME
	workflow     string // /github/workflow
	fileCommands string // /github/file_commands: GITHUB_OUTPUT, GITHUB_STEP_SUMMARY
}

// actionHost starts the action's container: args after the entry point,
// env as the runner passes it with docker run -e (host paths).
type actionHost func(t *testing.T, dirs runnerDirs, env map[string]string, args []string) (code int, stdout, stderr string)

// imageEnv is the image's ENV besides PATH (TestImageConfig checks it
// against the built image); runOnHost gives it to the binary.
var imageEnv = map[string]string{"PACKAGE_DIRECTORY": "./packages"}

// runOnHost runs the binary under test in the workspace with the image's
// ENV and the runner's variables: the container without the container.
func runOnHost(t *testing.T, dirs runnerDirs, runnerEnv map[string]string, args []string) (int, string, string) {
	t.Helper()
	env := map[string]string{}
	for k, v := range imageEnv {
		env[k] = v
	}
	for k, v := range runnerEnv { // docker run -e wins over the image's ENV
		env[k] = v
	}
	return runExe(t, toolBin, dirs.workspace, env, args...)
}

// runActionOn runs the action's container entry point as the runner would,
// with the workspace as working directory, on host; stepEnv is the step's
// (or the job's) env: besides this process's AWS_* variables.
func runActionOn(t *testing.T, host actionHost, workspace string, inputs, stepEnv map[string]string) actionRun {
	t.Helper()
	a := loadAction(t)
	if a.Runs.Entrypoint != "" {
		t.Fatalf("runs.entrypoint %q: runAction only knows the image's ENTRYPOINT", a.Runs.Entrypoint)
	}
	values := actionInputs(t, a.Inputs, inputs)
	subst := func(s string) string {
		return expr.ReplaceAllStringFunc(s, func(m string) string {
			name, ok := strings.CutPrefix(expr.FindStringSubmatch(m)[1], "inputs.")
			if !ok {
				t.Fatalf("action.yml: runAction cannot evaluate %s", m)
			}
			if _, ok := a.Inputs[name]; !ok {
				t.Fatalf("action.yml: %s names no input", m)
			}
			return values[name]
		})
	}

	temp := t.TempDir() // the runner's temp directory
	dirs := runnerDirs{
		workspace:    workspace,
		home:         filepath.Join(temp, "_github_home"),
		workflow:     filepath.Join(temp, "_github_workflow"),
		fileCommands: filepath.Join(temp, "_runner_file_commands"),
	}
	for _, d := range []string{dirs.home, dirs.workflow, dirs.fileCommands} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	outFile, sumFile := filepath.Join(dirs.fileCommands, "set_output_1"), filepath.Join(dirs.fileCommands, "step_summary_1")
	for _, f := range []string{outFile, sumFile} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What the runner passes with docker run -e: the step's env (here the
	// AWS_* credentials), its own variables and the inputs.
	runnerEnv := map[string]string{
		"HOME":                dirs.home,
		"CI":                  "true",
		"GITHUB_ACTIONS":      "true",
		"GITHUB_WORKSPACE":    workspace,
		"GITHUB_OUTPUT":       outFile,
		"GITHUB_STEP_SUMMARY": sumFile,
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") {
			k, v, _ := strings.Cut(kv, "=")
			runnerEnv[k] = v
		}
	}
	maps.Copy(runnerEnv, stepEnv)
	for name, v := range values {
		runnerEnv[config.InputEnv(name)] = v
	}
	for k, v := range a.Runs.Env { // runs.env never overrides the step's env
		if _, ok := runnerEnv[k]; !ok {
			runnerEnv[k] = subst(v)
		}
	}
	var args []string
	for _, arg := range a.Runs.Args {
		args = append(args, subst(arg))
	}

	r := actionRun{}
	r.code, r.stdout, r.stderr = host(t, dirs, runnerEnv, args)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("action %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
	})
	outText, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	sumText, err := os.ReadFile(sumFile)
	if err != nil {
		t.Fatal(err)
	}
	r.outputs, r.summary = parseOutputFile(t, string(outText)), string(sumText)
	return r
}

// actionInputs is every input's value as the runner computes it: given,
// else the default; required inputs must be given.
func actionInputs(t *testing.T, declared map[string]actionInput, given map[string]string) map[string]string {
	t.Helper()
	values := map[string]string{}
	for name, in := range declared {
		if in.Default != nil {
			values[name] = *in.Default
		}
	}
	for name, v := range given {
		if _, ok := declared[name]; !ok {
			t.Fatalf("input %q is not in the action", name)
		}
		values[name] = v
	}
	for name, in := range declared {
		if _, ok := given[name]; in.Required && !ok {
			t.Fatalf("required input %q not given", name)
		}
	}
	return values
}

func parseOutputFile(t *testing.T, text string) map[string]string {
	t.Helper()
	out, err := ghaction.ParseOutputFile(text)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParseOutputFile(t *testing.T) {
	got := parseOutputFile(t, "a=1\nb<<EOF\nx=y\nz<<w\nEOF\nc=\nd<<_D_\n_D_\n")
	want := map[string]string{"a": "1", "b": "x=y\nz<<w", "c": "", "d": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// hasAll says whether every one of names is among the outputs.
func hasAll(outputs map[string]string, names []string) bool {
	for _, n := range names {
		if _, ok := outputs[n]; !ok {
			return false
		}
	}
	return true
}

// wantOutputs compares every output; found and cache-hit must be exactly
// true or false, never empty.
func wantOutputs(t *testing.T, step string, got, want map[string]string) {
	t.Helper()
	// Without components, their outputs are still written, empty as JSON.
	want = maps.Clone(want)
	for k, v := range map[string]string{"components-to-build": "[]", "components": "{}"} {
		if _, ok := want[k]; !ok {
			want[k] = v
		}
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: output %s = %q (set: %t), want %q", step, k, g, ok, v)
		}
	}
	for k := range got {
		// A composite action declares every output and so sets each one,
		// empty when the command wrote none; in a workflow's expressions
		// an empty output and an unset one read the same.
		if _, ok := want[k]; !ok && got[k] != "" {
			t.Errorf("%s: unexpected output %s=%q", step, k, got[k])
		}
	}
}

func TestActionCheckUpload(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ws, head := newWorkspace(t)
		actionCheckUpload(t, srv, ws, head, func(t *testing.T, ws string, inputs map[string]string) actionRun {
			return runActionFull(t, ws, inputs)
		})
	})
}

// actionCheckUpload is the main job through an action: check misses, the
// build runs, upload stores, check finds, upload then sends nothing. run
// runs one step of the action (docker on the host, in the image, or the
// native action's steps).
func actionCheckUpload(t *testing.T, srv *s3test.Server, ws, head string, run func(t *testing.T, ws string, inputs map[string]string) actionRun) {
	t.Helper()
	bucket := srv.NewBucket(t)
	with := func(mode string) map[string]string {
		return map[string]string{"mode": mode, "bucket": bucket, "endpoint": srv.Endpoint, "package-directory": "dist"}
	}

	r := run(t, ws, with("check"))
	if r.code != 0 {
		t.Fatalf("first check: exit %d", r.code)
	}
	if !strings.Contains(r.stdout, "::group::") || !strings.Contains(r.stdout, "::endgroup::") {
		t.Errorf("first check: no log group on stdout:\n%s", r.stdout)
	}
	wantOutputs(t, "first check", r.outputs, map[string]string{"found": "false", "cache-hit": "false", "commit-hash": head, "code-hash": "", "prefix": "", "files": "{}"})
	wantSummary(t, "first check", r.summary, head, "Not found")
	if _, err := os.Stat(filepath.Join(ws, "dist", ".found")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("first check left dist/.found: %v", err)
	}

	// The build the check did not skip.
	if err := os.WriteFile(filepath.Join(ws, "dist", "app.tar.gz"), bytes.Repeat([]byte("artifact "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, ws, with("upload"))
	if r.code != 0 {
		t.Fatalf("upload: exit %d", r.code)
	}
	wantOutputs(t, "upload", r.outputs, map[string]string{"found": "false", "cache-hit": "false", "commit-hash": head, "code-hash": "", "prefix": "", "files": "{}"})
	wantSummary(t, "upload", r.summary, head, "app.tar.gz")

	r = run(t, ws, with("check"))
	if r.code != 0 {
		t.Fatalf("second check: exit %d", r.code)
	}
	artifact := bytes.Repeat([]byte("artifact "), 1000)
	files := `{"app.tar.gz":{"key":"artifacts/` + head + `/app.tar.gz","size":9000,"packageHash":"` + packageHash(artifact) + `"}}`
	wantOutputs(t, "second check", r.outputs, map[string]string{"found": "true", "cache-hit": "false", "commit-hash": head, "code-hash": "",
		"prefix": "artifacts/" + head + "/", "files": files})
	wantSummary(t, "second check", r.summary, head, "Found")
	if _, err := os.Stat(filepath.Join(ws, "dist", ".found")); err != nil {
		t.Errorf("second check: dist/.found: %v", err)
	}

	// The upload step after a skipped build sends nothing.
	r = run(t, ws, with("upload"))
	if r.code != 0 {
		t.Fatalf("upload after found: exit %d", r.code)
	}
	if r.outputs["found"] != "true" || r.outputs["cache-hit"] != "false" || !hasAll(r.outputs, ghaction.OutputNames) {
		t.Errorf("upload after found: outputs %q, want all of them with found=true cache-hit=false", r.outputs)
	}
	if !strings.Contains(r.summary, "Nothing uploaded") {
		t.Errorf("upload after found: summary does not say nothing was uploaded:\n%s", r.summary)
	}

	// A deploy job: a fresh workspace with no checkout, the commit by id.
	deploy := t.TempDir()
	r = run(t, deploy, map[string]string{"mode": "download", "bucket": bucket, "endpoint": srv.Endpoint,
		"package-directory": "deploy", "commit": head})
	if r.code != 0 {
		t.Fatalf("download: exit %d", r.code)
	}
	wantOutputs(t, "download", r.outputs, map[string]string{"found": "true", "cache-hit": "false", "commit-hash": head, "code-hash": "",
		"prefix": "artifacts/" + head + "/", "files": files})
	wantSummary(t, "download", r.summary, head, "Downloaded", "app.tar.gz", packageHash(artifact))
	if got, err := os.ReadFile(filepath.Join(deploy, "deploy", "app.tar.gz")); err != nil || !bytes.Equal(got, artifact) {
		t.Errorf("download: app.tar.gz is not what was uploaded (%v)", err)
	}

	// Another commit, not there: exit 6, found=false.
	other := strings.Repeat("0", 40)
	r = run(t, deploy, map[string]string{"mode": "download", "bucket": bucket, "endpoint": srv.Endpoint,
		"package-directory": "deploy", "commit": other})
	if r.code != cli.ExitNotFound {
		t.Errorf("download of a missing set: exit %d, want %d", r.code, cli.ExitNotFound)
	}
	wantOutputs(t, "download not found", r.outputs, map[string]string{"found": "false", "cache-hit": "false", "commit-hash": other, "code-hash": "", "prefix": "", "files": "{}"})
	if !regexp.MustCompile(`(?m)^::error[^:]*::.*not found.*artifacts/` + other).MatchString(r.stdout) {
		t.Errorf("download of a missing set: no error annotation naming what was looked up:\n%s", r.stdout)
	}
}

// A failed step still writes found=false and cache-hit=false, so that
// `if: steps.check.outputs.found != 'true'` runs the build.
func TestActionFailureOutputs(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		ws := t.TempDir() // no repository
		code, out, _ := runAction(t, ws, map[string]string{"mode": "check", "bucket": bucket, "endpoint": srv.Endpoint})
		if code != cli.ExitGit {
			t.Errorf("check without a repository: exit %d, want %d", code, cli.ExitGit)
		}
		if out["found"] != "false" || out["cache-hit"] != "false" {
			t.Errorf("outputs after a failure: %q, want found=false cache-hit=false", out)
		}
	})
}

func TestActionMissingBucket(t *testing.T) {
	t.Parallel()
	ws, _ := newWorkspace(t)
	r := runActionFull(t, ws, map[string]string{"mode": "check"})
	if r.code != cli.ExitUsage {
		t.Errorf("check without a bucket: exit %d, want %d", r.code, cli.ExitUsage)
	}
	if r.outputs["found"] != "false" || r.outputs["cache-hit"] != "false" {
		t.Errorf("outputs after invalid settings: %q, want found=false cache-hit=false", r.outputs)
	}
	if !regexp.MustCompile(`(?m)^::error[^:]*::.*PACKAGE_ASSETS_BUCKET`).MatchString(r.stdout) {
		t.Errorf("no error annotation naming PACKAGE_ASSETS_BUCKET on stdout:\n%s", r.stdout)
	}
	if r.summary != "" {
		t.Errorf("summary written for a run that did nothing:\n%s", r.summary)
	}
}

// A checkout into a directory of the workspace (actions/checkout's path:)
// named by a job's env GIT_REPO_PATH, as every setting can be: the action's
// git-repo-path input, left empty, does not override it (its default, the
// workspace root, is the tool's, not the input's: an input's default is
// passed as the input).
func TestActionRepoPathFromEnv(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		ws, head := workspaceWithRepoIn(t, "src")
		r := runActionOn(t, runOnHost, ws, map[string]string{"mode": "check", "bucket": bucket, "endpoint": srv.Endpoint},
			map[string]string{"GIT_REPO_PATH": "src"})
		if r.code != cli.ExitOK || r.outputs["commit-hash"] != head {
			t.Errorf("exit %d, commit-hash %q; want 0 and the HEAD of src, %s", r.code, r.outputs["commit-hash"], head)
		}
	})
}

// The action at @main or a prerelease runs the :v1 image of the last
// release, whose ENV (before the tool took the workspace root as its own
// action default) said GIT_REPO_PATH=./repo: the action's runs.env still
// gives the workspace root.
func TestActionOlderImageRepoPath(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		ws, head := newWorkspace(t)
		olderImage := func(t *testing.T, dirs runnerDirs, runnerEnv map[string]string, args []string) (int, string, string) {
			env := map[string]string{"GIT_REPO_PATH": "./repo"} // the older image's ENV
			maps.Copy(env, imageEnv)
			maps.Copy(env, runnerEnv) // docker run -e wins over the image's ENV
			return runExe(t, toolBin, dirs.workspace, env, args...)
		}
		r := runActionOn(t, olderImage, ws, map[string]string{"mode": "check", "bucket": bucket, "endpoint": srv.Endpoint}, nil)
		if r.code != cli.ExitOK || r.outputs["commit-hash"] != head {
			t.Errorf("exit %d, commit-hash %q; want 0 and the workspace's HEAD, %s", r.code, r.outputs["commit-hash"], head)
		}
	})
}

// workspaceWithRepoIn is a workspace that is not a repository, with one
// (an empty commit) in its directory dir, and that commit.
func workspaceWithRepoIn(t *testing.T, dir string) (ws, head string) {
	t.Helper()
	ws = t.TempDir()
	repo := filepath.Join(ws, dir)
	if err := os.Mkdir(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, repo, "-c", "init.defaultBranch=main", "init", "-q")
	gittest.Git(t, repo, "commit", "-q", "--allow-empty", "-m", "first")
	return ws, gittest.Git(t, repo, "rev-parse", "HEAD")
}

func wantSummary(t *testing.T, step, summary string, contains ...string) {
	t.Helper()
	if !strings.HasPrefix(summary, "#") {
		t.Errorf("%s: summary is not markdown with a heading:\n%s", step, summary)
	}
	for _, s := range contains {
		if !strings.Contains(summary, s) {
			t.Errorf("%s: summary does not mention %q:\n%s", step, s, summary)
		}
	}
}

// A docs-only commit is served from the code-hash cache: cache-hit=true.
func TestActionCacheHit(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		ws, _ := newWorkspace(t)
		with := func(mode string) map[string]string {
			return map[string]string{"mode": mode, "bucket": bucket, "endpoint": srv.Endpoint,
				"package-directory": "dist", "code-hash-find-filter": "**/*.c\n!dist/**"}
		}
		code, out, _ := runAction(t, ws, with("check"))
		codeHash := out["code-hash"]
		if code != 0 || out["found"] != "false" || len(codeHash) != 64 {
			t.Fatalf("first check: exit %d, outputs %q", code, out)
		}
		if err := os.WriteFile(filepath.Join(ws, "dist", "app.tar.gz"), []byte("built"), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out, _ := runAction(t, ws, with("upload")); code != 0 {
			t.Fatalf("upload: exit %d, outputs %q", code, out)
		}

		if err := os.WriteFile(filepath.Join(ws, "README.md"), []byte("docs only\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		gittest.Git(t, ws, "add", "README.md")
		gittest.Git(t, ws, "commit", "-q", "-m", "docs")
		next := gittest.Git(t, ws, "rev-parse", "HEAD")
		if err := os.RemoveAll(filepath.Join(ws, "dist")); err != nil {
			t.Fatal(err)
		}
		code, out, sum := runAction(t, ws, with("check"))
		if code != 0 {
			t.Fatalf("check after a docs-only commit: exit %d", code)
		}
		files := `{"app.tar.gz":{"key":"artifacts/` + next + `/app.tar.gz","size":5,"packageHash":"` + packageHash([]byte("built")) + `"}}`
		wantOutputs(t, "cache check", out, map[string]string{"found": "true", "cache-hit": "true", "commit-hash": next, "code-hash": codeHash,
			"prefix": "artifacts/" + next + "/", "files": files})
		wantSummary(t, "cache check", sum, next, "cache")
	})
}

// runExe runs exe in dir with exactly env as its environment.
func runExe(t *testing.T, exe, dir string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exeCmd(exe, dir, env, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("run %s: %v", exe, err)
	}
	return 0, stdout.String(), stderr.String()
}

// exeCmd is exe run in dir with env as its whole environment.
func exeCmd(exe, dir string, env map[string]string, args ...string) *exec.Cmd {
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = []string{} // not nil: nil would inherit this process's environment
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// packageHash is a file's package-hash: base64 of its SHA-256.
func packageHash(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}
