package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/ghaction"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// uploaded runs check and upload of artifacts for a fresh repository and
// returns the settings and directories used.
func uploaded(t *testing.T, srv *s3test.Server, bucket string, artifacts map[string][]byte) (map[string]string, dirs) {
	t.Helper()
	return uploadedWith(t, srv, bucket, nil, artifacts)
}

// uploadedWith is uploaded with the settings extra added.
func uploadedWith(t *testing.T, srv *s3test.Server, bucket string, extra map[string]string, artifacts map[string][]byte) (map[string]string, dirs) {
	t.Helper()
	env, d := setup(t, srv, bucket)
	maps.Copy(env, extra)
	if r := run(t, env, "check"); r.code != ExitOK {
		t.Fatal(r)
	}
	writeArtifacts(t, d.pkg, artifacts)
	if r := run(t, env, "upload"); r.code != ExitOK {
		t.Fatal(r)
	}
	return env, d
}

// deployEnv is a deploy job's settings: the bucket, the commit, a fresh
// directory to download into, no repository.
func deployEnv(t *testing.T, srv *s3test.Server, bucket, commit string) (map[string]string, string) {
	t.Helper()
	env := srv.Env(bucket)
	dir := filepath.Join(t.TempDir(), "deploy")
	env["PACKAGE_DIRECTORY"] = dir
	env["GIT_REPO_PATH"] = filepath.Join(t.TempDir(), "no-repo")
	if commit != "" {
		env["PACKAGE_ASSETS_COMMIT"] = commit
	}
	return env, dir
}

// sameFiles fails unless dir holds exactly the artifacts, byte for byte
// (and nothing else, hidden files included).
func sameFiles(t *testing.T, dir string, artifacts map[string][]byte) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if want, ok := artifacts[e.Name()]; !ok || err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: not the uploaded bytes (%v)", e.Name(), err)
		}
	}
	if len(names) != len(artifacts) {
		t.Errorf("directory holds %q, want the %d artifacts", names, len(artifacts))
	}
}

// oddArtifacts are files with names S3 keys and shells find awkward, one
// of them large enough to go in parts.
func oddArtifacts() map[string][]byte {
	return map[string][]byte{
		"fn1.zip":             []byte("function one"),
		"fn 2+x %2F&ü.zip":    randomBytes(300<<10, 2),
		`quote'd "name".tar`:  randomBytes(1000, 3),
		"layer.bin":           randomBytes(40<<20+5, 4),
		"empty.txt":           {},
		"[brackets] (1).whl":  []byte("wheel"),
		"trailing.dot.":       []byte("dot"),
		"семь-unicode-名前.jar": []byte("jar"),
	}
}

// Upload then download gives back every file byte for byte, odd names
// included, whichever way the commit is named: the setting, the package
// directory's .commit-hash, or HEAD; the binary runs as "download" too.
func TestDownloadRoundTrip(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		artifacts := oddArtifacts()
		env, d := uploaded(t, srv, bucket, artifacts)

		denv, dir := deployEnv(t, srv, bucket, d.head)
		r := run(t, denv, "download")
		if r.code != ExitOK {
			t.Fatal(r)
		}
		sameFiles(t, dir, artifacts)
		for _, want := range []string{"SHA-256 verified", "result: downloaded 8 files"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("log lacks %q:\n%s", want, r.stderr)
			}
		}
		// layer.bin, 40 MiB and 5 bytes: 21 pieces of 2 MiB, in as many
		// requests as the link wanted (three of 16 MiB on a fast one).
		if !regexp.MustCompile(`layer\.bin .*\(.*, 21 pieces in \d+ requests?, SHA-256 verified\)`).MatchString(r.stderr) {
			t.Errorf("log lacks layer.bin's 21 pieces:\n%s", r.stderr)
		}

		// A deploy task after check, in its package directory: .commit-hash.
		denv, dir = deployEnv(t, srv, bucket, "")
		writeFiles(t, dir, map[string]string{".commit-hash": d.head + "\n"})
		artifacts[".commit-hash"] = []byte(d.head + "\n")
		if r := runBinary(t, t.TempDir(), "download", denv); r.code != ExitOK {
			t.Fatal(r)
		}
		sameFiles(t, dir, artifacts)
		delete(artifacts, ".commit-hash")

		// Neither: HEAD of the repository.
		denv, dir = deployEnv(t, srv, bucket, "")
		denv["GIT_REPO_PATH"] = env["GIT_REPO_PATH"]
		if r := run(t, denv, "download"); r.code != ExitOK || !strings.Contains(r.stderr, "HEAD of") {
			t.Fatal(r)
		}
		sameFiles(t, dir, artifacts)
	})
}

