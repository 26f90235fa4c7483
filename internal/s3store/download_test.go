package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jonboulle/clockwork"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// stored is an object put straight on the server, as the record describes it.
type stored struct {
	key  string
	body []byte
	etag string
}

func putStored(t *testing.T, srv *s3test.Server, bucket, key string, body []byte) stored {
	t.Helper()
	out, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return stored{key, body, aws.ToString(out.ETag)}
}

func (o stored) request(dir, name string) DownloadRequest {
	sum := sha256.Sum256(o.body)
	return DownloadRequest{Key: o.key, Path: filepath.Join(dir, name), Size: int64(len(o.body)), SHA256: sum[:], ETag: o.etag, Mode: 0o644}
}

// arrived fails the test unless path holds o's bytes; what names the case.
func (o stored) arrived(t *testing.T, path, what string) {
	t.Helper()
	if b, _ := os.ReadFile(path); !bytes.Equal(b, o.body) {
		t.Fatalf("%s: bytes differ", what)
	}
}

// dirNames lists a directory, hidden files too.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// leftNothing fails unless dir is empty: a refused or failed download left
// neither its file nor a temporary one; what names the case.
func leftNothing(t *testing.T, dir, what string) {
	t.Helper()
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("%s: left %q", what, got)
	}
}

// buffersBack fails unless every download buffer is back in st's pool.
func buffersBack(t *testing.T, st *Store) {
	t.Helper()
	if len(st.dlBufs) != cap(st.dlBufs) {
		t.Errorf("%d of %d buffers back in the pool", len(st.dlBufs), cap(st.dlBufs))
	}
}

// Files of every size, with odd names, arrive byte for byte under their own
// names, with the mode asked for, and leave no temporary file behind; a large
// one is fetched in parts, and progress counts every byte once.
func TestDownload(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		st := newStore(t, srv, bucket, Options{PartSize: 1 << 20})
		dir := t.TempDir()
		for _, tc := range []struct {
			name  string
			size  int
			parts int
			mode  os.FileMode
		}{
			{"empty", 0, 0, 0o644},
			{"small + odd %2F name ü.zip", 1000, 0, 0o644},
			{"two parts' worth.bin", 2 << 20, 0, 0o755},
			{"large.bin", 5<<20 + 17, 6, 0o644},
		} {
			o := putStored(t, srv, bucket, "a/"+tc.name, filler(tc.size))
			req := o.request(dir, tc.name)
			req.Mode = tc.mode
			var got atomic.Int64
			req.Progress = func(n int64) { got.Add(n) }
			d, err := st.Download(ctx, req)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if d.Pieces != tc.parts || d.Size != int64(tc.size) || d.Refetched != 0 {
				t.Errorf("%s: %+v, want %d parts", tc.name, d, tc.parts)
			}
			o.arrived(t, req.Path, tc.name)
			if fi, _ := os.Stat(req.Path); fi.Mode().Perm()&0o111 != tc.mode&0o111 {
				t.Errorf("%s: mode %v, want %v", tc.name, fi.Mode(), tc.mode)
			}
			if got.Load() != int64(tc.size) {
				t.Errorf("%s: progress counted %d bytes of %d", tc.name, got.Load(), tc.size)
			}
		}
		for _, n := range dirNames(t, dir) {
			if strings.HasPrefix(n, ".") {
				t.Errorf("left behind: %s", n)
			}
		}
	})
}

// rangeLog is a proxy in front of srv that notes the Range of every GET;
// ranges returns them so far.
func rangeLog(t *testing.T, srv *s3test.Server) (proxy *s3test.Proxy, ranges func() []string) {
	proxy = s3test.NewProxy(t, srv.Endpoint)
	var mu sync.Mutex
	var seen []string
	proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
		if r.Method == http.MethodGet {
			mu.Lock()
			seen = append(seen, r.Header.Get("Range"))
			mu.Unlock()
		}
		return s3test.Pass
	}
	return proxy, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// A large file is fetched in ranged requests of PartSize, each received into
