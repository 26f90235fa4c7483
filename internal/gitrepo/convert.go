package gitrepo

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"regexp"
	"strconv"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
)

// storedID gives the blob id git would store for the working file at abs
// (path is its slash-separated relative path): its clean content, as `git
// add` computes it, with the rules that keep it the same on every machine.
// indexID is the index's id for a tracked file, zero for an untracked or
// unmerged one.
//
//   - A symlink is its target text (a plain file holding it where
//     core.symlinks is off); no conversion applies.
//   - filter=lfs: the git-lfs pointer of the content (the content itself when
//     it already is a pointer: a checkout without git-lfs).
//   - Line endings as git's convert_to_git does it: with text or eol=lf|crlf,
//     CRLF becomes LF; with -text (binary) nothing changes; otherwise (no
//     attribute, or text=auto) CRLF becomes LF in a file that looks like
//     text, unless the committed version has CRLF. core.autocrlf is not read:
//     "auto" is what it means where it is on, and where it is off it gives
//     the same answer for every file a checkout did not change.
//
// A tracked file whose bytes are the index's blob counts as that blob, even
// where git's clean conversion would change it (a file committed with CRLF
// before a text attribute, or without git-lfs before filter=lfs): the index
// vouches for it when its stat data matches, and a touch must not change
// the answer.
//
// Attributes that cannot be applied (a custom filter driver, ident,
// working-tree-encoding) were refused before (scan.refuse).
func (s *scan) storedID(path, abs string, mode filemode.FileMode, indexID plumbing.Hash, buf []byte) (plumbing.Hash, error) {
	if mode == filemode.Symlink {
		id, _, err := hashPath(abs, mode, buf)
		return id, err
	}
	fa := s.attrs.lookup(path)
	if fa.lfs {
		id, pointer, err := lfsIDs(abs, buf)
		if err != nil || id == indexID {
			return id, err
		}
		return pointer, nil
	}
	id, sawCR, err := hashPath(abs, mode, buf)
	if err != nil || id == indexID || !sawCR || fa.text == textBinary {
		return id, err
	}
	st, err := readStats(abs, buf)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if st.crlf == 0 || fa.text == textAuto && st.binary() {
		return id, nil
	}
	norm, err := hashNormalized(abs, st, buf)
	if err != nil || fa.text == textText {
		return norm, err
	}
	// Auto: git leaves the file as it is when the index's blob has CRLF
	// (has_crlf_in_index). An unchanged file is one of the two ids, and
	// which one it is answers that without reading the blob.
	if indexID.IsZero() || indexID == norm {
		return norm, nil
	}
	blob, err := s.repo.readBlob(indexID)
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read the index's version: %w", err)
	}
	var bst textStats
	bst.add(blob)
	bst.finish()
	if bst.crlf > 0 && !bst.binary() {
		return id, nil
	}
	return norm, nil
}

// textStats counts what git's gather_stats counts, to tell text from binary
// and to size the content with CRLF turned into LF. add takes the content in
// pieces; finish ends it.
type textStats struct {
	size, crlf, loneCR, nul, printable, nonPrintable int64
	pendingCR                                        bool // the last piece ended in CR
	last                                             byte
}

func (st *textStats) add(b []byte) {
	st.size += int64(len(b))
	for _, c := range b {
		if st.pendingCR {
			st.pendingCR = false
			if c == '\n' {
				st.crlf++
				st.last = c
				continue
			}
			st.loneCR++
		}
		switch {
		case c == '\r':
			st.pendingCR = true
		case c == '\n':
		case c == 127:
			st.nonPrintable++
		case c < 32:
			switch c {
			case '\b', '\t', '\033', '\014':
				st.printable++
			case 0:
				st.nul++
				st.nonPrintable++
			default:
				st.nonPrintable++
			}
		default:
			st.printable++
		}
		st.last = c
	}
}

func (st *textStats) finish() {
	if st.pendingCR {
		st.pendingCR = false
		st.loneCR++
	}
	if st.size > 0 && st.last == '\032' { // a trailing EOF (^Z) is not binary
		st.nonPrintable--
	}
}

