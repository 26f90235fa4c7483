package codehash

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
)

// ListFormat is the first line of an encoded List; a reader refuses any other.
const ListFormat = "s3-asset-manager file list v1"

// Limits on what DecodeList accepts, so a foreign or damaged object (a gzip
// bomb planted by anyone who can write to the bucket) cannot exhaust memory:
// every missing check decodes the nearest earlier list. A list of 200,000
// files (scripts/gen-repo -trees 10 -files 20000) is 10 MiB compressed and
// 17 MiB expanded; the limits allow about four times that, and no real filter
// has thousands of patterns. A list beyond them is only an explanation lost.
const (
	MaxListSize     = 32 << 20 // compressed
	maxListExpanded = 80 << 20 // uncompressed
	maxListLine     = 64 << 10
	maxListPatterns = 10000
)

// ErrBadList marks a list that is not a well-formed file list.
var ErrBadList = errors.New("not a valid file list")

// List is what went into a code hash: the salt (as its digest), the
// patterns, and every file with its mode and blob id, sorted by path. It is
// kept beside a cache entry so a later miss can say what differs.
type List struct {
	CodeHash string
	// SaltDigest stands for the salt: SaltDigest of it. The list is kept in
	// the package directory (a CI artifact) and in the bucket, and the salt's
	// value is never written out; the digest tells a changed salt all the same.
	SaltDigest string
	Patterns   []string // as written in the filter, '!' included
	Files      []gitrepo.File
	// stored is EncodeStored's result, when ComputeList made it.
	stored []byte
}

// SaltDigest is the hex SHA-256 of a salt, under a label of its own: what a
// List keeps instead of the salt.
func SaltDigest(salt string) string {
	h := sha256.Sum256([]byte("s3-asset-manager salt\n" + salt))
	return hex.EncodeToString(h[:])
}

// NewList is the list of a computed code hash.
func NewList(res Result, pats []Pattern, salt string) *List {
	ps := make([]string, len(pats))
	for i, p := range pats {
		ps[i] = p.String()
	}
	return &List{CodeHash: res.Hash, SaltDigest: SaltDigest(salt), Patterns: ps, Files: res.Files}
}

// NewComponentList is the list of one component's code hash: its patterns
// are the shared ones, then the component's own ("<dir>/**" for a
// directory-glob component), so a change of either is named.
func NewComponentList(c ComponentHash, shared []Pattern, comps []Component, salt string) *List {
	pats := slices.Clone(shared)
	if c.Dir != "" {
		pats = append(pats, Pattern{Glob: c.Dir + "/**"})
	} else {
		for _, k := range comps {
			if k.Name == c.Name {
				pats = append(pats, k.Patterns...)
			}
		}
	}
	return NewList(c.Result, pats, salt)
}

// Encode writes the list gzip-compressed, so `zcat` reads it:
//
//	s3-asset-manager file list v1
//	code-hash <code hash>
//	salt-sha256 <SaltDigest of the salt>
//	pattern <pattern>            (one line each, in order)
//	<mode, 6 octal digits> <blob id> <path>   (one line a file, in path order)
//
// A pattern or path holding a control character, or starting with '"', is
// written Go-quoted, as git quotes unusual paths. (Lists of earlier versions
// hold "salt <salt>" instead: DecodeList reads both, see there.)
//
// This is the form kept in the bucket, where every later miss reads it:
// gzip's HuffmanOnly level. The blob ids, most of the list, are random hex,
// which no matching shrinks below what Huffman coding alone does; for
// 200,000 files it takes 89 ms of CPU against BestSpeed's 214, for 10 MB
// against 5.8 MB. Check, which writes a list on every miss, writes it with
// EncodeStored instead, and upload Compresses it on its way to the bucket.
func (l *List) Encode(w io.Writer) error {
	head, err := l.header()
	if err != nil {
		return err
	}
	return l.encode(w, head, gzip.HuffmanOnly)
}

