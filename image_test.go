package main

// No Docker engine runs the tests, so these check the image's shape instead:
// the Dockerfile is parsed, the binary built with its exact go build line,
// and run the way the scratch image runs it (its ENV and nothing else).

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/cli"
)

const (
	imageBinary   = "/usr/local/bin/s3-asset-manager"
	maxImageBytes = 25_000_000
	testVersion   = "v0.0.0-imagetest"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd   string // upper-cased: FROM, RUN, ENV, ...
	args  string
	stage int // index of the FROM it belongs to
	line  int
}

type dockerfile struct {
	instrs []instruction
	stages int
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var df dockerfile
	var cur strings.Builder
	start := 0
	for i, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue // comments, also inside continued instructions
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		full := strings.TrimSpace(cur.String())
		cur.Reset()
		if full == "" {
			continue
		}
		cmd, args, _ := strings.Cut(full, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			df.stages++
		}
		df.instrs = append(df.instrs, instruction{cmd: cmd, args: strings.TrimSpace(args), stage: df.stages - 1, line: start})
	}
	if cur.Len() > 0 {
		t.Fatal("Dockerfile ends inside a continued line")
	}
	if df.stages == 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	return df
}

func (df dockerfile) all(cmd string) []instruction {
	var out []instruction
	for _, in := range df.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// finalEnv is the final stage's ENV: what every process in the image sees.
func (df dockerfile) finalEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, in := range df.all("ENV") {
		if in.stage != df.stages-1 {
			continue
		}
		words := shellWords(t, in.args)
		if len(words) > 0 && !strings.Contains(words[0], "=") { // legacy "ENV KEY value"
			k, v, _ := strings.Cut(in.args, " ")
			env[k] = strings.TrimSpace(v)
			continue
		}
		for _, w := range words {
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				t.Fatalf("Dockerfile:%d: ENV %q is not KEY=value", in.line, w)
			}
			env[k] = v
		}
	}
	return env
}

// args are the ARG defaults of a stage.
func (df dockerfile) args(stage int) map[string]string {
	out := map[string]string{}
	for _, in := range df.all("ARG") {
		if in.stage == stage {
			for _, a := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(a, "=")
				out[k] = strings.Trim(v, `"'`)
			}
		}
	}
	return out
}

// goBuild is the Dockerfile's go build command: the variables set before it
// and its arguments, with the build's ARGs expanded.
type goBuild struct {
	env   map[string]string
	args  []string // after "go build"
	stage int
}

func (df dockerfile) goBuild(t *testing.T, vars map[string]string) goBuild {
	t.Helper()
	var found []goBuild
	for _, in := range df.all("RUN") {
		for _, part := range strings.Split(in.args, "&&") {
			words := shellWords(t, part)
			i := slices.Index(words, "go")
			if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
				continue
			}
			args := df.args(in.stage)
			for k, v := range vars {
				args[k] = v
			}
			expand := func(s string) string { return os.Expand(s, func(k string) string { return args[k] }) }
			b := goBuild{env: map[string]string{}, stage: in.stage}
			for _, w := range words[:i] {
				k, v, ok := strings.Cut(w, "=")
				if !ok {
					t.Fatalf("Dockerfile:%d: %q before go build is not KEY=value", in.line, w)
				}
				b.env[k] = expand(v)
			}
			for _, w := range words[i+2:] {
				b.args = append(b.args, expand(w))
			}
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("Dockerfile has %d go build commands, want 1", len(found))
	}
	return found[0]
}

