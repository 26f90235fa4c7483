package docscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/ghaction"
)

const root = "../.."

func pages(t *testing.T) []Page {
	t.Helper()
	ps, err := Pages(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) < 2 {
		t.Fatalf("found %d documentation pages", len(ps))
	}
	return ps
}

// TestWorkflowSnippets: every GitHub workflow in the docs is a whole workflow,
// so actionlint can check it. With S3AM_SNIPPETS_DIR set (scripts/test), they
// are written there as a project actionlint reads: .github/workflows/, a .git
// marker, and this repository's action.yml and native/action.yml, which the
// snippets' uses: of this project's actions are pointed at.
func TestWorkflowSnippets(t *testing.T) {
	var workflows []Block
	for _, p := range pages(t) {
		for _, b := range p.Blocks() {
			switch {
			case b.IsWorkflow():
				if !b.HasOn() {
					t.Errorf("%s:%d: a workflow without on:; write whole workflows, so they can be linted", b.Page, b.Line)
				}
				workflows = append(workflows, b)
			case b.LooksLikeWorkflowFragment():
				t.Errorf("%s:%d: GitHub workflow syntax in a block that is not a whole workflow (on:, jobs:); it cannot be linted", b.Page, b.Line)
			}
		}
	}
	if len(workflows) < 4 {
		t.Errorf("found %d workflow snippets; the README alone has three", len(workflows))
	}
	dir := os.Getenv("S3AM_SNIPPETS_DIR")
	if dir == "" {
		return
	}
	wf := filepath.Join(dir, ".github", "workflows")
	for _, d := range []string{wf, filepath.Join(dir, ".git"), filepath.Join(dir, "native")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"action.yml", "native/action.yml"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range workflows {
		name := fmt.Sprintf("%s-%d.yml", strings.NewReplacer("/", "-", ".md", "").Replace(b.Page), b.Line)
		text := fmt.Sprintf("# %s, line %d\n%s", b.Page, b.Line, b.Local())
		if err := os.WriteFile(filepath.Join(wf, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The local form points the published actions at the repository's own.
func TestLocal(t *testing.T) {
	b := Block{Text: "      - uses: nsmithuk/s3-asset-manager@v1\n      - {id: a, uses: nsmithuk/s3-asset-manager/native@v1, with: {mode: check}}\n      - uses: actions/checkout@v4\n"}
	want := "      - uses: ./\n      - {id: a, uses: ./native, with: {mode: check}}\n      - uses: actions/checkout@v4\n"
	if got := b.Local(); got != want {
		t.Errorf("Local:\n%s\nwant:\n%s", got, want)
	}
}

// TestConfigurationReference: docs/configuration.md has a row for every
// setting (variable, input, default) and every output (with its dotenv name).
func TestConfigurationReference(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	ref := string(b)
	for _, s := range config.Settings {
		row := "| `" + s.Env + "` | `" + s.Input + "` | "
		i := strings.Index(ref, row)
		if i < 0 {
			t.Errorf("docs/configuration.md has no row starting %q", row)
			continue
		}
		cells := strings.Split(strings.SplitN(ref[i:], "\n", 2)[0], " | ")
		if def := cells[2]; s.Default == "" && def != "–" || s.Default != "" && !strings.HasPrefix(def, "`"+s.Default+"`") {
			t.Errorf("docs/configuration.md: %s's default is %q, the code's %q", s.Env, def, s.Default)
		}
	}
	dotenv := ghaction.DotenvNames()
	for _, o := range slices.Concat(ghaction.OutputNames, ghaction.PruneOutputNames) {
		d := "–"
		if dotenv[o] != "" {
			d = "`" + dotenv[o] + "`"
		}
		if row := "| `" + o + "` | " + d + " | "; !strings.Contains(ref, row) {
			t.Errorf("docs/configuration.md has no row starting %q", row)
		}
	}
}

// Names of environment variables the docs may mention that are not this
// tool's settings, each for a reason. An S3AM_ name must also be read
// somewhere in the repository (checked below).
var otherVariables = map[string]string{
	// Read by the AWS SDK, not by the tool's settings table.
	"AWS_ACCESS_KEY_ID": "sdk", "AWS_SECRET_ACCESS_KEY": "sdk", "AWS_SESSION_TOKEN": "sdk", "AWS_PROFILE": "sdk",
	"AWS_REGION": "sdk", "AWS_DEFAULT_REGION": "sdk", "AWS_ENDPOINT_URL": "sdk", "AWS_ENDPOINT_URL_S3": "sdk",
	"AWS_CA_BUNDLE": "sdk", "AWS_EC2_METADATA_DISABLED": "sdk", "AWS_EC2_METADATA_SERVICE_ENDPOINT": "sdk", "AWS_EC2_METADATA_V1_DISABLED": "sdk", "AWS_MAX_ATTEMPTS": "sdk", "AWS_ROLE_ARN": "sdk", "AWS_WEB_IDENTITY_TOKEN_FILE": "sdk",
	"AWS_REQUEST_CHECKSUM_CALCULATION": "sdk", "AWS_ROLE_SESSION_NAME": "sdk", "AWS_ENDPOINT_URL_STS": "sdk",
	"AWS_CONFIG_FILE": "sdk", "AWS_SHARED_CREDENTIALS_FILE": "sdk",
	// Set by the GitHub runner.
	"GITHUB_OUTPUT": "runner", "RUNNER_TOOL_CACHE": "runner",
	// GitLab's predefined variables.
	"CI_COMMIT_SHA": "gitlab", "CI_PIPELINE_SOURCE": "gitlab",
	// A GitLab schedule's variable and a repository variable, in docs/prune.md's examples.
	"PRUNE_ROLE": "example",
	// The development scripts' and tests' own.
	"S3AM_CACHE": "scripts", "S3AM_IMAGE_TESTS": "scripts", "S3AM_CPUPROFILE": "scripts",
	"S3AM_DOWNLOAD_URL": "native", "S3AM_RELEASES_URL": "native",
	"S3AM_BENCH_REPO": "scripts", "NETPROXY_LOG": "scripts",
	// Other tools' own.
	"CGO_ENABLED": "go", "CONTAINERS_CONF": "podman",
	// Read by Go's crypto/x509 (and internal/roots, which mirrors it).
	"SSL_CERT_FILE": "go", "SSL_CERT_DIR": "go",
}

// Lower-case, dashed names in backticks that are neither an input nor an
// output, each for a reason.
var otherDashed = map[string]string{
	"fail-on-cache-miss":         "actions/cache's input",
	"configure-aws-credentials":  "aws-actions' action",
	"self-test":                  "this repository's workflow",
	"package-hash":               "the object metadata",
	"x-amz-meta-commit-hash":     "the object metadata",
	"x-amz-meta-package-hash":    "the object metadata",
	"x-amz-meta-code-hash":       "the object metadata",
	"x-amz-checksum-crc32c":      "an S3 header",
	"x-amz-copy-source-if-match": "an S3 header",
	"aws-chunked":                "an S3 content encoding",
	"s3-asset-manager":           "the tool",
	"amz-sdk-invocation-id":      "an AWS SDK header",
	"amz-sdk-request":            "an AWS SDK header",
	"registry-image":             "a Concourse resource type",
	"us-east-1":                  "an AWS region",
	"working-tree-encoding":      "a git attribute",
	"salt-sha256":                "a line of the file list",
}

var (
	variableName = regexp.MustCompile(`\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b`)
	dashedName   = regexp.MustCompile("`([a-z][a-z0-9]*(?:-[a-z0-9]+)+)`")
	stepOutput   = regexp.MustCompile(`steps\.[A-Za-z0-9_-]+\.outputs\.([A-Za-z0-9_-]+)`)
)

// TestDocsNameOnlyWhatExists: every setting, input, output or environment
// variable the docs name exists, so a renamed or removed one cannot linger.
func TestDocsNameOnlyWhatExists(t *testing.T) {
	settings := map[string]bool{}
	inputs := map[string]bool{"mode": true, "version": true}
	for _, s := range config.Settings {
		settings[s.Env] = true
		inputs[s.Input] = true
	}
	outputs := map[string]bool{}
	for o, d := range ghaction.DotenvNames() {
		outputs[o] = true
		if d != "" {
			settings[d] = true // the dotenv file's names
		}
	}
	code := repositoryText(t)
	unknown, mentioned := map[string][]string{}, map[string]bool{}
	for _, p := range pages(t) {
		for n, line := range strings.Split(p.Text, "\n") {
			at := fmt.Sprintf("%s:%d", p.Path, n+1)
			for _, v := range variableName.FindAllString(line, -1) {
				mentioned[v] = true
				if settings[v] {
					continue
				}
				if _, ok := otherVariables[v]; !ok {
					unknown[v] = append(unknown[v], at)
				} else if strings.HasPrefix(v, "S3AM_") && !strings.Contains(code, v) {
					t.Errorf("%s: %s is not read anywhere in the repository", at, v)
				}
			}
			for _, m := range stepOutput.FindAllStringSubmatch(line, -1) {
				if !outputs[m[1]] {
					t.Errorf("%s: steps.*.outputs.%s: no such output", at, m[1])
				}
			}
		}
		for n, line := range strings.Split(p.Prose(), "\n") {
			for _, m := range dashedName.FindAllStringSubmatch(line, -1) {
				mentioned["`"+m[1]+"`"] = true
				if _, ok := otherDashed[m[1]]; !inputs[m[1]] && !outputs[m[1]] && !ok {
					unknown["`"+m[1]+"`"] = append(unknown["`"+m[1]+"`"], fmt.Sprintf("%s:%d", p.Path, n+1))
				}
			}
		}
	}
	for n := range otherVariables {
		if !mentioned[n] {
			t.Errorf("otherVariables lists %s, which no page mentions: remove it", n)
		}
	}
	for n := range otherDashed {
		if !mentioned["`"+n+"`"] {
			t.Errorf("otherDashed lists %s, which no page mentions: remove it", n)
		}
	}
	names := make([]string, 0, len(unknown))
	for n := range unknown {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Errorf("%s (%s): not a setting, input or output of the tool; fix the name, or list it in otherVariables or otherDashed with its reason", n, strings.Join(unknown[n], ", "))
	}
}

// repositoryText is every script and Go file of the repository, where the
// S3AM_ variables the docs name must be read.
func repositoryText(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") && name != ".ci" && name != ".github" || name == "dist" || name == "testdata" || name == "docs" || name == "docscheck") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".md") {
			return nil
		}
		if strings.HasSuffix(path, ".go") || strings.HasSuffix(path, ".sh") || strings.HasSuffix(path, ".yml") || strings.Contains(filepath.ToSlash(path), "/scripts/") {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			b.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

var (
	mdLink  = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	notSlug = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// slug is GitHub's anchor for a heading.
func slug(h string) string {
	return strings.ReplaceAll(notSlug.ReplaceAllString(strings.ToLower(strings.TrimSpace(h)), ""), " ", "-")
}

// TestLinks: every link between the pages reaches a page that exists, and a
// heading of it when it names one, so moving a section cannot leave a link
// behind.
func TestLinks(t *testing.T) {
	ps := pages(t)
	anchors := map[string]map[string]bool{}
	for _, p := range ps {
		a := map[string]bool{}
		for _, m := range heading.FindAllStringSubmatch(p.Prose(), -1) {
			a[slug(m[1])] = true
		}
		anchors[p.Path] = a
	}
	for _, p := range ps {
		for n, line := range strings.Split(p.Prose(), "\n") {
			for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				path := p.Path
				if file != "" {
					path = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(p.Path), file)))
				}
				at := fmt.Sprintf("%s:%d", p.Path, n+1)
				if _, err := os.Stat(filepath.Join(root, path)); err != nil {
					t.Errorf("%s: link to %s: no such file", at, target)
					continue
				}
				if anchor != "" && !anchors[path][anchor] {
					t.Errorf("%s: link to %s: %s has no heading #%s", at, target, path, anchor)
				}
			}
		}
	}
}

// TestREADMEIndexesEveryPage: the README links every docs/ page, so a page
// added later is found from the front door.
func TestREADMEIndexesEveryPage(t *testing.T) {
	ps := pages(t)
	readme := ps[0]
	if readme.Path != "README.md" {
		t.Fatalf("first page is %s", readme.Path)
	}
	for _, p := range ps[1:] {
		if !strings.Contains(readme.Prose(), "]("+p.Path+")") {
			t.Errorf("README.md does not link %s; add it to the README's Documentation table", p.Path)
		}
	}
}