// several of the pool's smaller buffers: a request goes on into its next
// piece once that has a buffer (here the first request spans more pieces
// than the pool holds), and the bytes arrive intact, with a pool of two
// buffers too (handed out in order, so the piece being hashed always has
// one).
func TestDownloadRequestSpansBuffers(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		o := putStored(t, srv, bucket, "large", filler(5<<20+17))
		proxy, getRanges := rangeLog(t, srv)
		// Pieces of 512 KiB (3 MiB among 6), requests of 4 MiB: 8 pieces.
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 4 << 20, DownloadMemory: 3 << 20})
		st.dlSlowPart = 0 // never taken for slow connections (see the next test)
		req := o.request(t.TempDir(), "large")
		var got atomic.Int64
		req.Progress = func(n int64) { got.Add(n) }
		d, err := st.Download(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		o.arrived(t, req.Path, o.key)
		ranges := getRanges()
		slices.Sort(ranges)
		if want := []string{"bytes=0-4194303", "bytes=4194304-5242896"}; !slices.Equal(ranges, want) || d.Requests != 2 {
			t.Errorf("requests %q, %d parts; want %q", ranges, d.Requests, want)
		}
		if got.Load() != int64(len(o.body)) {
			t.Errorf("progress counted %d bytes of %d", got.Load(), len(o.body))
		}

		// Two buffers of 64 KiB, requests of 1 MiB (16 pieces): 80 pieces,
		// five requests, two at once.
		two := newStore(t, srv, bucket, Options{PartSize: 1 << 20, DownloadMemory: 128 << 10})
		o = putStored(t, srv, bucket, "two", filler(5<<20))
		// A guard, not a measure: a pool held up waits forever.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for range 5 {
			req := o.request(t.TempDir(), "two")
			if _, err := two.Download(ctx, req); err != nil {
				t.Fatalf("a pool of two buffers: %v", err)
			}
			o.arrived(t, req.Path, "a pool of two buffers")
		}
	})
}

// Where the parts come slowly (every part, here), the requests become one
// part each once four parts have come: slow connections want requests in
// parallel, not fewer of them. Not while the store already has as many
// ranged requests under way as buffers (those of other files fetched at
// once): they run as many at once as the pool allows, and each piece comes
// slowly because they share the machine.
func TestDownloadSlowPartsSplitRequests(t *testing.T) {
	t.Parallel()
	for _, busy := range []bool{false, true} {
		t.Run(fmt.Sprintf("others under way %v", busy), func(t *testing.T) {
			t.Parallel()
			s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
				bucket := srv.NewBucket(t)
				o := putStored(t, srv, bucket, "slow", filler(10<<20))
				proxy, getRanges := rangeLog(t, srv)
				// Pieces of 512 KiB (larger than a read, so their rate is
				// seen), dlBuffers of them, requests of 4 MiB: the third
				// request is made once at least five pieces have come (and
				// given back their buffers).
				st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 4 << 20, DownloadMemory: dlBuffers << 19})
				st.dlSlowPart = 1e18
				if busy {
					st.dlRanged.Store(int32(cap(st.dlBufs)))
				}
				req := o.request(t.TempDir(), "slow")
				d, err := st.Download(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				o.arrived(t, req.Path, o.key)
				ranges := getRanges()
				if d.Requests != len(ranges) {
					t.Errorf("%d requests reported, %d made", d.Requests, len(ranges))
				}
				if busy {
					want := []string{"bytes=0-4194303", "bytes=4194304-8388607", "bytes=8388608-10485759"}
					if got := slices.Sorted(slices.Values(ranges)); !slices.Equal(got, want) {
						t.Errorf("requests %q, want %q", got, want)
					}
					return
				}
				for i := 16; i < 20; i++ {
					if want := fmt.Sprintf("bytes=%d-%d", i<<19, (i+1)<<19-1); !slices.Contains(ranges, want) {
						t.Errorf("no request of piece %d alone (%s): %q", i, want, ranges)
					}
				}
			})
		})
	}
}

// A body whose reader waits for room (a buffer of the pool) is not taken for
// a stalled one, however long it waits; once it reads again, silence counts.
func TestWatchedBodyIdle(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	r, w := io.Pipe()
	defer w.Close()
	const stall = 10 * time.Second
	body := newWatchedBody(r, clock, stall)
	defer body.Close()
	// A guard, not a measure: a watch that fired leaves nothing on the clock.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	body.idle.Store(true)
	for range 3 * stallChecks {
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatalf("a body waiting for room was taken for a stalled one: %v", err)
		}
		clock.Advance(stall / stallChecks)
	}
	if err := clock.BlockUntilContext(ctx, 1); err != nil || body.stalled() {
		t.Fatalf("a body waiting for room was taken for a stalled one: %v", err)
	}
	body.idle.Store(false)
	read := make(chan error, 1)
	go func() {
		_, err := body.Read(make([]byte, 1))
		read <- err
	}()
	for range stallChecks {
		if err := clock.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clock.Advance(stall / stallChecks)
	}
	if err := <-read; err == nil || !body.stalled() {
		t.Errorf("a silent body, read from, was not taken for a stalled one: %v", err)
	}
}

