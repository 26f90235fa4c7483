package assets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// CheckResult is what check found.
type CheckResult struct {
	Commit   string
	CodeHash string // empty unless the cache is on
	Found    bool
	CacheHit bool   // found by copying from the cache
	Where    string // s3:// URL of the set found
	Prefix   string // its key prefix, when found
	Files    int
	// FileList is the files of the set found, from its record (none for a
	// set without one, found with PACKAGE_ASSETS_ACCEPT_LEGACY).
	FileList []manifest.File
	Bytes    int64
	// Components, with PACKAGE_COMPONENTS: every component's state, sorted
	// by name (those this check looked up are Checked).
	Components []ComponentState
	// Miss explains a cache miss against the nearest earlier build; nil
	// unless the cache was looked up and missed.
	Miss *Explanation
}

// Check decides whether the commit's artifacts exist, and marks the package
// directory for the tasks after it. A check that fails leaves no marker it
// wrote (an upload after it finds no commit to store a build under); a miss
// with PACKAGE_ASSETS_FAIL_ON_MISS is a verdict, not a failure: its markers
// stay for the upload.
func (r *Runner) Check(ctx context.Context) (CheckResult, error) {
	r.work = nil
	res, err := r.check(ctx)
	if err != nil {
		r.workspace().rollback()
		return res, err
	}
	// (With components, check has never failed on a miss: a component to
	// build is the expected outcome of a partial change.)
	if !res.Found && r.Config.FailOnMiss && !r.Config.ComponentsEnabled() {
		looked := r.Store.URL(r.prefix(Artifacts(res.Commit)))
		if res.CodeHash != "" {
			looked += " nor " + r.Store.URL(r.prefix(Cache(res.CodeHash)))
		}
		return res, fail(KindNotFound, fmt.Errorf("%w: no complete set at %s, and PACKAGE_ASSETS_FAIL_ON_MISS is set", ErrSetNotFound, looked))
	}
	return res, nil
}

func (r *Runner) check(ctx context.Context) (CheckResult, error) {
	var res CheckResult
	w := r.workspace()
	// Every setting before anything is written.
	if r.Config.Component != "" && !r.Config.ComponentsEnabled() {
		return res, fail(KindConfig, errors.New("PACKAGE_COMPONENT is set but PACKAGE_COMPONENTS is not: declare the components"))
	}
	if err := w.prepare(); err != nil {
		return res, err
	}

	repo, err := r.OpenRepo(r.Config.RepoPath)
	if err != nil {
		return res, failIn(KindGit, "open git repository", err) // its error names the path
	}
	commit, err := repo.Head()
	if err != nil {
		return res, fail(KindGit, err)
	}
	res.Commit = commit
	r.logf("commit %s (HEAD of %s)", commit, r.Config.RepoPath)
	if err := w.writeCommit(commit); err != nil {
		return res, err
	}
	if r.Config.ComponentsEnabled() {
		return res, r.checkComponents(ctx, repo, commit, &res)
	}

	ref := Artifacts(commit)
	r.logf("looking up %s", r.Store.URL(r.prefix(ref)+manifest.Name))
	start := time.Now()
	set, err := r.LookupSet(ctx, ref)
	if err != nil {
		return res, err
	}
	useCache := r.Config.CacheEnabled()
	switch set.State {
	case SetComplete:
		rec := set.Record
		res.Found, res.Where, res.Files, res.Bytes = true, r.Store.URL(set.Prefix), len(rec.Files), rec.TotalSize()
		res.Prefix, res.FileList = set.Prefix, rec.Files
		r.logf("found: %s, %s, complete since %s (%s)", words.Count(len(rec.Files), "file", "files"), progress.Size(rec.TotalSize()),
			rec.Created.UTC().Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
	case SetUnrecorded:
		if r.Config.AcceptLegacy {
			res.Found, res.Where, res.Prefix = true, r.Store.URL(set.Prefix), set.Prefix
			r.logf("found objects under %s without a completion record; counted as found (PACKAGE_ASSETS_ACCEPT_LEGACY)", r.Store.URL(set.Prefix))
		} else {
			r.logf("not found: %s (an interrupted upload, or written by the original tool; PACKAGE_ASSETS_ACCEPT_LEGACY=true accepts the latter)", set.Reason)
		}
	case SetNewer:
		// A cache copy would overwrite the objects the later version recorded.
		r.logf("warning: not found: %s; the cache is not copied over it", set.Reason)
		useCache = false
	case SetUntrusted, SetDiffers:
		r.logf("warning: not found: %s; a cache hit or the next upload replaces it", set.Reason)
	default:
		r.logf("not found: %s", set.Reason)
	}

	if !res.Found && useCache {
		if err := r.fromCache(ctx, repo, commit, set, &res); err != nil {
			return res, err
		}
	}

	if res.Found {
		if err := w.writeFound(""); err != nil {
			return res, err
		}
		how := "found"
		if res.CacheHit {
			how = "found in the cache"
		}
		r.logf("result: %s, the build can be skipped (%s written)", how, w.path(FoundFile))
		return res, nil
	}
	if !r.Config.FailOnMiss {
		r.logf("result: not found, the build must run and upload")
	}
	return res, nil
}
