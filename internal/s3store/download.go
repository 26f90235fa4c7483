package s3store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// DownloadRequest is one object to fetch into a file, and what its bytes
// must be.
type DownloadRequest struct {
	Key string
	// Path is where the file ends up. It is written under a temporary name in
	// the same directory and renamed to Path only once verified.
	Path string
	// Size and SHA256 are what the completion record says the object holds.
	Size   int64
	SHA256 []byte
	// ETag, when known, makes every request conditional on it (If-Match): an
	// object replaced since it was recorded is refused at once, and the parts
	// of a large file all come from the same object.
	ETag string
	// Mode is the finished file's permissions (before the umask).
	Mode os.FileMode
	// Progress, if set, is told of bytes received (bytes fetched again are
	// not counted twice).
	Progress func(n int64)
}

// Downloaded describes a fetched and verified file.
type Downloaded struct {
	Size  int64
	Parts int // 0 for a single request
	// Refetched counts the parts (or the whole file) fetched again because the
	// file's SHA-256 did not match: bytes damaged on the way.
	Refetched int
	Duration  time.Duration
}

// ErrDamaged: the bytes received never matched the record's SHA-256, after
// fetching again.
var ErrDamaged = errors.New("downloaded bytes do not match the recorded SHA-256")

// maxRounds bounds how often a file whose SHA-256 does not match is fetched
// again (the parts that disagree, for a large file) before ErrDamaged.
const maxRounds = 4

// Download fetches an object into req.Path, verified against the size and
// SHA-256 it should have. The bytes go to a temporary file beside Path
// (hidden, named ".<name>.s3am-partial-*"), which is renamed to Path only
// when every byte is verified; on any failure, or cancellation, the
// temporary file is removed and Path is left as it was.
//
// A file larger than twice the part size is fetched in ranged parts in
// parallel, each written in place; memory stays bounded whatever the size.
// The file is hashed as its parts land, read back in order (from the page
// cache). A part cut short (dropped connection, stall) is fetched again at
// once. A file whose SHA-256 does not match is fetched again: a small file
// whole; a large one in the parts whose CRC32C differs from every earlier
// fetch of that part (one fetched twice alike is taken as right: damage on
// the way does not repeat itself), until it matches or maxRounds.
func (s *Store) Download(ctx context.Context, req DownloadRequest) (Downloaded, error) {
	start := time.Now()
	f, err := createPartial(req.Path, req.Mode)
	if err != nil {
		return Downloaded{}, err
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	partSize := s.partSizeFor(req.Size)
	n := 1
	if req.Size > 2*partSize {
		n = partCount(req.Size, partSize)
	} else {
		partSize = req.Size
	}
	d := &download{s: s, f: f, req: req, partSize: partSize, parts: n, reported: make([]int64, n)}
	refetched, err := d.run(ctx)
	if err != nil {
		return Downloaded{}, err
	}
	if err := f.Close(); err != nil {
		return Downloaded{}, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), req.Path); err != nil {
		return Downloaded{}, err
	}
	renamed = true
	out := Downloaded{Size: req.Size, Refetched: refetched, Duration: time.Since(start)}
	if n > 1 {
		out.Parts = n
	}
	return out, nil
}

// createPartial creates the hidden temporary file a download is written to,
// beside path, with the finished file's mode (the umask applies, as to any
// new file).
func createPartial(path string, mode os.FileMode) (*os.File, error) {
	dir, name := filepath.Split(path)
	if len(name) > 200 {
		name = "" // the suffix must still fit in a file name
	}
	var err error
	for range 10 {
		var f *os.File
		tmp := filepath.Join(dir, "."+name+PartialSuffix+strconv.FormatUint(rand.Uint64(), 36))
		f, err = os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode.Perm())
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, os.ErrExist) {
			break
		}
	}
	return nil, fmt.Errorf("create a temporary file beside %s: %w", path, err)
}

// PartialSuffix marks the hidden temporary files of downloads under way:
// ".<name>.s3am-partial-<random>".
const PartialSuffix = ".s3am-partial-"

// download is one file being fetched.
type download struct {
	s        *Store
	f        *os.File
	req      DownloadRequest
	partSize int64
	parts    int
	reported []int64 // per part, the most bytes reported as progress
}