// encode writes head and the file lines, gzipped at level.
func (l *List) encode(w io.Writer, head string, level int) error {
	zw, _ := gzip.NewWriterLevel(w, level)
	bw := bufio.NewWriterSize(zw, 64<<10)
	bw.WriteString(head)
	var line []byte
	for _, f := range l.Files {
		line = appendFileLine(line[:0], f)
		bw.Write(line)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return zw.Close()
}

// EncodeBytes is Encode into memory.
func (l *List) EncodeBytes() ([]byte, error) {
	// Sized for the whole list at once (Huffman coding leaves about 51
	// bytes of a line of gen-repo's paths; a little more for longer ones),
	// so a large list is not copied each time the buffer doubles.
	var b bytes.Buffer
	b.Grow(4096 + 56*len(l.Files))
	if err := l.Encode(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// EncodeStored is the list as Encode writes it, but in gzip's stored blocks
// (no compression): what check keeps in the package directory on a miss, on
// its critical path (after the cache lookup on a loopback store). It costs
// a fifth of the CPU of Huffman coding (200,000 files: 12.8-13.6 ms
// against 65-75, docs/benchmarks-history.md) for 1.7 times the size (17 MB against 10); upload Compresses it
// before it goes to the bucket. Any gzip reader (zcat, DecodeList) reads it
// as it reads the other.
//
// The bytes are those compress/gzip writes at NoCompression
// (TestEncodeStoredAsGzip), made here instead: each line is formatted in
// place in the output, between the blocks' headers, where through gzip it
// was copied twice more (a bufio.Writer's buffer, flate's window: 40% of the
// time).
func (l *List) EncodeStored() ([]byte, error) {
	if l.stored != nil {
		return l.stored, nil
	}
	s, err := l.storedText()
	if err != nil {
		return nil, err
	}
	return s.close(), nil
}

// storedText is EncodeStored before its close.
func (l *List) storedText() (storedBlocks, error) {
	head, err := l.header()
	if err != nil {
		return storedBlocks{}, err
	}
	n := len(head)
	for _, f := range l.Files {
		n += 49 + len(f.Path) // mode, id, two spaces and the newline; quoting only adds
	}
	// One buffer for the whole list, made, not grown: growing zeroes it
	// first. A block header each maxStored bytes, gzip's header and trailer.
	s := storedBlocks{b: make([]byte, 0, len(gzipHeader)+n+(n/maxStored+2)*storedHeaderLen+8)}
	s.b = append(s.b, gzipHeader...)
	s.open()
	s.b = append(s.b, head...)
	s.cut()
	for _, f := range l.Files {
		s.b = appendFileLine(s.b, f)
		s.cut()
	}
	return s, nil
}

// The gzip member EncodeStored writes, as compress/gzip writes it: no name,
// no time, no extra flags, an unknown OS; deflate's stored blocks of
// maxStored bytes each, then an empty final block, as compress/flate ends
// a stream; CRC-32 and length.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}

const (
	maxStored       = 65535
	storedHeaderLen = 5 // BFINAL and BTYPE in a byte of their own, LEN, NLEN
)

// storedBlocks is text in deflate's stored blocks, written in place: the
// current block's header is reserved at block and filled in when the block
// is full or the text ends.
type storedBlocks struct {
	b     []byte
	block int
}

func (s *storedBlocks) open() {
	s.block = len(s.b)
	s.b = append(s.b, 0, 0, 0, 0, 0)
}

// cut ends the current block once it holds maxStored bytes of text, and
// opens the next, moving what follows (part of a line) past its header.
func (s *storedBlocks) cut() {
	for len(s.b)-s.block-storedHeaderLen >= maxStored {
		end := s.block + storedHeaderLen + maxStored
		s.seal(maxStored)
		s.b = append(s.b, 0, 0, 0, 0, 0)
		copy(s.b[end+storedHeaderLen:], s.b[end:len(s.b)-storedHeaderLen])
		s.block = end
	}
}

// seal fills in the current block's header for n bytes of text.
func (s *storedBlocks) seal(n int) {
	h := s.b[s.block : s.block+storedHeaderLen]
	h[0] = 0 // not final, stored
	binary.LittleEndian.PutUint16(h[1:], uint16(n))
	binary.LittleEndian.PutUint16(h[3:], ^uint16(n))
}

// close ends the text: its last block (none if it is empty), the empty
// final block, the trailer. The checksum is taken here, over every block's
// text (ComputeList writes the code hash in after the text is made; CLMUL
// makes this half a millisecond for 17 MB).
func (s *storedBlocks) close() []byte {
	if n := len(s.b) - s.block - storedHeaderLen; n > 0 {
		s.seal(n)
	} else {
		s.b = s.b[:s.block]
	}
	var crc, size uint32
	for at := len(gzipHeader); at < len(s.b); {
		n := int(binary.LittleEndian.Uint16(s.b[at+1:]))
		at += storedHeaderLen
		crc = crc32.Update(crc, crc32.IEEETable, s.b[at:at+n])
		size += uint32(n) // modulo 2^32, as gzip records it
		at += n
	}
	s.b = append(s.b, 1, 0, 0, 0xff, 0xff)
	s.b = binary.LittleEndian.AppendUint32(s.b, crc)
	return binary.LittleEndian.AppendUint32(s.b, size)
}

// Compress writes an encoded list read from r (any gzip level: check keeps
// its lists stored, see EncodeStored) to w as Encode writes it, re-coding the
// text without parsing it. A stream that is not gzip, fails its checksum or
// expands beyond what DecodeList accepts wraps ErrBadList; nothing is
// checked of the text itself.
func Compress(w io.Writer, r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadList, err)
	}
	lr := &io.LimitedReader{R: zr, N: maxListExpanded + 1}
	zw, _ := gzip.NewWriterLevel(sink{w}, gzip.HuffmanOnly)
	_, err = io.Copy(zw, lr)
	if err == nil {
		err = zw.Close()
	}
	var werr sinkError
	switch {
	case errors.As(err, &werr):
		return werr.err // w's own, not the list's
	case err != nil:
		return fmt.Errorf("%w: %v", ErrBadList, err)
	case lr.N <= 0:
		return fmt.Errorf("%w: more than %d bytes uncompressed", ErrBadList, maxListExpanded)
	}
	return nil
}

// sink tells Compress's write errors from its read errors.
type sink struct{ w io.Writer }

type sinkError struct{ err error }

func (e sinkError) Error() string { return e.err.Error() }

func (s sink) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil {
		err = sinkError{err}
	}
	return n, err
}

