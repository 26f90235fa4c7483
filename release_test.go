package main

// What the release ships, built here the way .goreleaser.yaml builds it: the
// image tests (image_test.go) put this binary in the image, and the native
// action's tests (native_test.go) fetch it from a local "release".
// GoReleaser itself cannot run in the tests (it needs docker buildx to build
// images); `goreleaser check` in scripts/test validates the file, and these
// tests read the parts that decide what ships: the build's flags, the names of
// the bare binaries, the checksum file, the image's build context.

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/template"

	"gopkg.in/yaml.v3"
)

// releaseTag is the version the test release is stamped with.
const releaseTag = "v1.10.0"

// goreleaserConfig is the part of .goreleaser.yaml the tests follow.
type goreleaserConfig struct {
	ProjectName string `yaml:"project_name"`
	Builds      []struct {
		ID      string   `yaml:"id"`
		Main    string   `yaml:"main"`
		Binary  string   `yaml:"binary"`
		Env     []string `yaml:"env"`
		Goos    []string `yaml:"goos"`
		Goarch  []string `yaml:"goarch"`
		Flags   []string `yaml:"flags"`
		Ldflags []string `yaml:"ldflags"`
	} `yaml:"builds"`
	Archives []struct {
		ID           string   `yaml:"id"`
		Formats      []string `yaml:"formats"`
		NameTemplate string   `yaml:"name_template"`
	} `yaml:"archives"`
	Checksum struct {
		NameTemplate string `yaml:"name_template"`
		Algorithm    string `yaml:"algorithm"`
	} `yaml:"checksum"`
	Before struct {
		Hooks []string `yaml:"hooks"`
	} `yaml:"before"`
	DockersV2 []dockerV2 `yaml:"dockers_v2"`
}

// dockerV2 is one image of .goreleaser.yaml.
type dockerV2 struct {
	ID         string   `yaml:"id"`
	Dockerfile string   `yaml:"dockerfile"`
	Flags      []string `yaml:"flags"`
	ExtraFiles []string `yaml:"extra_files"`
	Images     []string `yaml:"images"`
	Tags       []string `yaml:"tags"`
	Platforms  []string `yaml:"platforms"`
}

func loadGoreleaser(t *testing.T) goreleaserConfig {
	t.Helper()
	b, err := os.ReadFile(".goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c goreleaserConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if len(c.Builds) != 1 || len(c.DockersV2) != 2 {
		t.Fatalf(".goreleaser.yaml: %d builds and %d dockers_v2; the tests know one build and two images (image, shell)", len(c.Builds), len(c.DockersV2))
	}
	return c
}

// docker is the image of .goreleaser.yaml with this id: "image" (scratch and
// the binary) or "shell" (the same with busybox as sh).
func (c goreleaserConfig) docker(t *testing.T, id string) dockerV2 {
	t.Helper()
	for _, d := range c.DockersV2 {
		if d.ID == id {
			return d
		}
	}
	t.Fatalf(".goreleaser.yaml has no dockers_v2 entry with id %s", id)
	return dockerV2{}
}

// tags are the image's tags for a releaseTag release.
func (c goreleaserConfig) tags(t *testing.T, id string) []string {
	t.Helper()
	var tags []string
	for _, tpl := range c.docker(t, id).Tags {
		if tag := applyTemplate(t, tpl, tmplData(c, "linux", "amd64")); tag != "" {
			tags = append(tags, tag)
		}
	}
	return tags
}

// tmplData is what GoReleaser's name templates see for releaseTag, for the
// fields used here.
func tmplData(c goreleaserConfig, goos, goarch string) map[string]any {
	return tmplDataFor(c, releaseTag, goos, goarch)
}

func tmplDataFor(c goreleaserConfig, tag, goos, goarch string) map[string]any {
	return map[string]any{
		"ProjectName": c.ProjectName,
		"Tag":         tag,
		"Version":     strings.TrimPrefix(tag, "v"),
		"Os":          goos,
		"Arch":        goarch,
		"Major":       1, // of releaseTag
		"Minor":       10,
		"Patch":       0,
		"Prerelease":  "",
	}
}

func applyTemplate(t *testing.T, text string, data map[string]any) string {
	t.Helper()
	tpl, err := template.New("").Option("missingkey=error").Parse(text)
	if err != nil {
		t.Fatalf(".goreleaser.yaml template %q: %v", text, err)
	}
	var b strings.Builder
	if err := tpl.Execute(&b, data); err != nil {
		t.Fatalf(".goreleaser.yaml template %q: %v", text, err)
	}
	return b.String()
}

