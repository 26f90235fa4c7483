package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// stallParts makes the proxy hold every multipart part upload and reports
// the first one on the returned channel: the upload is then surely under way.
func stallParts(proxy *s3test.Proxy) <-chan struct{} {
	started := make(chan struct{})
	var once sync.Once
	proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
		if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
			once.Do(func() { close(started) })
			return s3test.Stall
		}
		return s3test.Pass
	}
	return started
}

// startUpload runs the binary's upload in the background with a multipart
// file to send, through the proxy.
func startUpload(t *testing.T, srv *s3test.Server, proxy *s3test.Proxy, bucket string) (*exec.Cmd, *bytes.Buffer, map[string]string, dirs) {
	t.Helper()
	env, d := setup(t, srv, bucket)
	env["CODE_HASH_FIND_FILTER"] = "src/**"
	if r := run(t, env, "check"); r.code != ExitOK {
		t.Fatal(r)
	}
	writeFiles(t, d.pkg, map[string]string{"small.zip": "small", "big.bin": string(randomBytes(40<<20, 9))})
	env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
	cmd, stderr := startBinary(t, env, "s3-asset-manager", "upload")
	env["PACKAGE_ASSETS_ENDPOINT"] = srv.Endpoint
	return cmd, stderr, env, d
}

// waitStarted waits until the proxy has seen the transfer begin (started
// closed): a part of an upload, or a piece of a download, held.
func waitStarted(t *testing.T, cmd *exec.Cmd, started <-chan struct{}, stderr *bytes.Buffer) {
	t.Helper()
	select {
	case <-started:
	case <-time.After(60 * time.Second): // a bound on a hang, not synchronisation
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("%s never began its transfer:\n%s", strings.Join(cmd.Args, " "), stderr)
	}
}

// stalledUpload is startUpload through a proxy that holds every part
// upload, returned once the first part is held.
func stalledUpload(t *testing.T, srv *s3test.Server, bucket string) (*exec.Cmd, *bytes.Buffer, map[string]string, dirs) {
	t.Helper()
	proxy := s3test.NewProxy(t, srv.Endpoint)
	started := stallParts(proxy)
	cmd, stderr, env, d := startUpload(t, srv, proxy, bucket)
	waitStarted(t, cmd, started, stderr)
	return cmd, stderr, env, d
}

// A cancelled CI job (SIGTERM, SIGINT) stops the upload, aborts its
// multipart uploads and writes no completion record.
func TestSignalStopsUpload(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			s3test.One(t, func(t *testing.T, srv *s3test.Server) {
				bucket := srv.NewBucket(t)
				cmd, stderr, _, _ := stalledUpload(t, srv, bucket)
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				err := cmd.Wait()
				if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != ExitInterrupted {
					t.Fatalf("exit: %v, want %d\n%s", err, ExitInterrupted, stderr)
				}
				if !strings.Contains(stderr.String(), "interrupted") {
					t.Errorf("log does not say it was interrupted:\n%s", stderr)
				}
				for _, o := range listAll(t, srv, bucket) {
					if strings.HasSuffix(o.Key, ".s3-asset-manager.json") {
						t.Errorf("completion record written by an interrupted upload: %s", o.Key)
					}
				}
				if n := srv.PendingUploads(t, bucket); n != 0 {
					t.Errorf("%d multipart uploads left pending", n)
				}
			})
		})
	}
}

// kill -9 in the middle of an upload: nothing is found, no cache entry is
// used, and running the upload again completes the set.
func TestKilledUploadIsNotFound(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		cmd, _, env, d := stalledUpload(t, srv, bucket)
		cmd.Process.Kill()
		cmd.Wait()
		if len(listAll(t, srv, bucket)) == 0 {
			t.Fatal("the killed upload stored nothing: the test proves nothing")
		}

		r := checkMiss(t, env, d.pkg, "check after a killed upload")
		if strings.Contains(r.stderr, "cache hit") {
			t.Errorf("cache hit after a killed upload:\n%s", r.stderr)
		}
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatalf("upload again: %v", r)
		}
		checkFound(t, env, d.pkg, "check after the re-run")
	})
}

