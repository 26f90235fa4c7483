//go:build unix

// Package owner hands what the tool creates to the owner of the directory
// it is created in: a GitHub docker action (and a GitLab or Concourse job
// container) runs as root over a workspace that the runner's own user must
// go on using.
package owner

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// root: the effective user is root (asked once: a check hands over a file
// per component).
var root = sync.OnceValue(func() bool { return os.Geteuid() == 0 })

// LikeParent hands path to the owner of its directory when root made it in
// a non-root user's directory.
func LikeParent(path string) error { return LikeParentOf(path, nil) }

// LikeParentOf is LikeParent for a file root did not make now but reused,
// fi what it was when last looked at (nil: unknown): one that belongs to
// the directory's owner already is left as it is (a check that rewrites a
// marker per component in a workspace of the runner's user would change
// each inode for nothing).
func LikeParentOf(path string, fi os.FileInfo) error {
	if !root() {
		return nil
	}
	parent, err := os.Stat(filepath.Dir(filepath.Clean(path)))
	if err != nil {
		return nil
	}
	st, ok := parent.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	if fi != nil {
		if have, ok := fi.Sys().(*syscall.Stat_t); ok && have.Uid == st.Uid && have.Gid == st.Gid {
			return nil
		}
	}
	// Lchown: the owner may have put a link in the path's place since
	// root made it; following it would hand the link's target over.
	return os.Lchown(path, int(st.Uid), int(st.Gid))
}
