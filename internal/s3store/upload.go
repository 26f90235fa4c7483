package s3store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/jonboulle/clockwork"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Uploaded describes a stored file.
type Uploaded struct {
	Size     int64
	SHA256   []byte
	Parts    int    // 0 for a single PUT
	Check    string // what the store verified the bytes with: "SHA-256" or "CRC32C"
	ETag     string // as the store returned it
	Duration time.Duration
}

// ErrChanged: the file changed while it was being uploaded.
var ErrChanged = errors.New("file changed during upload")

// UploadRequest is one file to store.
type UploadRequest struct {
	Key, Path, ContentType string
	// Metadata receives the file's SHA-256 (computed first, in the same read
	// as the wire checksums) and returns the object's user metadata.
	Metadata func(sha256 []byte) map[string]string
	// Progress, if set, is told of bytes sent (retries are not counted twice).
	Progress func(n int64)
}

// UploadFile stores a regular file. Files larger than twice the part size go
// in parts, read straight from the file: memory stays bounded whatever the
// size. A single request is signed with its body's SHA-256, a part carries
// its CRC32C (or, for a store that does not confirm checking that, is signed
// too); the store checks the bytes it receives against them (and against
// Content-MD5, with the ContentMD5 option): a byte damaged on the way is
// refused, and sent again.
func (s *Store) UploadFile(ctx context.Context, req UploadRequest) (Uploaded, error) {
	key, path, contentType := req.Key, req.Path, req.ContentType
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return Uploaded{}, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return Uploaded{}, err
	}
	if !before.Mode().IsRegular() {
		return Uploaded{}, fmt.Errorf("%s: not a regular file", words.Printable(path))
	}
	size := before.Size()
	partSize := s.partSizeFor(size)
	multipart := size > 2*partSize
	var (
		sha, md5sum []byte
		body        *progressReader
		parts       *partDigests
		crc         bool // parts carry CRC32C rather than a signed SHA-256
	)
	if size <= smallFile && !multipart {
		// Read once, into memory: hashed and sent from the same bytes. With
		// thousands of small files, the second read is a good part of the work.
		var data []byte
		data, err = readSmall(f, size)
		if err == nil {
			sha, md5sum = digestBytes(data, s.contentMD5)
			body = &progressReader{r: io.NewSectionReader(bytes.NewReader(data), 0, size), report: req.Progress}
		}
	} else {
		if multipart {
			// The parts are hashed alongside the whole file, not while sent.
			crc = s.crc.Load() != crcOff
			hctx, cancel := context.WithCancel(ctx)
			parts = s.hashParts(hctx, f, size, partSize, !crc)
			defer func() { cancel(); <-parts.done }() // before f is closed
		}
		sha, md5sum, err = digestFile(ctx, io.NewSectionReader(f, 0, size), !multipart && s.contentMD5)
		body = &progressReader{r: io.NewSectionReader(f, 0, size), report: req.Progress, file: f, before: before}
	}
	if err != nil {
		return Uploaded{}, fmt.Errorf("read %s: %w", words.Printable(filepath.Base(path)), err)
	}
	up := Uploaded{Size: size, SHA256: sha}
	metadata := req.Metadata(sha)
	if multipart {
		up.Parts = partCount(size, partSize)
		if crc && s.crc.Load() == crcOff {
			crc = false // another file found out while this one was hashed
		}
		progress := &resendProgress{report: req.Progress}
		up.ETag, err = s.putMultipart(ctx, key, f, before, parts, crc, progress.next(), size, partSize, metadata, contentType)
		// Only while it is not known that the store checks CRC32C: once it
		// has confirmed a part, a refusal or a missing confirmation is an error.
		if crc && s.crc.Load() != crcOn && (errors.Is(err, errNoCRC) || refusesChecksum(err)) {
			// Once for the whole run: parts are signed with their SHA-256 from now on.
			s.crc.Store(crcOff)
			crc = false
			up.ETag, err = s.putMultipart(ctx, key, f, before, parts, false, progress.next(), size, partSize, metadata, contentType)
		} else if crc && err == nil {
			s.crc.CompareAndSwap(crcUnknown, crcOn)
		}
		up.Check = "SHA-256"
		if crc {
			up.Check = "CRC32C"
		}
	} else {
		up.ETag, err = s.putSingle(ctx, key, body, size, sha, md5sum, metadata, contentType)
		up.Check = "SHA-256"
	}
	// A file rewritten while it was sent fails its digest at the store;
	// say what really happened rather than "XAmzContentSHA256Mismatch".
	if cerr := unchanged(f, path, before); cerr != nil {
		return Uploaded{}, cerr
	}
	if err != nil {
		return Uploaded{}, err
	}
	up.Duration = time.Since(start)
	return up, nil
}

