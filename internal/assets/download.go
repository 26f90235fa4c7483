package assets

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"

	"github.com/nsmithuk/s3-asset-manager/internal/pool"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// DownloadResult is what download fetched.
type DownloadResult struct {
	Commit   string
	Prefix   string // the set's key prefix, "<prefix>artifacts/<commit>/"
	Where    string // its s3:// URL
	Files    []manifest.File
	Bytes    int64
	Duration time.Duration
}

// ErrSetNotFound: a set that was required is not there complete and trusted.
var ErrSetNotFound = errors.New("not found")

// Polling while PACKAGE_ASSETS_WAIT lasts: the first look again after
// firstPoll, each later one half as long again after the one before, at
// most maxPoll apart; a log line at most every waitLogEvery.
const (
	firstPoll    = 2 * time.Second
	maxPoll      = 30 * time.Second
	waitLogEvery = 30 * time.Second
)

// Download fetches the commit's complete set (or one component's) into the
// package directory, every file verified against the completion record.
func (r *Runner) Download(ctx context.Context) (DownloadResult, error) {
	r.work = nil
	var res DownloadResult
	commit, from, err := r.downloadCommit()
	if err != nil {
		return res, err
	}
	res.Commit = commit
	// The whole commit (with components, its record lists every component's
	// files as "<component>/<file>", which land in <component>/ here), or
	// PACKAGE_COMPONENT's set alone, into <component>/ as the build wrote it.
	ref, dir := Artifacts(commit), r.Config.PackageDir
	if c := r.Config.Component; c != "" {
		ref, dir = ComponentSet(commit, c), filepath.Join(dir, c)
	}
	prefix := r.prefix(ref)
	res.Prefix, res.Where = prefix, r.Store.URL(prefix)
	// Before anything is asked of S3 (or waited for): a directory the files
	// could never be written to.
	if err := checkTargetDir(dir); err != nil {
		return res, fail(KindPackage, err)
	}
	r.logf("commit %s (%s)", commit, from)
	r.logf("looking up %s", r.Store.URL(prefix+manifest.Name))

	set, err := r.awaitSet(ctx, ref)
	if err != nil {
		if errors.Is(err, ErrSetNotFound) {
			// Files of the names the set lists are not this set's: an older
			// deploy's a.zip must not pass for it.
			r.removeUnverified(dir, set.Names, nil, "the set is not there")
		}
		return res, err
	}
	rec := set.Record
	// Before any file is fetched: a name the set's files cannot take.
	if err := checkTargets(dir, set.Names); err != nil {
		r.removeUnverified(dir, set.Names, nil, "the download failed")
		return res, fail(KindPackage, err)
	}
	if err := r.workspace().mkdir(dir); err != nil {
		return res, fmt.Errorf("create package directory: %w", err)
	}
	r.removePartials(dir, set.Names)
	r.logf("found: %s, %s, complete since %s; downloading to %s", words.Count(len(rec.Files), "file", "files"), progress.Size(rec.TotalSize()),
		rec.Created.UTC().Format(time.RFC3339), dir)
	start := time.Now()
	if err := r.downloadFiles(ctx, prefix, rec.Files, dir); err != nil {
		return res, err
	}
	res.Files, res.Bytes, res.Duration = rec.Files, rec.TotalSize(), time.Since(start)
	r.logf("result: downloaded %s, %s in %s (%s), each verified against the completion record", words.Count(len(rec.Files), "file", "files"),
		progress.Size(res.Bytes), res.Duration.Round(time.Millisecond), humanRate(res.Bytes, res.Duration))
	return res, nil
}

// downloadCommit picks the commit to download: the setting, else the
// package directory's .commit-hash (a deploy task after check), else HEAD.
func (r *Runner) downloadCommit() (commit, from string, err error) {
	if c := r.Config.Commit; c != "" {
		return c, "PACKAGE_ASSETS_COMMIT", nil
	}
	path := r.workspace().path(CommitFile)
	c, err := r.workspace().commit()
	switch {
	case err != nil:
		return "", "", err
	case c != "":
		return c, "from " + path, nil
	}
	repo, err := r.OpenRepo(r.Config.RepoPath)
	if err == nil {
		c, err = repo.Head()
	}
	if err != nil {
		return "", "", fail(KindGit, fmt.Errorf("no commit to download: PACKAGE_ASSETS_COMMIT is not set, %s does not exist, and the git repository gives no HEAD: %w", path, err))
	}
	return c, "HEAD of " + r.Config.RepoPath, nil
}

