package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/ghaction"
)

// Nothing in the package directory can add a step output or a dotenv line.
// A forged .commit-hash that closes the value with go-githubactions' fixed
// delimiter and opens an output of its own, or that holds a dotenv line, is
// refused: the files hold only the tool's own outputs, one line each in the
// dotenv file. (upload with .found reads the marker without touching S3.)
func TestForgedMarkerCannotAddOutputs(t *testing.T) {
	t.Parallel()
	const commit = "3f786850e387550fdab836ed7e6dc881de23001b"
	const fixed = "_GitHubActionsFileCommandDelimeter_"
	for name, forged := range map[string]string{
		"fixed delimiter": commit + "\n" + fixed + "\ninjected<<" + fixed + "\nyes",
		"dotenv line":     commit + "\nINJECTED=yes",
		"carriage return": commit + "\rINJECTED=yes",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			pkg := filepath.Join(dir, "packages")
			outFile, dotenv := filepath.Join(dir, "output"), filepath.Join(dir, "result.env")
			writeFiles(t, pkg, map[string]string{".found": "", ".commit-hash": forged, "fn1.zip": "x"})
			if err := os.WriteFile(outFile, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{
				"PACKAGE_ASSETS_BUCKET":   "some-bucket",
				"PACKAGE_ASSETS_ENDPOINT": "http://127.0.0.1:1",
				"PACKAGE_DIRECTORY":       pkg,
				"RESULT_DOTENV_FILE":      dotenv,
				"GITHUB_ACTIONS":          "true",
				"GITHUB_OUTPUT":           outFile,
			}
			r := run(t, env, "upload")

			b, err := os.ReadFile(outFile)
			if err != nil {
				t.Fatal(err)
			}
			outputs, err := ghaction.ParseOutputFile(string(b))
			if err != nil {
				t.Fatalf("GITHUB_OUTPUT does not parse: %v\n%s\n%v", err, b, r)
			}
			for k, v := range outputs {
				if !strings.Contains(" "+strings.Join(ghaction.OutputNames, " ")+" ", " "+k+" ") {
					t.Errorf("GITHUB_OUTPUT gained output %s=%q:\n%s", k, v, b)
				}
				if strings.ContainsAny(v, "\r\n") {
					t.Errorf("output %s has a line break: %q", k, v)
				}
			}
			if outputs["found"] != "true" {
				t.Errorf("found = %q, want true (.found exists)", outputs["found"])
			}

			b, err = os.ReadFile(dotenv)
			if err != nil {
				t.Fatal(err)
			}
			line := regexp.MustCompile(`^(FOUND|CACHE_HIT|COMMIT_HASH|CODE_HASH|COMPONENTS_TO_BUILD|COMPONENTS|PREFIX)=[^\r]*$`)
			for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				if !line.MatchString(l) {
					t.Errorf("dotenv file gained line %q:\n%s", l, b)
				}
			}
			if strings.Contains(r.stdout+r.stderr, forged) {
				t.Errorf("the forged value was printed raw:\n%v", r)
			}
		})
	}
}
