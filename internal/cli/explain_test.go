package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/assets"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

const (
	listKeySuffix = "/" + assets.ListName
	latestKey     = "cache/" + assets.LatestName
)

// missAfter commits a change on top of cacheSetup's build and runs check in
// a fresh package directory; the check must miss.
func missAfter(t *testing.T, env map[string]string, repo string, change func()) result {
	t.Helper()
	change()
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "--allow-empty", "-m", "change")
	pkg := freshPackages(t, env)
	r := checkMiss(t, env, pkg, "check should miss")
	return r
}

// explanation returns the lines of the log from the "cache miss: ... from
// the build of" line on.
func explanation(r result) []string {
	lines := strings.Split(r.stderr, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "cache miss: ") && (strings.Contains(l, "from the build of") || strings.Contains(l, assets.NoEarlierBuild) || strings.Contains(l, assets.NothingCached)) {
			out := []string{l}
			for _, m := range lines[i+1:] {
				if !strings.HasPrefix(m, "  ") {
					break
				}
				out = append(out, strings.TrimPrefix(m, "  "))
			}
			return out
		}
	}
	return nil
}

func TestMissExplained(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		tests := []struct {
			name   string
			change func(t *testing.T, env map[string]string, repo string)
			head   string   // the headline
			lines  []string // the lines under it
		}{
			{"edit", func(t *testing.T, env map[string]string, repo string) {
				writeFiles(t, repo, map[string]string{"lambdas/fn1/index.py": "def handler(): return 2\n"})
			}, "1 file differs", []string{"modified lambdas/fn1/index.py"}},
			{"addition", func(t *testing.T, env map[string]string, repo string) {
				writeFiles(t, repo, map[string]string{"lambdas/fn1/util.py": "x = 1\n"})
			}, "1 file differs", []string{"added lambdas/fn1/util.py"}},
			{"deletion", func(t *testing.T, env map[string]string, repo string) {
				git(t, repo, "rm", "-q", "lambdas/fn2/handler.x")
			}, "1 file differs", []string{"deleted lambdas/fn2/handler.x"}},
			{"rename", func(t *testing.T, env map[string]string, repo string) {
				git(t, repo, "mv", "lambdas/fn1/index.py", "lambdas/fn1/main.py")
			}, "1 file differs", []string{"renamed lambdas/fn1/index.py → lambdas/fn1/main.py"}},
			{"mode", func(t *testing.T, env map[string]string, repo string) {
				os.Chmod(filepath.Join(repo, "lambdas/fn1/index.py"), 0o755)
			}, "1 file differs", []string{"mode changed lambdas/fn1/index.py (100644 → 100755)"}},
			{"patterns", func(t *testing.T, env map[string]string, repo string) {
				env["CODE_HASH_FIND_FILTER"] = "lambdas/**"
			}, "the patterns changed and 1 file differs", []string{
				"patterns were lambdas/** !lambdas/**/*.md, now lambdas/**",
				"added lambdas/fn1/NOTES.md",
			}},
			{"salt", func(t *testing.T, env map[string]string, repo string) {
				env["CODE_HASH_SALT"] = "node22"
			}, "the salt changed", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
				r := missAfter(t, env, d.repo, func() { tt.change(t, env, d.repo) })
				got := explanation(r)
				want := append([]string{fmt.Sprintf("cache miss: %s from the build of %s (just now)%s", tt.head, d.head[:7], map[bool]string{true: ":"}[len(tt.lines) > 0])}, tt.lines...)
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("explanation:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), r.stderr)
				}
			})
		}
	})
}

