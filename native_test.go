package main

// The native action (native/action.yml): a composite action that fetches the
// release binary for the runner, verifies it, caches it in the tool cache and
// runs it with the docker action's inputs and outputs. Its inputs and outputs
// are generated from action.yml (which TestActionMetadata holds to
// config.Settings), so a new setting or output is one edit and
//
//	go test -run TestNativeActionGenerated -update .
//
// Its steps run here as the runner runs composite steps (bash with the
// runner's flags, the step's env, a GITHUB_OUTPUT file per step) against a
// local release served on loopback.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

var update = flag.Bool("update", false, "rewrite native/action.yml from action.yml")

const nativeAction = "native/action.yml"

// nativeActionYAML generates native/action.yml from action.yml: the same
// inputs (in the same order, with the same descriptions and defaults) plus
// version, the same outputs, and steps that pass every input to the binary
// as INPUT_* variables, as the runner does for a docker action.
func nativeActionYAML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Inputs  yaml.Node `yaml:"inputs"`
		Outputs yaml.Node `yaml:"outputs"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	a := loadAction(t)
	q := strconv.Quote
	var w strings.Builder
	w.WriteString(`# GENERATED from ../action.yml by native_test.go: edit that file (inputs,
# outputs) or nativeActionYAML, then run
#   go test -run TestNativeActionGenerated -update .
name: S3 Asset Manager (native)
description: Skip builds whose artifacts are already in S3, on any runner (Linux, macOS, Windows; no Docker). Runs the release binary; same inputs and outputs as nsmithuk/s3-asset-manager.
author: nsmithuk
branding:
  icon: archive
  color: orange

inputs:
`)
	var names []string
	for i := 0; i+1 < len(doc.Inputs.Content); i += 2 {
		name := doc.Inputs.Content[i].Value
		in := a.Inputs[name]
		names = append(names, name)
		fmt.Fprintf(&w, "  %s:\n    description: %s\n    required: %t\n", name, q(in.Description), in.Required)
		if in.Default != nil {
			fmt.Fprintf(&w, "    default: %s\n", q(*in.Default))
		}
	}
	w.WriteString(`  version:
    description: "Release of s3-asset-manager to run: vX.Y.Z, or vX / vX.Y for the newest release of that line. Fetched from the GitHub release, verified against its checksums.txt, kept in the runner's tool cache."
    required: false
    default: "v1"

outputs:
`)
	for i := 0; i+1 < len(doc.Outputs.Content); i += 2 {
		name := doc.Outputs.Content[i].Value
		fmt.Fprintf(&w, "  %s:\n    description: %s\n    value: ${{ steps.run.outputs.%s }}\n", name, q(a.Outputs[name].Description), name)
	}
	w.WriteString(`
runs:
  using: composite
  steps:
    - id: install
      shell: bash
      env:
        S3AM_VERSION: ${{ inputs.version }}
        S3AM_TOKEN: ${{ github.token }}
      run: bash "$GITHUB_ACTION_PATH/install.sh"
    # Every input as the docker action's container gets it (INPUT_<NAME>);
    # the tool reads them itself, so an empty input leaves the environment
    # variable of the same setting in force.
    - id: run
      shell: bash
      env:
        S3AM_BIN: ${{ steps.install.outputs.path }}
        # The workspace root unless the job or a step names another: a
        # pinned release older than the tool's own action default for it
        # would take ./repo.
        GIT_REPO_PATH: ${{ env.GIT_REPO_PATH || '.' }}
`)
	var args []string
	for i, arg := range a.Runs.Args {
		fmt.Fprintf(&w, "        S3AM_ARG_%d: %s\n", i+1, q(arg))
		args = append(args, fmt.Sprintf(`"$S3AM_ARG_%d"`, i+1))
	}
	for _, name := range names {
		fmt.Fprintf(&w, "        %s: ${{ inputs.%s }}\n", config.InputEnv(name), name)
	}
	w.WriteString("      # exec: a cancelled job's runner signals this step's bash, which\n" +
		"      # would not pass the signal on to the tool it waits for.\n")
	fmt.Fprintf(&w, "      run: 'exec \"$S3AM_BIN\" %s'\n", strings.Join(args, " "))
	return w.String()
}

func TestNativeActionGenerated(t *testing.T) {
	t.Parallel()
	want := nativeActionYAML(t)
	if *update {
		if err := os.WriteFile(nativeAction, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(nativeAction)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is not what action.yml generates; run\n  go test -run TestNativeActionGenerated -update .", nativeAction)
	}
}

// compositeAction is the part of native/action.yml the runner reads.
type compositeAction struct {
	Inputs  map[string]actionInput `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []struct {
			ID    string            `yaml:"id"`
			Shell string            `yaml:"shell"`
			Env   map[string]string `yaml:"env"`
			Run   string            `yaml:"run"`
		} `yaml:"steps"`
	} `yaml:"runs"`
}