// Through a proxy that spoils response bodies (a flipped byte, a connection
// cut mid-body, a stall) and fails requests (503, 500, dropped), every file
// arrives intact; a flipped byte is noticed by the SHA-256 and only the
// spoiled parts are fetched again.
func TestDownloadFaults(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		small := putStored(t, srv, bucket, "small", filler(300<<10))
		large := putStored(t, srv, bucket, "large", filler(12<<20+3))
		proxy := s3test.NewProxy(t, srv.Endpoint)
		faults := []s3test.Fault{s3test.FlipResponse, s3test.CutResponse, s3test.StallResponse, s3test.SlowDown, s3test.Internal, s3test.Drop}
		// One GET in four is spoiled: each fault once, then faults picked at
		// random (a fixed seed), as a cycle would hit the same part every round.
		var mu sync.Mutex
		rnd := rand.New(rand.NewPCG(1, 2))
		spoiled := 0
		proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
			mu.Lock()
			defer mu.Unlock()
			if r.Method != http.MethodGet || rnd.IntN(4) != 0 {
				return s3test.Pass
			}
			spoiled++
			if spoiled <= len(faults) {
				return faults[spoiled-1]
			}
			return faults[rnd.IntN(len(faults))]
		}
		// A request a part (1 MiB), and requests of 4 MiB received in
		// pieces of 512 KiB.
		stores := []*Store{
			newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 1 << 20, RequestTimeout: time.Second}),
			newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 4 << 20, DownloadMemory: 3 << 20, RequestTimeout: time.Second}),
		}
		dir := t.TempDir()
		refetched := 0
		for round := range 6 {
			st := stores[round%2]
			for _, o := range []stored{small, large} {
				req := o.request(dir, o.key)
				d, err := st.Download(ctx, req)
				if err != nil {
					t.Fatalf("round %d, %s: %v\nproxy: %s", round, o.key, err, proxy.Counts())
				}
				refetched += d.Refetched
				o.arrived(t, req.Path, fmt.Sprintf("round %d, %s", round, o.key))
			}
		}
		for _, f := range faults {
			if proxy.Count(f) == 0 {
				t.Errorf("the proxy never injected %s: %s", f, proxy.Counts())
			}
		}
		if refetched == 0 {
			t.Errorf("flipped bytes went unnoticed: nothing was fetched again (proxy: %s)", proxy.Counts())
		}
		if got := dirNames(t, dir); len(got) != 2 {
			t.Errorf("directory holds %q, want the two files only", got)
		}
		t.Logf("proxy: %s", proxy.Counts())
	})
}

// The same bytes twice, not the recorded ones, fail the download after the
// second fetch (damage on the way does not repeat itself: the record and the
// object disagree), naming the object and both SHA-256s; neither the file nor
// a temporary one is left, and a file of that name from before stays as it
// was. Whether the record was altered (its sha256 edited) or something on the
// way flips the same byte every time, it is the same verdict.
func TestDownloadDamaged(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		proxy.Plan = func(_ int64, r *http.Request) s3test.Fault { return s3test.FlipResponse }
		proxy.FlipSameWay = true
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 1 << 20})
		direct := newStore(t, srv, bucket, Options{PartSize: 1 << 20})
		for _, size := range []int{1000, 4 << 20} {
			o := putStored(t, srv, bucket, fmt.Sprint("f", size), filler(size))
			dir := t.TempDir()
			_, err := st.Download(ctx, o.request(dir, "f"))
			if !errors.Is(err, ErrRecordDisagrees) || !strings.Contains(err.Error(), o.key) || !strings.Contains(err.Error(), "the same bytes came on 2 fetches") {
				t.Errorf("%d bytes, flipped the same way every time: %v", size, err)
			}
			leftNothing(t, dir, fmt.Sprintf("%d bytes", size))

			if err := os.WriteFile(filepath.Join(dir, "f"), []byte("before"), 0o644); err != nil {
				t.Fatal(err)
			}
			req := o.request(dir, "f")
			want := fmt.Sprintf("%x", req.SHA256)
			req.SHA256[0] ^= 1 // the record says otherwise
			_, err = direct.Download(ctx, req)
			if !errors.Is(err, ErrRecordDisagrees) || errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "SHA-256 "+want+", not the recorded") {
				t.Errorf("%d bytes, other than recorded: %v", size, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "before" || len(dirNames(t, dir)) != 1 {
				t.Errorf("%d bytes: the file from before was touched, or more left: %q", size, dirNames(t, dir))
			}
		}
	})
}

// IsPartial knows the names of a download's temporary files, and no others.
func TestIsPartial(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"a.zip", strings.Repeat("x", 230) + ".bin"} {
		f, err := createPartial(filepath.Join(dir, name), 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if base := filepath.Base(f.Name()); !IsPartial(base) {
			t.Errorf("IsPartial(%q) = false for a download's own temporary file", base)
		}
	}
	for _, name := range []string{"a.zip", ".a.zip", "a.zip.s3am-partial-x1", ".a.zip.s3am-partial-", ".a.zip.s3am-partial-X!", ".a.s3am-partial-1/x"} {
		if IsPartial(name) {
			t.Errorf("IsPartial(%q) = true", name)
		}
	}
}