// binary is git's convert_is_binary.
func (st *textStats) binary() bool {
	return st.loneCR > 0 || st.nul > 0 || st.printable>>7 < st.nonPrintable
}

func readStats(abs string, buf []byte) (textStats, error) {
	var st textStats
	err := readAll(abs, buf, func(b []byte) { st.add(b) })
	st.finish()
	return st, err
}

// hashNormalized hashes the file with every CRLF turned into LF; st is its
// statistics, for the size the blob header needs.
func hashNormalized(abs string, st textStats, buf []byte) (plumbing.Hash, error) {
	h := sha1.New()
	h.Write(blobHeader(st.size - st.crlf))
	n := int64(0)
	heldCR := false // a CR at the end of the last piece, written once the next byte is known
	write := func(b []byte) { n += int64(len(b)); h.Write(b) }
	err := readAll(abs, buf, func(b []byte) {
		if len(b) == 0 {
			return
		}
		if heldCR {
			heldCR = false
			if b[0] != '\n' {
				write([]byte{'\r'})
			}
		}
		for len(b) > 0 {
			i := bytes.IndexByte(b, '\r')
			if i < 0 {
				write(b)
				return
			}
			write(b[:i])
			switch {
			case i+1 == len(b):
				heldCR = true
			case b[i+1] != '\n':
				write(b[i : i+1])
			}
			b = b[i+1:]
		}
	})
	if heldCR {
		write([]byte{'\r'})
	}
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if n != st.size-st.crlf {
		return plumbing.ZeroHash, fmt.Errorf("the file changed while it was read")
	}
	return sum(h), nil
}

// lfsPointer is the pointer git-lfs stores for a file (its spec, v1).
const lfsPointer = "version https://git-lfs.github.com/spec/v1\noid sha256:%x\nsize %d\n"

var lfsPointerRE = regexp.MustCompile(`^version https://git-lfs\.github\.com/spec/v1\noid sha256:[0-9a-f]{64}\nsize [0-9]+\n$`)

// lfsIDs reads the file once for the id of its bytes and the id of the blob
// git-lfs's clean filter stores for it: its pointer, computed from the
// content; an empty file stays empty, and a file that already is a pointer
// (git-lfs did not smudge it) is kept as it is.
func lfsIDs(abs string, buf []byte) (id, pointer plumbing.Hash, err error) {
	var (
		h     = sha1.New()
		h256  = sha256.New()
		n     int64
		small []byte // the first bytes, enough to hold a pointer
	)
	size, err := readAllSized(abs, buf, func(size int64) { h.Write(blobHeader(size)) }, func(b []byte) {
		if n < 1024 {
			small = append(small, b[:min(len(b), 1024-int(n))]...)
		}
		n += int64(len(b))
		h.Write(b)
		h256.Write(b)
	})
	switch {
	case err != nil:
		return id, pointer, err
	case n != size:
		return id, pointer, fmt.Errorf("the file changed while it was read (%d bytes, then %d)", size, n)
	case n == 0 || n < 1024 && lfsPointerRE.Match(small):
		return sum(h), sum(h), nil
	}
	return sum(h), blobID(fmt.Appendf(nil, lfsPointer, h256.Sum(nil), n)), nil
}

// readAll feeds the file's content to fn piece by piece, through buf.
func readAll(abs string, buf []byte, fn func([]byte)) error {
	_, err := readAllSized(abs, buf, func(int64) {}, fn)
	return err
}

// readAllSized is readAll that first tells sized the file's size.
func readAllSized(abs string, buf []byte, sized func(int64), fn func([]byte)) (int64, error) {
	f, err := os.Open(abs)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	sized(fi.Size())
	for {
		n, err := f.Read(buf)
		fn(buf[:n])
		if err == io.EOF {
			return fi.Size(), nil
		}
		if err != nil {
			return 0, err
		}
	}
}

func sum(h hash.Hash) plumbing.Hash {
	var id plumbing.Hash
	h.Sum(id[:0])
	return id
}

func blobHeader(size int64) []byte {
	return append(strconv.AppendInt([]byte("blob "), size, 10), 0)
}
