package main

// The README's GitLab CI pipelines, run as GitLab Runner's docker executor
// runs a job: the job's image with its entrypoint, the command
// `sh -c <the shell-detection script>` (shells.BashDetectShellScript of
// gitlab-runner), the script its bash writer generates fed on stdin, the
// variables (predefined CI_*, the file's, dotenv reports of the jobs it
// needs, the project's CI/CD variables) in the environment, and the project
// directory mounted at /builds/<group>/<project> as the working directory.
// Jobs without an image run in the runner's default image, here the shell
// image with a `make` that stands in for the build.

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nsmithuk/s3-asset-manager/internal/docscheck"
	"github.com/nsmithuk/s3-asset-manager/internal/gittest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// docBlock is a fenced code block of the README or a docs/ page.
type docBlock struct {
	file, lang, text string
}

// docBlocks returns the code blocks of README.md and docs/*.md, where the
// examples users copy live, as internal/docscheck reads them.
func docBlocks(t *testing.T) []docBlock {
	t.Helper()
	pages, err := docscheck.Pages(".")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []docBlock
	for _, p := range pages {
		for _, b := range p.Blocks() {
			blocks = append(blocks, docBlock{file: b.Page, lang: b.Info, text: b.Text})
		}
	}
	return blocks
}

// gitlabJob is a job of a .gitlab-ci.yml, the keys the README uses.
type gitlabJob struct {
	Name  string `yaml:"-"`
	Image *struct {
		Name       string   `yaml:"name"`
		Entrypoint []string `yaml:"entrypoint"`
	} `yaml:"image"`
	Variables map[string]string `yaml:"variables"`
	Needs     []string          `yaml:"needs"`
	Script    []string          `yaml:"script"`
	Artifacts struct {
		Paths   []string `yaml:"paths"`
		Reports struct {
			Dotenv string `yaml:"dotenv"`
		} `yaml:"reports"`
	} `yaml:"artifacts"`
}

// gitlabPipeline is a .gitlab-ci.yml: global variables and jobs in order.
type gitlabPipeline struct {
	where     string
	Variables map[string]string
	Jobs      []gitlabJob
}

// gitlabPipelines returns the GitLab CI examples of the README and docs/:
// the YAML blocks that are a mapping of jobs, one with a script and an image.
func gitlabPipelines(t *testing.T) []gitlabPipeline {
	t.Helper()
	repo := loadGoreleaser(t).docker(t, "image").Images[0]
	var out []gitlabPipeline
	for _, b := range docBlocks(t) {
		if b.lang != "yaml" || !strings.Contains(b.text, "script:") || !strings.Contains(b.text, repo+":") {
			continue
		}
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(b.text), &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue // a Concourse task list, not a .gitlab-ci.yml
		}
		p := gitlabPipeline{where: b.file}
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, val := m.Content[i].Value, m.Content[i+1]
			if key == "variables" {
				if err := val.Decode(&p.Variables); err != nil {
					t.Fatalf("%s: GitLab example: variables: %v", b.file, err)
				}
				continue
			}
			var job gitlabJob
			if err := val.Decode(&job); err != nil {
				t.Fatalf("%s: GitLab example: job %s: %v", b.file, key, err)
			}
			job.Name = key
			p.Jobs = append(p.Jobs, job)
		}
		if slices.ContainsFunc(p.Jobs, func(j gitlabJob) bool { return j.Image != nil && len(j.Script) > 0 }) {
			out = append(out, p)
		}
	}
	return out
}

// gitlabDetectShell is what GitLab Runner's docker executor gives the job
// container as its command, `sh -c` and this (gitlab-runner
// shells.BashDetectShellScript, "$@" replaced by nothing for a non-login
// shell): the first shell found then reads the job script from stdin.
const gitlabDetectShell = `if [ -x /usr/local/bin/bash ]; then
	exec /usr/local/bin/bash 
elif [ -x /usr/bin/bash ]; then
	exec /usr/bin/bash 
elif [ -x /bin/bash ]; then
	exec /bin/bash 
elif [ -x /usr/local/bin/sh ]; then
	exec /usr/local/bin/sh 
elif [ -x /usr/bin/sh ]; then
	exec /usr/bin/sh 
elif [ -x /bin/sh ]; then
	exec /bin/sh 
elif [ -x /busybox/sh ]; then
	exec /busybox/sh 
else
	echo shell not found
	exit 1
fi

`

