package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sync/semaphore"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// The bound halves on a throttled answer, once per round (answers to
// requests sent before the cut do not cut again), and grows by one for each
// bound's worth of answers without throttling, up to the configured
// concurrency.
func TestLimiterAdapts(t *testing.T) {
	t.Parallel()
	type step struct {
		acquire   int  // slots to take first
		release   int  // then slots to give back, oldest first
		throttled bool // the answer to the released ones
		want      int  // the bound after
	}
	tests := []struct {
		name  string
		max   int
		steps []step
	}{
		{"answers without throttling keep the bound", 8, []step{
			{acquire: 8, release: 8, want: 8},
		}},
		{"a throttled answer halves it", 8, []step{
			{acquire: 8, release: 1, throttled: true, want: 4},
		}},
		{"the other answers of the same round do not cut again", 8, []step{
			{acquire: 8, release: 7, throttled: true, want: 4},
		}},
		{"a throttled answer of the next round cuts again", 8, []step{
			{acquire: 8, release: 8, throttled: true, want: 4},
			{acquire: 4, release: 1, throttled: true, want: 2},
		}},
		{"never below one", 2, []step{
			{acquire: 2, release: 2, throttled: true, want: 1},
			{acquire: 1, release: 1, throttled: true, want: 1},
			{acquire: 1, release: 1, throttled: true, want: 1},
		}},
		{"a bound's worth of good answers raises it by one", 8, []step{
			{acquire: 8, release: 8, throttled: true, want: 4},
			{acquire: 4, release: 3, want: 4},
			{release: 1, want: 5},
			{acquire: 5, release: 5, want: 6},
		}},
		{"not above the configured concurrency", 3, []step{
			{acquire: 3, release: 3, throttled: true, want: 1},
			{acquire: 1, release: 1, want: 2},
			{acquire: 2, release: 2, want: 3},
			{acquire: 3, release: 3, want: 3},
			{acquire: 3, release: 3, want: 3},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(tt.max)
			var held []int
			for i, s := range tt.steps {
				for range s.acquire {
					e, err := l.acquire(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					held = append(held, e)
				}
				for range s.release {
					l.release(held[0], s.throttled)
					held = held[1:]
				}
				if got := l.current(); got != s.want {
					t.Fatalf("step %d: bound %d, want %d", i, got, s.want)
				}
			}
		})
	}
}

// A request beyond the bound waits until one in flight is answered, and one
// whose context ends while it waits leaves without a slot.
func TestLimiterWaits(t *testing.T) {
	t.Parallel()
	l := newLimiter(1)
	e, err := l.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a cancelled context: %v", err)
	}
	got := make(chan int)
	go func() {
		e, err := l.acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- e
	}()
	l.release(e, false)
	l.release(<-got, false)
	if l.inFlight != 0 {
		t.Fatalf("%d slots still taken", l.inFlight)
	}
}

// Through a store that throttles above a few requests in flight, many
// parallel uploads all complete, each request retried at most a few times
// (MaxAttempts 6: the bound needs three halvings): the tool lowers its bound instead of retrying into the
// same refusal. Without throttling, no more requests than the concurrency
// are ever in flight.
func TestThrottledUploads(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		dir := t.TempDir()
		const files = 120
		for i := range files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), filler(10<<10+i), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name        string
			maxInFlight int
		}{{"unthrottled", 0}, {"throttled above 3 in flight", 3}} {
			t.Run(tc.name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				proxy := s3test.NewProxy(t, srv.Endpoint)
				proxy.Throttle = &s3test.Throttle{MaxInFlight: tc.maxInFlight}
				const concurrency = 24
				st, err := New(context.Background(), Options{
					Bucket: bucket, Endpoint: proxy.URL, PathStyle: true, Concurrency: concurrency, MaxAttempts: 6,
				})
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				errs := make(chan error, files)
				for i := range files {
					wg.Go(func() {
						_, err := st.UploadFile(context.Background(), UploadRequest{
							Key: fmt.Sprint("f/", i), Path: filepath.Join(dir, fmt.Sprint(i)), ContentType: "application/octet-stream",
							Metadata: func([]byte) map[string]string { return nil },
						})
						errs <- err
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Fatalf("upload: %v (503s: %d)", err, proxy.Throttle.Throttled())
					}
				}
				for i := range files {
					if _, got := srv.Get(t, bucket, fmt.Sprint("f/", i)); len(got) != 10<<10+i {
						t.Fatalf("f/%d: %d bytes stored", i, len(got))
					}
				}
				if peak := proxy.Throttle.Peak(); peak > concurrency {
					t.Errorf("%d requests in flight at once, more than the concurrency %d", peak, concurrency)
				}
				if tc.maxInFlight > 0 && proxy.Throttle.Throttled() == 0 {
					t.Errorf("the store never throttled (peak %d in flight): the test tests nothing", proxy.Throttle.Peak())
				}
				t.Logf("503s: %d, passed: %d, peak in flight: %d, bound at the end: %d",
					proxy.Throttle.Throttled(), proxy.Throttle.Passed(), proxy.Throttle.Peak(), st.limit.current())
			})
		}
	})
}

// Parts are sent no more than the bytes bound allows at once, however many
// requests may be in flight.
func TestBytesInFlight(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		proxy.Throttle = &s3test.Throttle{} // counts, refuses nothing
		st, err := New(context.Background(), Options{
			Bucket: bucket, Endpoint: proxy.URL, PathStyle: true, Concurrency: 16,
			PartSize: 5 << 20, MaxBytesInFlight: 10 << 20,
		})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "big")
		body := filler(40 << 20)
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		up, err := st.UploadFile(context.Background(), UploadRequest{
			Key: "big", Path: path, ContentType: "application/octet-stream",
			Metadata: func([]byte) map[string]string { return nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		if up.Parts != 8 {
			t.Fatalf("%d parts, want 8", up.Parts)
		}
		if _, got := srv.Get(t, bucket, "big"); !bytes.Equal(got, body) {
			t.Fatal("stored bytes differ")
		}
		// Two parts of 5 MiB fill the 10 MiB; nothing else runs beside the parts.
		if peak := proxy.Throttle.Peak(); peak > 2 {
			t.Errorf("%d requests in flight at once, want at most 2 parts", peak)
		}
	})
}

// A body small enough to be in memory never waits for the bytes bound; a
// larger one waits until the bytes are free or its context ends.
func TestSmallBodiesSkipTheBytesBound(t *testing.T) {
	t.Parallel()
	s := &Store{bytes: semaphore.NewWeighted(1 << 20), maxBytes: 1 << 20}
	full, err := s.sending(context.Background(), 4<<20) // more than the bound: takes all of it
	if err != nil {
		t.Fatal(err)
	}
	small, err := s.sending(context.Background(), smallFile)
	if err != nil {
		t.Fatal(err)
	}
	small()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.sending(ctx, smallFile+1); !errors.Is(err, context.Canceled) {
		t.Fatalf("a larger body with the bound taken: %v, want it to wait until cancelled", err)
	}
	full()
	again, err := s.sending(context.Background(), smallFile+1)
	if err != nil {
		t.Fatalf("a larger body with the bound free: %v", err)
	}
	again()
}
