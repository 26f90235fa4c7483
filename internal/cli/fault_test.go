package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jonboulle/clockwork"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// faultFlow runs check → build → upload → check → docs-only commit → cache
// hit through the proxy, then verifies every stored byte directly on the
// server. It returns the bucket.
func faultFlow(t *testing.T, srv *s3test.Server, proxy *s3test.Proxy, extra map[string]string) string {
	t.Helper()
	bucket := srv.NewBucket(t)
	base := t.TempDir()
	d := dirs{repo: filepath.Join(base, "repo"), pkg: filepath.Join(base, "packages")}
	d.head = newRepo(t, d.repo, map[string]string{"lambdas/fn1/index.py": "v1\n", "README.md": "docs\n"})
	env := srv.Env(bucket)
	env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
	env["GIT_REPO_PATH"] = d.repo
	env["PACKAGE_DIRECTORY"] = d.pkg
	env["CODE_HASH_FIND_FILTER"] = "lambdas/**"
	if proxy.Plan != nil {
		// A stalled attempt is retried after this. Long enough for a 40 MiB
		// copy or a 16 MiB part on a busy machine (1s was not: every attempt
		// of the copy timed out), short enough that the stalls stay cheap.
		env["PACKAGE_ASSETS_REQUEST_TIMEOUT"] = "5s"
	}
	for k, v := range extra {
		env[k] = v
	}
	if r := run(t, env, "check"); r.code != ExitOK {
		t.Fatalf("check: %v\nproxy: %s", r, proxy.Counts())
	}
	artifacts := map[string][]byte{"fn1.zip": []byte("small"), "layer.bin": randomBytes(40<<20, 3)}
	for i := range 12 {
		artifacts[string(rune('a'+i))+".zip"] = randomBytes(100<<10, uint64(i))
	}
	writeArtifacts(t, d.pkg, artifacts)
	if r := run(t, env, "upload"); r.code != ExitOK {
		t.Fatalf("upload: %v\nproxy: %s", r, proxy.Counts())
	}
	if r := run(t, env, "check"); r.code != ExitOK || !exists(filepath.Join(d.pkg, ".found")) {
		t.Fatalf("check after upload: %v\nproxy: %s", r, proxy.Counts())
	}
	next := commit(t, d.repo, map[string]string{"README.md": "more docs\n"})
	pkg := freshPackages(t, env)
	if r := run(t, env, "check"); r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) || !strings.Contains(r.stderr, "cache hit") {
		t.Fatalf("cache hit: %v\nproxy: %s", r, proxy.Counts())
	}
	for _, commit := range []string{d.head, next} {
		for name, body := range artifacts {
			_, got := srv.Get(t, bucket, "artifacts/"+commit+"/"+name)
			if !bytes.Equal(got, body) {
				t.Errorf("%s/%s: stored bytes differ", commit[:8], name)
			}
		}
	}
	return bucket
}

// A store that fails one request in four, in every way it can, is ridden out,
// and no damaged byte is stored.
func TestFaultyStore(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		proxy := s3test.NewProxy(t, srv.Endpoint)
		// One stall: each waits out the request timeout.
		proxy.Plan = s3test.AtMost(1, s3test.Stall, s3test.EveryNth(4, s3test.SlowDown, s3test.Internal, s3test.Drop, s3test.Stall, s3test.Corrupt))
		faultFlow(t, srv, proxy, nil)
		for _, f := range []s3test.Fault{s3test.SlowDown, s3test.Internal, s3test.Drop, s3test.Stall, s3test.Corrupt} {
			if proxy.Count(f) == 0 {
				t.Errorf("the proxy never injected %s: %s", f, proxy.Counts())
			}
		}
		t.Logf("proxy: %s", proxy.Counts())
	})
}

// A store that throttles (503 SlowDown) above three requests in flight, far
// below the default concurrency, gets the whole flow done with at most 6
// attempts a request: the tool lowers its requests in flight rather than
// retrying into the same refusal. No multipart upload is left behind.
func TestThrottlingStore(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		proxy := s3test.NewProxy(t, srv.Endpoint)
		proxy.Throttle = &s3test.Throttle{MaxInFlight: 3}
		bucket := faultFlow(t, srv, proxy, map[string]string{"AWS_MAX_ATTEMPTS": "6"})
		if proxy.Throttle.Throttled() == 0 {
			t.Errorf("the store never throttled (at most %d requests in flight): the test tests nothing", proxy.Throttle.Peak())
		}
		if n := srv.PendingUploads(t, bucket); n != 0 {
			t.Errorf("%d multipart uploads left behind", n)
		}
		t.Logf("503s: %d of %d requests", proxy.Throttle.Throttled(), proxy.Throttle.Throttled()+proxy.Throttle.Passed())
	})
}

