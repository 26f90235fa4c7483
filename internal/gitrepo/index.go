package gitrepo

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// readIndex reads the repository's index (.git/index) with decodeIndex.
// A repository without one (nothing added yet) has an empty index.
func (r *Repo) readIndex() (*index.Index, error) {
	b, modTime, err := readWithTime(filepath.Join(r.GitDir, "index"))
	if errors.Is(err, os.ErrNotExist) {
		return &index.Index{Version: 2}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read index of %s: %w", r.Root, err)
	}
	idx, err := decodeIndex(b)
	if errors.Is(err, index.ErrUnknownExtension) {
		return nil, fmt.Errorf("read index of %s: %w: %w (a sparse index or split index? "+
			"`git sparse-checkout init --no-sparse-index` and `git update-index --no-split-index` "+
			"turn those off)", r.Root, ErrUnsupported, err)
	}
	if err != nil {
		return nil, fmt.Errorf("read index of %s: %w", r.Root, err)
	}
	idx.ModTime = modTime
	return idx, nil
}

// readWithTime reads a file whole, with the modification time of the very
// file read (not of one that replaced it since: the racy-git rule compares
// file times with the index's).
func readWithTime(path string) ([]byte, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, time.Time{}, err
	}
	return b, fi.ModTime(), nil
}

// Index entry layout (git's Documentation/gitformat-index.txt).
const (
	indexHeaderLen  = 12 // "DIRC", version, entry count
	entryFixedLen   = 62 // ten 32-bit fields, a SHA-1, 16 bits of flags
	flagExtended    = 0x4000
	flagNameMask    = 0x0fff
	extIntentToAdd  = 1 << 13
	extSkipWorktree = 1 << 14
)

// decodeIndex decodes a git index of version 2, 3 or 4 into go-git's types,
// as go-git's own decoder does, about ten times faster: that decoder reads
// field by field through reflection and allocates per entry, which was a
// third of the time of hashing a 20,000-file repository. The trailing SHA-1
// is checked, unless it is all zeros (index.skipHash, on with
// feature.manyFiles since git 2.40). Optional extensions (TREE, REUC, UNTR,
// EOIE, IEOT, ...) are skipped; a required one (link: split index, sdir:
// sparse index) is an error wrapping index.ErrUnknownExtension.
// TestDecodeIndexMatchesGoGit holds it to go-git's decoder.
//
// The entries' names point into b, which must not be modified afterwards.
func decodeIndex(b []byte) (*index.Index, error) {
	if len(b) < indexHeaderLen+sha1.Size || string(b[:4]) != "DIRC" {
		return nil, index.ErrMalformedSignature
	}
	body, sum := b[:len(b)-sha1.Size], b[len(b)-sha1.Size:]
	// The checksum takes as long as the decoding (200,000 entries: about
	// 10 ms each): on another core, at the same time. A wrong one is the
	// error, whatever the decoding found.
	sumOK := make(chan bool, 1)
	go func() {
		if bytes.Equal(sum, make([]byte, sha1.Size)) {
			sumOK <- true
			return
		}
		got := sha1.Sum(body)
		sumOK <- bytes.Equal(got[:], sum)
	}()
	idx, err := decodeEntries(b, body)
	if !<-sumOK {
		return nil, index.ErrInvalidChecksum
	}
	return idx, err
}