// gitlabQuote quotes s as gitlab-runner's helpers.ShellEscape does: as is
// when every byte is plain, else $'...' with escapes.
func gitlabQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:=,+@%", r))
	}) {
		return s
	}
	var b strings.Builder
	b.WriteString("$'")
	for _, c := range []byte(s) {
		switch {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteString("'")
	return b.String()
}

// gitlabScript is the step_script stage as gitlab-runner's bash writer
// generates it (BashWriter.Finish around writeUserScript): every variable
// exported, cd to the project directory, each line echoed then run, all of
// it eval'ed under errexit and pipefail.
func gitlabScript(vars [][2]string, dir string, script []string) string {
	var inner strings.Builder
	for _, kv := range vars {
		fmt.Fprintf(&inner, "export %s=%s\n", gitlabQuote(kv[0]), gitlabQuote(kv[1]))
	}
	fmt.Fprintf(&inner, "cd %s\n", gitlabQuote(dir))
	for _, line := range script {
		line = strings.TrimSpace(line)
		fmt.Fprintf(&inner, "echo %s\n%s\n", gitlabQuote("\x1b[32;1m$ "+line+"\x1b[0;m"), line)
	}
	return "#!/usr/bin/env bash\n\ntrap exit 1 TERM\n\n" +
		"if set -o | grep pipefail > /dev/null; then set -o pipefail; fi; set -o errexit\n" +
		"set +o noclobber\n" +
		": | eval " + gitlabQuote(inner.String()) + "\n" +
		"exit 0\n"
}

// gitlabMake stands in for the build the examples run with make (GitLab's
// and Concourse's): it writes <OUT>/<name>.zip, OUT taken after -C as make
// does, the name from -C's last element, else app.
const gitlabMake = `#!/usr/local/bin/sh
set -e
name=app out=
while [ $# -gt 0 ]; do
	case "$1" in
	-C) cd "$2"; name=$(basename "$2"); shift ;;
	OUT=*) out=${1#OUT=} ;;
	esac
	shift
done
mkdir -p "$out"
echo "built $name" > "$out/$name.zip"
`

// gitlabProject is one project's pipeline run: its directory (the clone,
// kept between jobs as their artifacts would be), the project's CI/CD
// variables and the dotenv reports of the jobs run so far.
type gitlabProject struct {
	dir, head string
	project   map[string]string // Settings > CI/CD > Variables
	dotenv    map[string]map[string]string
	make      string // the make stand-in, on the host
}

const gitlabBuildDir = "/builds/group/project"

// run runs one job as the docker executor does and returns its exit code
// and log.
func (p *gitlabProject) run(t *testing.T, pl gitlabPipeline, job gitlabJob) (int, string) {
	t.Helper()
	c := loadGoreleaser(t)
	vars := map[string]string{
		"CI": "true", "GITLAB_CI": "true", "CI_SERVER": "yes",
		"CI_BUILDS_DIR": "/builds", "CI_PROJECT_DIR": gitlabBuildDir,
		"CI_PROJECT_PATH": "group/project", "CI_PROJECT_NAME": "project",
		"CI_COMMIT_SHA": p.head, "CI_COMMIT_REF_NAME": "main", "CI_COMMIT_BRANCH": "main",
		"CI_JOB_NAME": job.Name, "CI_JOB_ID": "1001", "CI_PIPELINE_ID": "42",
		"CI_SERVER_URL": "https://gitlab.example.com",
	}
	// Precedence, lowest first: predefined, the file's global variables,
	// the job's, dotenv reports of the jobs it needs, the project's.
	for _, layer := range []map[string]string{pl.Variables, job.Variables} {
		for k, v := range layer {
			vars[k] = os.Expand(v, func(name string) string { return vars[name] })
		}
	}
	for _, need := range job.Needs {
		for k, v := range p.dotenv[need] {
			vars[k] = v
		}
	}
	for k, v := range p.project {
		vars[k] = v
	}
	var exported [][2]string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		exported = append(exported, [2]string{k, vars[k]})
	}

	ctr := container{
		mounts:  map[string]string{p.dir: gitlabBuildDir},
		workdir: gitlabBuildDir,
		env:     vars,
		args:    []string{"sh", "-c", gitlabDetectShell},
		stdin:   gitlabScript(exported, gitlabBuildDir, job.Script),
	}
	if job.Image == nil {
		// The runner's default image (a build image such as alpine, no
		// entry point): here the shell image with make.
		none := ""
		ctr.image, ctr.entrypoint = testShellImage(t), &none
		ctr.mounts[p.make] = "/usr/local/bin/make"
	} else {
		repo, tag, _ := strings.Cut(job.Image.Name, ":")
		if !slices.Contains(c.docker(t, "image").Images, repo) {
			t.Fatalf("%s: job %s: image %s is not this project's", pl.where, job.Name, job.Image.Name)
		}
		switch {
		case slices.Contains(c.tags(t, "shell"), tag):
			ctr.image = testShellImage(t)
		case slices.Contains(c.tags(t, "image"), tag):
			ctr.image = testImage(t)
		default:
			t.Fatalf("%s: job %s: tag %s is neither an image tag %q nor a shell tag %q of a release",
				pl.where, job.Name, tag, c.tags(t, "image"), c.tags(t, "shell"))
		}
		if job.Image.Entrypoint != nil {
			ep := strings.Join(job.Image.Entrypoint, " ")
			ctr.entrypoint = &ep
		}
	}
	code, stdout, stderr := ctr.run(t)
	log := stdout + stderr
	if code == 0 && job.Artifacts.Reports.Dotenv != "" {
		b, err := os.ReadFile(filepath.Join(p.dir, job.Artifacts.Reports.Dotenv))
		if err != nil {
			t.Fatalf("job %s: dotenv report: %v", job.Name, err)
		}
		env := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		p.dotenv[job.Name] = env
	}
	return code, log
}