// The explanation needs no history: a depth-1 clone (actions/checkout's
// default) finds the earlier build through the pointer.
func TestMissExplainedInShallowClone(t *testing.T) {
	t.Parallel()
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
	commit(t, d.repo, map[string]string{"lambdas/fn2/new.x": "new\n"})
	clone := filepath.Join(t.TempDir(), "clone")
	git(t, "", "clone", "-q", "--depth", "1", "file://"+d.repo, clone)
	if n := git(t, clone, "rev-list", "--count", "HEAD"); n != "1" {
		t.Fatalf("clone has %s commits, want 1", n)
	}
	env["GIT_REPO_PATH"] = clone
	freshPackages(t, env)
	// As in GitHub Actions: the job summary says it too.
	summary := filepath.Join(t.TempDir(), "summary.md")
	env["GITHUB_ACTIONS"], env["GITHUB_STEP_SUMMARY"] = "true", summary
	r := run(t, env, "check")
	got := strings.Join(explanation(r), "\n")
	want := "cache miss: 1 file differs from the build of " + d.head[:7] + " (just now):\nadded lambdas/fn2/new.x"
	if got != want {
		t.Fatalf("explanation:\n%s\nwant:\n%s\nlog:\n%s", got, want, r.stderr)
	}
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	if want := "**Why the cache missed**: 1 file differs from the build of " + d.head[:7] + " (just now).\n\n- added lambdas/fn2/new.x\n"; !strings.Contains(string(md), want) {
		t.Errorf("job summary lacks %q:\n%s", want, md)
	}
}

// The next miss compares with the newest build, and the pointer keeps
// several, so concurrent branches each find one.
func TestMissExplainedAgainstNewestBuild(t *testing.T) {
	t.Parallel()
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
	second := commit(t, d.repo, map[string]string{"lambdas/fn1/a.py": "a\n"})
	pkg := freshPackages(t, env)
	checkMiss(t, env, pkg, "check")
	writeFiles(t, pkg, map[string]string{"fn1.zip": "two"})
	if r := run(t, env, "upload"); r.code != ExitOK {
		t.Fatal(r)
	}
	r := missAfter(t, env, d.repo, func() { writeFiles(t, d.repo, map[string]string{"lambdas/fn1/b.py": "b\n"}) })
	got := strings.Join(explanation(r), "\n")
	want := "cache miss: 1 file differs from the build of " + second[:7] + " (just now):\nadded lambdas/fn1/b.py"
	if got != want {
		t.Fatalf("explanation:\n%s\nwant:\n%s", got, want)
	}
	_, body := srv.Get(t, bucket, latestKey)
	if n := strings.Count(string(body), `"codeHash"`); n != 2 {
		t.Errorf("pointer names %d builds, want 2: %s", n, body)
	}
}

func TestMissExplanationCapped(t *testing.T) {
	t.Parallel()
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
	r := missAfter(t, env, d.repo, func() {
		files := map[string]string{}
		for i := range 30 {
			files[fmt.Sprintf("lambdas/many/f%02d.py", i)] = fmt.Sprint(i)
		}
		writeFiles(t, d.repo, files)
	})
	got := explanation(r)
	if len(got) != 21 || got[0] != "cache miss: 30 files differ from the build of "+d.head[:7]+" (just now):" ||
		got[19] != "added lambdas/many/f18.py" || got[20] != "… and 11 more" {
		t.Fatalf("capped explanation (%d lines):\n%s", len(got), strings.Join(got, "\n"))
	}
}

