//go:build unix

package assets

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

// runAs runs a command as uid:gid, as a runner's later step does.
func runAs(t *testing.T, uid, gid uint32, name string, args ...string) error {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v as %d: %w: %s", name, args, uid, err, out)
	}
	return nil
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
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil { // t.TempDir's are root's alone
			t.Fatal(err)
		}
	}
	work := filepath.Join(base, "workspace")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(work, uid, gid); err != nil {
		t.Fatal(err)
	}
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
	if err := runAs(t, uid, gid, "sh", "-c", "echo log > "+filepath.Join(pkg, "api", "build.log")+
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
	if err := filepath.WalkDir(pkg, func(p string, d fs.DirEntry, err error) error {
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
	if err := runAs(t, uid, gid, "chmod", "+x", filepath.Join(pkg, "fn1", "fn1.zip")); err != nil {
		t.Error(err)
	}
	if err := runAs(t, uid, gid, "rm", "-rf", pkg); err != nil {
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
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatalf("second check: %v\n%s", err, logs)
	}
	for _, name := range []string{CommitFile, ComponentsFile, FoundFile, "api/" + FoundFile, "fn1/" + FoundFile} {
		fi, err := os.Lstat(filepath.Join(pkg, name))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s belongs to %d:%d, not %d:%d", name, st.Uid, st.Gid, uid, gid)
		}
	}
}
