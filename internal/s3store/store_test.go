package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
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

func TestMain(m *testing.M) {
	s3test.SetEnv()
	code := m.Run()
	s3test.StopAll()
	os.Exit(code)
}

func newStore(t *testing.T, srv *s3test.Server, bucket string, o Options) *Store {
	t.Helper()
	o.Bucket, o.Endpoint, o.PathStyle = bucket, srv.Endpoint, true
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	s, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func filler(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/4096)
	}
	return b
}

// Multipart upload and multipart copy (forced with small thresholds) give
// back the same bytes, with the metadata asked for.
func TestMultipartUploadAndCopy(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		st := newStore(t, srv, bucket, Options{PartSize: 5 << 20, CopyPartThreshold: 6 << 20})
		body := filler(17<<20 + 123)
		path := filepath.Join(t.TempDir(), "big + odd name.bin")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}
		var gotSum []byte
		var sent int64
		up, err := st.UploadFile(ctx, UploadRequest{
			Key: "a/big + odd name.bin", Path: path, ContentType: "application/octet-stream",
			Metadata: func(sum []byte) map[string]string {
				gotSum = sum
				return map[string]string{"k": "v"}
			},
			Progress: func(n int64) { atomic.AddInt64(&sent, n) },
		})
		if err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(body)
		if !bytes.Equal(gotSum, want[:]) || !bytes.Equal(up.SHA256, want[:]) || up.Parts != 4 || up.Size != int64(len(body)) || up.Check != "CRC32C" {
			t.Fatalf("upload = %+v", up)
		}
		if sent != int64(len(body)) {
			t.Errorf("progress counted %d bytes, sent %d", sent, len(body))
		}
		if _, b := srv.Get(t, bucket, "a/big + odd name.bin"); !bytes.Equal(b, body) {
			t.Fatal("uploaded bytes differ")
		}

		for _, tc := range []struct {
			name string
			meta map[string]string
		}{{"replace", map[string]string{"commit-hash": "x"}}, {"keep", nil}} {
			dst := "b/" + tc.name + "/copy + %.bin"
			if _, err := st.Copy(ctx, CopyRequest{Src: "a/big + odd name.bin", Dst: dst, Size: int64(len(body)), SrcETag: up.ETag, Metadata: tc.meta, ContentType: "application/zip"}); err != nil {
				t.Fatalf("%s copy: %v", tc.name, err)
			}
			out, b := srv.Get(t, bucket, dst)
			if !bytes.Equal(b, body) {
				t.Fatalf("%s: copied bytes differ", tc.name)
			}
			wantMeta := tc.meta
			if wantMeta == nil {
				wantMeta = map[string]string{"k": "v"}
			}
			if len(out.Metadata) != len(wantMeta) || out.Metadata[firstKey(wantMeta)] != wantMeta[firstKey(wantMeta)] {
				t.Errorf("%s: metadata %v, want %v", tc.name, out.Metadata, wantMeta)
			}
		}

		// A source that no longer has the recorded ETag is not copied, in one
		// request or in parts; the error says the source changed, not that the
		// destination exists.
		for _, size := range []int64{10, int64(len(body))} {
			_, err = st.Copy(ctx, CopyRequest{Src: "a/big + odd name.bin", Dst: "c/x", Size: size, SrcETag: `"0123456789abcdef0123456789abcdef"`, Metadata: map[string]string{}})
			if !errors.Is(err, ErrSourceChanged) || errors.Is(err, ErrExists) {
				t.Errorf("copy of %d bytes with a stale ETag: %v, want ErrSourceChanged", size, err)
			}
		}
		// The same for a source replaced by a smaller object: the recorded
		// size's ranges no longer fit it (versitygw answers 400 for that
		// before it looks at the condition), and that must still read as changed.
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("a/shrunk"), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
		old, err := st.Head(ctx, "a/shrunk")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("a/shrunk"), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
		for _, size := range []int64{5 << 20, int64(len(body))} {
			_, err = st.Copy(ctx, CopyRequest{Src: "a/shrunk", Dst: "c/y", Size: size, SrcETag: old.ETag, Metadata: map[string]string{}})
			if !errors.Is(err, ErrSourceChanged) {
				t.Errorf("copy of %d bytes from a source that shrank: %v, want ErrSourceChanged", size, err)
			}
		}
		// And for a source that is gone.
		if _, err := srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("a/shrunk")}); err != nil {
			t.Fatal(err)
		}
		for _, size := range []int64{5 << 20, int64(len(body))} {
			if _, err = st.Copy(ctx, CopyRequest{Src: "a/shrunk", Dst: "c/z", Size: size, SrcETag: old.ETag, Metadata: map[string]string{}}); !errors.Is(err, ErrSourceChanged) {
				t.Errorf("copy of %d bytes from a deleted source: %v, want ErrSourceChanged", size, err)
			}
		}
		if n := srv.PendingUploads(t, bucket); n != 0 {
			t.Errorf("%d multipart uploads left behind by the refused copies", n)
		}
	})
}

func firstKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

func TestWriteRecordExclusive(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		st := newStore(t, srv, bucket, Options{})
		if err := st.WriteRecord(ctx, "r.json", []byte(`{"a":1}`), true); err != nil {
			t.Fatal(err)
		}
		err := st.WriteRecord(ctx, "r.json", []byte(`{"a":2}`), true)
		if !errors.Is(err, ErrExists) {
			// A store that ignores If-None-Match overwrites; both honour it here.
			t.Fatalf("second exclusive write: %v, want ErrExists", err)
		}
		if err := st.WriteRecord(ctx, "r.json", []byte(`{"a":3}`), false); err != nil {
			t.Fatal(err)
		}
		b, err := st.ReadSmall(ctx, "r.json", 100)
		if err != nil || string(b) != `{"a":3}` {
			t.Fatalf("read back %q, %v", b, err)
		}
		if _, err := st.ReadSmall(ctx, "r.json", 3); err == nil {
			t.Error("ReadSmall accepted an object over its limit")
		}
		if _, err := st.ReadSmall(ctx, "missing.json", 100); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing key: %v, want ErrNotFound", err)
		}
	})
}

// A missing bucket is never a missing key.
func TestMissingBucketIsNotNotFound(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		st := newStore(t, srv, "no-such-bucket-here", Options{})
		_, err := st.ReadSmall(context.Background(), "x", 10)
		if errors.Is(err, ErrNotFound) || !errors.Is(err, ErrNoBucket) {
			t.Errorf("err = %v, want ErrNoBucket", err)
		}
		if _, err := st.List(context.Background(), "x/"); !errors.Is(err, ErrNoBucket) {
			t.Errorf("list: %v, want ErrNoBucket", err)
		}
	})
}

func TestCopySource(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"artifacts/abc/fn1.zip": "b/artifacts/abc/fn1.zip",
		"a/with space+plus.zip": "b/a/with%20space%2Bplus.zip",
		"a/100%.zip":            "b/a/100%25.zip",
		"a/ünï.zip":             "b/a/%C3%BCn%C3%AF.zip",
		`a/q'"?#.zip`:           `b/a/q%27%22%3F%23.zip`,
	}
	for key, want := range tests {
		if got := copySource("b", key); got != want {
			t.Errorf("copySource(%q) = %q, want %q", key, got, want)
		}
	}
}

// Bytes damaged on the way are caught by the store, which checks every body
// against its signed digest, and sent again; bytes damaged every time are
// an error, never a stored object.
func TestCorruptedBodies(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for _, tc := range []struct {
			name       string
			contentMD5 bool
		}{{"sha256", false}, {"sha256+md5", true}} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				bucket := srv.NewBucket(t)
				proxy := s3test.NewProxy(t, srv.Endpoint)
				var bodies atomic.Int64
				proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
					if r.Method == http.MethodPut && bodies.Add(1)%2 == 1 {
						return s3test.Corrupt // the first try of each object or part; the retry passes
					}
					return s3test.Pass
				}
				st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 5 << 20, ContentMD5: tc.contentMD5, Concurrency: 1})
				dir := t.TempDir()
				for _, size := range []int{1 << 20, 17<<20 + 5} {
					body := filler(size)
					path := filepath.Join(dir, "f")
					if err := os.WriteFile(path, body, 0o644); err != nil {
						t.Fatal(err)
					}
					key := fmt.Sprintf("k%d", size)
					if _, err := st.UploadFile(ctx, UploadRequest{Key: key, Path: path, Metadata: noMeta}); err != nil {
						t.Fatalf("upload %d bytes: %v (proxy: %s)", size, err, proxy.Counts())
					}
					if _, b := srv.Get(t, bucket, key); !bytes.Equal(b, body) {
						t.Fatalf("%d bytes: the store kept a corrupted body", size)
					}
				}
				if proxy.Count(s3test.Corrupt) < 5 { // one PUT, four parts
					t.Fatalf("proxy: %s", proxy.Counts())
				}

				// Damaged every time: the upload fails and nothing is stored.
				proxy.Plan = func(int64, *http.Request) s3test.Fault { return s3test.Corrupt }
				st = newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{ContentMD5: tc.contentMD5, MaxAttempts: 2})
				path := filepath.Join(dir, "g")
				if err := os.WriteFile(path, filler(1000), 0o644); err != nil {
					t.Fatal(err)
				}
				_, err := st.UploadFile(ctx, UploadRequest{Key: "g", Path: path, Metadata: noMeta})
				if err == nil || !strings.Contains(err.Error(), "Mismatch") && !strings.Contains(err.Error(), "BadDigest") {
					t.Fatalf("an upload corrupted on every attempt: %v, want a digest mismatch", err)
				}
				if _, err := st.Head(ctx, "g"); !errors.Is(err, ErrNotFound) {
					t.Fatalf("after a failed upload, head: %v", err)
				}
			})
		}
	})
}