// buildReleaseBinary builds the binary for goos/goarch with the release's
// environment, flags and ldflags, stamped with releaseTag, at out.
func buildReleaseBinary(t *testing.T, c goreleaserConfig, goos, goarch, out string) {
	t.Helper()
	b := c.Builds[0]
	data := tmplData(c, goos, goarch)
	args := append([]string{"build", "-o", out}, b.Flags...)
	var ld []string
	for _, f := range b.Ldflags {
		ld = append(ld, applyTemplate(t, f, data))
	}
	args = append(args, "-ldflags", strings.Join(ld, " "), b.Main)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), b.Env...)
	cmd.Env = append(cmd.Env, "GOOS="+goos, "GOARCH="+goarch)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, output)
	}
}

var (
	releaseOnce sync.Once
	releaseBin  string // linux binary for this machine's architecture
	releaseErr  string
)

// releaseBinary is the release's binary for the machine running the tests,
// built once for all tests.
func releaseBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the image and the local release are built for linux")
	}
	releaseOnce.Do(func() {
		c := loadGoreleaser(t)
		out := filepath.Join(testDir, "release", "linux", runtime.GOARCH, c.Builds[0].Binary)
		ok := false
		defer func() {
			if !ok {
				releaseErr = "building the release binary failed (see the first test that tried)"
			}
		}()
		buildReleaseBinary(t, c, "linux", runtime.GOARCH, out)
		releaseBin, ok = out, true
	})
	if releaseErr != "" {
		t.Fatal(releaseErr)
	}
	return releaseBin
}

// nativeBinaryName is the name of the bare binary the native action
// downloads (native/install.sh builds the same name).
func nativeBinaryName(t *testing.T, c goreleaserConfig, tag, goos, goarch string) string {
	t.Helper()
	for _, a := range c.Archives {
		if len(a.Formats) == 1 && a.Formats[0] == "binary" {
			name := applyTemplate(t, a.NameTemplate, tmplDataFor(c, tag, goos, goarch))
			if goos == "windows" {
				name += ".exe"
			}
			return name
		}
	}
	t.Fatal(".goreleaser.yaml has no archive of format binary: the native action downloads bare binaries")
	return ""
}

// TestGoreleaserSnapshot reads what `goreleaser release --snapshot` made
// (scripts/test runs it and names its dist directory in
// S3AM_GORELEASER_DIST): checksums.txt lists, with its SHA-256, the bare
// binary the native action downloads for every runner platform, and the
// binary prints the snapshot's version.
func TestGoreleaserSnapshot(t *testing.T) {
	dist := os.Getenv("S3AM_GORELEASER_DIST")
	if dist == "" {
		t.Skip("no GoReleaser snapshot (scripts/test makes one)")
	}
	c := loadGoreleaser(t)
	var meta struct {
		Version string `json:"version"`
	}
	readJSON(t, filepath.Join(dist, "metadata.json"), &meta)
	var artifacts []distArtifact
	readJSON(t, filepath.Join(dist, "artifacts.json"), &artifacts)
	sums := map[string]string{}
	text, err := os.ReadFile(filepath.Join(dist, c.Checksum.NameTemplate))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		sum, name, _ := strings.Cut(line, "  ")
		sums[name] = sum
	}
	tag := "v" + meta.Version
	b := c.Builds[0]
	for _, goos := range b.Goos {
		for _, goarch := range b.Goarch {
			name := nativeBinaryName(t, c, tag, goos, goarch)
			i := slices.IndexFunc(artifacts, func(a distArtifact) bool { return a.Name == name })
			if i < 0 {
				t.Errorf("%s/%s: the snapshot has no artifact %s", goos, goarch, name)
				continue
			}
			// Paths in artifacts.json are relative to the project root.
			data, err := os.ReadFile(filepath.Join(filepath.Dir(dist), artifacts[i].Path))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(data)
			if got := sums[name]; got != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: checksums.txt has %q, the file's SHA-256 is %x", name, got, sum)
			}
			if goos == runtime.GOOS && goarch == runtime.GOARCH {
				out, err := exec.Command(filepath.Join(filepath.Dir(dist), artifacts[i].Path), "--version").Output()
				if err != nil || string(out) != "s3-asset-manager "+tag+"\n" {
					t.Errorf("%s --version: %q, %v; want %s", name, out, err, tag)
				}
			}
		}
	}
}