// run fetches every part, then again those that need it, until the file's
// SHA-256 matches; it returns how many parts were fetched again.
//
// The record has one SHA-256 for the whole file, so a mismatch does not say
// which part was damaged. Each part's CRC32C is kept from every fetch: a part
// that has come two ways is suspect and is fetched again each round until
// the file matches; while none is, every part is fetched again (damage that
// repeats itself cannot be told from a store that holds other bytes).
func (d *download) run(ctx context.Context) (int, error) {
	seen := make([][]uint32, d.parts) // per part, each CRC32C it has come with
	todo := make([]int, d.parts)
	for i := range todo {
		todo[i] = i
	}
	refetched := 0
	for round := 1; ; round++ {
		sum, crcs, err := d.fetch(ctx, todo)
		if err != nil {
			return refetched, err
		}
		if slices.Equal(sum, d.req.SHA256) {
			return refetched, nil
		}
		var suspect []int
		for i, c := range crcs {
			if !slices.Contains(seen[i], c) {
				seen[i] = append(seen[i], c)
			}
			if len(seen[i]) > 1 {
				suspect = append(suspect, i)
			}
		}
		if round == maxRounds {
			key := d.s.URL(d.req.Key)
			if len(suspect) == 0 {
				return refetched, fmt.Errorf("%s: %w: the same other bytes on each of %s (SHA-256 %x): the object is not what the record says, or something on the way changes it the same way every time", key, ErrDamaged, words.Count(round, "fetch", "fetches"), sum)
			}
			return refetched, fmt.Errorf("%s: %w: damaged on the way on each of %s", key, ErrDamaged, words.Count(round, "fetch", "fetches"))
		}
		todo = suspect
		if len(todo) == 0 {
			todo = make([]int, d.parts)
			for i := range todo {
				todo[i] = i
			}
		}
		refetched += len(todo)
	}
}

