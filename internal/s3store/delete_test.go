package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sync/errgroup"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// Delete takes more keys than one request holds (2,500: three batches),
// missing keys included, and removes exactly those; Walk sees the rest with
// their times; a multipart upload left open is listed and aborted.
func TestDeleteWalkUploads(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		st := newStore(t, srv, bucket, Options{Concurrency: 32})
		var keys []string
		for i := range 2500 {
			keys = append(keys, fmt.Sprintf("p/a/%04d", i))
		}
		keep := []string{"p/b/1", "p/b/2"}
		// 2,502 objects, written many at once (one by one takes most of the test).
		var g errgroup.Group
		g.SetLimit(16)
		for _, k := range append(slices.Clone(keys), keep...) {
			g.Go(func() error { return st.WriteRecord(ctx, k, []byte("x"), false) })
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		var confirmed atomic.Int64
		deleted, err := st.Delete(ctx, append(keys, "p/a/never-there"), func(ks []string) { confirmed.Add(int64(len(ks))) })
		if err != nil {
			t.Fatal(err)
		}
		if len(deleted) != len(keys)+1 || confirmed.Load() != int64(len(keys)+1) {
			t.Errorf("deleted %d keys (%d confirmed), want %d", len(deleted), confirmed.Load(), len(keys)+1)
		}
		var left []string
		err = st.Walk(ctx, "p/", func(objs []Listed) error {
			for _, o := range objs {
				if o.LastModified.IsZero() || o.Size != 1 {
					t.Errorf("listed %+v: want a time and size 1", o)
				}
				left = append(left, o.Key)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(left, keep) {
			t.Errorf("left %v, want %v", left, keep)
		}

		key := "p/c/big"
		if _, err := srv.Client().CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key}); err != nil {
			t.Fatal(err)
		}
		ups, err := st.Uploads(ctx, "p/")
		if err != nil {
			t.Fatal(err)
		}
		if len(ups) != 1 || ups[0].Key != key || ups[0].Initiated.IsZero() {
			t.Fatalf("uploads %+v, want one of %s with a time", ups, key)
		}
		if err := st.Abort(ctx, ups[0]); err != nil {
			t.Fatal(err)
		}
		if n := srv.PendingUploads(t, bucket); n != 0 {
			t.Errorf("%d uploads left after the abort", n)
		}
		if err := st.Abort(ctx, ups[0]); err != nil {
			t.Errorf("aborting an upload already aborted: %v", err)
		}
	})
}

// A missing bucket is an error, never an empty listing.
func TestWalkMissingBucket(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		st := newStore(t, srv, "no-such-bucket-here", Options{})
		err := st.Walk(context.Background(), "", func([]Listed) error { return nil })
		if !errors.Is(err, ErrNoBucket) {
			t.Errorf("walk of a missing bucket: %v, want ErrNoBucket", err)
		}
		if _, err := st.Delete(context.Background(), []string{"a"}, nil); err == nil {
			t.Error("delete in a missing bucket: no error")
		}
	})
}

// A store without DeleteObjects (501 NotImplemented, as Google Cloud
// Storage's XML API answers) gets one DELETE a key, from then on.
func TestDeleteWithoutMultiDelete(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var multi atomic.Int64
		proxy.SetPlan(func(n int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
				multi.Add(1)
				return s3test.NotImpl
			}
			return s3test.Pass
		})
		proxy.DeleteKeyError = func(key string) string {
			if key == "r/refused" {
				return "AccessDenied"
			}
			return ""
		}
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{Concurrency: 16})
		var keys []string
		for i := range 30 {
			k := fmt.Sprintf("d/%02d", i)
			keys = append(keys, k)
			if err := st.WriteRecord(ctx, k, []byte("x"), false); err != nil {
				t.Fatal(err)
			}
		}
		for _, batch := range [][]string{keys[:10], append(keys[10:], "d/never-there")} {
			deleted, err := st.Delete(ctx, batch, nil)
			if err != nil || len(deleted) != len(batch) {
				t.Fatalf("deleted %d of %d: %v", len(deleted), len(batch), err)
			}
		}
		// A key refused (403 for its DELETE) is that key's alone, as a
		// per-key error of DeleteObjects is: the others are deleted.
		var others []string
		for _, k := range []string{"r/a", "r/refused", "r/b", "r/c"} {
			if err := st.WriteRecord(ctx, k, []byte("x"), false); err != nil {
				t.Fatal(err)
			}
			if k != "r/refused" {
				others = append(others, k)
			}
		}
		deleted, err := st.Delete(ctx, []string{"r/a", "r/refused", "r/b", "r/c"}, nil)
		slices.Sort(deleted)
		if !slices.Equal(deleted, others) || !errors.Is(err, ErrNotDeleted) || StoreRefused(err) || !strings.Contains(err.Error(), "r/refused (AccessDenied") {
			t.Errorf("a key refused alone: deleted %v, %v; want %v deleted and r/refused refused alone", deleted, err, others)
		}
		if n := multi.Load(); n != 1 {
			t.Errorf("%d DeleteObjects requests, want 1 (then single deletes)", n)
		}
		var left int
		st.Walk(ctx, "d/", func(objs []Listed) error { left += len(objs); return nil })
		if left != 0 {
			t.Errorf("%d objects left", left)
		}
	})
}