func noMeta([]byte) map[string]string { return nil }

// A small file is read whole, once; one that is no longer the size it was
// when it was listed is a changed file, not a short or long upload.
func TestReadSmall(t *testing.T) {
	t.Parallel()
	_, f := openedFile(t, "f", "0123456789")
	for _, tc := range []struct {
		size    int64
		changed bool
	}{{10, false}, {9, true}, {11, true}, {0, true}} {
		b, err := readSmall(f, tc.size)
		if tc.changed != errors.Is(err, ErrChanged) || !tc.changed && (err != nil || string(b) != "0123456789") {
			t.Errorf("size %d: %q, %v", tc.size, b, err)
		}
	}
}

// Parts carry CRC32C checksums where the store confirms it checked them. A
// store that refuses the header, or takes it without saying so, gets the
// file again with parts signed by their SHA-256, and so does every later file.
func TestPartChecksumFallback(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for _, tc := range []struct {
			name         string
			refuse, hide bool
			want         string
		}{
			{"confirmed", false, false, "CRC32C"},
			{"refused", true, false, "SHA-256"},
			{"not confirmed", false, true, "SHA-256"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				bucket := srv.NewBucket(t)
				proxy := s3test.NewProxy(t, srv.Endpoint)
				proxy.RefuseChecksums, proxy.HideChecksums = tc.refuse, tc.hide
				// Parts that reach the store with CRC32C, and with a signed SHA-256.
				// (Requests the proxy refuses never get here: proxy.Count has them.)
				var withCRC, withSHA atomic.Int64
				shaHex := regexp.MustCompile(`^[0-9a-f]{64}$`)
				proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
					if r.URL.Query().Get("partNumber") == "" {
						return s3test.Pass
					}
					if r.Header.Get("X-Amz-Checksum-Crc32c") != "" {
						withCRC.Add(1)
					} else if shaHex.MatchString(r.Header.Get("X-Amz-Content-Sha256")) {
						withSHA.Add(1)
					}
					return s3test.Pass
				}
				st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 5 << 20})
				path := filepath.Join(t.TempDir(), "f")
				body := filler(16 << 20)
				if err := os.WriteFile(path, body, 0o644); err != nil {
					t.Fatal(err)
				}
				var sent atomic.Int64
				for _, key := range []string{"first", "second"} {
					up, err := st.UploadFile(ctx, UploadRequest{Key: key, Path: path, Metadata: noMeta, Progress: func(n int64) { sent.Add(n) }})
					if err != nil {
						t.Fatalf("%s: %v", key, err)
					}
					if up.Check != tc.want {
						t.Errorf("%s: checked with %s, want %s", key, up.Check, tc.want)
					}
					if _, b := srv.Get(t, bucket, key); !bytes.Equal(b, body) {
						t.Fatalf("%s: stored bytes differ", key)
					}
				}
				// Confirmed: every part (4 a file). Not confirmed: the first part
				// only, sent alone. Refused: none (the create is refused).
				// Then every part of both files is signed with its SHA-256.
				wantCRC := map[string]int64{"confirmed": 8, "refused": 0, "not confirmed": 1}[tc.name]
				wantSHA := map[string]int64{"confirmed": 0, "refused": 8, "not confirmed": 8}[tc.name]
				if n, m := withCRC.Load(), withSHA.Load(); n != wantCRC || m != wantSHA {
					t.Errorf("parts sent with CRC32C: %d, want %d; signed with SHA-256: %d, want %d", n, wantCRC, m, wantSHA)
				}
				// Refused: only the first file's create asks for CRC32C.
				if n, want := proxy.Count(s3test.NotImpl), map[bool]int{true: 1}[tc.refuse]; n != want {
					t.Errorf("%d requests refused for a checksum header, want %d", n, want)
				}
				if n := srv.PendingUploads(t, bucket); n != 0 {
					t.Errorf("%d multipart uploads left behind", n)
				}
				// A part sent again after the fallback is not counted twice.
				if n := sent.Load(); n != 2*int64(len(body)) {
					t.Errorf("progress counted %d bytes for two files of %d", n, len(body))
				}
			})
		}
	})
}

