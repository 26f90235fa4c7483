//go:build !unix

package assets

import (
	"os"

	"github.com/nsmithuk/s3-asset-manager/internal/owner"
)

const noFollow = 0

// rewrite is never called here: owner.Dir.Reusable refuses every file
// (no link count to check), so no marker is set aside to be rewritten.
func rewrite(string, os.FileInfo, owner.Dir, []byte, bool) error { return errNotSpare }

// rename is os.Rename, which replaces newname (syscall.Rename, MoveFile on
// Windows, does not: a leftover <marker>.stale would fail every check).
func rename(oldname, newname string) error { return os.Rename(oldname, newname) }
