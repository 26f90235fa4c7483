//go:build unix

package assets

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/nsmithuk/s3-asset-manager/internal/owner"
)

// noFollow opens a marker's name only if it is not a symlink (a link put in
// its place is refused, never followed), and without waiting for a reader
// if it is a FIFO.
const noFollow = unix.O_NOFOLLOW | unix.O_NONBLOCK

// rewrite writes data over the file at path, then cuts it to its length (or
// only sets its times, when touch), and hands it to the directory's owner
// as d says, all through one descriptor, opened without following a link:
// only if it is still the file was (an Lstat of it) and still one d allows
// to be rewritten (no other name). The descriptor is a plain one, not an
// os.File, which would ask the poller to take it (a failing epoll_ctl per
// marker).
func rewrite(path string, was os.FileInfo, d owner.Dir, data []byte, touch bool) (err error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|noFollow, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer func() {
		if cerr := unix.Close(fd); err == nil && cerr != nil {
			err = &os.PathError{Op: "close", Path: path, Err: cerr}
		}
	}()
	op := "fstat"
	err = func() error {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		if !sameStat(was, &st) || st.Mode&unix.S_IFMT != unix.S_IFREG || !d.MayRewrite(uint64(st.Nlink), st.Uid) {
			op = "check"
			return errNotSpare
		}
		if touch {
			// Touched, as a new one would be (.found is empty): a
			// truncation costs more.
			op = "futimes"
			if err := touchFd(fd); err != nil {
				return err
			}
		} else {
			// Written over in place, then cut to its new length: the
			// earlier file's blocks and cached pages are reused (a file
			// list of 17 MB: 2 ms, against 5-8 truncated first and written
			// again). The write, or else the truncation, sets the
			// modification time.
			op = "write"
			for rest := data; len(rest) > 0; {
				n, err := unix.Write(fd, rest)
				if errors.Is(err, unix.EINTR) {
					continue
				}
				if err != nil {
					return err
				}
				rest = rest[n:]
			}
			op = "truncate"
			if err := unix.Ftruncate(fd, int64(len(data))); err != nil {
				return err
			}
		}
		if uid, gid, ok := d.HandTo(st.Uid, st.Gid); ok {
			op = "chown"
			return unix.Fchown(fd, uid, gid)
		}
		return nil
	}()
	if err != nil {
		return &os.PathError{Op: op, Path: path, Err: err}
	}
	return nil
}

// sameStat: st is the file fi is of.
func sameStat(fi os.FileInfo, st *unix.Stat_t) bool {
	was, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(was.Dev) == uint64(st.Dev) && uint64(was.Ino) == uint64(st.Ino)
}

// rename is os.Rename without its Lstat of newname (to refuse to replace a
// directory, which rename(2) refuses too): a marker is two renames, and a
// found check of 100 components made 208 failing lstat calls for nothing
// (strace -f -c). Unix only: on Windows syscall.Rename does not replace
// newname (MoveFile), os.Rename does.
func rename(oldname, newname string) error {
	if err := syscall.Rename(oldname, newname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return nil
}