// A file sent again counts only bytes beyond the earlier attempt's, and a
// late read for the abandoned attempt counts for nothing.
func TestResendProgress(t *testing.T) {
	t.Parallel()
	var total int64
	p := &resendProgress{report: func(n int64) { total += n }}
	first := p.next()
	first(5 << 20)
	second := p.next()
	first(1 << 20) // the transport still reading the abandoned attempt's body
	second(3 << 20)
	if total != 5<<20 {
		t.Fatalf("after resending 3 of 5 MiB: %d bytes counted", total)
	}
	second(4 << 20)
	if total != 7<<20 {
		t.Fatalf("after 7 MiB in the second attempt: %d bytes counted", total)
	}
	(&resendProgress{}).next()(1) // no report func: nothing to call
}

// List returns the objects under a prefix at any depth, every page of them,
// with the ETags the writes returned (quotes stripped, whatever the store's
// listing does).
func TestList(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		st := newStore(t, srv, bucket, Options{})
		ctx := context.Background()
		want := map[string]Object{}
		put := func(key, body string) string {
			out, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader(body)})
			if err != nil {
				t.Fatal(err)
			}
			return aws.ToString(out.ETag)
		}
		for i := range 3 {
			key := fmt.Sprintf("set/f%d.zip", i)
			body := strings.Repeat("x", i+1)
			want[key] = Object{Key: key, Size: int64(len(body)), ETag: NormalizeETag(put(key, body))}
		}
		key := "set/component/inner.zip"
		want[key] = Object{Key: key, Size: 9, ETag: NormalizeETag(put(key, "other set"))}
		put("settle.zip", "not under set/")
		objs, err := st.List(ctx, "set/")
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != len(want) {
			t.Fatalf("listed %v, want %v", objs, want)
		}
		for _, o := range objs {
			if o != want[o.Key] || strings.Contains(o.ETag, `"`) || o.ETag == "" {
				t.Errorf("listed %+v, want %+v", o, want[o.Key])
			}
		}
		if objs, err := st.List(ctx, "none/"); err != nil || len(objs) != 0 {
			t.Errorf("empty prefix: %v, %v", objs, err)
		}
	})
}

// An endpoint with a path (the bucket's, say) sends a listing to what the
// store takes for an object: its NoSuchKey is not "not found" but the
// endpoint's problem, named.
func TestListThroughEndpointWithPath(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		st, err := New(ctx, Options{Bucket: bucket, Endpoint: srv.Endpoint + "/" + bucket, PathStyle: true, Concurrency: 1, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.List(ctx, "artifacts/")
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v, want an error that is not ErrNotFound", err)
		}
		if !strings.Contains(err.Error(), "PACKAGE_ASSETS_ENDPOINT") {
			t.Errorf("err = %v: does not point at PACKAGE_ASSETS_ENDPOINT", err)
		}
	})
}

// Which errors are which, through a proxy that answers as something other
// than the store would: only S3's own NoSuchKey (or a HEAD's bare 404) is
// ErrNotFound; a conflict that never clears is ErrConflict after every
// attempt was made.
func TestErrorClassification(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		for _, tc := range []struct {
			name  string
			fault s3test.Fault
			op    func(st *Store) error
			want  error
			tries int64 // requests the proxy saw
		}{
			{"GET of a missing key", s3test.Pass, func(st *Store) error { _, err := st.ReadSmall(ctx, "missing", 10); return err }, ErrNotFound, 1},
			{"HEAD of a missing key", s3test.Pass, func(st *Store) error { _, err := st.Head(ctx, "missing"); return err }, ErrNotFound, 1},
			{"GET answered by an HTML 404", s3test.HTMLNotFound, func(st *Store) error { _, err := st.ReadSmall(ctx, "missing", 10); return err }, ErrForeign404, 1},
			{"GET answered by an empty 404", s3test.EmptyNotFound, func(st *Store) error { _, err := st.ReadSmall(ctx, "missing", 10); return err }, ErrForeign404, 1},
			{"list answered by an HTML 404", s3test.HTMLNotFound, func(st *Store) error { _, err := st.List(ctx, "p/"); return err }, ErrForeign404, 1},
			{"conditional write in conflict", s3test.Conflict, func(st *Store) error { return st.WriteRecord(ctx, "r.json", []byte("{}"), true) }, ErrConflict, 3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				proxy := s3test.NewProxy(t, srv.Endpoint)
				var n atomic.Int64
				proxy.Plan = func(int64, *http.Request) s3test.Fault { n.Add(1); return tc.fault }
				st, err := New(ctx, Options{Bucket: bucket, Endpoint: proxy.URL, PathStyle: true, Concurrency: 1, MaxAttempts: 3})
				if err != nil {
					t.Fatal(err)
				}
				err = tc.op(st)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				if tc.want != ErrNotFound && errors.Is(err, ErrNotFound) {
					t.Errorf("err = %v: also ErrNotFound", err)
				}
				if got := n.Load(); got != tc.tries {
					t.Errorf("%d requests, want %d", got, tc.tries)
				}
			})
		}
	})
}

