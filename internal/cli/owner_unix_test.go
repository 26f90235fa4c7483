//go:build unix

package cli

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/ownertest"
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
		ownertest.HandOver(t, work, uid, gid)
		asOwner := func(name string, args ...string) {
			t.Helper()
			if err := ownertest.Run(uid, gid, name, args...); err != nil {
				t.Error(err)
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
			ownertest.OwnedBy(t, dir, uid, gid)
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