// unchanged checks that the file at path is still the one opened, with the
// size and modification time it had before it was read.
func unchanged(f *os.File, path string, before os.FileInfo) error {
	after, err := f.Stat()
	if err != nil {
		return err
	}
	if after.Size() != before.Size() {
		return fmt.Errorf("%s: %w (size %d → %d bytes)", words.Printable(path), ErrChanged, before.Size(), after.Size())
	}
	if !after.ModTime().Equal(before.ModTime()) {
		return fmt.Errorf("%s: %w (written to: modified %s, then %s)", words.Printable(path), ErrChanged,
			before.ModTime().UTC().Format(time.RFC3339Nano), after.ModTime().UTC().Format(time.RFC3339Nano))
	}
	now, err := os.Stat(path)
	if err != nil || !os.SameFile(now, after) {
		return fmt.Errorf("%s: %w (removed or replaced)", words.Printable(path), ErrChanged)
	}
	return nil
}

// partCount is how many parts of partSize make size bytes.
func partCount(size, partSize int64) int { return int((size + partSize - 1) / partSize) }

func (s *Store) partSizeFor(size int64) int64 {
	p := s.partSize
	if min := (size + maxParts - 1) / maxParts; min > p {
		p = min
	}
	return p
}

// smallFile: files up to this size are read into memory once rather than
// read twice (once to hash, once to send) from the file.
const smallFile = 256 << 10

// sending takes n bytes of the bound on bytes in flight (Options.MaxBytesInFlight;
// all of it for a larger body) and returns what gives them back. Bodies up
// to smallFile do not count: they are in memory, bounded by the workers,
// and must not wait behind a large file's parts.
func (s *Store) sending(ctx context.Context, n int64) (func(), error) {
	if n <= smallFile {
		return func() {}, nil
	}
	n = min(n, s.maxBytes)
	if err := s.bytes.Acquire(ctx, n); err != nil {
		return nil, err
	}
	return func() { s.bytes.Release(n) }, nil
}

// readSmall reads a whole file of the given size, or reports ErrChanged if
// it is no longer that size.
func readSmall(f *os.File, size int64) ([]byte, error) {
	// Not from bufPool: after a failed request the transport may still be
	// reading the body when the call returns.
	data := make([]byte, size+1) // one more, to see a file that grew
	n, err := io.ReadFull(io.NewSectionReader(f, 0, size+1), data)
	if int64(n) != size || err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		if err == nil || err == io.ErrUnexpectedEOF || err == io.EOF {
			err = fmt.Errorf("%w: read %d bytes, expected %d", ErrChanged, n, size)
		}
		return nil, err
	}
	return data[:size], nil
}

// digestBytes is digestFile for bytes in memory.
func digestBytes(b []byte, withMD5 bool) (sha, md5sum []byte) {
	s := sha256.Sum256(b)
	if withMD5 {
		m := md5.Sum(b)
		md5sum = m[:]
	}
	return s[:], md5sum
}

// bufPool holds read buffers: with thousands of small files, a fresh buffer
// each would be most of the work (allocation and GC).
var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// digestFile reads the file once for its SHA-256 (the package-hash, needed
// before the upload starts, for the metadata, and a single PUT's signed
// payload hash) and, if asked, its MD5.
func digestFile(ctx context.Context, r *io.SectionReader, withMD5 bool) (sha, md5sum []byte, err error) {
	sh := sha256.New()
	var w io.Writer = sh
	var m hash.Hash
	if withMD5 {
		m = md5.New()
		w = io.MultiWriter(sh, m)
	}
	if err := copyCtx(ctx, w, r); err != nil {
		return nil, nil, err
	}
	if m != nil {
		md5sum = m.Sum(nil)
	}
	return sh.Sum(nil), md5sum, nil
}