// An object replaced since it was recorded is refused at once (its ETag, or
// its size, differs), and nothing is left of it.
func TestDownloadReplaced(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		st := newStore(t, srv, bucket, Options{PartSize: 1 << 20})
		for _, tc := range []struct {
			name        string
			size, newTo int
			keepETag    bool
		}{
			{"same size, ETag recorded", 1000, 1000, true},
			{"large, ETag recorded", 4 << 20, 4 << 20, true},
			{"smaller, no ETag", 1000, 999, false},
			{"large, smaller, no ETag", 4 << 20, 3 << 20, false},
		} {
			o := putStored(t, srv, bucket, "r", filler(tc.size))
			dir := t.TempDir()
			req := o.request(dir, "r")
			if !tc.keepETag {
				req.ETag = ""
			}
			body := filler(tc.newTo)
			body[0] ^= 1
			putStored(t, srv, bucket, "r", body)
			_, err := st.Download(ctx, req)
			if !errors.Is(err, ErrSourceChanged) || !strings.Contains(err.Error(), "/r") {
				t.Errorf("%s: %v, want ErrSourceChanged naming the object", tc.name, err)
			}
			leftNothing(t, dir, tc.name)
		}
		// Gone altogether: not found, naming it.
		dir := t.TempDir()
		_, err := st.Download(ctx, DownloadRequest{Key: "gone", Path: filepath.Join(dir, "gone"), Size: 1, SHA256: make([]byte, 32), Mode: 0o644})
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/gone") {
			t.Errorf("a deleted object: %v", err)
		}
		leftNothing(t, dir, "a deleted object")
	})
}

// Cancelled while parts are in flight, the download stops, and neither the
// file nor its temporary file is left.
func TestDownloadCancelled(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		o := putStored(t, srv, bucket, "big", filler(6<<20))
		proxy := s3test.NewProxy(t, srv.Endpoint)
		ctx, cancel := context.WithCancel(context.Background())
		var once sync.Once
		proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodGet {
				once.Do(cancel) // the download is surely under way
				return s3test.StallResponse
			}
			return s3test.Pass
		}
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 1 << 20})
		dir := t.TempDir()
		_, err := st.Download(ctx, o.request(dir, "big"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled download: %v", err)
		}
		leftNothing(t, dir, "cancelled")
	})
}

// A body that stops mid-way with its connection open (the proxy sends half,
// then nothing) is given up after StallTimeout without a byte, on the
// store's clock, and the rest is asked for from the byte where it stopped:
// the download does not wait for the attempt's timeout (an hour here). On a
// fake clock, moved on only once every other byte of the file has arrived,
// so that no healthy body is taken for a stalled one.
func TestDownloadStallResumes(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		for _, tc := range []struct {
			key         string
			size        int
			stallRange  string // the GET whose body stalls after half
			resumeRange string // the one that must follow
		}{
			{"small", 300 << 10, "", "bytes=153600-307199"},
			{"large", 4 << 20, "bytes=1048576-2097151", "bytes=1572864-2097151"},
		} {
			o := putStored(t, srv, bucket, tc.key, filler(tc.size))
			proxy := s3test.NewProxy(t, srv.Endpoint)
			resumed := make(chan struct{})
			var once, resumeOnce sync.Once
			proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/"+tc.key) {
					return s3test.Pass
				}
				f := s3test.Pass
				switch r.Header.Get("Range") {
				case tc.stallRange:
					once.Do(func() { f = s3test.StallResponse })
				case tc.resumeRange:
					resumeOnce.Do(func() { close(resumed) })
				}
				return f
			})
			clock := clockwork.NewFakeClock()
			const stall = 10 * time.Second
			st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{
				PartSize: 1 << 20, StallTimeout: stall, RequestTimeout: time.Hour, Clock: clock,
			})
			// A guard, not a measure: without the watch this waits an hour.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			req := o.request(t.TempDir(), tc.key)
			var got atomic.Int64
			allButStalled := make(chan struct{})
			req.Progress = func(n int64) {
				// Every byte but the stalled half: the small file's first half,
				// or the large one's parts but the second half of part 1.
				if got.Add(n) == int64(tc.size/2) && tc.key == "small" || got.Load() == int64(tc.size-512<<10) && tc.key == "large" {
					close(allButStalled)
				}
			}
			// Only the stalled body's watch is on the clock once the rest has
			// come: it is moved on until the request that resumes it arrives.
			res := downloadPastStall(t, ctx, st, req, clock, stall/4, allButStalled, resumed, proxy)
			if res.err != nil {
				t.Fatalf("%s: %v (proxy: %s)", tc.key, res.err, proxy.Counts())
			}
			o.arrived(t, req.Path, tc.key)
			if res.d.Refetched != 0 || got.Load() != int64(tc.size) {
				t.Errorf("%s: %d parts fetched again, %d bytes counted: want the stalled body resumed, every byte once", tc.key, res.d.Refetched, got.Load())
			}
			if proxy.Count(s3test.StallResponse) != 1 {
				t.Errorf("%s: the proxy stalled %d bodies, want 1: %s", tc.key, proxy.Count(s3test.StallResponse), proxy.Counts())
			}
		}
	})
}