// A key a DeleteObjects answers with a per-key error that S3 says to try
// again (InternalError: "Please try again", SlowDown) is deleted again
// after a backoff (on the store's clock): the SDK retries requests, not the
// keys of a 200 answer. A key refused for good (AccessDenied) is reported,
// once, and not tried again.
func TestDeleteRetriesKeyErrors(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var mu sync.Mutex
		tries := map[string]int{}
		proxy.DeleteKeyError = func(key string) string {
			mu.Lock()
			defer mu.Unlock()
			tries[key]++
			switch {
			case key == "d/05" && tries[key] <= 2:
				return "InternalError"
			case key == "d/06" && tries[key] <= 1:
				return "SlowDown"
			case key == "d/07":
				return "AccessDenied"
			}
			return ""
		}
		clock := clockwork.NewFakeClock()
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{Concurrency: 4, RequestTimeout: 100000 * time.Hour, Clock: clock})
		var keys []string
		for i := range 10 {
			k := fmt.Sprintf("d/%02d", i)
			keys = append(keys, k)
			if err := st.WriteRecord(ctx, k, []byte("x"), false); err != nil {
				t.Fatal(err)
			}
		}
		type result struct {
			deleted []string
			err     error
		}
		done := make(chan result, 1)
		running, finished := context.WithCancel(ctx)
		go func() {
			deleted, err := st.Delete(ctx, keys, nil)
			done <- result{deleted, err}
			finished()
		}()
		// The backoffs pass on the fake clock: whenever anything waits on
		// it (a backoff, or a request's timeout, which is years away), it
		// moves on 10 s.
		for running.Err() == nil {
			if clock.BlockUntilContext(running, 1) == nil {
				clock.Advance(10 * time.Second)
			}
			runtime.Gosched()
		}
		r := <-done
		slices.Sort(r.deleted)
		if want := slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return k == "d/07" }); !slices.Equal(r.deleted, want) {
			t.Errorf("deleted %v, want %v", r.deleted, want)
		}
		if !errors.Is(r.err, ErrNotDeleted) || !strings.Contains(r.err.Error(), "d/07 (AccessDenied") || strings.Contains(r.err.Error(), "d/05") {
			t.Errorf("error %v: want d/07 refused, alone", r.err)
		}
		if tries["d/07"] != 1 {
			t.Errorf("d/07, refused for good, tried %d times, want 1", tries["d/07"])
		}
		var left []string
		st.Walk(ctx, "d/", func(objs []Listed) error {
			for _, o := range objs {
				left = append(left, o.Key)
			}
			return nil
		})
		if !slices.Equal(left, []string{"d/07"}) {
			t.Errorf("left %v, want d/07 alone", left)
		}
	})
}

// DeleteObjects carries Content-MD5, which S3 documents as required for it,
// not the SDK's CRC32: a store holding to that (MinIO before 2025, Oracle's)
// refused every delete with 400 MissingContentMD5, and one refusing the
// SDK's checksum headers (501) cost a DELETE a key.
func TestDeleteObjectsContentMD5(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for _, tc := range []struct {
			name  string
			proxy func(*s3test.Proxy)
		}{
			{"needs Content-MD5", func(p *s3test.Proxy) { p.RequireContentMD5 = true }},
			{"refuses checksum headers", func(p *s3test.Proxy) { p.RefuseChecksums = true }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				bucket := srv.NewBucket(t)
				proxy := s3test.NewProxy(t, srv.Endpoint)
				tc.proxy(proxy)
				var multi, single atomic.Int64
				proxy.Observe = func(r *http.Request, status int) {
					switch {
					case r.Method == http.MethodPost && r.URL.Query().Has("delete") && status == http.StatusOK:
						multi.Add(1)
					case r.Method == http.MethodDelete:
						single.Add(1)
					}
				}
				st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{Concurrency: 4})
				keys := []string{"e/1", "e/2", "e/3"}
				for _, k := range keys {
					if err := st.WriteRecord(ctx, k, []byte("x"), false); err != nil {
						t.Fatal(err)
					}
				}
				deleted, err := st.Delete(ctx, keys, nil)
				if err != nil || len(deleted) != len(keys) {
					t.Fatalf("deleted %v: %v", deleted, err)
				}
				if multi.Load() != 1 || single.Load() != 0 {
					t.Errorf("%d DeleteObjects and %d DELETEs, want one DeleteObjects", multi.Load(), single.Load())
				}
			})
		}
	})
}

// One key's refusal lets the others go on; an error every request would
// meet (the account, the clock, the signature, throttling) does not.
func TestItemRefused(t *testing.T) {
	t.Parallel()
	answer := func(status int, code string) error {
		return &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}},
			Err:      &smithy.GenericAPIError{Code: code, Message: "m"},
		}}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{answer(403, "AccessDenied"), true},
		{answer(409, "InvalidObjectState"), true},
		{answer(403, "AllAccessDisabled"), false},
		{answer(403, "AccountProblem"), false},
		{answer(403, "RequestTimeTooSkewed"), false},
		{answer(400, "AuthorizationHeaderMalformed"), false},
		{answer(403, "InvalidAccessKeyId"), false},
		{answer(405, "MethodNotAllowed"), false},
		{answer(429, "TooManyRequests"), false},
		{answer(503, "SlowDown"), false},
		{answer(500, "InternalError"), false},
		{fmt.Errorf("delete k: %w", ErrUnreachable), false},
	} {
		if got := itemRefused(tc.err); got != tc.want {
			t.Errorf("itemRefused(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