// partSums are what a part is sent with: its CRC32C (the checksum header)
// or SHA-256 (the signed payload hash), and its MD5 with the ContentMD5 option.
type partSums struct {
	sha, md5 []byte
	crc      uint32
}

// partDigest reads a part once for the sums asked for; CRC32C always (it
// costs next to nothing: SSE 4.2 or ARMv8 CRC instructions).
func partDigest(ctx context.Context, r *io.SectionReader, withSHA, withMD5 bool) (partSums, error) {
	c := crc32.New(castagnoli())
	ws := []io.Writer{c}
	var sh, m hash.Hash
	if withSHA {
		sh = sha256.New()
		ws = append(ws, sh)
	}
	if withMD5 {
		m = md5.New()
		ws = append(ws, m)
	}
	if err := copyCtx(ctx, io.MultiWriter(ws...), r); err != nil {
		return partSums{}, err
	}
	p := partSums{crc: c.Sum32()}
	if sh != nil {
		p.sha = sh.Sum(nil)
	}
	if m != nil {
		p.md5 = m.Sum(nil)
	}
	return p, nil
}

// castagnoli is made on first use: its tables took 0.25 ms of every start.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// partDigests are the sums of each part of a file. One goroutine computes
// them while the upload computes the whole file's SHA-256 (the
// package-hash, needed before the first part can go): that read is
// sequential and would leave the other cores idle, and a part hashed then is
// not hashed while it is sent.
type partDigests struct {
	sums  []partSums
	err   []error
	ready []chan struct{} // closed when part i's sums (or error) are set
	done  chan struct{}   // closed when the goroutine has returned
}

func (s *Store) hashParts(ctx context.Context, f *os.File, size, partSize int64, withSHA bool) *partDigests {
	n := partCount(size, partSize)
	pd := &partDigests{
		sums: make([]partSums, n), err: make([]error, n),
		ready: make([]chan struct{}, n), done: make(chan struct{}),
	}
	for i := range pd.ready {
		pd.ready[i] = make(chan struct{})
	}
	go func() {
		defer close(pd.done)
		for i := range n {
			off := int64(i) * partSize
			pd.sums[i], pd.err[i] = partDigest(ctx, io.NewSectionReader(f, off, min(partSize, size-off)), withSHA, s.contentMD5)
			close(pd.ready[i])
		}
	}()
	return pd
}

// get waits for part i's sums.
func (pd *partDigests) get(ctx context.Context, i int) (partSums, error) {
	select {
	case <-pd.ready[i]:
		return pd.sums[i], pd.err[i]
	case <-ctx.Done():
		return partSums{}, ctx.Err()
	}
}

// copyCtx copies all of r (which must yield exactly its length) into w,
// stopping when ctx is done.
func copyCtx(ctx context.Context, w io.Writer, r *io.SectionReader) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	want := r.Size()
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		k, err := r.Read(buf)
		if k > 0 {
			w.Write(buf[:k])
			n += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if n != want {
		return fmt.Errorf("%w: read %d of %d bytes", ErrChanged, n, want)
	}
	return nil
}

// b64 is a Content-MD5 header value; nil (no header) for no sum.
func b64(b []byte) *string {
	if b == nil {
		return nil
	}
	return aws.String(base64.StdEncoding.EncodeToString(b))
}

func (s *Store) putSingle(ctx context.Context, key string, body io.ReadSeeker, size int64, sha, md5sum []byte, meta map[string]string, contentType string) (string, error) {
	release, err := s.sending(ctx, size)
	if err != nil {
		return "", err
	}
	defer release()
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          body,
		ContentLength: aws.Int64(size),
		ContentMD5:    b64(md5sum),
		ContentType:   aws.String(contentType),
		Metadata:      meta,
	}, withPayloadHash(hex.EncodeToString(sha)))
	if err != nil {
		return "", s.classify("upload", key, err)
	}
	return aws.ToString(out.ETag), nil
}

