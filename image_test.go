package main

// The image, built from the release's binary as GoReleaser builds it (the
// same build context: Dockerfile, extra files, linux/<arch>/<binary>) and run
// with podman the ways users run it: docker run as the README shows, as the
// Actions runner starts a docker action, as Concourse runs a task, and over
// HTTPS. Podman runs as root, in storage of its own under the test's
// directory, with the settings these machines need (see docs/development.md).
//
// Without podman the tests skip, unless S3AM_IMAGE_TESTS=require (set by
// scripts/test): CI must prove the image.

import (
	"archive/tar"
	"bytes"
	"crypto/tls"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/cli"
	"github.com/nsmithuk/s3-asset-manager/internal/gittest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

const (
	imageBinary   = "/usr/local/bin/s3-asset-manager"
	maxImageBytes = 25_000_000
)

// busyboxDir is where scripts/busybox puts the shell image's busybox, in the
// build context (a before hook of .goreleaser.yaml).
const busyboxDir = "build/busybox"

var (
	podmanOnce sync.Once
	podmanDir  string // podman's storage, run directory and containers.conf
	podmanErr  string
	builds     = map[string]*imageBuild{"image": {}, "shell": {}}
)

// imageBuild is one target of the Dockerfile, built once for all tests.
type imageBuild struct {
	once sync.Once
	id   string
	err  string
}

// podman returns a podman command with this test run's storage.
func podman(args ...string) *exec.Cmd {
	cmd := exec.Command("podman", append([]string{
		"--root", filepath.Join(podmanDir, "root"),
		"--runroot", filepath.Join(podmanDir, "run"),
		"--storage-driver", "vfs", // no overlay mounts inside these machines
		"--runtime", "runc",
		"--cgroup-manager", "cgroupfs",
	}, args...)...)
	// Without default_ulimits = [] the runtime's setrlimit is refused.
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(podmanDir, "containers.conf"))
	return cmd
}

// removeImages removes the test run's podman storage (TestMain).
func removeImages() {
	if podmanDir == "" {
		return
	}
	if serviceStop != nil {
		serviceStop()
	}
	_ = podman("rm", "--all", "--force").Run()
	_ = podman("rmi", "--all", "--force").Run()
	os.RemoveAll(podmanDir)
}

// testImage builds the image (target image: scratch and the binary) once for
// all tests and returns its id.
func testImage(t *testing.T) string { return buildImage(t, "image") }

// testShellImage builds the shell image (target shell: with busybox as sh)
// once for all tests and returns its id.
func testShellImage(t *testing.T) string { return buildImage(t, "shell") }