// shellWords splits like sh for what a Dockerfile uses here: blanks, single
// and double quotes, backslash escapes. Expansion is left to the caller.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(s) && strings.ContainsRune(`"\$`, rune(s[i+1])):
				i++
				cur.WriteByte(s[i])
			default:
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("unclosed quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func TestDockerfileShape(t *testing.T) {
	df := readDockerfile(t)
	froms := df.all("FROM")
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %d FROM", len(froms))
	}
	if last := strings.Fields(froms[len(froms)-1].args); last[0] != "scratch" {
		t.Errorf("final stage is FROM %s, want scratch", last[0])
	}
	if users := df.all("USER"); len(users) > 0 {
		t.Errorf("Dockerfile:%d: USER %s: docker actions run as the image's user and need the workspace", users[0].line, users[0].args)
	}

	b := df.goBuild(t, nil)
	base := ""
	for _, f := range strings.Fields(froms[b.stage].args) {
		if !strings.HasPrefix(f, "--") {
			base = f
			break
		}
	}
	if !regexp.MustCompile(`^golang:1\.26(\.\d+)?(-[a-z0-9.]+)?$`).MatchString(base) {
		t.Errorf("build stage FROM %q, want golang:1.26 pinned by tag", base)
	}
	if b.env["CGO_ENABLED"] != "0" {
		t.Errorf("go build runs with CGO_ENABLED=%q, want 0 (static binary for scratch)", b.env["CGO_ENABLED"])
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Errorf("go build %v: no -trimpath", b.args)
	}
	if df.args(b.stage)["VERSION"] != "dev" {
		t.Errorf("ARG VERSION default %q, want dev", df.args(b.stage)["VERSION"])
	}
	ld := flagValue(b.args, "-ldflags")
	for _, want := range []string{"-s", "-w", "-X github.com/nsmithuk/s3-asset-manager/internal/version.Version="} {
		if !strings.Contains(ld, want) {
			t.Errorf("-ldflags %q lacks %q", ld, want)
		}
	}

	env := df.finalEnv(t)
	for k, want := range map[string]string{"PATH": "/usr/local/bin", "GIT_REPO_PATH": "./repo", "PACKAGE_DIRECTORY": "./packages"} {
		if env[k] != want {
			t.Errorf("ENV %s=%q, want %q", k, env[k], want)
		}
	}
	eps := df.all("ENTRYPOINT")
	if len(eps) == 0 || eps[len(eps)-1].args != `["`+imageBinary+`"]` {
		t.Errorf("ENTRYPOINT %v, want [%q] (exec form)", eps, imageBinary)
	}

	// The command names Concourse runs (run: path: check) must exist in the
	// build stage's output; /tmp must exist for os.MkdirTemp.
	text := ""
	for _, in := range df.all("RUN") {
		text += in.args + "\n"
	}
	for _, name := range []string{"check", "upload"} {
		if !regexp.MustCompile(`\bln (-s )?\S+ \S+/` + name + `\b`).MatchString(text) {
			t.Errorf("no RUN makes a %s link to the binary", name)
		}
	}
	var copied []string
	for _, in := range df.all("COPY") {
		if in.stage == df.stages-1 {
			f := strings.Fields(in.args)
			copied = append(copied, f[len(f)-1])
		}
	}
	for _, want := range []string{"/usr/local/bin/", "/tmp", "/etc/ssl/certs/ca-certificates.crt"} {
		if !slices.Contains(copied, want) {
			t.Errorf("final stage copies to %v; nothing to %s", copied, want)
		}
	}
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// buildContext copies what docker build would send: the repository minus
// .dockerignore's patterns. Building from it catches an ignore rule that
// drops a file the build needs.
func buildContext(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	dst := t.TempDir()
	err = filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if dockerIgnored(patterns, filepath.ToSlash(p)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, p)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// dockerIgnored applies .dockerignore patterns as docker does for the forms
// used here: path.Match per pattern, a leading **/ at any depth, a leading
// / ignored, ! re-includes, the last match wins.
func dockerIgnored(patterns []string, rel string) bool {
	ignored := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(path.Clean(strings.TrimPrefix(p, "!")), "/")
		if dockerMatch(p, rel) {
			ignored = !neg
		}
	}
	return ignored
}

func dockerMatch(pattern, rel string) bool {
	if rest, ok := strings.CutPrefix(pattern, "**/"); ok {
		parts := strings.Split(rel, "/")
		for i := range parts {
			if dockerMatch(rest, strings.Join(parts[i:], "/")) {
				return true
			}
		}
		return false
	}
	ok, _ := path.Match(pattern, rel)
	return ok
}

func TestDockerIgnore(t *testing.T) {
	patterns := []string{".git", "/check", "**/*_test.go", "*.md", "dist", "!keep.md"}
	for rel, want := range map[string]bool{
		".git": true, "check": true, "internal/check": false, "main_test.go": true, "internal/x/y_test.go": true,
		"README.md": true, "docs/a.md": false, "keep.md": false, "dist": true, "main.go": false, "go.sum": false,
	} {
		if got := dockerIgnored(patterns, rel); got != want {
			t.Errorf("dockerIgnored(%q) = %t, want %t", rel, got, want)
		}
	}
}