// fetch fetches the given parts (in parallel, bounded by the bytes in flight)
// while hashing the whole file in order as it becomes complete, and returns
// the file's SHA-256 and each part's CRC32C.
func (d *download) fetch(ctx context.Context, todo []int) ([]byte, []uint32, error) {
	if d.parts == 1 {
		// One request: hashed as it streams, no reading back.
		sh, c := sha256.New(), crc32.New(castagnoli)
		if err := d.fetchPart(ctx, 0, sh, c); err != nil {
			return nil, nil, err
		}
		return sh.Sum(nil), []uint32{c.Sum32()}, nil
	}

	ready := make([]chan struct{}, d.parts)
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	pending := make([]bool, d.parts)
	for _, i := range todo {
		pending[i] = true
	}
	for i, p := range pending {
		if !p {
			close(ready[i]) // on disk from an earlier round
		}
	}
	// The parts are fetched by workers while this goroutine hashes; the
	// workers are waited for before returning, so none writes to the file
	// after it is closed.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var firstErr error
	var once sync.Once
	work := make(chan int)
	// As many parts at once as the bound on bytes in flight lets through
	// (getRange holds its part's share while the body streams).
	for range min(len(todo), max(1, int(d.s.maxBytes/d.partSize))) {
		wg.Go(func() {
			for i := range work {
				if err := d.fetchPart(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				close(ready[i])
			}
		})
	}
	wg.Go(func() {
		defer close(work)
		for _, i := range todo {
			select {
			case work <- i:
			case <-ctx.Done():
				return
			}
		}
	})

	sh := sha256.New()
	crcs := make([]uint32, d.parts)
	for i := range d.parts {
		select {
		case <-ready[i]:
		case <-ctx.Done():
			cancel()
			wg.Wait() // firstErr is set before the cancel it causes
			if firstErr != nil {
				return nil, nil, firstErr
			}
			return nil, nil, ctx.Err()
		}
		off, n := d.span(i)
		c := crc32.New(castagnoli)
		if err := copyCtx(ctx, io.MultiWriter(sh, c), io.NewSectionReader(d.f, off, n)); err != nil {
			return nil, nil, fmt.Errorf("read back %s: %w", d.f.Name(), err)
		}
		crcs[i] = c.Sum32()
	}
	return sh.Sum(nil), crcs, nil
}

// span is part i's offset and length.
func (d *download) span(i int) (off, n int64) {
	off = int64(i) * d.partSize
	return off, min(d.partSize, d.req.Size-off)
}

// fetchPart writes part i into the file at its offset (and into hs, reset
// first), fetching it again when the body is cut short or stalls; the SDK
// has already retried the request itself.
func (d *download) fetchPart(ctx context.Context, i int, hs ...hash.Hash) error {
	off, n := d.span(i)
	attempts := d.s.client.Options().Retryer.MaxAttempts()
	backoff := retry.NewExponentialJitterBackoff(5 * time.Second)
	for attempt := 1; ; attempt++ {
		for _, h := range hs {
			h.Reset()
		}
		err := d.getRange(ctx, i, off, n, hs)
		var cut *cutError
		if err == nil || !errors.As(err, &cut) || ctx.Err() != nil {
			return err
		}
		if attempt >= attempts {
			return fmt.Errorf("get %s: %w (after %s)", d.s.URL(d.req.Key), err, words.Count(attempt, "attempt", "attempts"))
		}
		wait, _ := backoff.BackoffDelay(attempt, err)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// cutError is a response body that ended early or failed while it was read.
type cutError struct{ err error }

func (e *cutError) Error() string { return "response body cut short: " + e.err.Error() }
func (e *cutError) Unwrap() error { return e.err }

// getRange makes one GET for bytes off to off+n of the object and writes them
// into the file at off.
func (d *download) getRange(ctx context.Context, i int, off, n int64, hs []hash.Hash) error {
	// A request slot is taken per attempt by the limiter; the body, read
	// after the request returns, holds a share of the bytes in flight, as an
	// upload's does: a large file's parts must not starve the small files.
	release, err := d.s.sending(ctx, n)
	if err != nil {
		return err
	}
	defer release()
	in := &s3.GetObjectInput{Bucket: &d.s.bucket, Key: &d.req.Key}
	if d.parts > 1 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))
	}
	if d.req.ETag != "" {
		in.IfMatch = aws.String(d.req.ETag)
	}
	out, err := d.s.client.GetObject(ctx, in)
	if err != nil {
		return d.getFailed(err)
	}
	defer out.Body.Close()
	// The object's size, from Content-Range for a part: a replaced object of
	// another size is refused here, whatever its ETag.
	size := d.req.Size
	if d.parts > 1 {
		size = rangeTotal(aws.ToString(out.ContentRange))
	} else if out.ContentLength != nil {
		size = *out.ContentLength
	}
	if size != d.req.Size {
		return fmt.Errorf("get %s: %w (it holds %d bytes, the record says %d)", d.s.URL(d.req.Key), ErrSourceChanged, size, d.req.Size)
	}
	if out.ContentLength != nil && *out.ContentLength != n {
		return fmt.Errorf("get %s: %d bytes for a range of %d", d.s.URL(d.req.Key), *out.ContentLength, n)
	}

	ws := []io.Writer{io.NewOffsetWriter(d.f, off)}
	for _, h := range hs {
		ws = append(ws, h)
	}
	w := io.MultiWriter(ws...)
	pw := &partWriter{w: w, report: func(got int64) {
		if d.req.Progress != nil && got > d.reported[i] {
			d.req.Progress(got - d.reported[i])
			d.reported[i] = got
		}
	}}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	written, err := io.CopyBuffer(pw, out.Body, *bp)
	if err != nil {
		if werr := pw.err; werr != nil {
			return fmt.Errorf("write %s: %w", d.f.Name(), werr)
		}
		return &cutError{err}
	}
	if written != n {
		return &cutError{fmt.Errorf("%d of %d bytes", written, n)}
	}
	return nil
}

// getFailed classifies a failed GET: a failed If-Match, or a range beyond the
// object's end, means the object is no longer the recorded one.
func (d *download) getFailed(err error) error {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case http.StatusPreconditionFailed:
			return fmt.Errorf("get %s: %w (its ETag is no longer %s)", d.s.URL(d.req.Key), ErrSourceChanged, d.req.ETag)
		case http.StatusRequestedRangeNotSatisfiable:
			return fmt.Errorf("get %s: %w (it is shorter than the recorded %d bytes)", d.s.URL(d.req.Key), ErrSourceChanged, d.req.Size)
		}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		return fmt.Errorf("get %s: %w (it is shorter than the recorded %d bytes)", d.s.URL(d.req.Key), ErrSourceChanged, d.req.Size)
	}
	return d.s.classify("get", d.req.Key, err)
}

// rangeTotal is the complete length in a Content-Range header
// ("bytes 0-99/1234" → 1234), or -1.
func rangeTotal(cr string) int64 {
	_, total, ok := strings.Cut(cr, "/")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// partWriter counts what it writes and remembers a write error, to tell it
// from a failed read of the body.
type partWriter struct {
	w      io.Writer
	n      int64
	err    error
	report func(n int64)
}

func (p *partWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.report(p.n)
	if err != nil {
		p.err = err
	}
	return n, err
}