// buildImage builds the image of .goreleaser.yaml with this id as GoReleaser
// does: its build context (dockers_v2: the Dockerfile, the extra files at
// their paths, each platform's binary under os/arch) and its flags (the
// Dockerfile's target).
func buildImage(t *testing.T, id string) string {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		requireImage(t, "podman is not installed (apt-get install podman runc)")
	}
	if os.Geteuid() != 0 {
		requireImage(t, "the image tests run podman as root")
	}
	bin := releaseBinary(t)
	podmanOnce.Do(func() {
		podmanErr = "setting up podman failed (see the first test that tried)"
		podmanDir = filepath.Join(testDir, "podman")
		if err := os.MkdirAll(podmanDir, 0o755); err != nil {
			t.Fatal(err)
		}
		conf := "[containers]\ndefault_ulimits = []\n"
		if err := os.WriteFile(filepath.Join(podmanDir, "containers.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		podmanErr = ""
	})
	if podmanErr != "" {
		t.Fatal(podmanErr)
	}
	b := builds[id]
	b.once.Do(func() {
		b.err = "building the " + id + " image failed (see the first test that tried)"
		c := loadGoreleaser(t)
		d := c.docker(t, id)
		ctx := filepath.Join(testDir, "image-context-"+id)
		copyTree(t, d.Dockerfile, filepath.Join(ctx, "Dockerfile"))
		for _, f := range d.ExtraFiles {
			if f == busyboxDir { // made by a before hook, as in the release
				fetchBusybox(t, filepath.Join(ctx, f))
				continue
			}
			copyTree(t, f, filepath.Join(ctx, f))
		}
		copyTree(t, bin, filepath.Join(ctx, "linux", runtime.GOARCH, c.Builds[0].Binary))
		idFile := filepath.Join(testDir, "image-id-"+id)
		args := append([]string{"build", "--platform", "linux/" + runtime.GOARCH, "--iidfile", idFile}, d.Flags...)
		cmd := podman(append(args, ctx)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("podman build: %v\n%s", err, out)
		}
		imageID, err := os.ReadFile(idFile)
		if err != nil {
			t.Fatal(err)
		}
		b.id, b.err = strings.TrimSpace(string(imageID)), ""
	})
	if b.err != "" {
		t.Fatal(b.err)
	}
	return b.id
}

// fetchBusybox runs scripts/busybox (the release's before hook) into dir:
// Debian's busybox-static for each platform, checked against its pins.
func fetchBusybox(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("scripts/busybox", dir).CombinedOutput(); err != nil {
		t.Fatalf("scripts/busybox: %v\n%s", err, out)
	}
}

func requireImage(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("S3AM_IMAGE_TESTS") == "require" {
		t.Fatalf("%s; S3AM_IMAGE_TESTS=require", why)
	}
	t.Skip(why)
}

// container is one podman run.
type container struct {
	mounts     map[string]string // host path: container path
	workdir    string
	env        map[string]string
	entrypoint *string // nil: the image's
	args       []string
	image      string // "": testImage
	stdin      string // given on stdin (podman run -i) when not empty
	name       string // --name, when not empty
}

// run runs c on the host's network (the S3 servers listen on loopback) and
// returns the container's exit code and output.
func (c container) run(t *testing.T) (int, string, string) {
	t.Helper()
	args := []string{"run", "--rm", "--network", "host"}
	for host, ctr := range c.mounts {
		args = append(args, "--volume", host+":"+ctr)
	}
	if c.workdir != "" {
		args = append(args, "--workdir", c.workdir)
	}
	for k, v := range c.env {
		args = append(args, "--env", k+"="+v)
	}
	if c.entrypoint != nil {
		args = append(args, "--entrypoint", *c.entrypoint)
	}
	if c.stdin != "" {
		args = append(args, "--interactive")
	}
	if c.name != "" {
		args = append(args, "--name", c.name)
	}
	image := c.image
	if image == "" {
		image = testImage(t)
	}
	args = append(args, image)
	args = append(args, c.args...)
	cmd := podman(args...)
	if c.stdin != "" {
		cmd.Stdin = strings.NewReader(c.stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("podman run: %v", err)
	}
	// 125-127 are podman's own: the container did not run.
	if code >= 125 && code <= 127 {
		t.Fatalf("podman %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
	}
	return code, stdout.String(), stderr.String()
}

// awsEnv is the test credentials, as a user passes them with -e. Nothing
// else of this machine's AWS_* (files, a CA bundle) exists in the container.
func awsEnv() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":     s3test.AccessKey,
		"AWS_SECRET_ACCESS_KEY": s3test.SecretKey,
		"AWS_REGION":            s3test.Region,
	}
}

// imageFiles is what the image holds: one static binary, the links Concourse
// runs, /tmp, nothing else (no shell).
var imageFiles = map[string]string{
	"usr/local/bin/s3-asset-manager": "file 0755",
	"usr/local/bin/check":            "link s3-asset-manager",
	"usr/local/bin/upload":           "link s3-asset-manager",
	"usr/local/bin/download":         "link s3-asset-manager",
	"usr/local/bin/prune":            "link s3-asset-manager",
	"tmp/":                           "dir 1777",
	"tmp/.keep":                      "", // any mode: git keeps no empty directory
}

// TestImageConfig checks the image's configuration and file system.
func TestImageConfig(t *testing.T) {
	checkImage(t, testImage(t), imageFiles)
}

// TestImageShellConfig checks the shell image: the image's configuration and
// files, plus a static busybox linked as sh and its licence.
func TestImageShellConfig(t *testing.T) {
	want := maps.Clone(imageFiles)
	want["usr/local/bin/sh"] = "link busybox"
	want["usr/local/bin/busybox"] = "file 0755"
	want["usr/local/share/doc/busybox/copyright"] = "file 0644"
	files := checkImage(t, testShellImage(t), want)
	checkStatic(t, "busybox", files["usr/local/bin/busybox"].data)
}

// checkImage checks an image's configuration and that it holds exactly the
// files wanted (path: "file MODE", "link TARGET", "dir MODE"; "" any mode),
// and returns them.
func checkImage(t *testing.T, id string, wantFiles map[string]string) map[string]imageFile {
	t.Helper()
	out, err := podman("image", "inspect", id).Output()
	if err != nil {
		t.Fatalf("podman image inspect: %v", err)
	}
	var inspect []struct {
		Config struct {
			Entrypoint []string
			Cmd        []string
			Env        []string
			User       string
			WorkingDir string
		}
		Size int64
	}
	if err := json.Unmarshal(out, &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect: %v\n%s", err, out)
	}
	cfg := inspect[0].Config
	if len(cfg.Entrypoint) != 1 || cfg.Entrypoint[0] != imageBinary {
		t.Errorf("entrypoint %q, want [%s]", cfg.Entrypoint, imageBinary)
	}
	if cfg.User != "" {
		t.Errorf("user %q: docker actions run as the image's user and need the workspace (root)", cfg.User)
	}
	env := map[string]string{}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	want := map[string]string{"PATH": "/usr/local/bin"}
	for k, v := range imageEnv {
		want[k] = v
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("image ENV %s=%q, want %q", k, env[k], v)
		}
	}
	if len(env) != len(want) {
		t.Errorf("image ENV %q, want exactly %q (runOnHost gives the binary imageEnv)", cfg.Env, want)
	}
	t.Logf("image %s: %d bytes", id, inspect[0].Size)
	if inspect[0].Size >= maxImageBytes {
		t.Errorf("image is %d bytes, want under %d", inspect[0].Size, maxImageBytes)
	}

	files := exportImage(t, id)
	for name, w := range wantFiles {
		got, ok := files[name]
		if !ok {
			t.Errorf("image has no %s", name)
		} else if w != "" && got.desc != w {
			t.Errorf("image %s: %s, want %s", name, got.desc, w)
		}
	}
	for name, f := range files {
		if _, ok := wantFiles[name]; !ok && !strings.HasSuffix(name, "/") {
			t.Errorf("image has %s (%s): want only %q", name, f.desc, slices.Sorted(maps.Keys(wantFiles)))
		}
	}
	checkStatic(t, "s3-asset-manager", files["usr/local/bin/s3-asset-manager"].data)
	return files
}