// A store that refuses the SDK's default checksum headers and aws-chunked
// bodies (Cloudflare R2, Ceph RGW, ...) works with no extra setting. The
// tool asks once, for the first multipart upload's CRC32C part checksums,
// and signs parts with their SHA-256 after the refusal.
func TestChecksumRefusingStore(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		proxy := s3test.NewProxy(t, srv.Endpoint)
		proxy.RefuseChecksums = true

		// The proxy does refuse what the SDK sends by default.
		bucket := srv.NewBucket(t)
		def := s3.New(s3.Options{
			Region: s3test.Region, BaseEndpoint: aws.String(proxy.URL), UsePathStyle: true,
			Credentials:      credentials.NewStaticCredentialsProvider(s3test.AccessKey, s3test.SecretKey, ""),
			RetryMaxAttempts: 1,
			// The SDK's default since 2025, spelled out: s3.New has no config to load it from.
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		})
		_, err := def.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("x"), Body: bytes.NewReader([]byte("x"))})
		if err == nil || !strings.Contains(err.Error(), "NotImplemented") {
			t.Fatalf("the proxy accepted a default SDK upload: %v", err)
		}
		refusedBefore := proxy.Count(s3test.NotImpl)

		faultFlow(t, srv, proxy, nil)
		if n := proxy.Count(s3test.NotImpl) - refusedBefore; n != 1 {
			t.Errorf("the tool sent %d requests with checksum headers or aws-chunked bodies, want 1", n)
		}
	})
}

// PACKAGE_ASSETS_CONTENT_MD5 puts Content-MD5 on every object and part
// upload; without it none carries one (the signed SHA-256 is the check).
func TestContentMD5Setting(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for _, on := range []bool{false, true} {
			t.Run(fmt.Sprint("content-md5=", on), func(t *testing.T) {
				bucket := srv.NewBucket(t)
				proxy := s3test.NewProxy(t, srv.Endpoint)
				var with, without atomic.Int64
				proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
					if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "" {
						if r.Header.Get("Content-Md5") != "" {
							with.Add(1)
						} else {
							without.Add(1)
						}
					}
					return s3test.Pass
				}
				env, d := setup(t, srv, bucket)
				env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
				env["PACKAGE_ASSETS_CONTENT_MD5"] = fmt.Sprint(on)
				run(t, env, "check")
				writeArtifacts(t, d.pkg, map[string][]byte{"fn1.zip": []byte("small"), "layer.bin": randomBytes(40<<20, 9)})
				r := run(t, env, "upload")
				if r.code != ExitOK {
					t.Fatal(r)
				}
				// Each file's log line says what the store checked it with.
				for _, want := range []string{" 1 request, checked by SHA-256)", " 3 parts, checked by CRC32C)"} {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("upload log lacks %q:\n%s", want, r.stderr)
					}
				}
				// Objects and parts; the completion record always has Content-MD5.
				w, wo := with.Load()-1, without.Load()
				if on && (wo != 0 || w < 4) || !on && (w != 0 || wo < 4) {
					t.Errorf("uploads with Content-MD5: %d, without: %d", w, wo)
				}
			})
		}
	})
}

