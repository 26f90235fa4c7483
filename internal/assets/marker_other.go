//go:build !unix

package assets

import (
	"os"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/owner"
)

const noFollow = 0

// rewrite writes data over the file at path (or only sets its times, when
// touch), if it is still the file was and d allows it to be rewritten.
func rewrite(path string, was os.FileInfo, d owner.Dir, data []byte, touch bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case !os.SameFile(fi, was) || !d.Reusable(fi):
		err = errNotSpare
	case touch:
		now := time.Now()
		err = os.Chtimes(path, now, now)
	default:
		if _, err = f.Write(data); err == nil {
			err = f.Truncate(int64(len(data)))
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// rename is os.Rename, which replaces newname (syscall.Rename, MoveFile on
// Windows, does not: a leftover <marker>.stale would fail every check).
func rename(oldname, newname string) error { return os.Rename(oldname, newname) }