// checkStatic checks that an executable needs no loader nor libc (scratch
// has neither).
func checkStatic(t *testing.T, name string, bin []byte) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if f.Machine != map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[runtime.GOARCH] {
		t.Errorf("%s: machine %v, not this platform's", name, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: program header %v: dynamically linked, scratch has no loader or libc", name, p.Type)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", name, libs)
	}
}

type imageFile struct {
	desc string // "file 0755", "link TARGET", "dir 1777"
	data []byte
}

// exportImage lists the file system of a container made from the image.
func exportImage(t *testing.T, id string) map[string]imageFile {
	t.Helper()
	name := fmt.Sprintf("s3am-export-%d", os.Getpid())
	if out, err := podman("create", "--name", name, id).CombinedOutput(); err != nil {
		t.Fatalf("podman create: %v\n%s", err, out)
	}
	defer podman("rm", name).Run()
	out, err := podman("export", name).Output()
	if err != nil {
		t.Fatalf("podman export: %v", err)
	}
	files := map[string]imageFile{}
	for h, body := range tarEntries(t, bytes.NewReader(out)) {
		name := strings.TrimPrefix(h.Name, "./")
		mode := h.FileInfo().Mode()
		perm := fmt.Sprintf("%04o", mode.Perm())
		if mode&os.ModeSticky != 0 {
			perm = fmt.Sprintf("1%03o", mode.Perm())
		}
		switch h.Typeflag {
		case tar.TypeDir:
			files[strings.TrimSuffix(name, "/")+"/"] = imageFile{desc: "dir " + perm}
		case tar.TypeSymlink:
			files[name] = imageFile{desc: "link " + h.Linkname}
		case tar.TypeReg:
			data, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			files[name] = imageFile{desc: "file " + perm, data: data}
		default:
			files[name] = imageFile{desc: fmt.Sprintf("type %c", h.Typeflag)}
		}
	}
	return files
}