// Whatever is wrong with the pointer or the list, the check's outcome is the
// same and the explanation says there is nothing to compare with.
func TestDamagedExplanationIsHarmless(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		tests := []struct {
			name   string
			damage func(t *testing.T, bucket, codeHash string)
		}{
			{"no pointer", func(t *testing.T, bucket, codeHash string) {
				deleteObject(t, srv, bucket, latestKey)
			}},
			{"pointer not JSON", func(t *testing.T, bucket, codeHash string) {
				putObject(t, srv, bucket, latestKey, []byte("\x1b[31mnot json"))
			}},
			{"pointer of another format", func(t *testing.T, bucket, codeHash string) {
				putObject(t, srv, bucket, latestKey, []byte(`{"format":"s3-asset-manager/latest/v9","entries":[]}`))
			}},
			{"pointer entry malformed", func(t *testing.T, bucket, codeHash string) {
				putObject(t, srv, bucket, latestKey, []byte(`{"format":"s3-asset-manager/latest/v1","entries":[{"codeHash":"../x","commit":"\u001b[2J","created":"2026-01-01T00:00:00Z"}]}`))
			}},
			{"pointer too big", func(t *testing.T, bucket, codeHash string) {
				putObject(t, srv, bucket, latestKey, bytes.Repeat([]byte(" "), 1<<20))
			}},
			{"list missing", func(t *testing.T, bucket, codeHash string) {
				deleteObject(t, srv, bucket, "cache/"+codeHash+listKeySuffix)
			}},
			{"list damaged", func(t *testing.T, bucket, codeHash string) {
				_, body := srv.Get(t, bucket, "cache/"+codeHash+listKeySuffix)
				body[len(body)/2] ^= 0xff
				putObject(t, srv, bucket, "cache/"+codeHash+listKeySuffix, body)
			}},
			{"list of another code hash", func(t *testing.T, bucket, codeHash string) {
				putObject(t, srv, bucket, "cache/"+codeHash+listKeySuffix, gzipText(t,
					"s3-asset-manager file list v1\ncode-hash "+strings.Repeat("0", 64)+"\nsalt \npattern **\n"))
			}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d, codeHash := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
				tt.damage(t, bucket, codeHash)
				r := missAfter(t, env, d.repo, func() { writeFiles(t, d.repo, map[string]string{"lambdas/fn1/index.py": "2\n"}) })
				got := explanation(r)
				// No pointer at all: simply nothing in the cache yet.
				want := "cache miss: " + assets.NoEarlierBuild + " ("
				if tt.name == "no pointer" {
					want = "cache miss: " + assets.NothingCached
				}
				if len(got) != 1 || !strings.HasPrefix(got[0], want) || tt.name == "no pointer" && got[0] != want {
					t.Fatalf("explanation: %q, want %q\n%s", got, want, r.stderr)
				}
				if strings.ContainsAny(r.stderr, "\x1b\r") {
					t.Errorf("the log holds a control character: %q", r.stderr)
				}
				// The next upload repairs the pointer and stores its list.
				writeFiles(t, env["PACKAGE_DIRECTORY"], map[string]string{"fn1.zip": "two"})
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatalf("upload after a damaged pointer: %v", r)
				}
				r = missAfter(t, env, d.repo, func() { writeFiles(t, d.repo, map[string]string{"lambdas/fn1/index.py": "3\n"}) })
				if got := explanation(r); len(got) != 2 || got[1] != "modified lambdas/fn1/index.py" {
					t.Fatalf("after repair: %q\n%s", got, r.stderr)
				}
			})
		}
	})
}

// A bucket writer's list cannot write escapes or lines of its own into the log.
func TestHostileListIsPrintedSafely(t *testing.T) {
	t.Parallel()
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	env, d, codeHash := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
	_, body := srv.Get(t, bucket, "cache/"+codeHash+listKeySuffix)
	text := gunzipText(t, body)
	text += "100644 " + strings.Repeat("a", 40) + " " + `"zz\x1b[2J\n::error::fake"` + "\n"
	putObject(t, srv, bucket, "cache/"+codeHash+listKeySuffix, gzipText(t, text))
	r := missAfter(t, env, d.repo, func() { writeFiles(t, d.repo, map[string]string{"lambdas/fn1/index.py": "2\n"}) })
	if strings.Contains(r.stderr, "\x1b") || strings.Contains(r.stderr, "\n::error") {
		t.Fatalf("the list's name reached the log raw:\n%q", r.stderr)
	}
	got := explanation(r)
	if len(got) != 3 || got[2] != `deleted "zz\x1b[2J\n\x3a\x3aerror\x3a\x3afake"` {
		t.Fatalf("explanation: %q", got)
	}
}

