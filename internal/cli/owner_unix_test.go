//go:build unix

package cli

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// The docker action (or a GitLab or Concourse container) runs the tool as
// root over a workspace owned by the runner's user, uid 1001 on GitHub's
// hosted runners. Each step after it runs as that user: it builds into a
// component's directory check made, makes a downloaded file executable and
// deletes the package directories (a self-hosted runner's clean-up).
func TestWorkspaceOwnerRunsTheNextSteps(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can hand files to another user")
	}
	const uid, gid = 1001, 1002
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoBuilt(t, srv, bucket)
		work := filepath.Dir(d.pkg)
		for _, dir := range []string{filepath.Dir(work), work} {
			if err := os.Chmod(dir, 0o755); err != nil { // t.TempDir's are root's alone
				t.Fatal(err)
			}
		}
		if err := os.Chown(work, uid, gid); err != nil {
			t.Fatal(err)
		}
		asOwner := func(name string, args ...string) {
			t.Helper()
			cmd := exec.Command(name, args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s %q as %d: %v: %s", name, args, uid, err, out)
			}
		}

		// A new job's check in a fresh package directory: every component
		// found, each with its directory and .found.
		pkg := filepath.Join(work, "packages-2")
		env["PACKAGE_DIRECTORY"] = pkg
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Fatal(r)
		}
		denv := srv.Env(bucket)
		deploy := filepath.Join(work, "deploy")
		denv["PACKAGE_DIRECTORY"], denv["PACKAGE_ASSETS_COMMIT"] = deploy, d.head
		if r := run(t, denv, "download"); r.code != ExitOK {
			t.Fatal(r)
		}
		for _, dir := range []string{pkg, deploy} {
			filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
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
			})
		}
		asOwner("sh", "-c", "echo log > "+filepath.Join(pkg, "api", "build.log"))
		asOwner("chmod", "+x", filepath.Join(deploy, "fn1", "fn1.zip"))
		asOwner("rm", "-rf", pkg, deploy)
		for _, dir := range []string{pkg, deploy} {
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s survived rm -rf as its owner: %v", dir, err)
			}
		}
	})
}
