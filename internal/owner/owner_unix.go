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
func LikeParent(dir string) error {
	if !root() {
		return nil
	}
	parent, err := os.Stat(filepath.Dir(filepath.Clean(dir)))
	if err != nil {
		return nil
	}
	if st, ok := parent.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		// Lchown: the owner may have put a link in the path's place since
		// root made it; following it would hand the link's target over.
		return os.Lchown(dir, int(st.Uid), int(st.Gid))
	}
	return nil
}