// A hit reads no list, and at most the pointer (its read starts during the
// hash, before the cache lookup answers, and is dropped on a hit); a miss
// reads each once.
func TestExplanationCost(t *testing.T) {
	t.Parallel()
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
	proxy := s3test.NewProxy(t, srv.Endpoint)
	var mu sync.Mutex
	var reqs []string
	proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
		mu.Lock()
		defer mu.Unlock()
		reqs = append(reqs, r.Method+" "+r.URL.Path)
		return s3test.Pass
	}
	env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
	explaining := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, q := range reqs {
			if strings.Contains(q, "/cache/.s3-asset-manager-latest") || strings.HasSuffix(q, listKeySuffix) {
				out = append(out, q)
			}
		}
		reqs = nil
		return out
	}

	commit(t, d.repo, map[string]string{"README.md": "docs only\n"})
	pkg := freshPackages(t, env)
	if r := run(t, env, "check"); !exists(filepath.Join(pkg, ".found")) {
		t.Fatalf("docs-only commit should hit: %v", r)
	}
	for _, q := range explaining() {
		if q != "GET /"+bucket+"/cache/.s3-asset-manager-latest.json" {
			t.Errorf("a hit made an explanation request beyond the pointer's read: %q", q)
		}
	}
	if exists(filepath.Join(pkg, assets.CodeHashListFile)) {
		t.Error("a hit kept a file list")
	}
	missAfter(t, env, d.repo, func() { writeFiles(t, d.repo, map[string]string{"lambdas/fn1/index.py": "2\n"}) })
	got := explaining()
	if len(got) != 2 || !strings.HasPrefix(got[0], "GET ") || !strings.HasPrefix(got[1], "GET ") {
		t.Errorf("a miss made %d explanation requests, want the pointer and one list: %q", len(got), got)
	}
}

// With a read-only cache nothing is kept for upload, and nothing is written.
func TestReadOnlyCacheKeepsNoList(t *testing.T) {
	t.Parallel()
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
	env["CODE_HASH_CACHE_READ_ONLY"] = "true"
	r := missAfter(t, env, d.repo, func() { writeFiles(t, d.repo, map[string]string{"lambdas/fn1/index.py": "2\n"}) })
	if got := explanation(r); len(got) != 2 {
		t.Errorf("a read-only check should still explain: %q", got)
	}
	if exists(filepath.Join(env["PACKAGE_DIRECTORY"], assets.CodeHashListFile)) {
		t.Error("a read-only check kept a file list for upload")
	}
}

func gzipText(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gunzipText(t *testing.T, data []byte) string {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestHashDiff(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d, codeHash := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
		git(t, d.repo, "tag", "built")
		writeFiles(t, d.repo, map[string]string{"lambdas/fn1/index.py": "2\n", "lambdas/fn2/new.x": "new\n"}) // not even committed
		want := "2 files differ from the build of " + d.head[:7] + " (just now):\n  modified lambdas/fn1/index.py\n  added lambdas/fn2/new.x\n"
		for _, ref := range []string{d.head, d.head[:8], "built", codeHash} {
			r := run(t, env, "hash", "--diff", ref)
			if r.code != ExitOK || r.stdout != want {
				t.Errorf("hash --diff %s:\n%v\nwant stdout:\n%s", ref, r, want)
			}
		}
		if r := run(t, env, "hash", "--diff="+d.head[:8]); r.code != ExitOK || r.stdout != want {
			t.Errorf("hash --diff=REF: %v", r)
		}
		// Uncapped, unlike the log of a miss.
		many := map[string]string{}
		for i := range 30 {
			many[fmt.Sprintf("lambdas/many/f%02d.py", i)] = "x"
		}
		writeFiles(t, d.repo, many)
		if r := run(t, env, "hash", "--diff", "built"); r.code != ExitOK || strings.Count(r.stdout, "\n") != 33 {
			t.Errorf("hash --diff should list all 32 differences: %v", r)
		}

		other := commit(t, d.repo, map[string]string{"lambdas/fn1/index.py": "3\n"})
		for _, tc := range []struct {
			args []string
			code int
		}{
			{[]string{"--diff", other}, ExitNotFound},                   // a commit never built
			{[]string{"--diff", strings.Repeat("e", 64)}, ExitNotFound}, // a code hash never built
			{[]string{"--diff", "no-such-branch"}, ExitUsage},
			{[]string{"--diff"}, ExitUsage},
			{[]string{"--diff="}, ExitUsage},
			{[]string{"--diff", "-v"}, ExitUsage},
		} {
			if r := run(t, env, append([]string{"hash"}, tc.args...)...); r.code != tc.code {
				t.Errorf("hash %q: exit %d, want %d\n%v", tc.args, r.code, tc.code, r)
			}
		}
		// The list gone: not found, named.
		deleteObject(t, srv, bucket, "cache/"+codeHash+listKeySuffix)
		if r := run(t, env, "hash", "--diff", "built"); r.code != ExitNotFound || !strings.Contains(r.stderr, codeHash) {
			t.Errorf("hash --diff without a list: %v", r)
		}
		// Without a bucket: a usage error before anything is read.
		delete(env, "PACKAGE_ASSETS_BUCKET")
		if r := run(t, env, "hash", "--diff", "built"); r.code != ExitUsage || !strings.Contains(r.stderr, "PACKAGE_ASSETS_BUCKET") {
			t.Errorf("hash --diff without a bucket: %v", r)
		}
	})
}

