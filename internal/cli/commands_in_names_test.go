package cli

import (
	"encoding/json"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// Names the GitHub runner would read as workflow commands: it takes a line
// as one when it starts with "::" after leading white space, or when it
// holds "##[" anywhere (the legacy form). Package files, repository files and
// a record in the bucket may be named so; the tool's log must still hold no
// command but its own (run with GITHUB_ACTIONS=true, it writes ::group::,
// ::endgroup:: and ::error:: to stdout).
func TestNamesCannotForgeWorkflowCommands(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setupWith(t, srv, bucket, map[string]string{"lambdas/fn1/index.py": "def handler(): return 1\n"})
		env["CODE_HASH_FIND_FILTER"] = lambdaFilter
		gh := t.TempDir()
		env["GITHUB_ACTIONS"] = "true"
		env["GITHUB_OUTPUT"] = filepath.Join(gh, "output")
		env["GITHUB_STEP_SUMMARY"] = filepath.Join(gh, "summary.md")
		var runs []result
		logged := func(r result) result { runs = append(runs, r); return r }

		artifacts := map[string][]byte{
			"::warning title=forged::x.zip":  []byte("a"),
			"x ##[error]forged legacy.zip":   []byte("bb"),
			"  ::add-mask::fn1.zip":          []byte("ccc"),
			"##[stop-commands]token.zip":     []byte("dddd"),
			"fn1.zip":                        []byte("plain"),
			"\u00a0::notice::nbsp-start.zip": []byte("e"),
		}
		if r := logged(run(t, env, "check")); r.code != ExitOK {
			t.Fatalf("check: %v", r)
		}
		writeArtifacts(t, d.pkg, artifacts)
		r := logged(run(t, env, "upload"))
		if r.code != ExitOK || !strings.Contains(r.stderr, "uploaded 6 files") {
			t.Fatalf("upload: %v", r)
		}
		if !strings.Contains(r.stderr, "\n  fn1.zip  ") {
			t.Errorf("an ordinary name is not shown as it is:\n%s", r.stderr)
		}

		// download fetches every file under its own name.
		denv, dir := deployEnv(t, srv, bucket, d.head)
		for k, v := range env {
			if strings.HasPrefix(k, "GITHUB_") {
				denv[k] = v
			}
		}
		if r := logged(run(t, denv, "download")); r.code != ExitOK {
			t.Fatalf("download: %v", r)
		}
		sameFiles(t, dir, artifacts)

		// A repository file named so, in a cache miss's explanation and in
		// hash -v.
		commit(t, d.repo, map[string]string{"lambdas/fn1/##[warning]forged.py": "x\n", "lambdas/fn1/::error::forged.py": "y\n"})
		freshPackages(t, env)
		r = logged(run(t, env, "check"))
		if r.code != ExitOK || !strings.Contains(r.stderr, "2 files differ from the build of") {
			t.Fatalf("check after the change should explain its miss: %v", r)
		}
		if r := logged(run(t, env, "hash", "-v")); r.code != ExitOK || !strings.Contains(r.stdout, "forged.py") {
			t.Fatalf("hash -v: %v", r)
		}

		// An unsigned record in the bucket naming such files, which are not
		// stored: the lookup's reason names them, and download fails on them.
		other := strings.Repeat("cd", 20)
		body, err := json.Marshal(manifest.Record{
			Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: other, Created: time.Now().UTC(),
			Files: []manifest.File{
				{Name: "x ##[error]gone.zip", Size: 1, SHA256: strings.Repeat("a", 64)},
				{Name: "::error::gone.zip", Size: 1, SHA256: strings.Repeat("a", 64)},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		putObject(t, srv, bucket, "artifacts/"+other+"/"+manifest.Name, body)
		denv["PACKAGE_ASSETS_COMMIT"] = other
		if r := logged(run(t, denv, "download")); r.code != ExitNotFound || !strings.Contains(r.stderr, "gone.zip") {
			t.Fatalf("download of a set whose files are missing: %v", r)
		}

		own := regexp.MustCompile(`^::(group::s3-asset-manager [a-z]+|endgroup::|error title=s3-asset-manager::.*)$`)
		for _, r := range runs {
			for stream, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr} {
				for _, line := range strings.Split(text, "\n") {
					trimmed := strings.TrimLeftFunc(line, unicode.IsSpace)
					if stream == "stdout" && own.MatchString(line) {
						continue
					}
					if strings.HasPrefix(trimmed, "::") || strings.Contains(line, "##[") {
						t.Errorf("%s line the runner reads as a workflow command: %q\n%v", stream, line, r)
					}
				}
			}
		}
		if len(runs) != 6 {
			t.Fatalf("%d runs", len(runs))
		}
		if b, err := os.ReadFile(env["GITHUB_STEP_SUMMARY"]); err != nil || !strings.Contains(string(b), "fn1.zip") {
			t.Errorf("job summary: %v\n%s", err, b)
		}
	})
}

// The log's last guard: a message that quotes something no caller made
// printable (a store's error message) still reaches the runner harmlessly.
func TestLogQuotesCommandLines(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	logger := log.New(noCommands{&b}, "", 0)
	logger.Printf("error: put s3://b/k: AccessDenied: no access to x ##[error]y")
	logger.Printf("plan:\n  ::warning::x\n  fine a::b")
	logger.Printf("ordinary: a:b #c")
	want := `"error\x3a put s3\x3a//b/k\x3a AccessDenied\x3a no access to x \x23\x23[error]y"` + "\n" +
		"plan:\n" + `"  \x3a\x3awarning\x3a\x3ax"` + "\n  fine a::b\n" +
		"ordinary: a:b #c\n"
	if b.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", b.String(), want)
	}
}
