package gitrepo

import (
	"encoding/binary"
	"io/fs"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// An openDir is a directory being walked: its entries, read at once, and
// the descriptor that stats them. On Linux it reads with getdents and stats
// with fstatat relative to the directory: os.ReadDir registers every
// directory with the poller (five system calls more) and allocates an entry
// each, and Lstat of a full path makes the kernel walk the path again; the
// two were half the time of hashing 200,000 files.
type openDir struct {
	fd   int
	ents []dirEntry
}

type dirEntry struct {
	name string
	typ  fs.FileMode // the type bits, as fs.DirEntry.Type
}

// The fields of struct linux_dirent64 (unix.Dirent), read from the bytes
// getdents gives rather than through a pointer to a whole Dirent, which
// the last, shorter record of a buffer would overrun.
var (
	direntReclen = int(unsafe.Offsetof(unix.Dirent{}.Reclen))
	direntType   = int(unsafe.Offsetof(unix.Dirent{}.Type))
	direntName   = int(unsafe.Offsetof(unix.Dirent{}.Name))
)

var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func readDirAt(path string) (*openDir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	d := &openDir{fd: fd}
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			d.close()
			return nil, &fs.PathError{Op: "readdirent", Path: path, Err: err}
		}
		if n <= 0 {
			break
		}
		for b := buf[:n]; len(b) > direntName; {
			reclen := int(binary.NativeEndian.Uint16(b[direntReclen:]))
			if reclen <= direntName || reclen > len(b) {
				break // never from the kernel
			}
			rec := b[:reclen]
			b = b[reclen:]
			name := rec[direntName:]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if string(name) == "." || string(name) == ".." {
				continue
			}
			e := dirEntry{name: string(name)}
			switch rec[direntType] {
			case unix.DT_REG:
			case unix.DT_DIR:
				e.typ = fs.ModeDir
			case unix.DT_LNK:
				e.typ = fs.ModeSymlink
			case unix.DT_UNKNOWN: // the file system does not say: ask
				fi, err := d.lstat(e.name)
				if err != nil {
					continue // gone; anything else shows when it is stat'ed again
				}
				e.typ = fi.Mode().Type()
			default:
				e.typ = fs.ModeIrregular // pipes, sockets, devices: never source
			}
			d.ents = append(d.ents, e)
		}
	}
	return d, nil
}

func (d *openDir) close() { unix.Close(d.fd) }

// lstat stats the entry name without following a symlink.
func (d *openDir) lstat(name string) (fs.FileInfo, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil {
			break
		}
		if err != unix.EINTR {
			return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
		}
	}
	fi := &statInfo{name: name, size: st.Size, mtime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec))}
	fi.mode = fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		fi.mode |= fs.ModeDir
	case unix.S_IFLNK:
		fi.mode |= fs.ModeSymlink
	default:
		fi.mode |= fs.ModeIrregular
	}
	return fi, nil
}

// statInfo is the fs.FileInfo of lstat: what the walk needs of it.
type statInfo struct {
	name  string
	size  int64
	mode  fs.FileMode
	mtime time.Time
}

func (fi *statInfo) Name() string       { return fi.name }
func (fi *statInfo) Size() int64        { return fi.size }
func (fi *statInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *statInfo) ModTime() time.Time { return fi.mtime }
func (fi *statInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *statInfo) Sys() any           { return nil }