func loadNativeAction(t *testing.T) compositeAction {
	t.Helper()
	b, err := os.ReadFile(nativeAction)
	if err != nil {
		t.Fatal(err)
	}
	var c compositeAction
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", nativeAction, err)
	}
	return c
}

// The native action's inputs and outputs are the docker action's.
func TestNativeActionMetadata(t *testing.T) {
	t.Parallel()
	c := loadNativeAction(t)
	a := loadAction(t)
	for name, in := range a.Inputs {
		got, ok := c.Inputs[name]
		if !ok || got.Description != in.Description || got.Required != in.Required || (got.Default == nil) != (in.Default == nil) ||
			(in.Default != nil && *got.Default != *in.Default) {
			t.Errorf("input %s differs from action.yml", name)
		}
	}
	for name := range c.Inputs {
		if _, ok := a.Inputs[name]; !ok && name != "version" {
			t.Errorf("input %s is not in action.yml", name)
		}
	}
	if len(c.Outputs) != len(a.Outputs) {
		t.Errorf("outputs %d, action.yml %d", len(c.Outputs), len(a.Outputs))
	}
	for name := range a.Outputs {
		if c.Outputs[name].Value != "${{ steps.run.outputs."+name+" }}" {
			t.Errorf("output %s: value %q", name, c.Outputs[name].Value)
		}
	}
	if c.Runs.Using != "composite" {
		t.Errorf("runs.using %q, want composite", c.Runs.Using)
	}
}

// release is a local GitHub: the release list and the release files of
// releaseTag, counting downloads of each file.
type release struct {
	url       string
	dir       string // <dir>/<tag>/<file>
	binary    string // the binary's release name
	mu        sync.Mutex
	downloads map[string]int
	auth      []string // Authorization headers of list requests
}

