//go:build unix

package assets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/ownertest"
)

// userDir is a directory of uid 1001:1002 (a runner's user), for a test run
// as root (it is skipped otherwise).
func userDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can hand a directory to another user")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 1001, 1002); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Created by root, the package directory belongs to its parent's owner, so a
// later build step running as that user can write into it.
func TestMakePackageDirOwner(t *testing.T) {
	parent := userDir(t)
	dir := filepath.Join(parent, "dist")
	if err := newWorkspace(dir, t.Logf).mkdir(dir); err != nil {
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

// Workers downloading two files of one directory make it at once: neither
// may go on to write its file before the directory is handed over, or the
// file (whose owner is its directory's) stays root's. Run many times over,
// as the race is narrow.
func TestMkdirAtOnceHandsOverFirst(t *testing.T) {
	parent := userDir(t)
	w := newWorkspace(parent, t.Logf)
	for round := range 200 {
		dir := filepath.Join(parent, fmt.Sprint(round), "fn1")
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := w.mkdir(dir); err != nil {
					t.Error(err)
					return
				}
				fi, err := os.Stat(dir)
				if err != nil {
					t.Error(err)
					return
				}
				if st := fi.Sys().(*syscall.Stat_t); st.Uid != 1001 {
					t.Errorf("round %d: mkdir returned with %s still %d's", round, dir, st.Uid)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
	}
}

// monoWithLists is fakeMonoRepo whose components carry their file lists, so
// that a miss keeps one in the package directory.
type monoWithLists struct{ fakeMonoRepo }

func (monoWithLists) Components(context.Context) ([]ComponentCode, error) {
	codes := slices.Clone(monoCodes)
	for i := range codes {
		codes[i].List = fileList(codes[i].Hash, []string{codes[i].Name + "/**"}, codes[i].Name+"/main.go")
	}
	return codes, nil
}

// A container running as root over a workspace owned by the runner's user
// (uid 1001 on GitHub's hosted runners): everything check and download
// create is handed to that user, so that the steps after it, as that user,
// can build into a component's directory, chmod a downloaded file and
// delete the package directory.
func TestWorkspaceHandedToItsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can hand files to another user")
	}
	const uid, gid = 1001, 1002
	work := t.TempDir()
	ownertest.HandOver(t, work, uid, gid)
	pkg := filepath.Join(work, "packages")

	f := newFake()
	seedComponent(f, commitA, "api", nil) // found: check makes api/ with its .found
	seedCache(f, "fn1", nil)              // a cache hit: fn1/ likewise
	r, logs := newMonoRunner(t, f, "", "")
	r.Config.PackageDir = pkg
	r.OpenRepo = func(string) (Repo, error) { return monoWithLists{fakeMonoRepo{fakeRepo{commitA, hashX}}}, nil }
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("check: %v\n%s", err, logs)
	}
	// The build, as the runner's user: into a directory check made, and a new one.
	if err := ownertest.Run(uid, gid, "sh", "-c", "echo log > "+filepath.Join(pkg, "api", "build.log")+
		" && mkdir "+filepath.Join(pkg, "fn2")+" && echo built > "+filepath.Join(pkg, "fn2", "fn2.zip")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Upload(context.Background()); err != nil {
		t.Fatalf("upload: %v\n%s", err, logs)
	}
	// A deploy job's download of the whole commit, into the same workspace.
	r.Config.Commit = commitA
	if _, err := r.Download(context.Background()); err != nil {
		t.Fatalf("download: %v\n%s", err, logs)
	}
	ownertest.OwnedBy(t, pkg, uid, gid)
	if err := ownertest.Run(uid, gid, "chmod", "+x", filepath.Join(pkg, "fn1", "fn1.zip")); err != nil {
		t.Error(err)
	}
	if err := ownertest.Run(uid, gid, "rm", "-rf", pkg); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(pkg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the package directory survived rm -rf as its owner: %v", err)
	}
}

// A check that rewrites the markers an earlier run left hands each to the
// workspace's owner, whoever owned the earlier file (an earlier check run as
// root before the directory was handed over, say), and leaves one that is
// the owner's already as it is.
func TestReusedMarkersHandedToItsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can hand files to another user")
	}
	const uid, gid = 1001, 1002
	f := newFake()
	seedCommitOfComponents(f, nil)
	r, logs := newMonoRunner(t, f, "", "")
	pkg := r.Config.PackageDir
	if err := os.Chown(pkg, uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("first check: %v\n%s", err, logs)
	}
	// An earlier root's markers, in directories now the user's.
	for _, name := range []string{CommitFile, "api/" + FoundFile} {
		if err := os.Lchown(filepath.Join(pkg, name), 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	// Whether a file was chowned shows in its set-user-ID bit, which any
	// chown(2) clears, even by root to the owner it has; root's write,
	// truncate, utimes and rename keep it. (Its ctime cannot tell: each of
	// those changes it too.)
	handed := map[string]bool{CommitFile: true, "api/" + FoundFile: true}
	names := []string{CommitFile, ComponentsFile, FoundFile, "api/" + FoundFile, "fn1/" + FoundFile}
	for _, name := range names {
		if err := os.Chmod(filepath.Join(pkg, name), 0o644|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("second check: %v\n%s", err, logs)
	}
	for _, name := range names {
		fi, err := os.Lstat(filepath.Join(pkg, name))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s belongs to %d:%d, not %d:%d", name, st.Uid, st.Gid, uid, gid)
		}
		if chowned := fi.Mode()&os.ModeSetuid == 0; chowned != handed[name] {
			t.Errorf("%s: chowned %v, want %v (it was root's: %v)", name, chowned, handed[name], handed[name])
		}
	}
}

// linkTarget is a file outside the package directory that a link in it
// leads to: root's and 0600, as a secret would be.
type linkTarget struct {
	path string
	fi   os.FileInfo
}

func newLinkTarget(t *testing.T, dir, name string) *linkTarget {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("not a marker: "+name+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return &linkTarget{p, fi}
}

// untouched checks the target has the content, size, mode and owner it had.
func (l *linkTarget) untouched(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(l.path)
	fi, err2 := os.Lstat(l.path)
	if err != nil || err2 != nil {
		t.Fatalf("%s: %v, %v", l.path, err, err2)
	}
	if want := "not a marker: " + filepath.Base(l.path) + "\n"; string(b) != want {
		t.Errorf("%s: written through a link: holds %q", l.path, b)
	}
	if fi.Size() != l.fi.Size() || fi.Mode() != l.fi.Mode() {
		t.Errorf("%s: %d bytes %v, was %d bytes %v", l.path, fi.Size(), fi.Mode(), l.fi.Size(), l.fi.Mode())
	}
	have, had := fi.Sys().(*syscall.Stat_t), l.fi.Sys().(*syscall.Stat_t)
	if have.Uid != had.Uid || have.Gid != had.Gid {
		t.Errorf("%s: handed to %d:%d through a link, was %d:%d", l.path, have.Uid, have.Gid, had.Uid, had.Gid)
	}
}

// ownedPackageDir is a package directory of the runner's user when the
// test runs as root (whose check then hands files over), and the owner to
// expect of what check writes in it.
func ownedPackageDir(t *testing.T, dir string) (uid, gid uint32) {
	t.Helper()
	if os.Geteuid() != 0 {
		return uint32(os.Geteuid()), uint32(os.Getegid())
	}
	if err := os.Chown(dir, 1001, 1002); err != nil {
		t.Fatal(err)
	}
	return 1001, 1002
}

// isMarker checks path is a marker check wrote: a regular file of its own
// (no other name) with content want, belonging to uid:gid.
func isMarker(t *testing.T, path, want string, uid, gid uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || st.Nlink != 1 || st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: %v, %d names, %d:%d; want a regular file of one name, %d:%d", path, fi.Mode(), st.Nlink, st.Uid, st.Gid, uid, gid)
	}
	if b, err := os.ReadFile(path); want != "" && string(b) != want {
		t.Errorf("%s holds %q (%v), want %q", path, b, err, want)
	}
	if _, err := os.Lstat(path + spareSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s%s is left: %v", path, spareSuffix, err)
	}
}

// An earlier marker that is a hard link to a file outside the package
// directory (or such a link left as a spare, <marker>.stale) is removed,
// not written over: the file it shares stays as it was (root's own, as
// root), and the marker is a new file.
func TestMarkerHardLinkNotWrittenThrough(t *testing.T) {
	f := newFake()
	seedCommitOfComponents(f, nil)
	r, logs := newMonoRunner(t, f, "", "")
	pkg := r.Config.PackageDir
	uid, gid := ownedPackageDir(t, pkg)
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("first check: %v\n%s", err, logs)
	}
	outside := t.TempDir()
	linked := newLinkTarget(t, outside, "linked")
	staleLinked := newLinkTarget(t, outside, "stale-linked")
	commitPath, compPath := filepath.Join(pkg, CommitFile), filepath.Join(pkg, ComponentsFile)
	for _, p := range []string{commitPath, compPath} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(linked.path, commitPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(staleLinked.path, compPath+spareSuffix); err != nil {
		t.Fatal(err)
	}
	// As root, a marker of a third user is not reused either: it is
	// removed, and a new one handed to the directory's owner.
	toBuild := filepath.Join(pkg, ToBuildFile)
	var thirds os.FileInfo
	if os.Geteuid() == 0 {
		if err := os.Lchown(toBuild, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		thirds = holdOpen(t, toBuild)
	}
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("second check: %v\n%s", err, logs)
	}
	if thirds != nil {
		if fi, err := os.Lstat(toBuild); err != nil || os.SameFile(fi, thirds) {
			t.Errorf("%s: a third user's file rewritten by root (%v)", ToBuildFile, err)
		}
		isMarker(t, toBuild, "", uid, gid)
	}
	linked.untouched(t)
	staleLinked.untouched(t)
	isMarker(t, commitPath, commitA, uid, gid)
	isMarker(t, compPath, "", uid, gid)
	if _, ok, err := r.workspace().components(commitA); !ok || err != nil {
		t.Errorf("%s: %v, %v", ComponentsFile, ok, err)
	}
}

// A spare swapped, after prepare looked at it, for a symlink or given
// another name, and a link put at a marker's name before it is written:
// none is followed or written through; the markers are new files.
func TestMarkerSwappedForLinkNotFollowed(t *testing.T) {
	dir := t.TempDir()
	uid, gid := ownedPackageDir(t, dir)
	w := newWorkspace(dir, t.Logf)
	for _, name := range []string{CommitFile, CodeHashFile, ToBuildFile} {
		writeFile(t, filepath.Join(dir, name), "earlier")
	}
	if err := w.prepare(); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	symlinked := newLinkTarget(t, outside, "symlinked")
	spare := filepath.Join(dir, CommitFile+spareSuffix)
	if err := os.Remove(spare); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(symlinked.path, spare); err != nil {
		t.Fatal(err)
	}
	// The spare itself, given a second name outside (by its owner, say).
	if err := os.Link(filepath.Join(dir, CodeHashFile+spareSuffix), filepath.Join(outside, "second-name")); err != nil {
		t.Fatal(err)
	}
	// The spare replaced by another file: not the one prepare found.
	other := filepath.Join(dir, "other")
	writeFile(t, other, "another file")
	replaced := holdOpen(t, other)
	if err := os.Rename(other, filepath.Join(dir, ToBuildFile+spareSuffix)); err != nil {
		t.Fatal(err)
	}
	atFound := newLinkTarget(t, outside, "at-found")
	if err := os.Symlink(atFound.path, filepath.Join(dir, FoundFile)); err != nil {
		t.Fatal(err)
	}
	if err := w.writeCommit(commitA); err != nil {
		t.Fatal(err)
	}
	if err := w.writeCodeHash(hashX); err != nil {
		t.Fatal(err)
	}
	if err := w.writeFound(""); err != nil {
		t.Fatal(err)
	}
	if err := w.write(filepath.Join(dir, ToBuildFile), []byte("api\n")); err != nil {
		t.Fatal(err)
	}
	w.dropSpares()
	if fi, err := os.Lstat(filepath.Join(dir, ToBuildFile)); err != nil || os.SameFile(fi, replaced) {
		t.Errorf("%s: the file put in the spare's place was rewritten (%v)", ToBuildFile, err)
	}
	isMarker(t, filepath.Join(dir, ToBuildFile), "api\n", uid, gid)
	symlinked.untouched(t)
	atFound.untouched(t)
	if b, err := os.ReadFile(filepath.Join(outside, "second-name")); string(b) != "earlier" {
		t.Errorf("the spare's second name: written through: %q, %v", b, err)
	}
	isMarker(t, filepath.Join(dir, CommitFile), commitA, uid, gid)
	isMarker(t, filepath.Join(dir, CodeHashFile), hashX, uid, gid)
	isMarker(t, filepath.Join(dir, FoundFile), "", uid, gid)
}