// newGitLabProject makes the project's clone: lambdas with two components,
// shared sources, and returns it pointed at bucket on srv.
func newGitLabProject(t *testing.T, srv *s3test.Server, bucket string) *gitlabProject {
	t.Helper()
	dir := t.TempDir()
	gittest.Init(t, dir, map[string]string{
		"lambdas/fn1/index.js": "exports.handler = () => 1;\n",
		"lambdas/fn2/index.js": "exports.handler = () => 2;\n",
		"libs/common.js":       "module.exports = {};\n",
		"package-lock.json":    "{}\n",
		"Makefile":             "package:\n",
	})
	mk := filepath.Join(t.TempDir(), "make")
	if err := os.WriteFile(mk, []byte(gitlabMake), 0o755); err != nil {
		t.Fatal(err)
	}
	project := awsEnv()
	for k, v := range srv.Env(bucket) { // overrides the README's my-artifacts
		project[k] = v
	}
	return &gitlabProject{
		dir:     dir,
		head:    gittest.Git(t, dir, "rev-parse", "HEAD"),
		project: project,
		dotenv:  map[string]map[string]string{},
		make:    mk,
	}
}

// runPipeline runs every job of pl in order (the README's order follows
// needs) and fails the test on the first that fails.
func (p *gitlabProject) runPipeline(t *testing.T, pl gitlabPipeline) {
	t.Helper()
	for _, job := range pl.Jobs {
		code, log := p.run(t, pl, job)
		if code != 0 {
			t.Fatalf("%s: job %s: exit %d\n%s", pl.where, job.Name, code, log)
		}
	}
}

// Every GitLab CI example of the README and docs/: the whole set (check,
// build, upload, and deploy with download where shown), components (check, a
// build per component to build, upload), each followed by a second check
// that finds everything, and the prune schedule.
func TestGitLabExamples(t *testing.T) {
	pipelines := gitlabPipelines(t)
	kinds := map[string]int{}
	srv := s3test.Get(t, "minio")
	for i, pl := range pipelines {
		kind := "whole set"
		switch {
		case pl.Variables["PACKAGE_COMPONENTS"] != "":
			kind = "components"
		case slices.ContainsFunc(pl.Jobs, func(j gitlabJob) bool { return slices.Equal(j.Script, []string{"prune"}) }):
			kind = "prune"
		}
		kinds[kind]++
		t.Run(fmt.Sprintf("%d %s %s", i, pl.where, kind), func(t *testing.T) {
			t.Parallel()
			bucket := srv.NewBucket(t)
			p := newGitLabProject(t, srv, bucket)
			p.runPipeline(t, pl)
			switch kind {
			case "whole set":
				if p.dotenv["check"]["FOUND"] != "false" {
					t.Errorf("first check: dotenv FOUND=%q, want false", p.dotenv["check"]["FOUND"])
				}
				if _, body := srv.Get(t, bucket, "artifacts/"+p.head+"/app.zip"); string(body) != "built app\n" {
					t.Errorf("stored app.zip %q, want what the build wrote", body)
				}
				if slices.ContainsFunc(pl.Jobs, func(j gitlabJob) bool { return j.Name == "deploy" }) {
					if got, err := os.ReadFile(filepath.Join(p.dir, "dist", "app.zip")); err != nil || string(got) != "built app\n" {
						t.Errorf("deploy: dist/app.zip %q (%v), want the stored set", got, err)
					}
				}
			case "components":
				if got := p.dotenv["check"]["COMPONENTS_TO_BUILD"]; got != `["fn1","fn2"]` {
					t.Errorf("first check: COMPONENTS_TO_BUILD=%s, want both", got)
				}
				for _, c := range []string{"fn1", "fn2"} {
					if _, body := srv.Get(t, bucket, "artifacts/"+p.head+"/"+c+"/"+c+".zip"); string(body) != "built "+c+"\n" {
						t.Errorf("stored %s/%s.zip %q, want what the build wrote", c, c, body)
					}
				}
			case "prune":
				return
			}
			// The next pipeline of the same commit finds everything.
			if code, log := p.run(t, pl, jobNamed(t, pl, "check")); code != 0 || p.dotenv["check"]["FOUND"] != "true" {
				t.Errorf("second check: exit %d, FOUND=%q, want 0 and true\n%s", code, p.dotenv["check"]["FOUND"], log)
			}
		})
	}
	if kinds["whole set"] == 0 || kinds["components"] == 0 {
		t.Errorf("GitLab CI examples found in README.md and docs/: %v; want the whole set's and the components'", kinds)
	}
}

// jobNamed returns the pipeline's job of that name.
func jobNamed(t *testing.T, p gitlabPipeline, name string) gitlabJob {
	t.Helper()
	i := slices.IndexFunc(p.Jobs, func(j gitlabJob) bool { return j.Name == name })
	if i < 0 {
		t.Fatalf("%s: no job %s", p.where, name)
	}
	return p.Jobs[i]
}
