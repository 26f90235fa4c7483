// Package gittest builds git repositories for tests with the git CLI: a
// fixed identity and dates, no user or system configuration, and files with
// mtimes in the past, so results never depend on the machine or the clock.
package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Files written here get mtimes in the past, so they are always older than
// the index git writes next (no racy entries, no sleeps), and a new one each
// write, so git sees an edit even when the size stays the same.
var (
	oldTime = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	writes  atomic.Int64
)

// NextOldTime is a past mtime no earlier write has had.
func NextOldTime() time.Time { return oldTime.Add(time.Duration(writes.Add(1)) * time.Second) }

// Git runs the git CLI in dir and returns its trimmed stdout.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_TERMINAL_PROMPT=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// WriteFiles writes path → content under dir (slash paths, parents made),
// with mode 0644 and a past mtime (see NextOldTime).
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		abs := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(abs, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := NextOldTime()
		if err := os.Chtimes(abs, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
}

// Init makes a repository at dir (created if needed) with files committed
// and returns HEAD.
func Init(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	Git(t, dir, "-c", "init.defaultBranch=main", "init", "-q")
	WriteFiles(t, dir, files)
	Git(t, dir, "add", "-A")
	Git(t, dir, "commit", "-q", "-m", "initial")
	return Git(t, dir, "rev-parse", "HEAD")
}

// TempRepo makes a repository in a new temporary directory with files
// committed, and returns its path.
func TempRepo(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	Init(t, dir, files)
	return dir
}

// TouchAll gives every file and directory under dir, .git aside, a new
// mtime, as a checkout moved by tar or a fresh clone would have; symlinks are
// made again (there is no portable lutimes).
func TouchAll(t testing.TB, dir string) {
	t.Helper()
	mt := NextOldTime()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err == nil {
				err = os.Remove(p)
			}
			if err == nil {
				err = os.Symlink(target, p)
			}
			return err
		}
		return os.Chtimes(p, mt, mt)
	})
	if err != nil {
		t.Fatal(err)
	}
}