type downloadResult struct {
	d   Downloaded
	err error
}

// downloadPastStall starts req's download and, once ready is closed (every
// byte but the stalled ones has come), moves clock on by step while a timer
// waits on it, until resumed is closed (the request that resumes the stalled
// body has arrived); it returns the download's result.
func downloadPastStall(t *testing.T, ctx context.Context, st *Store, req DownloadRequest, clock *clockwork.FakeClock, step time.Duration, ready, resumed <-chan struct{}, proxy *s3test.Proxy) downloadResult {
	t.Helper()
	done := make(chan downloadResult, 1)
	go func() {
		d, err := st.Download(ctx, req)
		done <- downloadResult{d, err}
	}()
	select {
	case <-ready:
	case res := <-done:
		t.Fatalf("%s: returned before the stall: %v (proxy: %s)", req.Key, res.err, proxy.Counts())
	}
	for {
		// Both at once: the resumed request can arrive, and the download
		// end (leaving no timer), between a look at resumed and the wait.
		wait, stop := context.WithCancel(ctx)
		blocked := make(chan error, 1)
		go func() { blocked <- clock.BlockUntilContext(wait, 1) }()
		select {
		case <-resumed:
			stop()
			return <-done
		case err := <-blocked:
			stop()
			if err != nil {
				t.Fatalf("%s: no timer on the store's clock, and no resumed request: %v (proxy: %s)", req.Key, err, proxy.Counts())
			}
		}
		clock.Advance(step)
	}
}

// A request of several pieces cut short again and again, each time in a
// later piece and each time after bringing bytes, is resumed each time
// from the byte where it ended, more often than the attempts allowed: only
// attempts in a row that bring nothing use them up (a slow, busy link that
// is still moving must not fail the download).
func TestDownloadCutsWhileMoving(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		o := putStored(t, srv, bucket, "large", filler(5<<20+17))
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var mu sync.Mutex
		var ranges []string
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			if r.Method != http.MethodGet {
				return s3test.Pass
			}
			mu.Lock()
			defer mu.Unlock()
			rg := r.Header.Get("Range")
			// The first request (4 MiB, eight pieces of 512 KiB): cut after
			// half, then after half the rest, three times.
			if strings.HasPrefix(rg, "bytes=") && !strings.HasPrefix(rg, "bytes=4194304-") && len(ranges) < 3 {
				ranges = append(ranges, rg)
				return s3test.CutResponse
			}
			return s3test.Pass
		})
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 4 << 20, DownloadMemory: 3 << 20, MaxAttempts: 2})
		st.dlSlowPart = 0
		req := o.request(t.TempDir(), "large")
		var got atomic.Int64
		req.Progress = func(n int64) { got.Add(n) }
		d, err := st.Download(context.Background(), req)
		if err != nil {
			t.Fatalf("%v (proxy: %s)", err, proxy.Counts())
		}
		o.arrived(t, req.Path, o.key)
		if want := []string{"bytes=0-4194303", "bytes=2097152-4194303", "bytes=3145728-4194303"}; !slices.Equal(ranges, want) {
			t.Errorf("cut requests %q, want %q", ranges, want)
		}
		if d.Refetched != 0 || got.Load() != int64(len(o.body)) {
			t.Errorf("%d pieces fetched again, %d bytes counted: want each cut resumed, every byte once", d.Refetched, got.Load())
		}
	})
}

