//go:build unix

package assets

import (
	"os"
	"path/filepath"
	"syscall"
)

// chownLikeParent hands dir to the owner of its parent when root made it for
// a non-root owner (see workspace.own).
func chownLikeParent(dir string) error {
	if os.Geteuid() != 0 {
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