// With components, each component's miss is explained against its own
// earlier build, in the log and, on one line, in its reason.
func TestComponentMissExplained(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoBuilt(t, srv, bucket)
		for _, n := range allComponents {
			if _, body := srv.Get(t, bucket, "cache/"+assets.LatestDir+n+".json"); !strings.Contains(string(body), d.head) {
				t.Errorf("%s: pointer %s", n, body)
			}
		}
		commit(t, d.repo, map[string]string{"lambdas/fn2/index.js": "exports.fn2 = 2\n", "lambdas/fn2/util.js": "u\n"})
		freshPackages(t, env)
		r, out := checkOutputs(t, env)
		if r.code != ExitOK {
			t.Fatal(r)
		}
		var states map[string]struct {
			Build  bool
			Reason string
		}
		if err := json.Unmarshal([]byte(out["components"]), &states); err != nil {
			t.Fatal(err)
		}
		want := "2 files differ from " + d.head[:7] + ": modified lambdas/fn2/index.js; added lambdas/fn2/util.js"
		if fn2 := states["fn2"]; !fn2.Build || fn2.Reason != want {
			t.Errorf("fn2's reason %q, want %q", fn2.Reason, want)
		}
		if fn1 := states["fn1"]; fn1.Build || fn1.Reason != "" {
			t.Errorf("fn1 (a hit): %+v", fn1)
		}
		wantLog := "component fn2: cache miss: 2 files differ from the build of " + d.head[:7] + " (just now):\n" +
			"component fn2:   modified lambdas/fn2/index.js\ncomponent fn2:   added lambdas/fn2/util.js\n"
		if !strings.Contains(r.stderr, wantLog) {
			t.Errorf("log lacks\n%s\nlog:\n%s", wantLog, r.stderr)
		}

		// hash --diff compares one component, named by PACKAGE_COMPONENT.
		if r := run(t, env, "hash", "--diff", d.head); r.code != ExitUsage || !strings.Contains(r.stderr, "PACKAGE_COMPONENT") {
			t.Errorf("hash --diff without PACKAGE_COMPONENT: %v", r)
		}
		env["PACKAGE_COMPONENT"] = "fn2"
		wantOut := "2 files differ from the build of " + d.head[:7] + " (just now):\n  modified lambdas/fn2/index.js\n  added lambdas/fn2/util.js\n"
		if r := run(t, env, "hash", "--diff", d.head[:10]); r.code != ExitOK || r.stdout != wantOut {
			t.Errorf("hash --diff of fn2: %v\nwant:\n%s", r, wantOut)
		}
		env["PACKAGE_COMPONENT"] = "fn1"
		if r := run(t, env, "hash", "--diff", d.head); r.code != ExitOK || !strings.HasPrefix(r.stdout, "nothing differs from the build of ") {
			t.Errorf("hash --diff of fn1: %v", r)
		}
	})
}