// A request that runs out of its time mid-body (PACKAGE_ASSETS_REQUEST_TIMEOUT,
// on the store's clock), whether its body stalled in a later piece of a
// request of several (the stall watch set too long to notice) or it waits
// for a buffer of the pool, is resumed from the byte it reached, as a cut;
// its read fails naming the timeout, not as a cancellation.
func TestDownloadRequestTimeoutResumes(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		o := putStored(t, srv, bucket, "large", filler(5<<20+17))
		proxy := s3test.NewProxy(t, srv.Endpoint)
		resumed := make(chan struct{})
		var once, resumeOnce sync.Once
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			f := s3test.Pass
			switch r.Header.Get("Range") {
			case "bytes=0-4194303": // eight pieces of 512 KiB; stalls in the fifth
				once.Do(func() { f = s3test.StallResponse })
			case "bytes=2097152-4194303":
				resumeOnce.Do(func() { close(resumed) })
			case "bytes=0-1023":
				f = s3test.StallResponse
			}
			return f
		})
		clock := clockwork.NewFakeClock()
		const timeout = time.Minute
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{
			PartSize: 4 << 20, DownloadMemory: 3 << 20, StallTimeout: 24 * time.Hour, RequestTimeout: timeout, Clock: clock,
		})
		st.dlSlowPart = 0
		// A guard, not a measure: without the timeout this waits a day.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req := o.request(t.TempDir(), "large")
		var got atomic.Int64
		allButStalled := make(chan struct{})
		// Six buffers: the first request's half (pieces 0-3) and, once those
		// are hashed, two pieces of the second (8 and 9) come; the hasher
		// waits for piece 4, and the second request waits mid-body for a
		// buffer for piece 10: its timeout fires too, and it resumes.
		req.Progress = func(n int64) {
			if got.Add(n) == 3<<20 {
				close(allButStalled)
			}
		}
		res := downloadPastStall(t, ctx, st, req, clock, timeout, allButStalled, resumed, proxy)
		if res.err != nil {
			t.Fatalf("%v (proxy: %s)", res.err, proxy.Counts())
		}
		o.arrived(t, req.Path, o.key)
		if res.d.Refetched != 0 || got.Load() != int64(len(o.body)) {
			t.Errorf("%d pieces fetched again, %d bytes counted: want the request resumed, every byte once", res.d.Refetched, got.Load())
		}

		// The read that the timeout ends says so.
		out, err := st.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: aws.String("large"), Range: aws.String("bytes=0-1023")})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		go func() {
			if clock.BlockUntilContext(ctx, 1) == nil {
				clock.Advance(timeout)
			}
		}()
		_, err = io.ReadAll(out.Body)
		if err == nil || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "timed out after 1m0s (PACKAGE_ASSETS_REQUEST_TIMEOUT") {
			t.Errorf("a body read ended by the timeout: %v", err)
		}
	})
}

// Cancelled while one request's body is stalled and another waits mid-body
// for a buffer of the pool, the download returns the cancellation at once,
// leaves no file, and every buffer is back in the pool.
func TestDownloadCancelledWaitingForBuffer(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		o := putStored(t, srv, bucket, "large", filler(5<<20+17))
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var once sync.Once
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			f := s3test.Pass
			if r.Header.Get("Range") == "bytes=0-4194303" {
				once.Do(func() { f = s3test.StallResponse })
			}
			return f
		})
		clock := clockwork.NewFakeClock() // never moved: nothing times out
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{
			PartSize: 4 << 20, DownloadMemory: 3 << 20, StallTimeout: time.Hour, RequestTimeout: time.Hour, Clock: clock,
		})
		st.dlSlowPart = 0
		guard, stop := context.WithTimeout(context.Background(), time.Minute) // a guard, not a measure
		defer stop()
		ctx, cancel := context.WithCancel(guard)
		defer cancel()
		dir := t.TempDir()
		req := o.request(dir, "large")
		var got atomic.Int64
		// As in TestDownloadRequestTimeoutResumes: at 3 MiB the first request
		// is stalled in piece 4 and the second waits for piece 10's buffer.
		req.Progress = func(n int64) {
			if got.Add(n) == 3<<20 {
				cancel()
			}
		}
		_, err := st.Download(ctx, req)
		if !errors.Is(err, context.Canceled) || guard.Err() != nil {
			t.Fatalf("cancelled download: %v (%d bytes; proxy: %s)", err, got.Load(), proxy.Counts())
		}
		leftNothing(t, dir, "cancelled waiting for a buffer")
		buffersBack(t, st)
	})
}