// What changed is said: the size, or (the same size) the modification time.
func TestUnchangedSaysWhat(t *testing.T) {
	t.Parallel()
	path, f := openedFile(t, "fn1.zip", "0123456789")
	before, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := unchanged(f, path, before); err != nil {
		t.Fatalf("unchanged file: %v", err)
	}
	later := before.ModTime().Add(time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if err := unchanged(f, path, before); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "modified") || strings.Contains(err.Error(), "size") {
		t.Errorf("written to, same size: %v", err)
	}
	if err := os.WriteFile(path, []byte("01234"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unchanged(f, path, before); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "size 10 → 5 bytes") {
		t.Errorf("truncated: %v", err)
	}
}

// openedFile writes a file of content named name in a directory of its
// own and opens it (closed at the test's end).
func openedFile(t *testing.T, name, content string) (string, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return path, f
}

// A bucket in another region than the requests are signed for: S3 answers
// 301 PermanentRedirect with x-amz-bucket-region (a HEAD: no body), or 400
// AuthorizationHeaderMalformed naming it. The original tool's boto3
// followed the redirect; here the error names the region to set.
func TestWrongRegion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	redirect := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint.</Message></Error>`
	malformed := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'eu-west-2' is wrong; expecting 'ap-south-1'</Message></Error>`
	for _, tc := range []struct {
		name   string
		status int
		header string
		body   string
		op     func(st *Store) error
		want   string
	}{
		{"list, 301", 301, "eu-west-1", redirect, func(st *Store) error { _, err := st.List(ctx, "p/"); return err }, "eu-west-1"},
		// The region signed for already: the endpoint is another region's.
		{"list, 301 naming the region signed for", 301, "us-east-1", redirect, func(st *Store) error { _, err := st.List(ctx, "p/"); return err }, ""},
		{"read, 301", 301, "eu-central-1", redirect, func(st *Store) error { _, err := st.ReadSmall(ctx, "k", 10); return err }, "eu-central-1"},
		{"head, 301 without a body", 301, "us-west-2", "", func(st *Store) error { _, err := st.Head(ctx, "k"); return err }, "us-west-2"},
		{"list, 400 naming it", 400, "", malformed, func(st *Store) error { _, err := st.List(ctx, "p/"); return err }, "ap-south-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.header != "" {
					w.Header().Set("x-amz-bucket-region", tc.header)
				}
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tc.status)
				if r.Method != http.MethodHead {
					io.WriteString(w, tc.body)
				}
			}))
			defer srv.Close()
			st, err := New(ctx, Options{Bucket: "b", Endpoint: srv.URL, PathStyle: true, Concurrency: 1, MaxAttempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			if st.region != "us-east-1" {
				t.Fatalf("signed for %q: the cases assume us-east-1, an endpoint's default", st.region)
			}
			err = tc.op(st)
			want := "the bucket is in region " + tc.want + " (the requests are signed for us-east-1): set AWS_REGION=" + tc.want
			if tc.want == "" {
				want = "the endpoint says the bucket is in region us-east-1, the region the requests are signed for: the endpoint is another region's; check PACKAGE_ASSETS_ENDPOINT"
			}
			if err == nil || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want one saying %q", err, want)
			}
		})
	}
}