// buildImageBinary builds the binary exactly as the Dockerfile does, from
// the build context, for the machine running the test.
func buildImageBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux; its binary cannot run here")
	}
	df := readDockerfile(t)
	b := df.goBuild(t, map[string]string{"VERSION": testVersion, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH})
	out := filepath.Join(t.TempDir(), "s3-asset-manager")
	var args []string
	for i := 0; i < len(b.args); i++ {
		if b.args[i] == "-o" {
			i++ // the Dockerfile's output path; ours instead
			continue
		}
		args = append(args, b.args[i])
	}
	args = append([]string{"build", "-o", out}, args...)
	cmd := exec.Command("go", args...)
	cmd.Dir = buildContext(t)
	cmd.Env = os.Environ()
	for k, v := range b.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, output)
	}
	return out
}

func TestImageBinary(t *testing.T) {
	bin := buildImageBinary(t)
	env := readDockerfile(t).finalEnv(t)

	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("program header %v: dynamically linked, scratch has no loader or libc", p.Type)
			}
		}
		if s := f.Section(".dynamic"); s != nil {
			t.Error("has a .dynamic section")
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("needs shared libraries %v", libs)
		}
	})

	t.Run("size", func(t *testing.T) {
		fi, err := os.Stat(bin)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("binary: %.1f MB", float64(fi.Size())/1e6)
		if fi.Size() >= maxImageBytes {
			t.Errorf("binary is %d bytes; the image must stay under %d", fi.Size(), maxImageBytes)
		}
	})

	t.Run("version", func(t *testing.T) {
		code, stdout, stderr := runImage(t, bin, t.TempDir(), env, "--version")
		if code != 0 || stdout != "s3-asset-manager "+testVersion+"\n" {
			t.Errorf("--version: exit %d, stdout %q, stderr %q; want the stamped %s", code, stdout, stderr, testVersion)
		}
	})

	// Concourse runs check and upload by name, through the links, with only
	// the image's ENV and the task's params. The image has symbolic links;
	// hard links are what a user copying the binary around might make.
	for _, hard := range []bool{false, true} {
		for _, name := range []string{"check", "upload"} {
			t.Run(fmt.Sprintf("%s/hard=%t", name, hard), func(t *testing.T) {
				code, stdout, stderr := runImage(t, linkAs(t, bin, name, hard), t.TempDir(), env)
				if code != cli.ExitUsage || !strings.Contains(stderr, "PACKAGE_ASSETS_BUCKET") {
					t.Errorf("%s without a bucket: exit %d, stderr %q; want %d naming PACKAGE_ASSETS_BUCKET", name, code, stderr, cli.ExitUsage)
				}
				if stdout != "" {
					t.Errorf("stdout %q", stdout)
				}
			})
		}
	}

	// With a bucket the defaults (./repo, ./packages) apply: the package
	// directory is made, then the missing repository stops the run before
	// any request is sent (the endpoint is never dialled).
	t.Run("defaults", func(t *testing.T) {
		dir := t.TempDir()
		e := map[string]string{"PACKAGE_ASSETS_BUCKET": "some-bucket", "PACKAGE_ASSETS_ENDPOINT": "http://127.0.0.1:1"}
		for k, v := range env {
			e[k] = v
		}
		code, _, stderr := runImage(t, linkAs(t, bin, "check", false), dir, e)
		if code != cli.ExitGit || !strings.Contains(stderr, "repo") {
			t.Errorf("check in an empty directory: exit %d, stderr %q; want %d about ./repo", code, stderr, cli.ExitGit)
		}
		if fi, err := os.Stat(filepath.Join(dir, "packages")); err != nil || !fi.IsDir() {
			t.Errorf("./packages not created: %v", err)
		}
	})
}

// linkAs makes a link named name to bin in a temp dir.
func linkAs(t *testing.T, bin, name string, hard bool) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), name)
	link := os.Symlink
	if hard {
		link = os.Link
	}
	if err := link(bin, exe); err != nil {
		t.Fatal(err)
	}
	return exe
}

// runImage runs exe in dir with exactly env as its environment.
func runImage(t *testing.T, exe, dir string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(exe, args...)
	cmd.Dir = dir
	cmd.Env = []string{} // not nil: nil would inherit this process's environment
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
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