// A component's reason is one line, the same in .components.json, the
// components output and the dotenv file: on a fresh bucket, that nothing is
// in the cache yet; after a change, what differs.
func TestComponentReasonSameEverywhere(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoSetup(t, srv, bucket)
		env["RESULT_DOTENV_FILE"] = filepath.Join(t.TempDir(), "result.env")
		reasons := func(t *testing.T, want map[string]string) {
			t.Helper()
			r, out := checkOutputs(t, env)
			if r.code != ExitOK {
				t.Fatal(r)
			}
			dotenv, err := os.ReadFile(env["RESULT_DOTENV_FILE"])
			if err != nil {
				t.Fatal(err)
			}
			var fromDotenv string
			for _, l := range strings.Split(string(dotenv), "\n") {
				if v, ok := strings.CutPrefix(l, "COMPONENTS="); ok {
					fromDotenv = v
				}
			}
			state, err := os.ReadFile(filepath.Join(env["PACKAGE_DIRECTORY"], ".components.json"))
			if err != nil {
				t.Fatal(err)
			}
			var file struct {
				Components []struct{ Name, Reason string }
			}
			if err := json.Unmarshal(state, &file); err != nil {
				t.Fatal(err)
			}
			fromFile := map[string]string{}
			for _, c := range file.Components {
				fromFile[c.Name] = c.Reason
			}
			for where, text := range map[string]string{"components output": out["components"], "dotenv": fromDotenv} {
				var states map[string]struct{ Reason string }
				if err := json.Unmarshal([]byte(text), &states); err != nil {
					t.Fatalf("%s: %v: %q", where, err, text)
				}
				for name, w := range want {
					if got := states[name].Reason; got != w {
						t.Errorf("%s: %s's reason %q, want %q", where, name, got, w)
					}
				}
			}
			for name, w := range want {
				if got := fromFile[name]; got != w {
					t.Errorf(".components.json: %s's reason %q, want %q", name, got, w)
				}
			}
		}
		reasons(t, map[string]string{"api": assets.NothingCached, "fn1": assets.NothingCached, "fn2": assets.NothingCached})

		build(t, d.pkg, "v1", allComponents...)
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatalf("upload: %v", r)
		}
		commit(t, d.repo, map[string]string{"lambdas/fn2/index.js": "exports.fn2 = 2\n"})
		freshPackages(t, env)
		reasons(t, map[string]string{"fn1": "", "fn2": "1 file differs from " + d.head[:7] + ": modified lambdas/fn2/index.js"})
	})
}

// One file is "1 file", in every line that counts files.
func TestOneFileIsSingular(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setupWith(t, srv, bucket, map[string]string{"lambdas/fn1/index.py": "1\n", "README.md": "docs\n"})
		env["CODE_HASH_FIND_FILTER"] = lambdaFilter
		r := run(t, env, "check")
		if r.code != ExitOK || !strings.Contains(r.stderr, " over 1 file (") || !strings.Contains(r.stderr, "cache miss: "+assets.NothingCached+"\n") {
			t.Fatalf("check: %v", r)
		}
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
		r = run(t, env, "upload")
		if r.code != ExitOK || !strings.Contains(r.stderr, ": 1 file to upload from ") || !strings.Contains(r.stderr, "result: uploaded 1 file, ") {
			t.Fatalf("upload: %v", r)
		}
		commit(t, d.repo, map[string]string{"README.md": "more docs\n"})
		freshPackages(t, env)
		r = run(t, env, "check")
		if r.code != ExitOK || !strings.Contains(r.stderr, "cache hit: copying 1 file, ") || !strings.Contains(r.stderr, "copied 1 file, ") {
			t.Fatalf("check after a docs change: %v", r)
		}
		if strings.Contains(r.stderr, " 1 files") {
			t.Errorf("the log says \"1 files\":\n%s", r.stderr)
		}
	})
}

