//go:build unix

package owner

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func uidOf(t *testing.T, path string) uint32 {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

// As root (a docker action, a GitLab job container) over a directory of the
// runner's user: what it makes there is handed over; a link the user put in
// a path's place is handed over itself, never the file it points at.
func TestLikeParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root makes files for another user")
	}
	t.Parallel()
	const runner = 1001
	ws := t.TempDir()
	if err := os.Chown(ws, runner, runner); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(ws, "made-by-root")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := LikeParent(file); err != nil {
		t.Fatal(err)
	}
	if got := uidOf(t, file); got != runner {
		t.Errorf("file made in the runner's directory belongs to %d, want %d", got, runner)
	}

	secret := filepath.Join(t.TempDir(), "root-only") // root's directory
	if err := os.WriteFile(secret, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(ws, "swapped")
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	if err := LikeParent(link); err != nil {
		t.Fatal(err)
	}
	if got := uidOf(t, secret); got != 0 {
		t.Errorf("the link's target was handed to %d: following the link gave away root's file", got)
	}
	if got := uidOf(t, link); got != runner {
		t.Errorf("link belongs to %d, want %d", got, runner)
	}

	// In root's own directory nothing changes hands.
	mine := filepath.Join(t.TempDir(), "root-file")
	if err := os.WriteFile(mine, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := LikeParent(mine); err != nil {
		t.Fatal(err)
	}
	if got := uidOf(t, mine); got != 0 {
		t.Errorf("file in root's directory belongs to %d, want 0", got)
	}
}