func (s *Store) putMultipart(ctx context.Context, key string, f *os.File, before os.FileInfo, parts *partDigests, crc bool, progress func(int64), size, partSize int64, meta map[string]string, contentType string) (string, error) {
	probe := crc && s.crc.Load() != crcOn
	return s.multipart(ctx, "upload", key, size, partSize, meta, contentType, crc, probe,
		func(ctx context.Context, uploadID *string, num int32, off, n int64) (types.CompletedPart, error) {
			sums, err := parts.get(ctx, int(num-1))
			if err == nil && !crc && sums.sha == nil {
				// Hashed for CRC32C, then the store turned out not to check it.
				sums, err = partDigest(ctx, io.NewSectionReader(f, off, n), true, s.contentMD5)
			}
			if err != nil {
				return types.CompletedPart{}, err
			}
			in := &s3.UploadPartInput{
				Bucket:        &s.bucket,
				Key:           &key,
				UploadId:      uploadID,
				PartNumber:    &num,
				Body:          &progressReader{r: io.NewSectionReader(f, off, n), report: progress, file: f, before: before},
				ContentLength: aws.Int64(n),
				ContentMD5:    b64(sums.md5),
			}
			payloadHash := unsignedPayload
			if crc {
				var b [4]byte
				binary.BigEndian.PutUint32(b[:], sums.crc)
				in.ChecksumCRC32C = b64(b[:])
			} else {
				payloadHash = hex.EncodeToString(sums.sha)
			}
			release, err := s.sending(ctx, n)
			if err != nil {
				return types.CompletedPart{}, err
			}
			defer release()
			out, err := s.client.UploadPart(ctx, in, withPayloadHash(payloadHash))
			if err != nil {
				if crc && refusesChecksum(err) {
					return types.CompletedPart{}, fmt.Errorf("%w: %w", errNoCRC, err)
				}
				return types.CompletedPart{}, s.classify(fmt.Sprintf("upload part %d of", num), key, err)
			}
			if crc && aws.ToString(out.ChecksumCRC32C) != *in.ChecksumCRC32C {
				// A store that checked the checksum says so by returning it.
				return types.CompletedPart{}, errNoCRC
			}
			return types.CompletedPart{ETag: out.ETag, ChecksumCRC32C: in.ChecksumCRC32C}, nil
		})
}

const unsignedPayload = "UNSIGNED-PAYLOAD"

// errNoCRC: the store refused a CRC32C checksum header, or took the part
// without confirming it.
var errNoCRC = errors.New("the store does not check CRC32C checksums")

// refusesChecksum: the answer of a store that does not implement flexible
// checksums to a request carrying one.
func refusesChecksum(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case "NotImplemented", "InvalidArgument", "InvalidRequest":
		return true
	}
	return false
}

// verifySize confirms what a multipart upload or copy assembled.
func (s *Store) verifySize(ctx context.Context, key string, size int64) error {
	info, err := s.Head(ctx, key)
	if err != nil {
		return err
	}
	if info.Size != size {
		return fmt.Errorf("verify %s: stored %d bytes, sent %d", s.shown(key), info.Size, size)
	}
	return nil
}

// CancelGrace is how long work already under way may go on after a run is
// cancelled (SIGINT, SIGTERM): a multipart upload's abort, and upload's
// cache entries and records of sets whose files were all sent. Well inside
// the 10 s a CI system waits after it signals a job before it kills it
// (GitHub Actions, docker stop): a store that answers nothing must not hold
// the exit, and its code, until then.
const CancelGrace = 5 * time.Second