// A multipart upload or copy whose completion the store did but whose answer
// was lost on the way: the SDK completes it again, which MinIO answers with
// NoSuchUpload. The object stored is the one the parts make, so it is done;
// another object at the key (replaced in between) is still an error.
func TestLostCompletion(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var lose atomic.Bool
		var replace atomic.Pointer[string] // put other bytes at the key once it is completed
		isCompletion := func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Query().Has("uploadId") }
		proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
			if isCompletion(r) && lose.CompareAndSwap(true, false) {
				return s3test.LoseResponse
			}
			return s3test.Pass
		}
		proxy.Observe = func(r *http.Request, status int) {
			if !isCompletion(r) || status != 200 {
				return
			}
			if key := replace.Swap(nil); key != nil {
				// The server answered: the key holds the upload's object until this.
				if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: key, Body: strings.NewReader("another writer's")}); err != nil {
					t.Error(err)
				}
			}
		}
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 5 << 20, CopyPartThreshold: 6 << 20})
		body := filler(17<<20 + 5)
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, body, 0o644); err != nil {
			t.Fatal(err)
		}

		lose.Store(true)
		up, err := st.UploadFile(ctx, UploadRequest{Key: "up", Path: path, Metadata: noMeta})
		if err != nil || lose.Load() {
			t.Fatalf("upload whose completion's answer was lost: %v (proxy: %s)", err, proxy.Counts())
		}
		if info, err := st.Head(ctx, "up"); err != nil || info.ETag != up.ETag {
			t.Errorf("upload returned ETag %s, stored %+v (%v)", up.ETag, info, err)
		}
		lose.Store(true)
		etag, err := st.Copy(ctx, CopyRequest{Src: "up", Dst: "copy", Size: int64(len(body)), SrcETag: up.ETag})
		if err != nil || lose.Load() {
			t.Fatalf("copy whose completion's answer was lost: %v", err)
		}
		for _, key := range []string{"up", "copy"} {
			if _, b := srv.Get(t, bucket, key); !bytes.Equal(b, body) {
				t.Errorf("%s: stored bytes differ", key)
			}
		}
		if info, err := st.Head(ctx, "copy"); err != nil || info.ETag != etag {
			t.Errorf("copy returned ETag %s, stored %+v (%v)", etag, info, err)
		}

		// Replaced before the completion is repeated: not this upload's object.
		lose.Store(true)
		key := "replaced"
		replace.Store(&key)
		if _, err := st.UploadFile(ctx, UploadRequest{Key: key, Path: path, Metadata: noMeta}); err == nil || lose.Load() {
			t.Errorf("upload whose object was replaced before its completion was repeated: %v, want an error", err)
		}
		if n := srv.PendingUploads(t, bucket); n != 0 {
			t.Errorf("%d multipart uploads left behind", n)
		}
	})
}

// An answer whose body ends early (the connection closed mid-body, as a
// proxy or load balancer may close it) is asked for again, as a reset
// connection is: the SDK reports it only while decoding the body.
func TestAnswerCutShort(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		for i := range 20 {
			if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(fmt.Sprintf("set/f%02d.zip", i)), Body: strings.NewReader("x")}); err != nil {
				t.Fatal(err)
			}
		}
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var cut atomic.Int32
		proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
			if r.URL.Query().Has("list-type") && cut.Add(1) == 1 {
				return s3test.CutResponse
			}
			return s3test.Pass
		}
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{})
		objs, err := st.List(ctx, "set/")
		if err != nil || len(objs) != 20 || proxy.Count(s3test.CutResponse) != 1 {
			t.Fatalf("listing cut short once: %d objects, %v (proxy: %s)", len(objs), err, proxy.Counts())
		}
	})
}

// A small object read whole (a completion record, a file list, a pointer)
// whose body ends early is read again: the SDK has returned by then, and
// does not retry a body.
func TestReadSmallCutShort(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		body := filler(3000)
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("record"), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var cuts atomic.Int32
		proxy.Plan = func(_ int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodGet && cuts.Add(1) == 1 {
				return s3test.CutResponse
			}
			return s3test.Pass
		}
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{})
		got, err := st.ReadSmall(ctx, "record", 1<<20)
		if err != nil || !bytes.Equal(got, body) || proxy.Count(s3test.CutResponse) != 1 {
			t.Fatalf("read cut short once: %d bytes, %v (proxy: %s)", len(got), err, proxy.Counts())
		}

		// Cut on every attempt: an error after the attempts, naming the read.
		proxy.Plan = func(int64, *http.Request) s3test.Fault { return s3test.CutResponse }
		st = newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{MaxAttempts: 2})
		if _, err := st.ReadSmall(ctx, "record", 1<<20); err == nil || !strings.Contains(err.Error(), "2 attempts") {
			t.Errorf("read cut short on every attempt: %v", err)
		}
	})
}