// awaitSet returns the set when it is complete (the same
// decision as check's: LookupSet's SetComplete, and nothing else), looking
// again with backoff while PACKAGE_ASSETS_WAIT lasts; a set still not
// there is ErrSetNotFound, naming what was looked up and why it does not
// count, with the last lookup's set. Every other state but a later
// version's record is waited on: an upload may be under way (unrecorded
// objects), or the next trusted upload may replace an untrusted record or
// objects that differ from theirs.
func (r *Runner) awaitSet(ctx context.Context, ref SetRef) (Set, error) {
	clock := r.clock()
	start := clock.Now()
	deadline := start.Add(r.Config.Wait)
	delay := firstPoll
	var logged time.Time
	for looks := 1; ; looks++ {
		set, err := r.LookupSet(ctx, ref)
		if err != nil {
			return Set{}, err
		}
		if set.State == SetComplete {
			return set, nil
		}
		why := set.Reason
		if set.State == SetUnrecorded {
			why += " (an upload under way or interrupted; download never takes a set without one)"
		}
		now := clock.Now()
		left := deadline.Sub(now)
		// A later version's set is complete for it, and no upload of this
		// version replaces it: waiting changes nothing.
		if left <= 0 || set.State.Write() == WriteLeave {
			waited := ""
			if r.Config.Wait > 0 && (left <= 0 || looks > 1) {
				waited = fmt.Sprintf(", still after waiting %s (%s; PACKAGE_ASSETS_WAIT)", now.Sub(start).Round(time.Second), words.Count(looks, "lookup", "lookups"))
			}
			return set, fail(KindNotFound, fmt.Errorf("%w: %s%s", ErrSetNotFound, why, waited))
		}
		if looks == 1 || now.Sub(logged) >= waitLogEvery {
			r.logf("not there yet: %s; waiting up to %s more (PACKAGE_ASSETS_WAIT)", why, left.Round(time.Second))
			logged = now
		}
		select {
		case <-clock.After(min(delay, left)):
		case <-ctx.Done():
			return Set{}, ctx.Err()
		}
		delay = min(delay*3/2, maxPoll)
	}
}

// downloadFiles fetches a set's files into dir in parallel (the store bounds
// requests in flight). If any fails, every file of the set not verified in
// this run is removed from dir: a file under a recorded name is then always
// the recorded one, never an older or damaged one.
func (r *Runner) downloadFiles(ctx context.Context, prefix string, files []manifest.File, dir string) error {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	rep, stop := r.startProgress("downloading", total, len(files))
	verified := make([]bool, len(files))
	err := pool.Run(ctx, r.Config.Concurrency, len(files), func(ctx context.Context, i int) error {
		f := files[i]
		sum, err := hex.DecodeString(f.SHA256)
		if err != nil {
			return fail(KindS3, fmt.Errorf("%s: sha256 %s: %w", words.Printable(f.Name), words.Quote(f.SHA256), err))
		}
		req := s3store.DownloadRequest{Key: prefix + f.Name, Path: filePath(dir, f.Name), Size: f.Size, SHA256: sum, ETag: f.ETag, Mode: 0o644}
		if err := r.workspace().mkdir(filepath.Dir(req.Path)); err != nil {
			return err
		}
		if rep != nil {
			req.Progress = rep.Add
		}
		got, err := r.store().Download(ctx, req)
		if err != nil {
			return r.downloadFailed(err)
		}
		// Handed over first: a file left root's in another user's directory
		// (a chown refused) is removed with the unverified ones.
		if err := r.workspace().own(req.Path); err != nil {
			return err
		}
		verified[i] = true
		if rep != nil {
			rep.FileDone()
		}
		how := "1 request"
		if got.Pieces > 0 {
			how = fmt.Sprintf("%s in %s", words.Count(got.Pieces, "piece", "pieces"), words.Count(got.Requests, "request", "requests"))
		}
		switch {
		case got.Refetched > 0 && got.Pieces > 0:
			how += fmt.Sprintf(", %s fetched again (damaged on the way)", words.Count(got.Refetched, "piece", "pieces"))
		case got.Refetched == 1:
			how += ", fetched again (damaged on the way)"
		case got.Refetched > 1:
			how += fmt.Sprintf(", fetched again %d times (damaged on the way)", got.Refetched)
		}
		r.logf("  %s  %s in %s (%s, %s, SHA-256 verified)", words.Printable(f.Name), progress.Size(got.Size), got.Duration.Round(time.Millisecond), humanRate(got.Size, got.Duration), how)
		return nil
	})
	stop()
	if err != nil {
		r.removeUnverified(dir, fileNames(files), verified, "not verified in this run")
	}
	return err
}