func decodeEntries(b, body []byte) (*index.Index, error) {
	idx := &index.Index{Version: binary.BigEndian.Uint32(b[4:])}
	if idx.Version < 2 || idx.Version > 4 {
		return nil, index.ErrUnsupportedVersion
	}
	n := binary.BigEndian.Uint32(b[8:])
	// Every entry takes at least entryFixedLen+1 bytes: bound n before allocating.
	if uint64(n) > uint64(len(body)-indexHeaderLen)/(entryFixedLen+1) {
		return nil, fmt.Errorf("%w: %d entries cannot fit in %d bytes", index.ErrMalformedIndexFile, n, len(b))
	}
	// One string holds every v2/v3 name, rather than one allocation each:
	// the index's own bytes, not a copy of them (200,000 entries: 21 MB
	// less to allocate and copy). b is not written to again.
	all := unsafe.String(unsafe.SliceData(body), len(body))
	entries := make([]index.Entry, n)
	idx.Entries = make([]*index.Entry, n)
	off := indexHeaderLen
	var prev string // v4 names are compressed against the previous one
	for i := range entries {
		e := &entries[i]
		idx.Entries[i] = e
		entryStart := off
		if len(body)-off < entryFixedLen {
			return nil, fmt.Errorf("%w: entry %d is cut short", index.ErrMalformedIndexFile, i)
		}
		f := body[off : off+entryFixedLen]
		u32 := func(at int) uint32 { return binary.BigEndian.Uint32(f[at:]) }
		if sec, nsec := u32(0), u32(4); sec != 0 || nsec != 0 {
			e.CreatedAt = time.Unix(int64(sec), int64(nsec))
		}
		if sec, nsec := u32(8), u32(12); sec != 0 || nsec != 0 {
			e.ModifiedAt = time.Unix(int64(sec), int64(nsec))
		}
		e.Dev, e.Inode, e.Mode, e.UID, e.GID, e.Size = u32(16), u32(20), filemode.FileMode(u32(24)), u32(28), u32(32), u32(36)
		copy(e.Hash[:], f[40:60])
		flags := binary.BigEndian.Uint16(f[60:])
		e.Stage = index.Stage(flags>>12) & 0x3
		off += entryFixedLen
		if flags&flagExtended != 0 {
			if idx.Version < 3 || len(body)-off < 2 {
				return nil, fmt.Errorf("%w: entry %d: bad extended flags", index.ErrMalformedIndexFile, i)
			}
			ext := binary.BigEndian.Uint16(body[off:])
			e.IntentToAdd = ext&extIntentToAdd != 0
			e.SkipWorktree = ext&extSkipWorktree != 0
			off += 2
		}
		if idx.Version == 4 {
			strip, k := indexVarint(body[off:])
			if k == 0 || strip > uint64(len(prev)) {
				return nil, fmt.Errorf("%w: entry %d: bad name prefix", index.ErrMalformedIndexFile, i)
			}
			off += k
			end := bytes.IndexByte(body[off:], 0)
			if end < 0 {
				return nil, fmt.Errorf("%w: entry %d: name not terminated", index.ErrMalformedIndexFile, i)
			}
			e.Name = prev[:len(prev)-int(strip)] + all[off:off+end]
			off += end + 1
			prev = e.Name
			continue
		}
		// The flags give the name's length, as git reads it; a name of 0xfff
		// bytes or more ends at its NUL.
		nl := int(flags & flagNameMask)
		if nl == flagNameMask {
			if nl = bytes.IndexByte(body[off:], 0); nl < 0 {
				return nil, fmt.Errorf("%w: entry %d: name not terminated", index.ErrMalformedIndexFile, i)
			}
		} else if len(body)-off < nl {
			return nil, fmt.Errorf("%w: entry %d: name cut short", index.ErrMalformedIndexFile, i)
		}
		e.Name = all[off : off+nl]
		// NULs (1 to 8) pad the entry to a multiple of 8 bytes.
		off = entryStart + (off-entryStart+nl+8)&^7
		if off > len(body) {
			return nil, fmt.Errorf("%w: entry %d: padding runs past the end", index.ErrMalformedIndexFile, i)
		}
	}
	// Extensions: a 4-byte signature, a 32-bit length, the data.
	for off < len(body) {
		if len(body)-off < 8 {
			return nil, fmt.Errorf("%w: extension header cut short", index.ErrMalformedIndexFile)
		}
		sig := body[off : off+4]
		size := binary.BigEndian.Uint32(body[off+4:])
		off += 8
		if uint64(size) > uint64(len(body)-off) {
			return nil, fmt.Errorf("%w: extension %q runs past the end", index.ErrMalformedIndexFile, sig)
		}
		if sig[0] < 'A' || sig[0] > 'Z' {
			return nil, fmt.Errorf("%w: %q", index.ErrUnknownExtension, sig)
		}
		off += int(size)
	}
	return idx, nil
}

// indexVarint decodes the offset varint of index v4 names (git's
// decode_varint), returning the value and the bytes it took (0: malformed).
func indexVarint(b []byte) (uint64, int) {
	var v uint64
	for i, c := range b {
		if i > 0 {
			v++
		}
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 == 0 {
			return v, i + 1
		}
		if i >= 4 {
			break // 35 bits is plenty for a name; more could overflow
		}
	}
	return 0, 0
}

// TrackedPaths lists the paths the index tracks, in index order (a path of
// an unmerged file once a stage): what names the directories of a commit
// without reading or hashing a file.
func (r *Repo) TrackedPaths() ([]string, error) {
	idx, err := r.readIndex()
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(idx.Entries))
	for i, e := range idx.Entries {
		paths[i] = e.Name
	}
	return paths, nil
}

// Submodules lists the paths of the submodules the index records (in index
// order): what explains a pattern that reaches into one, whose files are
// never source.
func (r *Repo) Submodules() ([]string, error) {
	idx, err := r.readIndex()
	if err != nil {
		return nil, err
	}
	var subs []string
	for _, e := range idx.Entries {
		if e.Mode == filemode.Submodule {
			subs = append(subs, e.Name)
		}
	}
	return subs, nil
}
