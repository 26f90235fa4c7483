package assets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// CheckResult is what check found.
type CheckResult struct {
	Commit   string
	CodeHash string // empty unless the cache is on
	Found    bool
	CacheHit bool   // found by copying from the cache
	Where    string // s3:// URL of the set found
	Files    int
	Bytes    int64
}

// Check decides whether the commit's artifacts exist, and marks the package
// directory for the tasks after it.
func (r *Runner) Check(ctx context.Context) (CheckResult, error) {
	var res CheckResult
	dir := r.Config.PackageDir
	if err := makePackageDir(dir); err != nil {
		return res, fail(KindPackage, fmt.Errorf("create package directory: %w", err))
	}
	// Markers of an earlier run in a reused directory must not leak into this
	// one: a stale .found skips the build, a stale .code-hash fills the wrong cache.
	for _, name := range []string{FoundFile, CodeHashFile} {
		removed, err := removeIfExists(r.pkgPath(name))
		if err != nil {
			return res, fail(KindPackage, fmt.Errorf("remove stale %s: %w", name, err))
		}
		if removed {
			r.logf("removed %s left by an earlier run", r.pkgPath(name))
		}
	}

	repo, err := r.OpenRepo(r.Config.RepoPath)
	if err != nil {
		return res, fail(KindGit, fmt.Errorf("open git repository at %s: %w", r.Config.RepoPath, err))
	}
	commit, err := repo.Head()
	if err != nil {
		return res, fail(KindGit, err)
	}
	res.Commit = commit
	r.logf("commit %s (HEAD of %s)", commit, r.Config.RepoPath)
	if err := writeMarker(r.pkgPath(CommitFile), commit); err != nil {
		return res, fail(KindPackage, err)
	}

	prefix := r.artifactPrefix(commit)
	r.logf("looking up %s", r.Store.URL(prefix+manifest.Name))
	start := time.Now()
	rec, err := r.readRecord(ctx, prefix)
	var hashed func() codeHash
	hctx, cancel := context.WithCancel(ctx) // stops a code hash nobody waits for
	defer cancel()
	switch {
	case err == nil:
		res.Found, res.Where, res.Files, res.Bytes = true, r.Store.URL(prefix), len(rec.Files), rec.TotalSize()
		r.logf("found: %d files, %s, complete since %s (%s)", len(rec.Files), progress.Size(rec.TotalSize()),
			rec.Created.UTC().Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
	case errors.Is(err, s3store.ErrNotFound):
		// The code hash will be needed unless unrecorded objects count as
		// found: compute it while the prefix is listed. (Not before the
		// lookup: a found commit, the common case, would pay for it.)
		if r.Config.CacheEnabled() && !r.Config.AcceptLegacy {
			hashed = r.startCodeHash(hctx, repo)
		}
		found, err := r.unrecorded(ctx, prefix)
		if err != nil {
			return res, fail(KindS3, err)
		}
		res.Found = found
		if found {
			res.Where = r.Store.URL(prefix)
		}
	case errors.Is(err, manifest.ErrSignature):
		r.logf("not found: %v (counted as missing: only records signed with PACKAGE_ASSETS_SIGNING_KEY are trusted)", err)
	case errors.Is(err, manifest.ErrInvalid):
		return res, fail(KindS3, fmt.Errorf("%w (not written by this tool, or damaged: delete it to let the build run again)", err))
	default:
		return res, fail(KindS3, err)
	}

	if !res.Found && r.Config.CacheEnabled() {
		if hashed == nil {
			hashed = r.startCodeHash(hctx, repo)
		}
		if err := r.fromCache(ctx, hashed(), commit, &res); err != nil {
			return res, err
		}
	}

	if res.Found {
		if err := writeMarker(r.pkgPath(FoundFile), ""); err != nil {
			return res, fail(KindPackage, err)
		}
		how := "found"
		if res.CacheHit {
			how = "found in the cache"
		}
		r.logf("result: %s, the build can be skipped (%s written)", how, r.pkgPath(FoundFile))
		return res, nil
	}
	r.logf("result: not found, the build must run and upload")
	return res, nil
}

// startCodeHash computes the code hash in the background; the returned
// func waits for it.
func (r *Runner) startCodeHash(ctx context.Context, repo Repo) func() codeHash {
	ch := make(chan codeHash, 1)
	go func() {
		start := time.Now()
		h, n, err := repo.CodeHash(ctx)
		ch <- codeHash{hash: h, files: n, took: time.Since(start), err: err}
	}()
	return func() codeHash { return <-ch }
}

// codeHash is the outcome of computing the code hash.
type codeHash struct {
	hash  string
	files int
	took  time.Duration
	err   error
}

// unrecorded handles a missing completion record: objects without one are an
// interrupted upload or the original tool's, found only when the user opted in.
func (r *Runner) unrecorded(ctx context.Context, prefix string) (bool, error) {
	any, err := r.Store.AnyUnder(ctx, prefix)
	if err != nil {
		return false, err
	}
	switch {
	case !any:
		r.logf("not found: nothing under %s", r.Store.URL(prefix))
		return false, nil
	case r.Config.AcceptLegacy:
		r.logf("found objects under %s without a completion record; counted as found (PACKAGE_ASSETS_ACCEPT_LEGACY)", r.Store.URL(prefix))
		return true, nil
	default:
		r.logf("not found: objects exist under %s but no completion record (an interrupted upload, or written by the original tool; PACKAGE_ASSETS_ACCEPT_LEGACY=true accepts the latter)", r.Store.URL(prefix))
		return false, nil
	}
}

// makePackageDir creates the package directory if needed. Created by root
// (a GitHub docker action runs as root), it is handed to the owner of its
// parent, so that the build steps after it, running as the runner's user,
// can write their artifacts into it.
func makePackageDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	parent, err := os.Stat(filepath.Dir(filepath.Clean(dir)))
	if err != nil {
		return nil
	}
	if st, ok := parent.Sys().(*syscall.Stat_t); ok && st.Uid != 0 {
		return os.Chown(dir, int(st.Uid), int(st.Gid))
	}
	return nil
}