// Several large files at once on a pool of two buffers, each fetched in
// requests of many pieces, all arrive verified: the buffers are handed out
// in order across the files, so the piece being hashed always has one, and
// none waits forever for another.
func TestDownloadManyLargeOnTwoBuffers(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		// Two buffers of 64 KiB, requests of 1 MiB (16 pieces each).
		st := newStore(t, srv, bucket, Options{PartSize: 1 << 20, DownloadMemory: 128 << 10, Concurrency: 8})
		st.dlSlowPart = 0
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a guard, not a measure
		defer cancel()
		dir := t.TempDir()
		var wg sync.WaitGroup
		errs := make([]error, 4)
		objs := make([]stored, 4)
		for i := range objs {
			body := filler(3<<20 + 1000*i)
			body[i] ^= 0xff // each file its own bytes
			objs[i] = putStored(t, srv, bucket, fmt.Sprint("f", i), body)
		}
		for i, o := range objs {
			wg.Go(func() {
				d, err := st.Download(ctx, o.request(dir, o.key))
				if want := partCount(int64(len(o.body)), 64<<10); err == nil && (d.Pieces != want || d.Requests < 3 || d.Requests*8 > d.Pieces) {
					err = fmt.Errorf("%+v: want %d pieces, in requests of many", d, want)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, o := range objs {
			if errs[i] != nil {
				t.Errorf("%s: %v", o.key, errs[i])
				continue
			}
			if b, _ := os.ReadFile(filepath.Join(dir, o.key)); !bytes.Equal(b, o.body) {
				t.Errorf("%s: bytes differ", o.key)
			}
		}
		buffersBack(t, st)
	})
}

// A request that fails (a 412: the object was replaced) while the hashing
// goroutine reads back the pieces an earlier round left on the file fails
// the download with its own error, ErrSourceChanged, not the read-back's
// "context canceled" that its failure caused.
//
// Pieces 0, 2 and 3 come damaged, differently, on the first two fetches,
// so the third round fetches them alone and reads piece 1 back from the
// file, in order: 0, then 1 from the file, then 2 and 3. In that round a
// proxy written here lets piece 0 through once the pool is full (the
// hasher is then held, with piece 0 hashed, where it gives its buffer
// back), and learns that the client took every byte of it when the client
// closes the body (sent chunked, never ended); the object is then replaced,
// so the server answers piece 2's request with 412; piece 3's request is
// held until that failure cancels it, and only then is the hasher let go,
// into the read-back.
func TestDownloadFailureDuringReadBack(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		const piece = 64 << 10
		o := putStored(t, srv, bucket, "large", filler(3*piece+100))
		target, err := url.Parse(srv.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		rng := func(i int) string {
			return fmt.Sprintf("bytes=%d-%d", i*piece, min((i+1)*piece, len(o.body))-1)
		}
		var (
			mu                        sync.Mutex
			gets                      = map[string]int{}
			flips                     int
			lastHeld, filled, replace = make(chan struct{}), make(chan struct{}), make(chan struct{})
			consumed, lastGone        = make(chan struct{}), make(chan struct{})
		)
		rp := &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				r.SetURL(target)
				r.Out.Host = r.In.Host // the client signed this Host header
			},
			FlushInterval: -1,
			ModifyResponse: func(resp *http.Response) error {
				switch resp.Request.Header.Get("X-Test-Do") {
				case "flip":
					mu.Lock()
					flips++
					resp.Body = &flipAt{ReadCloser: resp.Body, at: int64(flips)} // another byte each time
					mu.Unlock()
				case "hold at end":
					// Chunked, and never ended: the client, having read
					// every byte it asked for, closes the connection.
					resp.Header.Del("Content-Length")
					resp.ContentLength = -1
					resp.Body = &holdAtEnd{ReadCloser: resp.Body, until: resp.Request.Context().Done(), then: consumed}
				}
				return nil
			},
		}
		// A held request also ends when its client goes (a failed test's
		// guard), or the proxy's Close would wait for it.
		wait := func(r *http.Request, ch <-chan struct{}) bool {
			select {
			case <-ch:
				return true
			case <-r.Context().Done():
				return false
			}
		}
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rg := r.Header.Get("Range")
			mu.Lock()
			gets[rg]++
			n := gets[rg]
			mu.Unlock()
			do := ""
			switch {
			case r.Method != http.MethodGet || rg == rng(1):
			case n <= 2: // the first two rounds
				do = "flip"
			case rg == rng(0):
				if !wait(r, filled) {
					return
				}
				do = "hold at end"
			case rg == rng(2):
				if !wait(r, replace) {
					return
				}
			case rg == rng(3):
				close(lastHeld)
				<-r.Context().Done() // the download's failure cancels it
				close(lastGone)
				return
			}
			r.Header.Set("X-Test-Do", do) // not signed: the server ignores it
			rp.ServeHTTP(w, r)
		}))
		defer proxy.Close()

		clock := clockwork.NewFakeClock() // never moved: nothing times out
		// Pieces of 64 KiB, a request each, a pool of three buffers.
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{
			PartSize: piece, DownloadMemory: 3 * piece, StallTimeout: time.Hour, RequestTimeout: time.Hour, Clock: clock,
		})
		// A guard, not a measure: a step that never comes fails the test.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		step := func(ch <-chan struct{}, what string) {
			t.Helper()
			select {
			case <-ch:
			case <-ctx.Done():
				t.Fatalf("never: %s", what)
			}
		}
		dir := t.TempDir()
		done := make(chan downloadResult, 1)
		go func() {
			d, err := st.Download(ctx, o.request(dir, "large"))
			done <- downloadResult{d, err}
		}()

		// The third round's three requests each have their buffer: fill the
		// pool, so the hasher is held where it gives piece 0's back.
		step(lastHeld, "the third round's request of piece 3")
		standIn := []byte("stand-in")
		for range cap(st.dlBufs) {
			st.dlBufs <- standIn
		}
		close(filled)
		step(consumed, "piece 0 received")
		putStored(t, srv, bucket, "large", filler(len(o.body)+1))
		close(replace)
		step(lastGone, "piece 3's request cancelled")
		for range cap(st.dlBufs) {
			if b := <-st.dlBufs; string(b) != string(standIn) {
				t.Fatalf("the pool gave back a buffer before the stand-ins: the hasher was not held")
			}
		}

		var res downloadResult
		select {
		case res = <-done:
		case <-ctx.Done():
			t.Fatal("the download never returned")
		}
		if !errors.Is(res.err, ErrSourceChanged) || errors.Is(res.err, context.Canceled) || !strings.Contains(res.err.Error(), "/large") {
			t.Errorf("a 412 while a piece is read back: %v, want ErrSourceChanged naming the object", res.err)
		}
		leftNothing(t, dir, "failed during the read-back")
		buffersBack(t, st)
	})
}