// Two uploads of one commit at once both succeed, and the record describes
// what is stored, even when the two builds differ. The proxy holds the first
// record write until the second upload's arrives, so both have stored their
// objects and the second's conditional write is refused (412); the second
// stores its objects while the first waits, so they are what is stored. The
// losing upload must then check the winner's record against what is stored,
// and rewrite it when the builds differ.
func TestConcurrentUploads(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for _, same := range []bool{true, false} {
			bucket := srv.NewBucket(t)
			proxy := s3test.NewProxy(t, srv.Endpoint)
			env, d := setup(t, srv, bucket)
			env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
			record := "/" + bucket + "/artifacts/" + d.head + "/.s3-asset-manager.json"
			var (
				mu        sync.Mutex
				arrived   int
				statuses  []int
				second    = make(chan struct{})
				firstDone = make(chan struct{})
				firstHeld = make(chan struct{})
			)
			isRecordPut := func(r *http.Request) bool { return r.Method == http.MethodPut && r.URL.Path == record }
			proxy.Hold = func(r *http.Request) {
				if !isRecordPut(r) {
					return
				}
				mu.Lock()
				arrived++
				n := arrived
				mu.Unlock()
				switch n {
				case 1: // held until the other upload writes its record too
					close(firstHeld)
					select {
					case <-second:
					case <-r.Context().Done():
					}
				case 2: // then let the first through, and this one after it
					close(second)
					select {
					case <-firstDone:
					case <-r.Context().Done():
					}
				}
			}
			proxy.Observe = func(r *http.Request, status int) {
				if !isRecordPut(r) {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				statuses = append(statuses, status)
				if len(statuses) == 1 {
					close(firstDone)
				}
			}
			run(t, env, "check")
			var envs []map[string]string
			for i := range 2 {
				pkg := filepath.Join(t.TempDir(), "packages")
				files := map[string]string{".commit-hash": d.head}
				for j := range 6 {
					body := randomBytes(200<<10, uint64(j))
					if !same {
						body = randomBytes(200<<10, uint64(100*i+j))
					}
					files[string(rune('a'+j))+".zip"] = string(body)
				}
				writeFiles(t, pkg, files)
				e := map[string]string{}
				for k, v := range env {
					e[k] = v
				}
				e["PACKAGE_DIRECTORY"] = pkg
				envs = append(envs, e)
			}
			// The second upload starts once the first has stored its objects
			// and waits at its record write: the second's objects are then
			// the ones stored (last writer), and with other bytes they are not
			// the ones the first's record names. Started together, which
			// upload's object of each name landed last was up to the store.
			var wg sync.WaitGroup
			results := make([]result, 2)
			firstEnded := make(chan struct{})
			wg.Go(func() { defer close(firstEnded); results[0] = run(t, envs[0], "upload") })
			select {
			case <-firstHeld:
			case <-firstEnded:
			}
			wg.Go(func() { results[1] = run(t, envs[1], "upload") })
			wg.Wait()
			for i, r := range results {
				if r.code != ExitOK {
					t.Fatalf("same=%v upload %d: %v", same, i, r)
				}
			}
			// The race was real (the second record write was refused), and
			// the loser rewrote the record exactly when the builds differed.
			want := []int{200, 412}
			if !same {
				want = append(want, 200)
			}
			if !slices.Equal(statuses, want) {
				t.Errorf("same=%v: record writes answered %v, want %v", same, statuses, want)
			}
			_, body := srv.Get(t, bucket, "artifacts/"+d.head+"/.s3-asset-manager.json")
			var rec struct {
				Files []struct{ Name, SHA256 string }
			}
			if err := json.Unmarshal(body, &rec); err != nil || len(rec.Files) != 6 {
				t.Fatalf("record: %v\n%s", err, body)
			}
			for _, f := range rec.Files {
				_, got := srv.Get(t, bucket, "artifacts/"+d.head+"/"+f.Name)
				if sha256hex(got) != f.SHA256 {
					t.Errorf("same=%v: %s: the record does not describe the stored object", same, f.Name)
				}
			}
			if r := run(t, envs[0], "check"); r.code != ExitOK || !exists(filepath.Join(envs[0]["PACKAGE_DIRECTORY"], ".found")) {
				t.Errorf("same=%v: the set is not found after the race: %v", same, r)
			}
		}
	})
}