// Each kind of request the upload sends, carried out by the store but its
// answer lost on the way (the SDK sends it again): the upload succeeds and
// the set is found. Only a lost start of a multipart upload leaves one
// unfinished (for prune), holding no object.
func TestLostAnswers(t *testing.T) {
	t.Parallel()
	kinds := []struct {
		name  string
		match func(r *http.Request) bool
	}{
		{"put", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/small.zip")
		}},
		{"start", func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("uploads") }},
		{"part", func(r *http.Request) bool { return r.Method == http.MethodPut && r.URL.Query().Has("partNumber") }},
		{"complete", func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("uploadId") }},
		{"copy", func(r *http.Request) bool { return r.Header.Get("X-Amz-Copy-Source") != "" }},
		{"record", func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/.s3-asset-manager.json")
		}},
	}
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for _, k := range kinds {
			t.Run(k.name, func(t *testing.T) {
				t.Parallel()
				bucket := srv.NewBucket(t)
				proxy := s3test.NewProxy(t, srv.Endpoint)
				var lost atomic.Bool
				proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
					if k.match(r) && lost.CompareAndSwap(false, true) {
						return s3test.LoseResponse
					}
					return s3test.Pass
				})
				env, d := setup(t, srv, bucket)
				env["CODE_HASH_FIND_FILTER"] = "src/**"
				if r := run(t, env, "check"); r.code != ExitOK {
					t.Fatal(r)
				}
				writeFiles(t, d.pkg, map[string]string{"small.zip": "small", "big.bin": string(randomBytes(40<<20, 9))})
				env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
				if r := run(t, env, "upload"); r.code != ExitOK || !lost.Load() {
					t.Fatalf("upload with a lost answer (lost: %v): %v", lost.Load(), r)
				}
				env["PACKAGE_ASSETS_ENDPOINT"] = srv.Endpoint
				checkFound(t, env, d.pkg, "check after the upload")
				if n := srv.PendingUploads(t, bucket); k.name != "start" && n != 0 {
					t.Errorf("%d multipart uploads left unfinished", n)
				}
			})
		}
	})
}

// check through a store whose answer to the commit's record stops after
// half, its connection open: the record is given up after the stall timeout
// (10 s) on the store's clock, read again, and the check finds the set,
// before the attempt's timeout (2m) would have ended the read. The listing
// that goes with the record is held until then, so the store's clock has a
// known set of timers: the two requests' timeouts, and the body's stall
// watch; it is moved on only while all three are on it.
func TestCheckRecordStalls(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := uploaded(t, srv, bucket, map[string][]byte{"fn1.zip": []byte("one")})
		proxy := s3test.NewProxy(t, srv.Endpoint)
		// A guard, not a measure: without the watch no third timer comes.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		stalled, held, again := make(chan struct{}), make(chan struct{}), make(chan struct{})
		var gets atomic.Int32
		commit := "/" + d.head + "/"
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, commit) || !strings.HasSuffix(r.URL.Path, ".json") {
				return s3test.Pass
			}
			switch gets.Add(1) {
			case 1:
				close(stalled)
				return s3test.StallResponse
			case 2:
				close(again)
			}
			return s3test.Pass
		})
		var holdOnce sync.Once
		proxy.Hold = func(r *http.Request) {
			if r.URL.Query().Has("list-type") && strings.Contains(r.URL.Query().Get("prefix"), d.head) {
				holdOnce.Do(func() {
					close(held)
					select {
					case <-again:
					case <-ctx.Done():
					}
				})
			}
		}
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		const stall, timeout = 10 * time.Second, 2 * time.Minute
		clock := clockwork.NewFakeClock()
		ctx = context.WithValue(ctx, clockKey{}, clockwork.Clock(&jumpClock{now: time.Now()}))
		ctx = context.WithValue(ctx, storeClockKey{}, clockwork.Clock(clock))
		done := make(chan result, 1)
		go func() {
			var stdout, stderr bytes.Buffer
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			code := Run(ctx, []string{"s3-asset-manager", "check"}, lookup, &stdout, &stderr)
			done <- result{code, stdout.String(), stderr.String()}
		}()
		for _, c := range []chan struct{}{stalled, held} {
			select {
			case <-c:
			case r := <-done:
				t.Fatalf("check ended before the record's read stalled with the listing held: %v\nproxy: %s", r, proxy.Counts())
			}
		}
		// The clock moves only while the stall watch waits on it beside the
		// timeouts, so no time passes before the body is read.
		if err := s3test.AdvanceUntil(ctx, clock, 3, again, stall/4, timeout-stall); err != nil {
			t.Fatalf("no stall watch on the store's clock beside the requests' timeouts, or the record not read again after it (stall timeout %s): %v (proxy: %s)", stall, err, proxy.Counts())
		}
		r := <-done
		if r.code != ExitOK || !exists(filepath.Join(d.pkg, ".found")) {
			t.Fatalf("check with the record's answer stalled once: %v\nproxy: %s", r, proxy.Counts())
		}
		if proxy.Count(s3test.StallResponse) != 1 {
			t.Errorf("the proxy stalled %d answers, want 1: %s", proxy.Count(s3test.StallResponse), proxy.Counts())
		}
	})
}