// A record's bytes damaged on the way are read again: WriteRecord stores
// their SHA-256 with them (package-hash, as an artifact's), and ReadSmall
// compares. Bytes that come the same twice without matching it are what is
// stored (another writer's metadata), taken as they are, as before.
func TestReadSmallDamaged(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var flips atomic.Int32
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodGet && flips.Add(-1) >= 0 {
				return s3test.FlipResponse
			}
			return s3test.Pass
		})
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{})
		body := []byte(`{"format":"s3-asset-manager/completion/v1","files":[{"sha256":"` + strings.Repeat("0123456789abcdef", 4) + `"}]}`)
		if err := st.WriteRecord(ctx, "record", body, true); err != nil {
			t.Fatal(err)
		}
		flips.Store(1)
		if got, err := st.ReadSmall(ctx, "record", 1<<20); err != nil || !bytes.Equal(got, body) {
			t.Errorf("a record damaged on the way once: %v\n%s", err, got)
		}

		// Metadata that does not describe the bytes: they are read twice, and taken.
		other := []byte(`{"format":"another writer's"}`)
		if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("planted"), Body: bytes.NewReader(other),
			Metadata: map[string]string{"package-hash": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}}); err != nil {
			t.Fatal(err)
		}
		for _, attempts := range []int{0, 1} {
			st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{MaxAttempts: attempts})
			if got, err := st.ReadSmall(ctx, "planted", 1<<20); err != nil || !bytes.Equal(got, other) {
				t.Errorf("a record whose package-hash is another's (%d attempts): %v\n%s", attempts, err, got)
			}
		}

		// Damaged differently on every attempt: an error, not the damaged bytes.
		flips.Store(1000)
		st = newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{MaxAttempts: 2})
		if got, err := st.ReadSmall(ctx, "record", 1<<20); err == nil {
			t.Errorf("a record damaged on every attempt was taken:\n%s", got)
		}
	})
}

// A cancelled upload gives its aborts 5 s, not 30: a CI system kills a job
// 10 s after it signals it (GitHub Actions, docker stop), and a store that
// answers nothing would otherwise hold the exit, and its code, until then.
// The abort's time runs on the store's clock.
func TestCancelledAbortIsBrief(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		proxy := s3test.NewProxy(t, srv.Endpoint)
		partHeld, abortHeld := make(chan struct{}), make(chan struct{})
		var partOnce, abortOnce sync.Once
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			switch {
			case r.Method == http.MethodPut && r.URL.Query().Has("partNumber"):
				partOnce.Do(func() { close(partHeld) })
				return s3test.Stall
			case r.Method == http.MethodDelete:
				abortOnce.Do(func() { close(abortHeld) })
				return s3test.Stall
			}
			return s3test.Pass
		})
		clock := clockwork.NewFakeClock()
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{PartSize: 5 << 20, Clock: clock, RequestTimeout: time.Hour, MaxAttempts: 1})
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, filler(17<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := st.UploadFile(ctx, UploadRequest{Key: "k", Path: path, Metadata: noMeta})
			done <- err
		}()
		// Guards on a hang, shorter than the 30 s an abort had before.
		guard, stop := context.WithTimeout(context.Background(), 20*time.Second)
		defer stop()
		for _, held := range []chan struct{}{partHeld, abortHeld} {
			select {
			case <-held:
			case <-guard.Done():
				t.Fatal("the upload never got that far")
			}
			cancel()
		}
		// The abort's attempt and its 5 s.
		if err := clock.BlockUntilContext(guard, 2); err != nil {
			t.Fatal("the abort waits on no timer of the store's clock")
		}
		clock.Advance(5 * time.Second)
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled upload: %v", err)
			}
		case <-guard.Done():
			t.Fatal("the cancelled upload still waits for its abort")
		}
	})
}

// A small object read whole whose body stops mid-way with its connection
// open (the proxy sends half, then nothing) is given up after StallTimeout
// without a byte, on the store's clock, and read again: the read does not
// wait for the attempt's timeout (an hour here), as a download does not.
// The clock is moved on only while the body's stall watch is on it (beside
// the attempt's timeout), so no time passes before the body is read.
func TestReadSmallStallReadAgain(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		body := filler(3000)
		if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("record"), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var gets atomic.Int32
		again := make(chan struct{})
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			if r.Method != http.MethodGet {
				return s3test.Pass
			}
			switch gets.Add(1) {
			case 1:
				return s3test.StallResponse
			case 2:
				close(again)
			}
			return s3test.Pass
		})
		clock := clockwork.NewFakeClock()
		const stall, timeout = 10 * time.Second, time.Hour
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{StallTimeout: stall, RequestTimeout: timeout, Clock: clock})
		// A guard, not a measure: without the watch no second timer comes.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		type result struct {
			b   []byte
			err error
		}
		done := make(chan result, 1)
		go func() {
			b, err := st.ReadSmall(ctx, "record", 1<<20)
			done <- result{b, err}
		}()
		// The clock moves only while the stall watch waits on it beside the
		// timeouts, so no time passes before the body is read.
		if err := s3test.AdvanceUntil(ctx, clock, 2, again, stall/4, timeout-stall); err != nil {
			t.Fatalf("no stall watch on the store's clock beside the attempt's timeout, or not read again after it (stall timeout %s): %v (proxy: %s)", stall, err, proxy.Counts())
		}
		res := <-done
		if res.err != nil || !bytes.Equal(res.b, body) {
			t.Fatalf("read stalled once: %d bytes, %v (proxy: %s)", len(res.b), res.err, proxy.Counts())
		}
		if proxy.Count(s3test.StallResponse) != 1 || gets.Load() != 2 {
			t.Errorf("%d GETs, want the stalled one and one more (proxy: %s)", gets.Load(), proxy.Counts())
		}
	})
}

