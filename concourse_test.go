package main

// The Concourse examples of the README and docs/ run as Concourse runs a
// task: the task's image with the image's ENV and the params as
// environment, `run.path` executed with `run.args` (the entry point
// bypassed), in the task's build directory holding each input and output
// under its name; an output is the next task's input of that name. Tasks in
// another image (your/build-image) run in the shell image with a make that
// stands in for the build.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// concourseTask is a task step of a Concourse pipeline, the keys the
// examples use.
type concourseTask struct {
	Task   string            `yaml:"task"`
	Params map[string]string `yaml:"params"`
	Config *struct {
		ImageResource struct {
			Source struct {
				Repository string `yaml:"repository"`
				Tag        string `yaml:"tag"`
			} `yaml:"source"`
		} `yaml:"image_resource"`
		Inputs  []struct{ Name string } `yaml:"inputs"`
		Outputs []struct{ Name string } `yaml:"outputs"`
		Run     struct {
			Path string   `yaml:"path"`
			Args []string `yaml:"args"`
		} `yaml:"run"`
	} `yaml:"config"`
}

type concoursePipeline struct {
	where string
	tasks []concourseTask
}

// concourseBucket is the placeholder bucket of the examples.
const concourseBucket = "bucket-name"

// concoursePipelines returns the Concourse examples: YAML blocks that are a
// list of task steps. The credentials the examples merge from a pipeline's
// own anchor (<<: *aws_creds) are defined empty here; the test passes them
// as the task's params would.
func concoursePipelines(t *testing.T) []concoursePipeline {
	t.Helper()
	var out []concoursePipeline
	for _, b := range docBlocks(t) {
		if b.lang != "yaml" || !strings.HasPrefix(b.text, "- task:") {
			continue
		}
		doc := "creds: &aws_creds {}\ntasks:\n" + indent(b.text, "  ")
		var p struct {
			Tasks []concourseTask `yaml:"tasks"`
		}
		if err := yaml.Unmarshal([]byte(doc), &p); err != nil {
			t.Fatalf("%s: Concourse example: %v\n%s", b.file, err, b.text)
		}
		out = append(out, concoursePipeline{where: b.file, tasks: p.Tasks})
	}
	return out
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

// concourseBuild is one build's volumes: each input and output by name.
type concourseBuild struct {
	dir  string // <dir>/<name> holds the artifact <name>
	env  map[string]string
	make string
}

const concourseWorkDir = "/tmp/build/e55deab7"

// run runs one task and returns its exit code and output.
func (b *concourseBuild) run(t *testing.T, where string, task concourseTask) (int, string) {
	t.Helper()
	c := loadGoreleaser(t)
	cfg := task.Config
	ctr := container{
		mounts:  map[string]string{},
		workdir: concourseWorkDir,
		env:     map[string]string{},
		args:    cfg.Run.Args,
	}
	for k, v := range b.env { // the credentials, as *aws_creds holds them
		ctr.env[k] = v
	}
	for k, v := range task.Params {
		if v == concourseBucket {
			v = b.env["PACKAGE_ASSETS_BUCKET"]
		}
		ctr.env[k] = v
	}
	for _, v := range append(cfg.Inputs, cfg.Outputs...) {
		host := filepath.Join(b.dir, v.Name)
		if err := os.MkdirAll(host, 0o755); err != nil {
			t.Fatal(err)
		}
		ctr.mounts[host] = concourseWorkDir + "/" + v.Name
	}
	path := cfg.Run.Path
	ctr.entrypoint = &path // Concourse runs the path, not the entry point
	src := cfg.ImageResource.Source
	switch {
	case !slices.Contains(c.docker(t, "image").Images, src.Repository):
		// Another image (the build's): the shell image with make.
		ctr.image = testShellImage(t)
		ctr.mounts[b.make] = "/usr/local/bin/make"
	case slices.Contains(c.tags(t, "image"), src.Tag):
		ctr.image = testImage(t)
	case slices.Contains(c.tags(t, "shell"), src.Tag):
		ctr.image = testShellImage(t)
	default:
		t.Fatalf("%s: task %s: tag %q is not a tag a release pushes", where, task.Task, src.Tag)
	}
	code, stdout, stderr := ctr.run(t)
	return code, stdout + stderr
}

// Every Concourse example: the whole pipeline (check, build, upload), the
// components loop, and the README's check; then check again, which finds
// what was uploaded.
func TestConcourseExamples(t *testing.T) {
	pipelines := concoursePipelines(t)
	if len(pipelines) < 2 {
		t.Fatalf("%d Concourse examples in README.md and docs/, want the pipeline and the components loop at least", len(pipelines))
	}
	// A step without config ("as before") is the task of that name shown
	// with one.
	configured := map[string]concourseTask{}
	for _, p := range pipelines {
		for _, task := range p.tasks {
			if task.Config != nil {
				configured[task.Task] = task
			}
		}
	}
	srv := s3test.Get(t, "minio")
	for i, p := range pipelines {
		t.Run(fmt.Sprintf("%d %s", i, p.where), func(t *testing.T) {
			t.Parallel()
			bucket := srv.NewBucket(t)
			b := &concourseBuild{dir: t.TempDir(), env: awsEnv(), make: filepath.Join(t.TempDir(), "make")}
			for k, v := range srv.Env(bucket) {
				b.env[k] = v
			}
			if err := os.WriteFile(b.make, []byte(gitlabMake), 0o755); err != nil {
				t.Fatal(err)
			}
			repo, head := actRepo(t) // lambdas/fn1, lambdas/fn2, libs/, ...
			if err := os.Rename(repo, filepath.Join(b.dir, "repo")); err != nil {
				t.Fatal(err)
			}
			components := false
			for _, task := range p.tasks {
				if task.Config == nil {
					c, ok := configured[task.Task]
					if !ok {
						t.Fatalf("%s: task %s has no config anywhere", p.where, task.Task)
					}
					task = c
				}
				if task.Params["PACKAGE_COMPONENTS"] != "" {
					components = true
				}
				code, log := b.run(t, p.where, task)
				if code != 0 {
					t.Fatalf("%s: task %s: exit %d\n%s", p.where, task.Task, code, log)
				}
			}
			if len(p.tasks) > 1 {
				want := map[string]string{"repo.zip": "built repo\n"}
				if components {
					want = map[string]string{"fn1/fn1.zip": "built fn1\n", "fn2/fn2.zip": "built fn2\n"}
				}
				for key, body := range want {
					if _, got := srv.Get(t, bucket, "artifacts/"+head+"/"+key); string(got) != body {
						t.Errorf("stored %s %q, want %q", key, got, body)
					}
				}
			}
			// The next build of the same commit: check finds it (or, after
			// the README's check alone, misses again).
			check := p.tasks[0]
			if code, log := b.run(t, p.where, check); code != 0 {
				t.Fatalf("second check: exit %d\n%s", code, log)
			}
			_, err := os.Stat(filepath.Join(b.dir, "packages", ".found"))
			if found := err == nil; found != (len(p.tasks) > 1) {
				t.Errorf("second check: packages/.found exists %t, want %t", found, len(p.tasks) > 1)
			}
		})
	}
}