// header is the lines before the files.
func (l *List) header() (string, error) {
	if !manifest.LowerHex(l.SaltDigest, 64) {
		return "", fmt.Errorf("file list of %s: the salt's digest %q is not 64 hex digits", l.CodeHash, l.SaltDigest)
	}
	var b strings.Builder
	b.WriteString(ListFormat + "\ncode-hash " + l.CodeHash + "\nsalt-sha256 " + l.SaltDigest + "\n")
	for _, p := range l.Patterns {
		b.WriteString("pattern " + quoteField(p) + "\n")
	}
	return b.String(), nil
}

// appendFileLine appends a file's line: mode, blob id, path.
func appendFileLine(line []byte, f gitrepo.File) []byte {
	switch f.Mode { // the usual ones as constants: a line for every file
	case filemode.Regular:
		line = append(line, "100644"...)
	case filemode.Executable:
		line = append(line, "100755"...)
	default:
		line = appendMode(line, f.Mode)
	}
	line = append(line, ' ')
	line = hex.AppendEncode(line, f.ID[:])
	line = append(line, ' ')
	if needsQuote(f.Path) {
		line = strconv.AppendQuote(line, f.Path)
	} else {
		line = append(line, f.Path...)
	}
	return append(line, '\n')
}

// DecodeList reads an encoded list. Anything that is not exactly the format
// (a damaged or foreign object) wraps ErrBadList. A list written by an
// earlier version, with the salt in clear ("salt <salt>"), is read as if it
// held its digest: compared with a list of this version, it tells a changed
// salt as one of its own would, and its value goes no further.
func DecodeList(data []byte) (*List, error) {
	if len(data) > MaxListSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadList, len(data), MaxListSize)
	}
	return decodeList(bytes.NewReader(data), false)
}

// ReadListHeader reads an encoded list's code hash, salt and patterns, not
// its files: what upload needs to name the entry, without decoding the rest.
func ReadListHeader(r io.Reader) (*List, error) {
	return decodeList(r, true)
}