// download and a check that finds the set tell a deploy step every file's
// S3 key, size and package-hash, as one JSON object, and the set's prefix.
func TestDownloadOutputs(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		artifacts := map[string][]byte{"fn1.zip": []byte("one"), "a&b <c>.zip": randomBytes(5000, 1)}
		env, d := uploaded(t, srv, bucket, artifacts)
		env["PACKAGE_ASSETS_KEY_PREFIX"] = "team-a/"
		// Again under a key prefix.
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		prefix := "team-a/artifacts/" + d.head + "/"
		type file struct {
			Key         string `json:"key"`
			Size        int64  `json:"size"`
			PackageHash string `json:"packageHash"`
		}
		want := map[string]file{}
		for name, b := range artifacts {
			want[name] = file{prefix + name, int64(len(b)), sha256b64(b)}
		}
		denv, _ := deployEnv(t, srv, bucket, d.head)
		denv["PACKAGE_ASSETS_KEY_PREFIX"] = "team-a/"
		for _, tc := range []struct {
			cmd string
			env map[string]string
		}{{"check", env}, {"download", denv}} {
			out := actionsOutputs(t, tc.env, tc.cmd)
			var got map[string]file
			if err := json.Unmarshal([]byte(out[ghaction.OutputFiles]), &got); err != nil {
				t.Fatalf("%s: files output %q: %v", tc.cmd, out[ghaction.OutputFiles], err)
			}
			if !maps.Equal(got, want) || out[ghaction.OutputPrefix] != prefix || out["found"] != "true" {
				t.Errorf("%s: outputs %q\nwant files %v, prefix %s", tc.cmd, out, want, prefix)
			}
			if strings.Contains(out[ghaction.OutputFiles], "\\u0026") {
				t.Errorf("%s: names are escaped for HTML: %s", tc.cmd, out[ghaction.OutputFiles])
			}
		}

		// Not found: an empty object and no prefix, never an empty string.
		env["PACKAGE_ASSETS_KEY_PREFIX"] = "team-b/"
		out := actionsOutputs(t, env, "check")
		if out[ghaction.OutputFiles] != "{}" || out[ghaction.OutputPrefix] != "" || out["found"] != "false" {
			t.Errorf("check not found: outputs %q", out)
		}
	})
}

// actionsOutputs runs the command as a GitHub Actions step and returns its
// step outputs.
func actionsOutputs(t *testing.T, env map[string]string, cmd string) map[string]string {
	t.Helper()
	e := map[string]string{}
	for k, v := range env {
		e[k] = v
	}
	f := filepath.Join(t.TempDir(), "output")
	e["GITHUB_ACTIONS"], e["GITHUB_OUTPUT"] = "true", f
	r := run(t, e, cmd)
	if r.code != ExitOK {
		t.Fatalf("%s: %v", cmd, r)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ghaction.ParseOutputFile(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A set that is not there, or not complete, is exit 6 with a log line
// naming what was looked up; nothing is written.
func TestDownloadNotFound(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		commit := strings.Repeat("ab", 20)
		env, dir := deployEnv(t, srv, bucket, commit)
		r := run(t, env, "download")
		if r.code != ExitNotFound || !strings.Contains(r.stderr, "s3://"+bucket+"/artifacts/"+commit+"/") || !strings.Contains(r.stderr, "nothing under") {
			t.Errorf("nothing there: %v", r)
		}
		// An upload under way: objects, no record.
		putObject(t, srv, bucket, "artifacts/"+commit+"/fn1.zip", []byte("half"))
		r = run(t, env, "download")
		if r.code != ExitNotFound || !strings.Contains(r.stderr, "no completion record") {
			t.Errorf("objects without a record: %v", r)
		}
		if exists(dir) {
			t.Errorf("a download that found nothing created %s", dir)
		}
		// Settings are checked first.
		env["PACKAGE_ASSETS_COMMIT"] = "abc123"
		if r := run(t, env, "download"); r.code != ExitUsage || !strings.Contains(r.stderr, "PACKAGE_ASSETS_COMMIT") {
			t.Errorf("short commit id: %v", r)
		}
		// No commit named anywhere, and no repository: a git error that says what to set.
		delete(env, "PACKAGE_ASSETS_COMMIT")
		if r := run(t, env, "download"); r.code != ExitGit || !strings.Contains(r.stderr, "PACKAGE_ASSETS_COMMIT") {
			t.Errorf("no commit: %v", r)
		}
	})
}

// With PACKAGE_ASSETS_WAIT, a set completed while download waits is
// fetched; one that never is ends with exit 6 when the wait is over.
func TestDownloadWaits(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		// The build: check now, upload when the deploy job is seen waiting.
		env, d := setup(t, srv, bucket)
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Fatal(r)
		}
		artifacts := map[string][]byte{"fn1.zip": []byte("late"), "big.bin": randomBytes(3<<20, 1)}
		writeArtifacts(t, d.pkg, artifacts)

		proxy := s3test.NewProxy(t, srv.Endpoint)
		var lookups atomic.Int64
		uploads := make(chan result, 1)
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/.s3-asset-manager.json") {
				// The second lookup, once download has seen nothing and
				// waited: the build completes the set before it is answered.
				if lookups.Add(1) == 2 {
					uploads <- run(t, env, "upload")
				}
			}
			return s3test.Pass
		})
		denv, dir := deployEnv(t, srv, bucket, d.head)
		denv["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		denv["PACKAGE_ASSETS_WAIT"] = "10m"
		r := run(t, denv, "download")
		select {
		case u := <-uploads:
			if u.code != ExitOK {
				t.Fatalf("upload: %v", u)
			}
		default:
			t.Fatalf("download never looked a second time:\n%v", r)
		}
		if r.code != ExitOK || !strings.Contains(r.stderr, "not there yet: nothing under") || !strings.Contains(r.stderr, "PACKAGE_ASSETS_WAIT") {
			t.Fatal(r)
		}
		sameFiles(t, dir, artifacts)

		// Never completed: not found once the wait is over, saying so.
		denv, dir = deployEnv(t, srv, bucket, strings.Repeat("cd", 20))
		denv["PACKAGE_ASSETS_WAIT"] = "3s"
		r = run(t, denv, "download")
		if r.code != ExitNotFound || !strings.Contains(r.stderr, "still after waiting") {
			t.Errorf("never completed: %v", r)
		}
		if exists(dir) {
			t.Errorf("created %s", dir)
		}
	})
}

