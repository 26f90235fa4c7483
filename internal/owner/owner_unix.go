//go:build unix

// Package owner hands what the tool creates to the owner of the directory
// it is created in: a GitHub docker action (and a GitLab or Concourse job
// container) runs as root over a workspace that the runner's own user must
// go on using.
package owner

import (
	"os"
	"path/filepath"
	"syscall"
)

// LikeParent hands path to the owner of its directory when root made it in
// a non-root user's directory.
func LikeParent(path string) error {
	d := Of(filepath.Dir(filepath.Clean(path)))
	if !d.hand() {
		return nil
	}
	// Lchown: the owner may have put a link in the path's place since
	// root made it; following it would hand the link's target over.
	return os.Lchown(path, d.uid, d.gid)
}

// Dir is the owner of a directory files are written in, as far as this
// process must care: only root hands files over, or must mind whose files
// it rewrites.
type Dir struct {
	root     bool
	uid, gid int
}

// Of is dir's owner (not looked up unless this process is root). A
// directory that cannot be looked at is taken as root's: nothing is handed
// over, and only root's files are rewritten.
func Of(dir string) Dir {
	if os.Geteuid() != 0 {
		return Dir{}
	}
	d := Dir{root: true}
	if fi, err := os.Stat(dir); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			d.uid, d.gid = int(st.Uid), int(st.Gid)
		}
	}
	return d
}

// hand: root writes in another user's directory.
func (d Dir) hand() bool { return d.root && d.uid != 0 }

// Reusable reports whether fi (an Lstat of a name in the directory) is a
// file this process may write over in place: a regular file with no other
// name (another name, a hard link, may be anywhere: writing would change a
// file outside the directory), and, for root, root's or the directory's
// owner's (so that handing it over gives nobody a file that was another's).
func (d Dir) Reusable(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().IsRegular() && d.MayRewrite(uint64(st.Nlink), st.Uid)
}

// MayRewrite is Reusable for a regular file of nlink names owned by uid.
func (d Dir) MayRewrite(nlink uint64, uid uint32) bool {
	return nlink == 1 && (!d.root || uid == 0 || int(uid) == d.uid)
}

// HandTo reports whether a file of the directory owned by uid:gid must be
// handed to the directory's owner (root writing in another user's
// directory, and not that owner's already: a check that rewrites a marker
// per component would change each inode for nothing), and to whom.
func (d Dir) HandTo(uid, gid uint32) (int, int, bool) {
	return d.uid, d.gid, d.hand() && (int(uid) != d.uid || int(gid) != d.gid)
}

// Hand hands f, a file of the directory just made, to the directory's
// owner when root writes in another user's directory. Through the
// descriptor: whatever has been put at f's name since is not touched.
func (d Dir) Hand(f *os.File) error {
	if !d.hand() {
		return nil
	}
	return f.Chown(d.uid, d.gid)
}