// --diff takes git's revision syntax, as every git user types it.
func TestHashDiffRevisionSyntax(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
		git(t, d.repo, "tag", "-a", "-m", "release", "v1.2.0")
		commit(t, d.repo, map[string]string{"lambdas/fn1/index.py": "2\n"})
		want := "1 file differs from the build of " + d.head[:7] + " (just now):\n  modified lambdas/fn1/index.py\n"
		for _, ref := range []string{"HEAD~1", "HEAD^", "main^", "main~1", "v1.2.0", d.head[:7]} {
			if r := run(t, env, "hash", "--diff", ref); r.code != ExitOK || r.stdout != want {
				t.Errorf("hash --diff %s:\n%v\nwant stdout:\n%s", ref, r, want)
			}
		}
		// Further back than the repository goes: a usage error naming it.
		if r := run(t, env, "hash", "--diff", "HEAD~5"); r.code != ExitUsage || !strings.Contains(r.stderr, "no such commit") {
			t.Errorf("hash --diff HEAD~5: %v", r)
		}
	})
}

// The salt is never stored in clear: the file list in the package directory
// and in the bucket holds its digest, which still tells a changed salt. A
// list written by the previous version (salt in clear) is compared as one of
// this version's would be.
func TestSaltStoredAsDigest(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		const salt = "toolchain-7 do-not-print"
		for _, old := range []bool{false, true} {
			t.Run(map[bool]string{false: "this version's list", true: "a list of the previous version"}[old], func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setupWith(t, srv, bucket, map[string]string{"lambdas/fn1/index.py": "1\n", "README.md": "docs\n"})
				env["CODE_HASH_FIND_FILTER"] = lambdaFilter
				env["CODE_HASH_SALT"] = salt
				if r := run(t, env, "check"); r.code != ExitOK {
					t.Fatal(r)
				}
				local, err := os.ReadFile(filepath.Join(d.pkg, ".code-hash-files.gz"))
				if err != nil {
					t.Fatal(err)
				}
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatal(r)
				}
				codeHash, _ := os.ReadFile(filepath.Join(d.pkg, ".code-hash"))
				key := "cache/" + string(codeHash) + listKeySuffix
				_, stored := srv.Get(t, bucket, key)
				for where, data := range map[string][]byte{"package directory": local, "bucket": stored} {
					if text := gunzipText(t, data); strings.Contains(text, "do-not-print") || !strings.Contains(text, "\nsalt-sha256 ") {
						t.Errorf("the list in the %s holds the salt, or no digest:\n%s", where, text)
					}
				}
				if old {
					// As the previous version wrote it: the salt in clear.
					text := gunzipText(t, stored)
					i := strings.Index(text, "\nsalt-sha256 ")
					j := i + 1 + strings.Index(text[i+1:], "\n")
					putObject(t, srv, bucket, key, gzipText(t, text[:i]+"\nsalt "+salt+text[j:]))
				}

				// The same salt, a file changed: the salt is not named.
				r := missAfter(t, env, d.repo, func() { writeFiles(t, d.repo, map[string]string{"lambdas/fn1/index.py": "2\n"}) })
				if got := explanation(r); len(got) != 2 || !strings.HasPrefix(got[0], "cache miss: 1 file differs from ") {
					t.Errorf("same salt: %q\n%s", got, r.stderr)
				}
				// Another salt: named, its value never printed.
				env["CODE_HASH_SALT"] = "toolchain-8"
				r = missAfter(t, env, d.repo, func() {})
				if got := explanation(r); len(got) < 1 || !strings.HasPrefix(got[0], "cache miss: the salt changed and 1 file differs from ") {
					t.Errorf("another salt: %q\n%s", got, r.stderr)
				}
				if strings.Contains(r.stderr, "toolchain") {
					t.Errorf("the log prints a salt:\n%s", r.stderr)
				}
			})
		}
	})
}
