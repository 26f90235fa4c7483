//go:build unix && !linux

package assets

import (
	"time"

	"golang.org/x/sys/unix"
)

// touchFd sets fd's access and modification times to now (futimes(2)).
func touchFd(fd int) error {
	tv := unix.NsecToTimeval(time.Now().UnixNano())
	return unix.Futimes(fd, []unix.Timeval{tv, tv})
}