func TestImageVersion(t *testing.T) {
	code, stdout, stderr := container{args: []string{"--version"}}.run(t)
	if code != 0 || stdout != "s3-asset-manager "+releaseTag+"\n" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q; want the stamped %s", code, stdout, stderr, releaseTag)
	}
}

// dockerRun is a `docker run` command of the docs, parsed.
type dockerRun struct {
	where   string
	env     map[string]*string // -e NAME (nil: from the caller's environment) or NAME=VALUE
	volumes [][2]string        // -v HOST:CONTAINER, $PWD not yet expanded
	workdir string
	image   string
	args    []string
}

// dockerRunExamples parses the `docker run` commands of the README and
// docs/ (sh blocks): the line continuations joined, words split as the
// shell does for the quoting they use, the comment dropped.
func dockerRunExamples(t *testing.T) []dockerRun {
	t.Helper()
	var out []dockerRun
	for _, b := range docBlocks(t) {
		if b.lang != "sh" || !strings.HasPrefix(b.text, "docker run") {
			continue
		}
		line := strings.ReplaceAll(b.text, "\\\n", " ")
		line, _, _ = strings.Cut(line, "#")
		var words []string
		for _, w := range strings.Fields(line) {
			words = append(words, strings.Trim(w, `"`))
		}
		r := dockerRun{where: b.file, env: map[string]*string{}}
		for i := 2; i < len(words); i++ {
			w := words[i]
			switch {
			case w == "--rm":
			case w == "-e" && i+1 < len(words):
				i++
				if k, v, ok := strings.Cut(words[i], "="); ok {
					r.env[k] = &v
				} else {
					r.env[k] = nil
				}
			case w == "-v" && i+1 < len(words):
				i++
				host, ctr, _ := strings.Cut(words[i], ":")
				r.volumes = append(r.volumes, [2]string{host, ctr})
			case w == "-w" && i+1 < len(words):
				i++
				r.workdir = words[i]
			case strings.HasPrefix(w, "-"):
				t.Fatalf("%s: docker run: the test does not know %s", b.file, w)
			default:
				r.image, r.args = w, words[i+1:]
				i = len(words)
			}
		}
		out = append(out, r)
	}
	return out
}