// With a signing key, download takes only a set whose record is signed with
// it and unaltered; a record without a signature or edited after signing is
// not found (exit 6).
func TestDownloadSignedRecords(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		artifacts := map[string][]byte{"fn1.zip": []byte("signed")}
		key := "the-real-signing-key-0123"
		env, d := uploaded(t, srv, bucket, artifacts) // unsigned: a pull-request pipeline
		denv, dir := deployEnv(t, srv, bucket, d.head)
		denv["PACKAGE_ASSETS_SIGNING_KEY"] = key
		if r := run(t, denv, "download"); r.code != ExitNotFound || !strings.Contains(r.stderr, "not signed") || exists(dir) {
			t.Errorf("unsigned record: %v", r)
		}

		env["PACKAGE_ASSETS_SIGNING_KEY"] = key
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Fatal(r)
		}
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		if r := run(t, denv, "download"); r.code != ExitOK {
			t.Fatalf("signed record: %v", r)
		}
		sameFiles(t, dir, artifacts)

		// Someone without the key swaps the file and edits the record to match.
		recKey := "artifacts/" + d.head + "/.s3-asset-manager.json"
		_, rec := srv.Get(t, bucket, recKey)
		evil := []byte("evil")
		putObject(t, srv, bucket, "artifacts/"+d.head+"/fn1.zip", evil)
		edited := bytes.Replace(rec, []byte(sha256hex(artifacts["fn1.zip"])), []byte(sha256hex(evil)), 1)
		edited = bytes.Replace(edited, []byte(`"size": 6`), []byte(`"size": 4`), 1)
		if bytes.Equal(edited, rec) {
			t.Fatal("the record was not edited")
		}
		putObject(t, srv, bucket, recKey, edited)
		denv, dir = deployEnv(t, srv, bucket, d.head)
		denv["PACKAGE_ASSETS_SIGNING_KEY"] = key
		if r := run(t, denv, "download"); r.code != ExitNotFound || !strings.Contains(r.stderr, "altered") || exists(dir) {
			t.Errorf("altered record: %v", r)
		}
	})
}

