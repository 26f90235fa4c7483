package s3store

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/jonboulle/clockwork"

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
	Size int64
	// Pieces is how many pieces a large file was received in (each in a
	// buffer of the pool), and Requests the ranged requests of the first
	// fetch that brought them (each of one piece or several in a row); both
	// 0 for a file fetched in a single request.
	Pieces, Requests int
	// Refetched counts the pieces (or, for a single request, the whole
	// file: 1 a fetch) fetched again because the file's SHA-256 did not
	// match: bytes damaged on the way.
	Refetched int
	Duration  time.Duration
}

// ErrDamaged: the bytes received never matched the record's SHA-256, and
// came otherwise on each fetch: damaged on the way, every time.
var ErrDamaged = errors.New("downloaded bytes do not match the recorded SHA-256")

// ErrRecordDisagrees: the same bytes came on two fetches, and they are not
// what the record says: damage on the way does not repeat itself, so the
// object and its record disagree (the record was altered, or the object
// replaced by one of the same size and ETag).
var ErrRecordDisagrees = errors.New("the record and the object disagree")

// maxRounds bounds how often a file whose SHA-256 does not match is fetched
// again (the parts that disagree, for a large file) before ErrDamaged.
const maxRounds = 4

// Download fetches an object into req.Path, verified against the size and
// SHA-256 it should have. The bytes go to a temporary file beside Path
// (hidden, named ".<name>.s3am-partial-*"), which is renamed to Path only
// when every byte is verified; on any failure, or cancellation, the
// temporary file is removed and Path is left as it was.
//
// Every byte is hashed once, as it arrives, never read back from the file:
// a file up to twice the download part size comes in one request, hashed
// as it streams; a larger one in pieces ("parts" below), each into a
// buffer of a fixed pool (Options.DownloadMemory, shared by every file:
// memory stays bounded whatever the sizes), by ranged requests in parallel
// of floor(part size / piece) pieces in a row, written to the file from
// there and hashed in order right behind it. A body cut short, stalled (no
// byte for StallTimeout) or out of its attempt's time is resumed from the
// byte where it ended, on a new connection (see fetchSpan). A file whose SHA-256 does not match is
// fetched again: a small file whole; a large one in the parts whose CRC32C
// differs from every earlier fetch of that part (one fetched twice alike is
// taken as right: damage on the way does not repeat itself), until it
// matches or maxRounds.
func (s *Store) Download(ctx context.Context, req DownloadRequest) (Downloaded, error) {
	start := time.Now()
	f, err := createPartial(req.Path, req.Mode)
	if err != nil {
		return Downloaded{}, localFile{err}
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	partSize, n := s.dlPart, 1
	if req.Size > 2*partSize {
		n = partCount(req.Size, partSize)
	} else {
		partSize = req.Size
	}
	d := &download{s: s, f: f, req: req, partSize: partSize, parts: n, perRequest: s.dlPerRequest, reported: make([]int64, n)}
	refetched, err := d.run(ctx)
	if err != nil {
		return Downloaded{}, err
	}
	if err := f.Close(); err != nil {
		return Downloaded{}, localFile{fmt.Errorf("write %s: %w", words.Printable(f.Name()), err)}
	}
	if err := os.Rename(f.Name(), req.Path); err != nil {
		return Downloaded{}, localFile{fmt.Errorf("put %s in place: %w", words.Printable(req.Path), err)}
	}
	renamed = true
	out := Downloaded{Size: req.Size, Refetched: refetched, Duration: time.Since(start)}
	if n > 1 {
		out.Pieces, out.Requests = n, d.firstRequests
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
	return nil, fmt.Errorf("create a temporary file beside %s: %w", words.Printable(path), err)
}

// PartialSuffix marks the hidden temporary files of downloads under way:
// ".<name>.s3am-partial-<random>".
const PartialSuffix = ".s3am-partial-"

// partialName matches the names createPartial gives.
var partialName = regexp.MustCompile(`^\..*` + regexp.QuoteMeta(PartialSuffix) + `[0-9a-z]+$`)

// IsPartial reports whether a file name is one of a download's temporary
// files: what a run killed mid-way (SIGKILL, a lost machine) leaves behind.
func IsPartial(name string) bool { return partialName.MatchString(name) }

// download is one file being fetched. Its "parts" are the pieces it is
// received, written and hashed in (each in a buffer of the pool); one
// request fetches up to perRequest of them in a row.
type download struct {
	s          *Store
	f          *os.File
	req        DownloadRequest
	partSize   int64
	parts      int
	perRequest int
	reported   []int64     // per part, the most bytes reported as progress
	slow       atomic.Bool // the parts come slowly (see nextRun)
	// Requests started (by fetch's dispatcher: read once it has returned),
	// and those of the first fetch.
	requests, firstRequests int
	rateMu                  sync.Mutex
	tally                   rateTally
}

// run fetches every part, then again those that need it, until the file's
// SHA-256 matches; it returns how many parts were fetched again.
//
// The record has one SHA-256 for the whole file, so a mismatch does not say
// which part was damaged. The same whole-file SHA-256 twice means the same
// bytes came twice: the object is not what the record says
// (ErrRecordDisagrees). Each part's CRC32C is kept from every fetch (read
// back from the file after a mismatch: a download that matches pays nothing
// for it): a part
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
	var sums [][]byte // of each fetch of the file
	for round := 1; ; round++ {
		sum, err := d.fetch(ctx, todo)
		if round == 1 {
			d.firstRequests = d.requests
		}
		if err != nil {
			return refetched, err
		}
		if slices.Equal(sum, d.req.SHA256) {
			return refetched, nil
		}
		if slices.ContainsFunc(sums, func(b []byte) bool { return slices.Equal(b, sum) }) {
			return refetched, fmt.Errorf("%s: %w: the same bytes came on %s, SHA-256 %x, not the recorded %x (the record was altered, or the object replaced by one of the same size and ETag)",
				d.s.shown(d.req.Key), ErrRecordDisagrees, words.Count(round, "fetch", "fetches"), sum, d.req.SHA256)
		}
		sums = append(sums, sum)
		crcs, err := d.partCRCs(ctx, todo)
		if err != nil {
			return refetched, err
		}
		var suspect []int // in order: fetch takes the pool's buffers in order
		for i := range d.parts {
			c, ok := crcs[i]
			if !ok {
				continue
			}
			if !slices.Contains(seen[i], c) {
				seen[i] = append(seen[i], c)
			}
			if len(seen[i]) > 1 {
				suspect = append(suspect, i)
			}
		}
		if round == maxRounds {
			return refetched, fmt.Errorf("%s: %w: damaged on the way on each of %s", d.s.shown(d.req.Key), ErrDamaged, words.Count(round, "fetch", "fetches"))
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

// partCRCs reads the given parts back from the file for their CRC32C.
func (d *download) partCRCs(ctx context.Context, parts []int) (map[int]uint32, error) {
	crcs := make(map[int]uint32, len(parts))
	for _, i := range parts {
		off, n := d.span(i)
		c := crc32.New(castagnoli())
		if err := copyCtx(ctx, c, io.NewSectionReader(d.f, off, n)); err != nil {
			return nil, fmt.Errorf("read back %s: %w", words.Printable(d.f.Name()), err)
		}
		crcs[i] = c.Sum32()
	}
	return crcs, nil
}

// fetch fetches the given parts (in order) and returns the file's SHA-256.
// Parts not in todo, on the file from an earlier round, are read back to be
// hashed (only after a mismatch).
func (d *download) fetch(ctx context.Context, todo []int) ([]byte, error) {
	if d.parts == 1 {
		// One request, hashed as it streams.
		sh := newFileHash(d.req.SHA256)
		bp := streamPool.Get().(*[]byte)
		defer streamPool.Put(bp)
		if err := d.fetchSpan(ctx, 0, d.req.Size, &streamSink{d: d, buf: *bp, h: sh}); err != nil {
			return nil, err
		}
		return sh.Sum(nil), nil
	}

	bufs := make([]*partBuf, d.parts)
	for _, i := range todo {
		bufs[i] = &partBuf{more: make(chan struct{}, 1), ready: make(chan struct{})}
	}
	// A dispatcher takes a buffer of the pool for each part, in order, and
	// starts a request with the first part of each run of parts it fetches;
	// the request goes on into the next part once that has its buffer (not
	// reading its body meanwhile). This goroutine hashes the parts in order
	// as their bytes land. In order, so that the part being hashed always
	// has its buffer, and its request is under way: the pool cannot be held
	// up by parts waiting behind it. The goroutines are waited for before
	// returning, so none writes to the file after it is closed, and every
	// buffer goes back to the pool.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	failed := func(err error) { once.Do(func() { firstErr = err; cancel() }) }
	defer func() {
		cancel()
		wg.Wait()
		for _, p := range bufs {
			if p != nil && p.buf != nil {
				d.s.putPartBuf(p.buf[:cap(p.buf)])
			}
		}
	}()
	wg.Go(func() {
		for k := 0; k < len(todo); {
			buf, err := d.s.getPartBuf(ctx)
			if err != nil {
				return
			}
			run := d.nextRun(todo[k:])
			k += len(run)
			d.requests++
			for j, i := range run {
				if j > 0 {
					if buf, err = d.s.getPartBuf(ctx); err != nil {
						return
					}
				}
				p := bufs[i]
				_, n := d.span(i)
				p.mu.Lock()
				p.buf = buf[:n]
				p.mu.Unlock()
				close(p.ready)
				if j > 0 {
					continue
				}
				off, _ := d.span(run[0])
				last, n := d.span(run[len(run)-1])
				wg.Go(func() {
					if err := d.fetchSpan(ctx, off, last+n-off, &bufSink{d: d, run: run, bufs: bufs}); err != nil {
						failed(err)
					}
				})
			}
		}
	})

	sh := newFileHash(d.req.SHA256)
	for i := range d.parts {
		p := bufs[i]
		if p == nil {
			off, n := d.span(i)
			if err := copyCtx(ctx, sh, io.NewSectionReader(d.f, off, n)); err != nil {
				if ctx.Err() != nil {
					// A request's failure cancelled ctx: that is the error.
					cancel()
					wg.Wait() // firstErr is set before the cancel it causes
					if firstErr != nil {
						return nil, firstErr
					}
				}
				return nil, fmt.Errorf("read back %s: %w", words.Printable(d.f.Name()), err)
			}
			continue
		}
		var hashed int64
		for {
			p.mu.Lock()
			filled, done := p.filled, p.done
			p.mu.Unlock()
			if hashed < filled {
				sh.Write(p.buf[hashed:filled]) // a hash never fails
				hashed = filled
				continue
			}
			if done {
				break
			}
			select {
			case <-p.more:
			case <-ctx.Done():
				cancel()
				wg.Wait() // firstErr is set before the cancel it causes
				if firstErr != nil {
					return nil, firstErr
				}
				return nil, ctx.Err()
			}
		}
		d.s.putPartBuf(p.buf[:cap(p.buf)])
		p.buf = nil
	}
	return sh.Sum(nil), nil
}

// nextRun is the parts the next request fetches: the first of todo, and those
// after it in a row, up to perRequest; one alone once a part came slowly.
//
// Several parts to a request cost the store fewer requests (MinIO spends
// about 1.5 ms of CPU on each GET, on one machine the client's), but a
// request holds the buffers of its parts from the first on, so fewer
// requests run at once. Where each connection is slow (a distant store)
// those requests in parallel are what makes the download fast.
func (d *download) nextRun(todo []int) []int {
	per := d.perRequest
	if d.slow.Load() {
		per = 1
	}
	n := 1
	for n < len(todo) && n < per && todo[n] == todo[n-1]+1 {
		n++
	}
	return todo[:n]
}

// rated notes the rate of a part's bytes after its first (b in t, of a
// part of n), and makes the later requests one part each once the
// connections are slow (see rateTally.note).
func (d *download) rated(b int64, t time.Duration, n int64) {
	if b < n/2 {
		return // most came with the first read: nothing to go by
	}
	d.rateMu.Lock()
	defer d.rateMu.Unlock()
	if d.tally.note(float64(b)/t.Seconds(), d.s.dlSlowPart, int(d.s.dlRanged.Load()), cap(d.s.dlBufs)) {
		d.slow.Store(true)
	}
}

// rateTally counts a download's parts that came slowly, and not.
type rateTally struct{ slow, fast int }

// note counts a part that came at rate (bytes a second) while inFlight
// ranged requests of the store's downloads were under way, with a pool of
// buffers, and reports whether the connections are slow: most parts, four
// at least, slower than slowRate (a part now and then is slow on any link,
// when the machine is busy).
//
// A part that came while the store had as many ranged requests under way as
// buffers is not counted: they already run as many at once as the pool
// allows, and each piece comes slower the more share the machine. With
// fewer, buffers wait for pieces their requests have not reached, and on
// slow connections requests of one part put them to use (measured with six
// buffers: three or four files of 256 MiB through the benchmark's distant
// store, 3 to 5 requests under way, 6-24% faster with the switch). With
// twelve, figure 18's eight 64 MiB files on loopback (6 to 9 requests
// under way, pieces at 120-290 MiB/s) may switch too: 46 requests instead
// of 32 in one run of two, at no cost measured (docs/benchmarks-history.md).
func (c *rateTally) note(rate, slowRate float64, inFlight, buffers int) bool {
	if inFlight >= buffers {
		return false
	}
	if rate < slowRate {
		c.slow++
	} else {
		c.fast++
	}
	return c.slow >= 4 && c.slow > c.fast
}

// slowPart is the rate below which a part's bytes came slowly (a
// connection that slow wants the requests in parallel), in bytes a second
// (see nextRun). On loopback a part comes at 300-2,500 MiB/s (a tenth
// below 320, on a busy machine); through the benchmark's distant store
// (20 ms, a window of 1 MiB) at about 100 MiB/s.
const slowPart = 200 << 20

// span is part i's offset and length.
func (d *download) span(i int) (off, n int64) {
	off = int64(i) * d.partSize
	return off, min(d.partSize, d.req.Size-off)
}

// A sink takes a part's bytes as they arrive, in order, each once: a
// request resumed after a cut goes on from the byte where the last ended.
type sink interface {
	// space is where the bytes from got on are read into; it may wait for
	// a buffer, until ctx is done.
	space(ctx context.Context, got int64) ([]byte, error)
	// landed: k bytes were read into space(got).
	landed(got int64, k int) error
}

// streamPool holds the buffers single requests stream through: small, as a
// download has up to PACKAGE_UPLOAD_CONCURRENCY of them at once (128 of
// 256 KiB were a third of the peak memory of 208 files; at 64 KiB the 208
// files still peaked at 64-65 MiB, at 32 KiB 60-62 MiB for the same CPU),
// and what was just read is written and hashed while it is still in the
// CPU's cache.
var streamPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// streamSink writes a single request's bytes to the file and hashes them.
type streamSink struct {
	d   *download
	buf []byte
	h   io.Writer
}

func (s *streamSink) space(_ context.Context, got int64) ([]byte, error) {
	return s.buf[:min(int64(len(s.buf)), s.d.req.Size-got)], nil
}

func (s *streamSink) landed(got int64, k int) error {
	if _, err := s.d.f.WriteAt(s.buf[:k], got); err != nil {
		return err
	}
	s.h.Write(s.buf[:k])
	s.d.progress(0, got+int64(k))
	return nil
}

// partBuf is a part of a large file received into memory: the fetch fills
// it and writes it to the file, the hashing goroutine reads what is filled.
type partBuf struct {
	mu     sync.Mutex
	buf    []byte        // set by the dispatcher, then ready is closed
	ready  chan struct{} // closed once buf is set
	filled int64         // bytes received
	done   bool          // every byte received and written to the file
	more   chan struct{}
}

// bufSink receives a run of parts, each into its buffer, readSize at a
// time, and writes them to the file once flushSize has come: soon enough
// that what is written is still in the CPU's cache from the read (a profile
// of the 1 GiB download: a third less system time than writes of 1 MiB from
// reads of up to the part). Each write is at most writeSize, as s5cmd's:
// on Linux 6.18 in a virtual machine the kernel's copy into the page cache
// cost 0.5-1.8 s a GiB in writes of 128 KiB, 0.13-0.15 s in writes of
// 32 KiB (perf; docs/benchmarks-history.md, "Writes of 32 KiB"). Likely why: ext4
// gives a write a folio as large as the write, and one above 32 KiB comes
// from the page allocator's free lists rather than its per-CPU cache of
// pages freed lately, pages the host may have taken back.
type bufSink struct {
	d       *download
	run     []int
	bufs    []*partBuf
	cur     int   // the run's part being received
	written int64 // of it
	// When the part's first bytes landed, and how many: the rest's rate
	// (the wait for the first byte left out) tells a slow connection.
	first   time.Time
	firstAt int64
}

const (
	readSize  = 256 << 10
	flushSize = 128 << 10
	writeSize = 32 << 10
)

// at is the buffer of the run's part that byte got (of the run) falls in,
// and where in it.
func (s *bufSink) at(got int64) (c int, p *partBuf, within int64) {
	c = int(got / s.d.partSize)
	return c, s.bufs[s.run[c]], got % s.d.partSize
}

func (s *bufSink) space(ctx context.Context, got int64) ([]byte, error) {
	_, p, within := s.at(got)
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.buf[within:min(int64(len(p.buf)), within+readSize)], nil
}

func (s *bufSink) landed(got int64, k int) error {
	c, p, within := s.at(got)
	if c != s.cur || s.first.IsZero() {
		s.cur, s.written = c, 0 // the one before ended with its last byte written
		s.first, s.firstAt = time.Now(), within+int64(k)
	}
	filled := within + int64(k)
	end := filled == int64(len(p.buf))
	if end && s.d.perRequest > 1 && !s.d.slow.Load() {
		s.d.rated(filled-s.firstAt, time.Since(s.first), int64(len(p.buf)))
	}
	if filled-s.written >= flushSize || end {
		off, _ := s.d.span(s.run[c])
		for w := s.written; w < filled; w += writeSize {
			if _, err := s.d.f.WriteAt(p.buf[w:min(filled, w+writeSize)], off+w); err != nil {
				return err
			}
		}
		s.written = filled
	}
	p.mu.Lock()
	p.filled, p.done = filled, end
	p.mu.Unlock()
	select {
	case p.more <- struct{}{}:
	default:
	}
	s.d.progress(s.run[c], filled)
	return nil
}

// getPartBuf takes a buffer of the pool of download parts, allocating it
// the first time; putPartBuf gives it back.
func (s *Store) getPartBuf(ctx context.Context) ([]byte, error) {
	select {
	case b := <-s.dlBufs:
		if b == nil {
			b = make([]byte, s.dlPart)
		}
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Store) putPartBuf(b []byte) { s.dlBufs <- b }

// fetchSpan fetches the n bytes from off into sink. A body cut short or
// stalled is resumed from the byte where it ended (see readAgain): at once
// after an attempt that brought bytes, without using the attempts.
func (d *download) fetchSpan(ctx context.Context, off, n int64, sk sink) error {
	var got int64
	err := d.s.readAgain(ctx, func(ctx context.Context, opt func(*s3.Options)) (int, bool, error) {
		k, requests, err := d.getRange(ctx, off, n, got, sk, opt)
		got += k
		return requests, k > 0, err
	})
	if err != nil && ctx.Err() == nil && errors.As(err, new(*cutError)) {
		return fmt.Errorf("get %s: %w", d.s.shown(d.req.Key), err)
	}
	return err
}

// readAgain calls get (one GET and the read of its body) again while the
// body fails to come whole: a *cutError (cut short, stalled for
// StallTimeout, out of its attempt's time; the SDK has returned by the time
// a body is read, and retries nothing then) or errDamaged. The first is
// made again at once, later ones after a backoff.
//
// One budget, the retryer's attempts, bounds the requests in a row that
// bring nothing, the SDK's own retries inside get (of errors before the
// body) included: each GetObject is given what is left of it (opt), and get
// returns how many requests it made. So a read makes at most attempts
// requests, each bounded by PACKAGE_ASSETS_REQUEST_TIMEOUT, not attempts ×
// attempts. A call that brought bytes (moved: a download resumes from
// them) starts the budget again: a slow, busy link that is still moving
// must not fail the read.
func (s *Store) readAgain(ctx context.Context, get func(ctx context.Context, opt func(*s3.Options)) (requests int, moved bool, err error)) error {
	attempts := s.client.Options().Retryer.MaxAttempts()
	backoff := retry.NewExponentialJitterBackoff(5 * time.Second)
	used := 0
	for again := 0; ; again++ {
		left := max(attempts-used, 1)
		n, moved, err := get(ctx, func(o *s3.Options) { o.RetryMaxAttempts = left })
		used += n
		var cut *cutError
		if err == nil || !(errors.As(err, &cut) || errors.Is(err, errDamaged)) || ctx.Err() != nil {
			return err
		}
		if moved {
			used, again = 0, -1
			continue
		}
		if used >= attempts {
			return fmt.Errorf("%w (after %s)", err, words.Count(used, "attempt", "attempts"))
		}
		if again > 0 {
			wait, _ := backoff.BackoffDelay(again, err)
			if err := sleepCtx(ctx, s.clock, wait); err != nil {
				return err
			}
		}
	}
}

// requestsMade is how many requests (attempts) the SDK made for an
// operation that returned metadata md.
func requestsMade(md middleware.Metadata) int {
	if r, ok := retry.GetAttemptResults(md); ok && len(r.Results) > 0 {
		return len(r.Results)
	}
	return 1
}

// sleepCtx waits d on clock, or until ctx is done.
func sleepCtx(ctx context.Context, clock clockwork.Clock, d time.Duration) error {
	t := clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cutError is a response body that ended early, failed or stalled while it
// was read.
type cutError struct{ err error }

func (e *cutError) Error() string { return "response body cut short: " + e.err.Error() }
func (e *cutError) Unwrap() error { return e.err }

// errStalled: no byte of a body arrived for StallTimeout.
var errStalled = errors.New("no byte received")

// getRange makes one GET (opt its options) for bytes off+got to off+n of
// the object and gives them to sk; it returns how many it gave, and how many
// requests the SDK made.
func (d *download) getRange(ctx context.Context, off, n, got int64, sk sink, opt func(*s3.Options)) (read int64, requests int, err error) {
	// A single request takes a share of the bytes in flight while its body
	// streams, as an upload's does: a large body must not starve the small
	// files. Parts are bounded by the pool of buffers instead.
	if d.parts == 1 {
		release, err := d.s.sending(ctx, n-got)
		if err != nil {
			return 0, 0, err
		}
		defer release()
	}
	in := &s3.GetObjectInput{Bucket: &d.s.bucket, Key: &d.req.Key}
	ranged := d.parts > 1 || got > 0
	if ranged {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", off+got, off+n-1))
	}
	if d.req.ETag != "" {
		in.IfMatch = aws.String(d.req.ETag)
	}
	if d.parts > 1 {
		d.s.dlRanged.Add(1)
		defer d.s.dlRanged.Add(-1)
	}
	out, err := d.s.client.GetObject(ctx, in, opt)
	if err != nil {
		return 0, 0, d.getFailed(err)
	}
	requests = requestsMade(out.ResultMetadata)
	// The object's size, from Content-Range for a range: a replaced object
	// of another size is refused here, whatever its ETag.
	size := d.req.Size
	if ranged {
		size = rangeTotal(aws.ToString(out.ContentRange))
	} else if out.ContentLength != nil {
		size = *out.ContentLength
	}
	if size != d.req.Size {
		out.Body.Close()
		return 0, requests, fmt.Errorf("get %s: %w (it holds %d bytes, the record says %d)", d.s.shown(d.req.Key), ErrSourceChanged, size, d.req.Size)
	}
	if out.ContentLength != nil && *out.ContentLength != n-got {
		out.Body.Close()
		return 0, requests, fmt.Errorf("get %s: %d bytes for a range of %d", d.s.shown(d.req.Key), *out.ContentLength, n-got)
	}
	body := newWatchedBody(out.Body, d.s.clock, d.s.stallTimeout)
	defer body.Close()

	for got+read < n {
		// Waiting for a buffer is not a stall of the body.
		body.idle.Store(true)
		b, err := sk.space(ctx, got+read)
		body.idle.Store(false)
		if err != nil {
			return read, requests, err
		}
		k, err := body.Read(b)
		if k > 0 {
			if werr := sk.landed(got+read, k); werr != nil {
				return read, requests, localFile{fmt.Errorf("write %s: %w", words.Printable(d.f.Name()), werr)}
			}
			read += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return read, requests, body.cut(err)
		}
	}
	if got+read != n {
		return read, requests, &cutError{fmt.Errorf("%d of %d bytes", got+read, n)}
	}
	return read, requests, nil
}

// progress reports part i's bytes received so far (counted once, however
// often the part is fetched).
func (d *download) progress(i int, got int64) {
	if d.req.Progress != nil && got > d.reported[i] {
		d.req.Progress(got - d.reported[i])
		d.reported[i] = got
	}
}

// watchedBody closes a response body that goes stallTimeout without a byte,
// so that the read waiting on it fails and the rest is asked for again on
// a new connection. A connection can stall with nothing to tell it from a
// slow one (a peer or a middlebox that lost it, a server stuck, TCP backing
// off its retransmissions); waiting for the attempt's timeout (minutes)
// would hold the whole download.
type watchedBody struct {
	io.ReadCloser
	// timer is set once AfterFunc has returned, and its first check can
	// run before that (a fake clock moved meanwhile): mu guards it.
	mu    sync.Mutex
	timer clockwork.Timer
	after time.Duration // stallTimeout
	every time.Duration
	reads atomic.Int64 // reads that returned bytes
	idle  atomic.Bool  // not reading: waiting for room for the bytes
	fired atomic.Bool
	// By the timer's callbacks only (one at a time):
	checked int64 // reads at the last check
	quiet   int   // checks in a row that saw no read
}

// stallChecks: a body is checked this many times per stallTimeout (a timer
// reset on every read would cost more than the read on a fast link).
const stallChecks = 4

func newWatchedBody(body io.ReadCloser, clock clockwork.Clock, after time.Duration) *watchedBody {
	w := &watchedBody{ReadCloser: body, after: after, every: after / stallChecks}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = clock.AfterFunc(w.every, w.check)
	return w
}

func (w *watchedBody) check() {
	if r := w.reads.Load(); r != w.checked || w.idle.Load() {
		w.checked, w.quiet = r, 0
	} else if w.quiet++; w.quiet >= stallChecks {
		w.fired.Store(true)
		w.ReadCloser.Close()
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Reset(w.every)
}

func (w *watchedBody) Read(b []byte) (int, error) {
	n, err := w.ReadCloser.Read(b)
	if n > 0 {
		w.reads.Add(1)
	}
	return n, err
}

func (w *watchedBody) stalled() bool { return w.fired.Load() }

// cut is the *cutError of a read of the body that failed with err, naming
// the stall when the watch ended it.
func (w *watchedBody) cut(err error) error {
	if w.stalled() {
		err = fmt.Errorf("%w for %s", errStalled, w.after)
	}
	return &cutError{err}
}

func (w *watchedBody) Close() error {
	w.mu.Lock()
	w.timer.Stop()
	w.mu.Unlock()
	return w.ReadCloser.Close()
}

// getFailed classifies a failed GET: a failed If-Match, or a range beyond the
// object's end, means the object is no longer the recorded one.
func (d *download) getFailed(err error) error {
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case http.StatusPreconditionFailed:
			return fmt.Errorf("get %s: %w (its ETag is no longer %s)", d.s.shown(d.req.Key), ErrSourceChanged, d.req.ETag)
		case http.StatusRequestedRangeNotSatisfiable:
			return fmt.Errorf("get %s: %w (it is shorter than the recorded %d bytes)", d.s.shown(d.req.Key), ErrSourceChanged, d.req.Size)
		}
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() == "InvalidRange" {
		return fmt.Errorf("get %s: %w (it is shorter than the recorded %d bytes)", d.s.shown(d.req.Key), ErrSourceChanged, d.req.Size)
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