// AfterCancel gives a context that is not cancelled with ctx but
// CancelGrace after it, on clock (at once when ctx is cancelled already,
// the grace starting then).
func AfterCancel(ctx context.Context, clock clockwork.Clock) (context.Context, context.CancelFunc) {
	if ctx.Value(graceKey{}) != nil {
		// Within a grace given already (an abort under a set's finish):
		// that one's end is this one's, so that graces never add up.
		return context.WithCancel(ctx)
	}
	out, cancel := context.WithCancel(context.WithValue(context.WithoutCancel(ctx), graceKey{}, true))
	if ctx.Err() != nil {
		t := clock.AfterFunc(CancelGrace, cancel)
		return out, func() { t.Stop(); cancel() }
	}
	stop := context.AfterFunc(ctx, func() { clock.AfterFunc(CancelGrace, cancel) })
	return out, func() { stop(); cancel() }
}

// graceKey marks a context AfterCancel gave.
type graceKey struct{}

// AfterCancel is AfterCancel on the store's clock.
func (s *Store) AfterCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	return AfterCancel(ctx, s.clock)
}

// abort cleans up a failed multipart upload, even when ctx was cancelled
// (a cancelled CI job should not leave parts billed in the bucket): 30 s,
// or CancelGrace once ctx is cancelled.
func (s *Store) abort(ctx context.Context, key string, uploadID *string) {
	ctx, stop := s.AfterCancel(ctx)
	defer stop()
	ctx, cancel := clockwork.WithTimeout(ctx, s.clock, 30*time.Second)
	defer cancel()
	_, _ = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &s.bucket, Key: &key, UploadId: uploadID,
	})
}

// withPayloadHash gives the signer the body's SHA-256, computed in the read
// that also feeds the package-hash or with the part's other sums (or
// UNSIGNED-PAYLOAD for a part checked by CRC32C), so the SDK does not read
// every body once more to hash it. SHA-256 rather than the MD5 of
// Content-MD5: with SHA instructions it costs less than half as much.
func withPayloadHash(h string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("s3am.PayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, h), in)
				}), "ComputePayloadHash", middleware.Before)
		})
	}
}

// resendProgress passes on a file's bytes sent, but only those beyond what
// an earlier attempt at the same file already reported: a file sent again
// from its start (the CRC32C fallback) is not counted twice. Each attempt
// reports through its own func, so a body the transport is still reading
// for an abandoned attempt counts for nothing.
type resendProgress struct {
	report     func(int64)
	mu         sync.Mutex
	attempt    int
	sent, high int64 // the current attempt's bytes; the most reported for the file
}

// next starts an attempt at the file and returns the func it reports through.
func (p *resendProgress) next() func(int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempt++
	p.sent = 0
	attempt := p.attempt
	return func(n int64) { p.add(attempt, n) }
}

func (p *resendProgress) add(attempt int, n int64) {
	if p.report == nil {
		return
	}
	p.mu.Lock()
	var d int64
	if attempt == p.attempt {
		p.sent += n
		if d = p.sent - p.high; d > 0 {
			p.high = p.sent
		}
	}
	p.mu.Unlock()
	if d > 0 {
		p.report(d)
	}
}

// progressReader reports bytes read from a request body. A retry seeks back
// and reads again; only bytes past the furthest point reached count.
type progressReader struct {
	r         *io.SectionReader
	pos, high int64
	report    func(int64)
	// file, as it was before it was hashed: a body read from a file that
	// has changed since fails its digest at the store, and must not be retried.
	file   *os.File
	before os.FileInfo
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.pos += int64(n)
	if err == io.EOF && p.pos < p.r.Size() {
		// The file shrank under us: no retry can succeed.
		err = changedError{}
	}
	if err == io.EOF && p.file != nil {
		if now, serr := p.file.Stat(); serr == nil && (now.Size() != p.before.Size() || !now.ModTime().Equal(p.before.ModTime())) {
			err = changedError{}
		}
	}
	if p.report != nil && p.pos > p.high {
		p.report(p.pos - p.high)
		p.high = p.pos
	}
	return n, err
}

func (p *progressReader) Seek(off int64, whence int) (int64, error) {
	pos, err := p.r.Seek(off, whence)
	if err == nil {
		p.pos = pos
	}
	return pos, err
}

// changedError stops the SDK from retrying a body whose file changed after
// it was hashed; UploadFile then reports ErrChanged.
type changedError struct{}

func (changedError) Error() string        { return "file changed since it was hashed" }
func (changedError) RetryableError() bool { return false }