// The archive for people holds the README and every docs/ page it links to,
// so the links work in an unpacked release too.
func TestGoreleaserArchiveDocs(t *testing.T) {
	dist := os.Getenv("S3AM_GORELEASER_DIST")
	if dist == "" {
		t.Skip("no GoReleaser snapshot (scripts/test makes one)")
	}
	archives, err := filepath.Glob(filepath.Join(dist, "*_linux_"+runtime.GOARCH+".tar.gz"))
	if err != nil || len(archives) != 1 {
		t.Fatalf("the linux/%s archive in %s: %v %v", runtime.GOARCH, dist, archives, err)
	}
	f, err := os.Open(archives[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for h := range tarEntries(t, zr) {
		have[h.Name] = true
	}
	want, err := filepath.Glob("docs/*.md")
	if err != nil || len(want) == 0 {
		t.Fatalf("docs/*.md: %v %v", want, err)
	}
	for _, name := range append(want, "README.md", "LICENSE") {
		if !have[filepath.ToSlash(name)] {
			t.Errorf("%s: no %s in it (has %v)", filepath.Base(archives[0]), name, slices.Sorted(maps.Keys(have)))
		}
	}
}

// tarEntries is each entry of the tar stream r, in order, with the reader of
// its data; a broken stream fails t.
func tarEntries(t *testing.T, r io.Reader) iter.Seq2[*tar.Header, io.Reader] {
	return func(yield func(*tar.Header, io.Reader) bool) {
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !yield(h, tr) {
				return
			}
		}
	}
}

// distArtifact is an entry of GoReleaser's dist/artifacts.json.
type distArtifact struct {
	Name string `json:"name"`
	Path string `json:"path"` // relative to the project root
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// releaseAssets writes what a GitHub release of releaseTag holds for the
// native action, for this machine: the bare binary under its release name
// and the checksums file. It returns the binary's release name.
func releaseAssets(t *testing.T, dir string) string {
	t.Helper()
	c := loadGoreleaser(t)
	name := nativeBinaryName(t, c, releaseTag, "linux", runtime.GOARCH)
	data, err := os.ReadFile(releaseBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if c.Checksum.Algorithm != "sha256" {
		t.Fatalf(".goreleaser.yaml: checksum algorithm %q; the native action verifies sha256", c.Checksum.Algorithm)
	}
	sum := sha256.Sum256(data)
	// GoReleaser's format, as sha256sum writes it. Another file is listed
	// first so a reader that takes the first line fails.
	lines := fmt.Sprintf("%s  %s_%s_windows_amd64.zip\n%s  %s\n",
		strings.Repeat("0", 64), c.ProjectName, strings.TrimPrefix(releaseTag, "v"), hex.EncodeToString(sum[:]), name)
	if err := os.WriteFile(filepath.Join(dir, c.Checksum.NameTemplate), []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// copyTree copies src to dst as GoReleaser copies extra files: symbolic
// links stay links.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, fi.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGoreleaserConfig checks what the actions depend on: every runner's
// platform is built, the image tags include the one action.yml pulls.
func TestGoreleaserConfig(t *testing.T) {
	c := loadGoreleaser(t)
	b := c.Builds[0]
	for _, goos := range []string{"linux", "darwin", "windows"} {
		if !slices.Contains(b.Goos, goos) {
			t.Errorf("builds.goos %v lacks %s", b.Goos, goos)
		}
	}
	for _, goarch := range []string{"amd64", "arm64"} {
		if !slices.Contains(b.Goarch, goarch) {
			t.Errorf("builds.goarch %v lacks %s", b.Goarch, goarch)
		}
	}
	if !slices.Contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("builds.env %v: want CGO_ENABLED=0 (static, for scratch and any runner's libc)", b.Env)
	}
	if !slices.Contains(b.Flags, "-trimpath") {
		t.Errorf("builds.flags %v: no -trimpath", b.Flags)
	}
	if ld := strings.Join(b.Ldflags, " "); !strings.Contains(ld, "internal/version.Version=v{{ .Version }}") {
		t.Errorf("ldflags %q do not stamp internal/version.Version with the tag", ld)
	}
	for _, id := range []string{"image", "shell"} {
		d := c.docker(t, id)
		for _, p := range []string{"linux/amd64", "linux/arm64"} {
			if !slices.Contains(d.Platforms, p) {
				t.Errorf("dockers_v2 %s: platforms %v lack %s", id, d.Platforms, p)
			}
		}
		if !slices.Contains(d.Flags, "--target="+id) {
			t.Errorf("dockers_v2 %s: flags %v, want --target=%s (the Dockerfile's stage)", id, d.Flags, id)
		}
	}
	// The shell image's busybox is fetched by a before hook into the
	// context the shell image copies.
	if !slices.Contains(c.Before.Hooks, "scripts/busybox "+busyboxDir) || !slices.Contains(c.docker(t, "shell").ExtraFiles, busyboxDir) {
		t.Errorf("before.hooks %q and the shell image's extra_files must make and copy %s", c.Before.Hooks, busyboxDir)
	}
	// The shell tags are the image's tags with -shell: v1 and v1-shell are
	// the same release.
	plain, shell := c.tags(t, "image"), c.tags(t, "shell")
	if len(plain) != len(shell) {
		t.Errorf("image tags %q, shell tags %q: want one -shell tag for each", plain, shell)
	}
	for _, tag := range plain {
		if !slices.Contains(shell, tag+"-shell") {
			t.Errorf("image tag %s has no shell tag %s-shell (shell tags %q)", tag, tag, shell)
		}
	}
}