// An object replaced after its record was written is refused, naming it,
// and no file of that name is left: replaced before the download started
// (the lookup sees it), or while it runs (the GET, conditional on the
// recorded ETag, is refused); then a file of that name from before is
// removed too, and the other files, verified, stay.
func TestDownloadReplacedObject(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		artifacts := map[string][]byte{"fn1.zip": []byte("one"), "fn2.zip": randomBytes(4000, 2), "big.bin": randomBytes(40<<20, 3)}
		for _, name := range []string{"fn2.zip", "big.bin"} {
			for _, during := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s during=%t", name, during), func(t *testing.T) {
					t.Parallel()
					bucket := srv.NewBucket(t)
					_, d := uploaded(t, srv, bucket, artifacts)
					key := "artifacts/" + d.head + "/" + name
					body := bytes.Clone(artifacts[name])
					body[len(body)/2] ^= 1 // same size
					env, dir := deployEnv(t, srv, bucket, d.head)
					if during {
						proxy := s3test.NewProxy(t, srv.Endpoint)
						var once sync.Once
						proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
							if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/"+name) {
								once.Do(func() { putObject(t, srv, bucket, key, body) })
							}
							return s3test.Pass
						})
						env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
						writeFiles(t, dir, map[string]string{name: "an older build"})
					} else {
						putObject(t, srv, bucket, key, body)
					}
					r := run(t, env, "download")
					if r.code != ExitNotFound || !strings.Contains(r.stderr, name) || !strings.Contains(r.stderr, "replaced") {
						t.Errorf("%s replaced (during: %t): %v", name, during, r)
					}
					if exists(filepath.Join(dir, name)) {
						t.Errorf("%s replaced (during: %t): a file of that name is left", name, during)
					}
					entries, _ := os.ReadDir(dir)
					for _, e := range entries {
						if b, _ := os.ReadFile(filepath.Join(dir, e.Name())); !bytes.Equal(b, artifacts[e.Name()]) {
							t.Errorf("%s replaced (during: %t): %s left and not the recorded bytes", name, during, e.Name())
						}
					}
				})
			}
		}
	})
}

// Through a store that fails requests and spoils response bodies (flipped
// bytes, connections cut mid-body, stalls), every file arrives intact, and
// only those files are in the directory.
func TestDownloadFaultyStore(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		artifacts := oddArtifacts()
		for i := range 12 {
			artifacts[string(rune('a'+i))+".zip"] = randomBytes(100<<10, uint64(10+i))
		}
		_, d := uploaded(t, srv, bucket, artifacts)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		faults := []s3test.Fault{s3test.FlipResponse, s3test.CutResponse, s3test.StallResponse, s3test.SlowDown, s3test.Internal, s3test.Drop}
		var n atomic.Int64
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			// Artifacts only: the record has no digest to check it by.
			if r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, ".json") || r.URL.Query().Has("list-type") {
				return s3test.Pass
			}
			// Every third object GET spoiled, each fault in turn (with
			// several files in flight, not always the same part's).
			if i := n.Add(1); i%3 == 0 {
				return faults[(i/3-1)%int64(len(faults))]
			}
			return s3test.Pass
		})
		env, dir := deployEnv(t, srv, bucket, d.head)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		env["PACKAGE_ASSETS_REQUEST_TIMEOUT"] = "1s"
		r := run(t, env, "download")
		if r.code != ExitOK {
			t.Fatalf("%v\nproxy: %s", r, proxy.Counts())
		}
		sameFiles(t, dir, artifacts)
		for _, f := range faults {
			if proxy.Count(f) == 0 {
				t.Errorf("the proxy never injected %s: %s", f, proxy.Counts())
			}
		}
		// A small file "fetched again", a large one "N pieces fetched again".
		if !regexp.MustCompile(`fetched again( \d+ times)? \(damaged on the way\)`).MatchString(r.stderr) {
			t.Errorf("no file was fetched again after a flipped byte:\n%s", r.stderr)
		}
	})
}

// A cancelled deploy job (SIGTERM) stops the download with exit 130 and
// leaves no file that looks finished: no file of the set's names, no
// temporary file.
func TestSignalStopsDownload(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		artifacts := map[string][]byte{"small.zip": []byte("small"), "big.bin": randomBytes(40<<20, 9)}
		_, d := uploaded(t, srv, bucket, artifacts)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		started := make(chan struct{})
		var once sync.Once
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/big.bin") {
				once.Do(func() { close(started) })
				return s3test.StallResponse // half a part has arrived
			}
			return s3test.Pass
		})
		env, dir := deployEnv(t, srv, bucket, d.head)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		env["PACKAGE_UPLOAD_CONCURRENCY"] = "1" // small.zip is not done before the stall, or is: either way
		cmd, stderr := startBinary(t, env, "download")
		waitStarted(t, cmd, started, stderr)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitInterrupted {
			t.Fatalf("exit: %v, want %d\n%s", err, ExitInterrupted, stderr)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			if want, ok := artifacts[e.Name()]; !ok || !bytes.Equal(b, want) {
				t.Errorf("left behind: %s (%d bytes)", e.Name(), len(b))
			}
		}
		if slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "big.bin" }) {
			t.Error("big.bin is there after an interrupted download")
		}
	})
}