// flipAt inverts the byte at offset at of a body as it passes.
type flipAt struct {
	io.ReadCloser
	pos, at int64
}

func (f *flipAt) Read(b []byte) (int, error) {
	n, err := f.ReadCloser.Read(b)
	if i := f.at - f.pos; i >= 0 && i < int64(n) {
		b[i] ^= 0xff
	}
	f.pos += int64(n)
	return n, err
}

// holdAtEnd passes a body on and, at its end, waits until until is closed
// before it ends, then closes then.
type holdAtEnd struct {
	io.ReadCloser
	until <-chan struct{}
	then  chan struct{}
}

func (h *holdAtEnd) Read(b []byte) (int, error) {
	n, err := h.ReadCloser.Read(b)
	if err == io.EOF {
		if n > 0 {
			return n, nil
		}
		<-h.until
		close(h.then)
	}
	return n, err
}

// The switch to requests of one part: taken once most parts, four at least,
// came slowly, counting only the parts that came while the store's ranged
// requests were fewer than its buffers (more of them could then run at
// once); never on a fast link, nor while the pool is in use by as many
// requests as it has buffers, however slowly their parts come.
func TestRateTallySwitch(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	type part struct {
		rate     float64 // MiB/s
		inFlight int
	}
	slow := func(k, inFlight int) []part { return slices.Repeat([]part{{50, inFlight}}, k) }
	fast := func(k, inFlight int) []part { return slices.Repeat([]part{{900, inFlight}}, k) }
	for _, tc := range []struct {
		name  string
		parts []part
		want  int // the part (from 0) after which the switch is made; -1 never
	}{
		{"one file on a slow link", slow(6, 2), 3},
		{"three files on a slow link, 4 of 6 under way", slow(6, 4), 3},
		{"a fast link", fast(20, 2), -1},
		{"the pool in use by as many requests as buffers", slow(20, 6), -1},
		{"more requests than buffers (some wait for one)", slow(20, 9), -1},
		{"slow parts counted only below the pool's size", append(slow(5, 6), slow(4, 5)...), 8},
		{"mostly fast: three slow parts of four are not enough", append(fast(1, 2), slow(3, 2)...), -1},
		{"slow and fast in turn: once the slow are four and more", []part{{50, 2}, {900, 2}, {50, 2}, {900, 2}, {50, 2}, {900, 2}, {50, 2}}, 6},
		{"exactly at the threshold is not slow", slices.Repeat([]part{{200, 2}}, 10), -1},
	} {
		var c rateTally
		got := -1
		for i, p := range tc.parts {
			if c.note(p.rate*mib, slowPart, p.inFlight, 6) {
				got = i
				break
			}
		}
		if got != tc.want {
			t.Errorf("%s: switched after part %d, want %d (-1: never)", tc.name, got, tc.want)
		}
	}
}

// A download's own file that cannot be made or put in place is
// ErrLocalFile (the directory's problem, not S3's), and leaves nothing.
func TestDownloadLocalFileFails(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		st := newStore(t, srv, bucket, Options{})
		o := putStored(t, srv, bucket, "a.zip", []byte("one"))
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "a.zip", "inner"), 0o755); err != nil {
			t.Fatal(err)
		}
		for what, path := range map[string]string{
			"a directory at its name": filepath.Join(dir, "a.zip"),
			"no directory":            filepath.Join(dir, "missing", "a.zip"),
		} {
			req := o.request(dir, "")
			req.Path = path
			_, err := st.Download(context.Background(), req)
			if !errors.Is(err, ErrLocalFile) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: %v, want ErrLocalFile naming %s", what, err, path)
			}
		}
		if names := dirNames(t, dir); !slices.Equal(names, []string{"a.zip"}) {
			t.Errorf("left %v", names)
		}
	})
}