func decodeList(r io.Reader, headerOnly bool) (*List, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadList, err)
	}
	lr := &io.LimitedReader{R: zr, N: maxListExpanded + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 64<<10), maxListLine)
	bad := func(n int, why string) error { return fmt.Errorf("%w: line %d: %s", ErrBadList, n, why) }
	l := &List{}
	n := 0
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		n++
		return sc.Text(), true
	}
	if s, _ := next(); s != ListFormat {
		return nil, bad(1, "not the format "+strconv.Quote(ListFormat))
	}
	s, _ := next()
	h, ok := strings.CutPrefix(s, "code-hash ")
	if !ok || h == "" {
		return nil, bad(n, "no code-hash line")
	}
	l.CodeHash = h
	s, _ = next()
	if d, ok := strings.CutPrefix(s, "salt-sha256 "); ok {
		if !manifest.LowerHex(d, 64) {
			return nil, bad(n, "the salt's digest is not 64 hex digits")
		}
		l.SaltDigest = d
	} else if salt, ok := strings.CutPrefix(s, "salt "); ok {
		clear, err := unquoteField(salt)
		if err != nil {
			return nil, bad(n, err.Error())
		}
		l.SaltDigest = SaltDigest(clear)
	} else {
		return nil, bad(n, "no salt line")
	}
	for {
		s, ok := next()
		if !ok {
			break
		}
		if p, isPat := strings.CutPrefix(s, "pattern "); isPat {
			if len(l.Files) > 0 {
				return nil, bad(n, "pattern after the files")
			}
			p, err := unquoteField(p)
			if err != nil {
				return nil, bad(n, err.Error())
			}
			if len(l.Patterns) == maxListPatterns {
				return nil, bad(n, fmt.Sprintf("more than %d patterns", maxListPatterns))
			}
			l.Patterns = append(l.Patterns, p)
			continue
		}
		if headerOnly {
			return l, nil
		}
		f, err := parseFileLine(s)
		if err != nil {
			return nil, bad(n, err.Error())
		}
		if k := len(l.Files); k > 0 && l.Files[k-1].Path >= f.Path {
			return nil, bad(n, "paths out of order or repeated")
		}
		l.Files = append(l.Files, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadList, err)
	}
	if headerOnly {
		return l, nil // no files at all
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: more than %d bytes uncompressed", ErrBadList, maxListExpanded)
	}
	// The scanner stops at the end of the data, or at a damaged gzip
	// stream: read to the end to get the stream's checksum verified.
	if _, err := io.Copy(io.Discard, lr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadList, err)
	}
	return l, nil
}

// appendMode writes a mode as 6 octal digits, as git does.
func appendMode(b []byte, m filemode.FileMode) []byte {
	var d [6]byte
	v := uint32(m)
	for i := 5; i >= 0; i-- {
		d[i] = '0' + byte(v&7)
		v >>= 3
	}
	return append(b, d[:]...)
}

func parseFileLine(s string) (gitrepo.File, error) {
	var f gitrepo.File
	mode, rest, ok := strings.Cut(s, " ")
	if !ok || len(mode) != 6 {
		return f, errors.New("not a file line")
	}
	m, err := strconv.ParseUint(mode, 8, 32)
	if err != nil {
		return f, errors.New("mode is not octal")
	}
	id, path, ok := strings.Cut(rest, " ")
	if !ok || !manifest.LowerHex(id, 40) {
		return f, errors.New("blob id is not 40 hex digits")
	}
	if path, err = unquoteField(path); err != nil || path == "" {
		return f, errors.New("bad path")
	}
	f.Mode = filemode.FileMode(m)
	hex.Decode(f.ID[:], []byte(id))
	f.Path = path
	return f, nil
}

// quoteField keeps a field on its line: one holding a control character
// (a newline above all), or starting with '"', is Go-quoted.
func quoteField(s string) string {
	if needsQuote(s) {
		return strconv.Quote(s)
	}
	return s
}

// needsQuote: s starts with '"' or holds a control character. It runs for
// every path of every list written, on a miss's critical path: eight bytes
// at a time (a byte loop was a sixth of EncodeStored), the rest one by one.
func needsQuote(s string) bool {
	if strings.HasPrefix(s, `"`) {
		return true
	}
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		below := (x - 0x20*ones) &^ x & highs // a byte below 0x20
		del := x ^ 0x7f*ones                  // zero where a byte is 0x7f
		if below|(del-ones)&^del&highs != 0 {
			return true
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return true
		}
	}
	return false
}

func unquoteField(s string) (string, error) {
	if strings.HasPrefix(s, `"`) {
		return strconv.Unquote(s)
	}
	return s, nil
}