// check with PACKAGE_ASSETS_FAIL_ON_MISS: a miss is exit 6 (after the cache
// was tried), a hit is exit 0.
func TestCheckFailOnMiss(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setup(t, srv, bucket)
		env["PACKAGE_ASSETS_FAIL_ON_MISS"] = "true"
		env["CODE_HASH_FIND_FILTER"] = "src/**"
		r := run(t, env, "check")
		if r.code != ExitNotFound || !strings.Contains(r.stderr, "PACKAGE_ASSETS_FAIL_ON_MISS") || !strings.Contains(r.stderr, "s3://"+bucket+"/cache/") {
			t.Errorf("miss: %v", r)
		}
		// The markers an upload needs are written all the same.
		if !exists(filepath.Join(d.pkg, ".commit-hash")) || exists(filepath.Join(d.pkg, ".found")) {
			t.Errorf("markers after a miss")
		}
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Errorf("hit: %v", r)
		}
	})
}

// With components a miss is a component to build: with
// PACKAGE_ASSETS_FAIL_ON_MISS, exit 6 naming them (the markers written, as
// without components); a matrix job's check (PACKAGE_COMPONENT) fails for
// its own component alone.
func TestCheckFailOnMissComponents(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoSetup(t, srv, bucket)
		env["PACKAGE_ASSETS_FAIL_ON_MISS"] = "true"
		one := maps.Clone(env)
		one["PACKAGE_COMPONENT"] = "fn2"
		one["PACKAGE_DIRECTORY"] = filepath.Join(t.TempDir(), "pkg")
		if r := run(t, one, "check"); r.code != ExitNotFound || !strings.Contains(r.stderr, "1 component to build (fn2)") {
			t.Errorf("a matrix job's miss: %v", r)
		}
		r := run(t, env, "check")
		if r.code != ExitNotFound || !strings.Contains(r.stderr, "4 components to build (api, fn1, fn2, fn3), and PACKAGE_ASSETS_FAIL_ON_MISS is set") {
			t.Errorf("miss: %v", r)
		}
		if got := toBuild(t, d.pkg); !slices.Equal(got, allComponents) {
			t.Errorf("to build %q after a miss, want %q", got, allComponents)
		}
		build(t, d.pkg, "v1", allComponents...)
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Errorf("every component found: %v", r)
		}
		if r := run(t, one, "check"); r.code != ExitOK {
			t.Errorf("the matrix job's component found: %v", r)
		}
	})
}

// With components, download fetches the whole commit (every component's
// files into <component>/) or, with PACKAGE_COMPONENT, one component's set.
func TestDownloadComponents(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		_, d := monoBuilt(t, srv, bucket)
		want := map[string][]byte{}
		for _, n := range allComponents {
			for _, f := range []string{n + ".zip", n + ".txt"} {
				b, err := os.ReadFile(filepath.Join(d.pkg, n, f))
				if err != nil {
					t.Fatal(err)
				}
				want[n+"/"+f] = b
			}
		}

		denv, dir := deployEnv(t, srv, bucket, d.head)
		if r := run(t, denv, "download"); r.code != ExitOK {
			t.Fatal(r)
		}
		for _, n := range allComponents {
			sub := map[string][]byte{}
			for k, b := range want {
				if name, ok := strings.CutPrefix(k, n+"/"); ok {
					sub[name] = b
				}
			}
			sameFiles(t, filepath.Join(dir, n), sub)
		}

		denv, dir = deployEnv(t, srv, bucket, d.head)
		denv["PACKAGE_COMPONENT"] = "fn2"
		out := actionsOutputs(t, denv, "download")
		sameFiles(t, filepath.Join(dir, "fn2"), map[string][]byte{"fn2.zip": want["fn2/fn2.zip"], "fn2.txt": want["fn2/fn2.txt"]})
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("%s holds more than fn2/", dir)
		}
		if p := "artifacts/" + d.head + "/fn2/"; out[ghaction.OutputPrefix] != p || !strings.Contains(out[ghaction.OutputFiles], `"key":"`+p+`fn2.zip"`) {
			t.Errorf("outputs %q", out)
		}
	})
}
