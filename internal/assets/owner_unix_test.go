//go:build unix

package assets

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Created by root, the package directory belongs to its parent's owner, so a
// later build step running as that user can write into it.
func TestMakePackageDirOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can hand a directory to another user")
	}
	parent := t.TempDir()
	if err := os.Chown(parent, 1001, 1002); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "dist")
	if err := makePackageDir(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != 1001 || st.Gid != 1002 {
		t.Errorf("owner %d:%d, want 1001:1002", st.Uid, st.Gid)
	}
}