func newRelease(t *testing.T, tags ...string) *release {
	t.Helper()
	r := &release{dir: t.TempDir(), downloads: map[string]int{}}
	if err := os.Mkdir(filepath.Join(r.dir, releaseTag), 0o755); err != nil {
		t.Fatal(err)
	}
	r.binary = releaseAssets(t, filepath.Join(r.dir, releaseTag))
	var list []map[string]any
	for _, tag := range tags {
		list = append(list, map[string]any{"tag_name": tag, "draft": false, "prerelease": strings.Contains(tag, "-")})
	}
	listJSON, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	files := http.FileServer(http.Dir(r.dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.URL.Path == "/releases" {
			r.auth = append(r.auth, req.Header.Get("Authorization"))
			w.Header().Set("Content-Type", "application/json")
			w.Write(listJSON)
			return
		}
		if rest, ok := strings.CutPrefix(req.URL.Path, "/download/"); ok {
			r.downloads[rest]++
			req.URL.Path = "/" + rest
			files.ServeHTTP(w, req)
			return
		}
		http.NotFound(w, req)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *release) count(file string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.downloads[releaseTag+"/"+file]
}

// nativeRunner is a runner's machine: its tool cache and temp directory
// outlive a step, as on a self-hosted runner.
type nativeRunner struct {
	rel       *release
	toolCache string
	temp      string
	env       map[string]string // the job's env
	// runStep, when set, runs the run step's bash command (the tool's
	// step) in place of running it to its end: a test cancels it.
	runStep func(t *testing.T, cmd *exec.Cmd) int
}

func newNativeRunner(t *testing.T, rel *release) *nativeRunner {
	t.Helper()
	return &nativeRunner{
		rel:       rel,
		toolCache: t.TempDir(),
		temp:      t.TempDir(),
		env: map[string]string{
			"S3AM_RELEASES_URL": rel.url + "/releases",
			"S3AM_DOWNLOAD_URL": rel.url + "/download",
		},
	}
}

// runnerArch is RUNNER_ARCH for this machine.
func runnerArch() string {
	return map[string]string{"amd64": "X64", "arm64": "ARM64"}[runtime.GOARCH]
}

// run runs the native action's steps as the runner runs a composite
// action's: each `run` in a file through `bash --noprofile --norc -eo
// pipefail` (the runner's command for shell: bash), in the workspace, with
// the runner's variables, the job's env and the step's env, expressions
// evaluated; a GITHUB_OUTPUT file per step gives steps.<id>.outputs; the
// action's outputs are evaluated last.
var envOr = regexp.MustCompile(`^env\.([A-Za-z_][A-Za-z0-9_]*)\s*\|\|\s*'([^']*)'$`)

func (n *nativeRunner) run(t *testing.T, ws string, inputs map[string]string) actionRun {
	t.Helper()
	c := loadNativeAction(t)
	values := actionInputs(t, c.Inputs, inputs)
	actionPath, err := filepath.Abs("native")
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]map[string]string{}
	eval := func(s string) string {
		return expr.ReplaceAllStringFunc(s, func(m string) string {
			e := expr.FindStringSubmatch(m)[1]
			if name, ok := strings.CutPrefix(e, "inputs."); ok {
				if _, ok := c.Inputs[name]; !ok {
					t.Fatalf("%s: %s names no input", nativeAction, m)
				}
				return values[name]
			}
			if e == "github.token" {
				return "ghs_test-token"
			}
			// env.NAME || 'default': the job's env (n.env), else the literal.
			if m := envOr.FindStringSubmatch(e); m != nil {
				if v := n.env[m[1]]; v != "" {
					return v
				}
				return m[2]
			}
			if rest, ok := strings.CutPrefix(e, "steps."); ok {
				id, out, ok := strings.Cut(rest, ".outputs.")
				if !ok {
					t.Fatalf("%s: cannot evaluate %s", nativeAction, m)
				}
				return steps[id][out]
			}
			t.Fatalf("%s: cannot evaluate %s", nativeAction, m)
			return ""
		})
	}
	r := actionRun{}
	files := t.TempDir()
	var summary strings.Builder
	var stdout, stderr strings.Builder
	for i, step := range c.Runs.Steps {
		if step.Shell != "bash" {
			t.Fatalf("step %d: shell %q: bash is the shell every runner has", i, step.Shell)
		}
		script := filepath.Join(files, fmt.Sprintf("step%d.sh", i))
		outFile := filepath.Join(files, fmt.Sprintf("set_output_%d", i))
		sumFile := filepath.Join(files, fmt.Sprintf("step_summary_%d", i))
		for _, f := range []string{outFile, sumFile} {
			if err := os.WriteFile(f, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(script, []byte(eval(step.Run)), 0o644); err != nil {
			t.Fatal(err)
		}
		env := map[string]string{
			"PATH":                os.Getenv("PATH"),
			"HOME":                os.Getenv("HOME"),
			"CI":                  "true",
			"GITHUB_ACTIONS":      "true",
			"GITHUB_WORKSPACE":    ws,
			"GITHUB_ACTION_PATH":  actionPath,
			"GITHUB_OUTPUT":       outFile,
			"GITHUB_STEP_SUMMARY": sumFile,
			"RUNNER_OS":           "Linux",
			"RUNNER_ARCH":         runnerArch(),
			"RUNNER_TEMP":         n.temp,
			"RUNNER_TOOL_CACHE":   n.toolCache,
		}
		for k, v := range awsEnv() {
			env[k] = v
		}
		for k, v := range n.env {
			env[k] = v
		}
		for k, v := range step.Env {
			env[k] = eval(v)
		}
		args := []string{"--noprofile", "--norc", "-eo", "pipefail", script}
		var code int
		var out, errOut string
		if step.ID == "run" && n.runStep != nil {
			cmd := exeCmd("bash", ws, env, args...)
			var so, se bytes.Buffer
			cmd.Stdout, cmd.Stderr = &so, &se
			code = n.runStep(t, cmd)
			out, errOut = so.String(), se.String()
		} else {
			code, out, errOut = runExe(t, "bash", ws, env, args...)
		}
		stdout.WriteString(out)
		stderr.WriteString(errOut)
		text, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		steps[step.ID] = parseOutputFile(t, string(text))
		sum, err := os.ReadFile(sumFile)
		if err != nil {
			t.Fatal(err)
		}
		summary.Write(sum)
		if code != 0 {
			r.code = code
			break // a failed step ends the composite action
		}
	}
	r.stdout, r.stderr, r.summary = stdout.String(), stderr.String(), summary.String()
	r.outputs = map[string]string{}
	for name, o := range c.Outputs {
		r.outputs[name] = eval(o.Value)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("native action: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})
	return r
}

// The main job through the native action: the same scenario as the docker
// action's, the binary downloaded once, verified, then taken from the tool
// cache; `v1` resolves to the newest v1 release.
func TestNativeActionCheckUpload(t *testing.T) {
	t.Parallel()
	rel := newRelease(t, "v2.0.0", "v1.11.0-rc.1", releaseTag, "v1.9.3", "v1.2.0", "v0.9.0")
	n := newNativeRunner(t, rel)
	srv := s3test.Get(t, "minio")
	ws, head := newWorkspace(t)
	actionCheckUpload(t, srv, ws, head, n.run)
	if got := rel.count(rel.binary); got != 1 {
		t.Errorf("the binary was downloaded %d times in four steps, want once (then the tool cache)", got)
	}
	for _, a := range rel.auth {
		if a != "" {
			t.Errorf("the job's token was sent to a release list that is not GitHub's: %q", a)
		}
	}
	bin := filepath.Join(n.toolCache, "s3-asset-manager", strings.TrimPrefix(releaseTag, "v"), strings.ToLower(runnerArch()), "s3-asset-manager")
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || string(out) != "s3-asset-manager "+releaseTag+"\n" {
		t.Errorf("cached binary --version: %q, %v; want %s", out, err, releaseTag)
	}
}

// A job's GIT_REPO_PATH reaches the tool through the composite step, which
// otherwise gives the workspace root (for pinned releases older than the
// tool's own action default): a checkout into a directory of the workspace.
func TestNativeActionRepoPathFromEnv(t *testing.T) {
	t.Parallel()
	rel := newRelease(t, releaseTag)
	n := newNativeRunner(t, rel)
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	ws, head := workspaceWithRepoIn(t, "src")
	n.env["GIT_REPO_PATH"] = "src"
	r := n.run(t, ws, map[string]string{"mode": "check", "bucket": bucket, "endpoint": srv.Endpoint})
	if r.code != 0 || r.outputs["commit-hash"] != head {
		t.Errorf("exit %d, commit-hash %q; want 0 and the HEAD of src, %s", r.code, r.outputs["commit-hash"], head)
	}
}

// The version input: an exact tag, a line (newest of it, prereleases and
// other majors skipped), and what cannot be served.
func TestNativeActionVersion(t *testing.T) {
	t.Parallel()
	rel := newRelease(t, "v1.10.1-rc.1", releaseTag, "v1.9.10", "v1.1.0", "v2.0.0")
	ws, _ := newWorkspace(t)
	for _, tt := range []struct {
		version string
		ok      bool
		message string
	}{
		{releaseTag, true, ""},
		{"v1", true, ""},
		{"v1.10", true, ""},
		{"v1.9", false, "v1.9.10"}, // resolved, but this release serves only releaseTag
		{"v3", false, "no release of s3-asset-manager matches version 'v3'"},
		{"latest", false, "version 'latest': want vX.Y.Z"},
	} {
		t.Run(tt.version, func(t *testing.T) {
			n := newNativeRunner(t, rel)
			r := n.run(t, ws, map[string]string{"mode": "check", "version": tt.version})
			// A check without a bucket: the binary ran and refused (exit 2).
			ran := strings.Contains(r.stdout, "PACKAGE_ASSETS_BUCKET")
			if ran != tt.ok {
				t.Errorf("version %s: the binary ran %t, want %t (exit %d)", tt.version, ran, tt.ok, r.code)
			}
			if !tt.ok && (r.code == 0 || !strings.Contains(r.stdout, "::error") || !strings.Contains(r.stdout, tt.message)) {
				t.Errorf("version %s: exit %d, want a failure with an error annotation naming %q", tt.version, r.code, tt.message)
			}
		})
	}
}

// An empty release list is a clear error, not a silent exit.
func TestNativeActionNoReleases(t *testing.T) {
	t.Parallel()
	n := newNativeRunner(t, newRelease(t))
	ws, _ := newWorkspace(t)
	r := n.run(t, ws, map[string]string{"mode": "check"})
	if r.code == 0 || !strings.Contains(r.stdout, "::error title=s3-asset-manager::no release of s3-asset-manager matches version 'v1'") {
		t.Errorf("no releases: exit %d, want a failure with an error annotation", r.code)
	}
}

// A binary that does not match the checksums file is not run and not cached.
func TestNativeActionChecksum(t *testing.T) {
	t.Parallel()
	rel := newRelease(t, releaseTag)
	path := filepath.Join(rel.dir, releaseTag, rel.binary)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, 0) // what a compromised mirror or a damaged download serves
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	n := newNativeRunner(t, rel)
	ws, _ := newWorkspace(t)
	r := n.run(t, ws, map[string]string{"mode": "check", "version": releaseTag})
	if r.code == 0 || !strings.Contains(r.stdout, "does not match the release's checksums.txt") {
		t.Errorf("tampered binary: exit %d, want a failure naming the checksum", r.code)
	}
	if strings.Contains(r.stdout, "PACKAGE_ASSETS_BUCKET") {
		t.Error("the tampered binary ran")
	}
	cached, _ := filepath.Glob(filepath.Join(n.toolCache, "s3-asset-manager", "*", "*"))
	if len(cached) > 0 {
		t.Errorf("tool cache holds %v after a failed verification", cached)
	}
	if bytes.Contains([]byte(r.stdout+r.stderr), []byte("ghs_test-token")) {
		t.Error("the token was printed")
	}
}
