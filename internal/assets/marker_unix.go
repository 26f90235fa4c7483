//go:build unix

package assets

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// noFollow opens a marker's name only if it is not a symlink (a link put in
// its place is refused, never followed), and without waiting for a reader
// if it is a FIFO.
const noFollow = unix.O_NOFOLLOW | unix.O_NONBLOCK

// touch sets f's times to t through its descriptor, not its name.
func touch(f *os.File, t time.Time) error {
	tv := unix.NsecToTimeval(t.UnixNano())
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var terr error
	if err := raw.Control(func(fd uintptr) { terr = unix.Futimes(int(fd), []unix.Timeval{tv, tv}) }); err != nil {
		return err
	}
	if terr != nil {
		return &os.PathError{Op: "futimes", Path: f.Name(), Err: terr}
	}
	return nil
}
