//go:build unix

// Package ownertest is for tests, run as root, of what the tool hands to a
// workspace's owner (the runner's user, whose steps follow the tool's): a
// workspace that user owns, commands run as that user, and a check that a
// whole tree is theirs.
package ownertest

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// HandOver gives dir, a t.TempDir(), to uid:gid, and lets them reach it:
// it and its parent become 0755 (t.TempDir's are root's alone).
func HandOver(t testing.TB, dir string, uid, gid uint32) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(dir, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
}

// Run runs a command as uid:gid, as a runner's later step does.
func Run(uid, gid uint32, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %q as %d: %w: %s", name, args, uid, err, out)
	}
	return nil
}

// OwnedBy fails t for each file or directory of the tree at root, root
// itself included, that does not belong to uid:gid.
func OwnedBy(t testing.TB, root string, uid, gid uint32) {
	t.Helper()
	if err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s belongs to %d:%d, not %d:%d", p, st.Uid, st.Gid, uid, gid)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