// The docs' `docker run` examples, as written: the variables they name (the
// credentials from the environment, the region as given, the test's bucket
// for the placeholder, and the store's endpoint added), the current
// directory and the repository mounted as shown; check, a build, upload (the
// comment's "then"), and check again, which finds the set.
func TestImageDockerRun(t *testing.T) {
	examples := dockerRunExamples(t)
	if len(examples) == 0 {
		t.Fatal("no docker run example in README.md or docs/")
	}
	c := loadGoreleaser(t)
	srv := s3test.Get(t, "minio")
	for i, ex := range examples {
		t.Run(fmt.Sprintf("%d %s", i, ex.where), func(t *testing.T) {
			t.Parallel()
			repoName, tag, _ := strings.Cut(ex.image, ":")
			if !slices.Contains(c.docker(t, "image").Images, repoName) || !slices.Contains(c.tags(t, "image"), tag) {
				t.Fatalf("%s: image %s is not one a release pushes (%q)", ex.where, ex.image, c.tags(t, "image"))
			}
			if !slices.Equal(ex.args, []string{"check"}) {
				t.Fatalf("%s: docker run ... %q, want check (then upload)", ex.where, ex.args)
			}
			bucket := srv.NewBucket(t)
			dir := t.TempDir() // $PWD
			from := awsEnv()   // the user's environment
			env := map[string]string{}
			for k, v := range ex.env {
				switch {
				case v == nil:
					if val, ok := from[k]; ok {
						env[k] = val
					}
				case k == "PACKAGE_ASSETS_BUCKET":
					env[k] = bucket // the placeholder's place
				default:
					env[k] = *v
				}
			}
			env["PACKAGE_ASSETS_ENDPOINT"] = srv.Endpoint
			mounts := map[string]string{}
			var head string
			for _, v := range ex.volumes {
				host := strings.Replace(v[0], "$PWD", dir, 1)
				if host != dir {
					head = newRepo(t, host) // $PWD/local-repo
				}
				mounts[host] = v[1]
			}
			if head == "" {
				t.Fatalf("%s: no repository mounted", ex.where)
			}
			run := func(cmd string) container {
				return container{mounts: mounts, workdir: ex.workdir, env: env, args: []string{cmd}}
			}
			if code, _, stderr := run("check").run(t); code != 0 {
				t.Fatalf("check: exit %d\n%s", code, stderr)
			}
			if got, err := os.ReadFile(filepath.Join(dir, "packages", ".commit-hash")); err != nil || string(got) != head {
				t.Fatalf("packages/.commit-hash %q (%v), want %s", got, err, head)
			}
			if _, err := os.Stat(filepath.Join(dir, "packages", ".found")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("first check left .found: %v", err)
			}
			if err := os.WriteFile(filepath.Join(dir, "packages", "fn1.zip"), []byte("built"), 0o644); err != nil {
				t.Fatal(err)
			}
			if code, _, stderr := run("upload").run(t); code != 0 {
				t.Fatalf("upload: exit %d\n%s", code, stderr)
			}
			if _, body := srv.Get(t, bucket, "artifacts/"+head+"/fn1.zip"); string(body) != "built" {
				t.Errorf("stored fn1.zip %q, want %q", body, "built")
			}
			if code, _, stderr := run("check").run(t); code != 0 {
				t.Fatalf("second check: exit %d\n%s", code, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "packages", ".found")); err != nil {
				t.Errorf("second check: no .found: %v", err)
			}
		})
	}
}