// The requests a small read makes in all are bounded by the attempts, the
// SDK's own retries (of errors before the body) included: they do not
// multiply with the reads again of a body cut short. Here every other
// request is answered 500 and the others cut short mid-body.
func TestReadSmallAttemptsDoNotMultiply(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		if _, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("record"), Body: bytes.NewReader(filler(3000))}); err != nil {
			t.Fatal(err)
		}
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var gets atomic.Int32
		proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
			if r.Method != http.MethodGet {
				return s3test.Pass
			}
			if gets.Add(1)%2 == 1 {
				return s3test.Internal
			}
			return s3test.CutResponse
		})
		const attempts = 3
		st := newStore(t, &s3test.Server{Endpoint: proxy.URL}, bucket, Options{MaxAttempts: attempts})
		_, err := st.ReadSmall(context.Background(), "record", 1<<20)
		if err == nil {
			t.Fatalf("read with every request failing: no error (proxy: %s)", proxy.Counts())
		}
		if gets.Load() != attempts {
			t.Errorf("%d GETs for %d attempts: %v (proxy: %s)", gets.Load(), attempts, err, proxy.Counts())
		}
	})
}

// AfterCancel's context outlives ctx's cancel by CancelGrace on the clock
// given (the store's), no less, whether ctx is cancelled before or after.
// A grace given within another ends with it: an abort under a set's
// finish does not start 5 s of its own when the finish's run out, so the
// process never outlives the signal by more than CancelGrace.
func TestAfterCancelNested(t *testing.T) {
	t.Parallel()
	clock := clockwork.NewFakeClock()
	ctx, cancel := context.WithCancel(context.Background())
	outer, stopOuter := AfterCancel(ctx, clock)
	defer stopOuter()
	cancel()
	guard, stopGuard := context.WithTimeout(context.Background(), 20*time.Second) // a hang only
	defer stopGuard()
	if err := clock.BlockUntilContext(guard, 1); err != nil {
		t.Fatal("the outer grace waits on no timer of the clock")
	}
	clock.Advance(CancelGrace / 2)
	inner, stopInner := AfterCancel(outer, clock)
	defer stopInner()
	clock.Advance(CancelGrace / 2)
	select {
	case <-inner.Done():
	case <-guard.Done():
		t.Fatal("the inner grace outlived the outer one")
	}
}

func TestAfterCancel(t *testing.T) {
	t.Parallel()
	for _, before := range []bool{false, true} {
		clock := clockwork.NewFakeClock()
		ctx, cancel := context.WithCancel(context.Background())
		if before {
			cancel()
		}
		out, stop := AfterCancel(ctx, clock)
		defer stop()
		if out.Err() != nil {
			t.Fatalf("cancelled before %t: cancelled with ctx", before)
		}
		cancel()
		guard, stopGuard := context.WithTimeout(context.Background(), 20*time.Second) // a hang only
		defer stopGuard()
		if err := clock.BlockUntilContext(guard, 1); err != nil {
			t.Fatalf("cancelled before %t: the grace waits on no timer of the clock", before)
		}
		clock.Advance(CancelGrace - time.Nanosecond)
		// Its timer still waits on the clock (a cleanup fired runs on a
		// goroutine of its own, so out.Err alone could not tell yet).
		if err := clock.BlockUntilContext(guard, 1); err != nil || out.Err() != nil {
			t.Fatalf("cancelled before %t: ended before CancelGrace", before)
		}
		clock.Advance(time.Nanosecond)
		select {
		case <-out.Done():
		case <-guard.Done():
			t.Fatalf("cancelled before %t: not ended after CancelGrace", before)
		}
	}
}