// removeUnverified removes from dir the file of each of the set's names
// not verified in this run (verified[i], when given), and the temporary
// files downloads of those names left, logging each with why: a file under
// a recorded name is then always the recorded one, never an older or
// damaged one. The one clean-up of a download that fails, whether the
// lookup refused the set or a fetch failed.
func (r *Runner) removeUnverified(dir string, names []string, verified []bool, why string) {
	for i, name := range names {
		if verified != nil && verified[i] {
			continue
		}
		path := filePath(dir, name)
		if removed, err := removeIfExists(path); err != nil {
			r.logf("could not remove %s: %v", words.Printable(path), err)
		} else if removed {
			r.logf("removed %s: %s", words.Printable(path), why)
		}
	}
	r.removePartials(dir, names)
}

// removePartials removes the hidden temporary files of downloads
// (s3store.IsPartial) from dir and the directories of the set's names: a
// run killed mid-way (SIGKILL) leaves them, and a deploy that zips or syncs
// the directory would ship them. Runs before a download starts and after
// one fails.
func (r *Runner) removePartials(dir string, names []string) {
	dirs := map[string]bool{dir: true}
	for _, name := range names {
		dirs[filepath.Dir(filePath(dir, name))] = true
	}
	for d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue // not there: nothing left in it
		}
		for _, e := range entries {
			if e.Type().IsRegular() && s3store.IsPartial(e.Name()) {
				path := filepath.Join(d, e.Name())
				if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
					r.logf("could not remove %s: %v", words.Printable(path), err)
				} else if err == nil {
					r.logf("removed %s: a download's temporary file, left by a run that did not finish", words.Printable(path))
				}
			}
		}
	}
}

// checkTargetDir finds a target directory no file can be written to: one
// under a regular file, or (the nearest existing directory on its path,
// which it would be made in) without write permission.
func checkTargetDir(dir string) error {
	p := filepath.Clean(dir)
	fi, err := os.Stat(p)
	for err != nil && filepath.Dir(p) != p {
		p = filepath.Dir(p)
		fi, err = os.Stat(p)
	}
	switch {
	case err != nil:
		return fmt.Errorf("target directory %s: %w", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("target directory %s: %s is a file, not a directory", dir, p)
	}
	if err := writable(p); err != nil {
		return fmt.Errorf("target directory %s: cannot write to %s: %w", dir, p, err)
	}
	return nil
}

// checkTargets finds a file of names that could not be put in dir: a
// directory at its path (where the verified file would be renamed to), or
// its directory one checkTargetDir refuses (under a regular file, or not
// writable). Each directory is checked once.
func checkTargets(dir string, names []string) error {
	checked := map[string]bool{}
	for _, name := range names {
		path := filePath(dir, name)
		if fi, err := os.Lstat(path); err == nil && fi.IsDir() {
			return fmt.Errorf("%s is a directory, where the set's file %s goes: move or remove it", words.Printable(path), words.Printable(name))
		}
		if d := filepath.Dir(path); !checked[d] {
			if err := checkTargetDir(d); err != nil {
				return err
			}
			checked[d] = true
		}
	}
	return nil
}

// downloadFailed attributes a failed file: an object that is gone or is no
// longer the recorded one makes the set not there (as for check); damage
// on every fetch is an S3 failure; the directory's problems are the package
// directory's.
//
// err names the file already, with its key ("get s3://…/fn1.zip: …"): no
// context is added.
func (r *Runner) downloadFailed(err error) error {
	switch {
	case errors.Is(err, s3store.ErrRecordDisagrees):
		// An unsigned record whose sha256 was edited, or an object replaced
		// by one of the same size and ETag: what is stored is not the set.
		return failAs(KindNotFound, fmt.Errorf("%w: %w", ErrSetNotFound, err))
	case errors.Is(err, s3store.ErrSourceChanged), errors.Is(err, s3store.ErrNotFound):
		// Deleted or replaced after the lookup found the set complete: a
		// prune at the same moment, or another writer.
		return failAs(KindNotFound, fmt.Errorf("%w: the set is not complete: %w (deleted or replaced while it was downloaded: pruned, or written again, at the same time)", ErrSetNotFound, err))
	case errors.Is(err, os.ErrPermission), errors.Is(err, os.ErrNotExist):
		return failAs(KindPackage, err)
	}
	return err
}

// filePath is where a set's file goes in dir.
func filePath(dir, name string) string { return filepath.Join(dir, filepath.FromSlash(name)) }