// newRepo makes a git repository with one commit in dir and returns HEAD.
func newRepo(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, dir, "-c", "init.defaultBranch=main", "init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "main.c"), []byte("int main(void) { return 0; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.Git(t, dir, "add", "-A")
	gittest.Git(t, dir, "commit", "-q", "-m", "first")
	return gittest.Git(t, dir, "rev-parse", "HEAD")
}

// runInImage starts the action's container as the Actions runner does
// (ContainerActionHandler): the runner's directories mounted at /github/...,
// /github/workspace the working directory, every variable whose value is a
// host path under a mount translated to the container's path.
func runInImage(t *testing.T, dirs runnerDirs, env map[string]string, args []string) (int, string, string) {
	t.Helper()
	mounts := map[string]string{
		dirs.home:         "/github/home",
		dirs.workflow:     "/github/workflow",
		dirs.fileCommands: "/github/file_commands",
		dirs.workspace:    "/github/workspace",
	}
	translated := map[string]string{}
	for k, v := range env {
		for host, ctr := range mounts {
			if v == host || strings.HasPrefix(v, host+"/") {
				v = ctr + strings.TrimPrefix(v, host)
				break
			}
		}
		translated[k] = v
	}
	// The step's env passes the credentials; nothing else of this
	// machine's AWS_* exists in the container.
	for k := range translated {
		if strings.HasPrefix(k, "AWS_") {
			delete(translated, k)
		}
	}
	for k, v := range awsEnv() {
		translated[k] = v
	}
	return container{mounts: mounts, workdir: "/github/workspace", env: translated, args: args}.run(t)
}

// The docker action through the image: the same scenario as
// TestActionCheckUpload, and the package directory check creates belongs to
// the workspace's owner (the runner's user), not to root.
func TestImageAction(t *testing.T) {
	testImage(t)
	srv := s3test.Get(t, "minio")
	ws, head := newWorkspace(t)
	const runnerUID = 1001 // the runner's user on GitHub's machines
	if err := os.Chown(ws, runnerUID, runnerUID); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, ws string, inputs map[string]string) actionRun {
		return runActionOn(t, runInImage, ws, inputs, nil)
	}
	actionCheckUpload(t, srv, ws, head, run)
	fi, err := os.Stat(filepath.Join(ws, "dist"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fileOwner(fi); uid != runnerUID {
		t.Errorf("dist/ made by check belongs to uid %d, want the workspace's owner %d", uid, runnerUID)
	}
}

// Concourse: `run: path: check` executes check from PATH, bypassing the
// entry point, in the task's directory holding its inputs and outputs (repo,
// packages), with params as environment variables and the image's ENV.
func TestImageConcourse(t *testing.T) {
	testImage(t)
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	build := t.TempDir()
	head := newRepo(t, filepath.Join(build, "repo"))
	if err := os.Mkdir(filepath.Join(build, "packages"), 0o755); err != nil {
		t.Fatal(err)
	}
	params := awsEnv()
	for k, v := range srv.Env(bucket) {
		params[k] = v
	}
	params["CODE_HASH_FIND_FILTER"] = "**/*.c"
	task := func(path string) container {
		return container{
			mounts:     map[string]string{build: "/tmp/build/e55deab7"},
			workdir:    "/tmp/build/e55deab7",
			env:        params,
			entrypoint: &path,
		}
	}
	if code, _, stderr := task("check").run(t); code != 0 {
		t.Fatalf("check: exit %d\n%s", code, stderr)
	}
	codeHash, err := os.ReadFile(filepath.Join(build, "packages", ".code-hash"))
	if err != nil || len(codeHash) != 64 {
		t.Fatalf("packages/.code-hash %q: %v", codeHash, err)
	}
	if err := os.WriteFile(filepath.Join(build, "packages", "fn1.zip"), []byte("built"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := task("upload").run(t); code != 0 {
		t.Fatalf("upload: exit %d\n%s", code, stderr)
	}
	for _, key := range []string{"artifacts/" + head + "/fn1.zip", "cache/" + string(codeHash) + "/fn1.zip"} {
		if _, body := srv.Get(t, bucket, key); string(body) != "built" {
			t.Errorf("%s: %q, want %q", key, body, "built")
		}
	}
	if code, _, stderr := task("check").run(t); code != 0 {
		t.Fatalf("second check: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(build, "packages", ".found")); err != nil {
		t.Errorf("second check: no .found: %v", err)
	}
}

// An HTTPS endpoint from the image: a TLS proxy in front of MinIO with a
// certificate from a test CA, which the image trusts through AWS_CA_BUNDLE
// and, without it, refuses (exit 4, not a miss).
func TestImageHTTPS(t *testing.T) {
	testImage(t)
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	proxy := httputil.NewSingleHostReverseProxy(target)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	ts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	ts.StartTLS()
	defer ts.Close()
	certs := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(certs, "ca.pem"), ca, 0o644); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	head := newRepo(t, filepath.Join(dir, "repo"))
	check := func(bundle bool) (int, string) {
		env := awsEnv()
		env["PACKAGE_ASSETS_BUCKET"] = bucket
		env["PACKAGE_ASSETS_ENDPOINT"] = ts.URL // https://127.0.0.1:port
		env["AWS_MAX_ATTEMPTS"] = "1"
		if bundle {
			env["AWS_CA_BUNDLE"] = "/certs/ca.pem"
		}
		code, _, stderr := container{
			mounts:  map[string]string{dir: "/work", certs: "/certs"},
			workdir: "/work",
			env:     env,
			args:    []string{"check"},
		}.run(t)
		return code, stderr
	}

	if code, stderr := check(false); code != cli.ExitS3 || !strings.Contains(stderr, "certificate") {
		t.Errorf("check over HTTPS with an unknown CA: exit %d, want %d naming the certificate\n%s", code, cli.ExitS3, stderr)
	}
	before := requests.Load()
	if code, stderr := check(true); code != 0 {
		t.Fatalf("check over HTTPS with AWS_CA_BUNDLE: exit %d\n%s", code, stderr)
	}
	if requests.Load() == before {
		t.Error("the check sent no request through the TLS proxy")
	}
	if got, err := os.ReadFile(filepath.Join(dir, "packages", ".commit-hash")); err != nil || string(got) != head {
		t.Errorf(".commit-hash %q (%v), want %s", got, err, head)
	}
}
