package assets

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"

	"github.com/nsmithuk/s3-asset-manager/internal/pool"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// UploadResult is what upload did.
type UploadResult struct {
	Commit   string
	CodeHash string
	Where    string // s3:// URL of the set
	Skipped  string // why nothing was uploaded (SkippedFound, SkippedComplete), if so
	Files    []manifest.File
	Bytes    int64
	Duration time.Duration
	// Components, with PACKAGE_COMPONENTS: every component's state after
	// the upload (those check looked up are Checked).
	Components []ComponentState
}

// Reasons an upload sent nothing.
const (
	SkippedFound    = "found by check"
	SkippedComplete = "already complete"
	SkippedNewer    = "recorded by a later version"
)

// ErrNoFiles: the package directory holds nothing to upload.
var ErrNoFiles = errors.New("no files to upload")

// Upload stores the package directory's files under the commit, then the
// completion record, last.
func (r *Runner) Upload(ctx context.Context) (UploadResult, error) {
	r.work = nil
	var res UploadResult
	w := r.workspace()
	dir := r.Config.PackageDir
	found, err := w.found("")
	if err != nil {
		return res, err
	}
	if found {
		res.Skipped = SkippedFound // the found output, even if a marker is refused
	}
	// The markers are checked even when only the outputs need them: a
	// marker is never published unchecked. A missing one is an empty output.
	commit, err := w.commit()
	if err != nil {
		return res, err
	}
	codeHash, err := w.codeHash()
	if err != nil {
		return res, err
	}
	res.Commit, res.CodeHash = commit, codeHash
	if found {
		if commit != "" {
			cs, ok, err := w.components(commit)
			if err != nil {
				return res, err
			}
			if ok {
				if _, err := r.uploadSelection(cs.Components); err != nil {
					res.Skipped = "" // not found: the found output says false
					return res, err
				}
				res.Components = cs.Components
				res.CodeHash = r.singleCodeHash(cs.Components)
			}
		}
		r.logf("%s exists: the artifacts were found by check, nothing to upload", w.path(FoundFile))
		return res, nil
	}
	if commit == "" {
		return res, fail(KindPackage, fmt.Errorf("%s: %w", dir, ErrNoCommitHash))
	}
	if err := w.dropListLeftovers(); err != nil {
		return res, err
	}

	cs, ok, err := w.components(commit)
	if err != nil {
		return res, err
	}
	if ok {
		res.Where = r.Store.URL(r.prefix(Artifacts(commit)))
		res.CodeHash = r.singleCodeHash(cs.Components)
		return res, r.uploadComponents(ctx, commit, cs, &res)
	}
	if r.Config.Component != "" {
		return res, fail(KindConfig, fmt.Errorf("PACKAGE_COMPONENT is set but check ran without components (no %s in %s)", ComponentsFile, dir))
	}

	files, err := w.files(dir)
	if err != nil {
		return res, err
	}
	// The whole commit: one unnamed unit, with the code hash check computed.
	u := &unit{hash: codeHash}
	if u.set, err = r.LookupSet(ctx, u.ref(commit)); err != nil {
		return res, err
	}
	res.Where = r.Store.URL(u.set.Prefix)
	start := time.Now()
	stored, skipped, rec, err := r.sendUnit(ctx, commit, u, files)
	if err != nil {
		return res, err
	}
	res.Skipped, res.Files, res.Duration = skipped, stored, time.Since(start)
	if skipped == SkippedNewer {
		return res, nil
	}
	// Its files all sent, the set is finished (cache entry, record) even
	// when the run is cancelled now, as a component is (s3store.CancelGrace).
	finishCtx, stop := r.Store.AfterCancel(ctx)
	defer stop()
	fillErr, err := r.finishUnit(finishCtx, u, rec)
	if err != nil {
		return res, err
	}
	if skipped == "" {
		for _, f := range stored {
			res.Bytes += f.Size
		}
		r.logf("result: uploaded %s, %s in %s (%s) to %s", words.Count(len(stored), "file", "files"), progress.Size(res.Bytes),
			res.Duration.Round(time.Millisecond), humanRate(res.Bytes, res.Duration), res.Where)
	}
	return res, fillErr
}

// uploadComponents is upload with the state check left for components: the
// components check marked to build (PACKAGE_COMPONENT's alone, when set) are
// named units, each stored from <package dir>/<name>/ as the whole commit
// is, with its cache entry; then the commit's record, when every component
// is complete.
func (r *Runner) uploadComponents(ctx context.Context, commit string, cs componentsState, res *UploadResult) error {
	w := r.workspace()
	states := cs.Components
	sel, err := r.uploadSelection(states)
	if err != nil {
		return err
	}
	// Every directory first: one with nothing to upload stops the upload
	// before anything is sent, every such component named at once.
	type job struct {
		i     int
		unit  *unit
		files []packageFile
	}
	var jobs []*job
	var empty []string // "<name> (what its path holds)"
	for _, i := range sel {
		s := states[i]
		if !s.Build {
			continue
		}
		dir := w.path(s.Name)
		if err := w.notComponentDir(s.Name); err != nil {
			empty = append(empty, fmt.Sprintf("%s (%v)", s.Name, err))
			continue
		}
		if found, err := w.found(s.Name); err != nil {
			return err
		} else if found {
			continue // complete: check found it
		}
		files, err := w.files(dir)
		switch {
		case errors.Is(err, os.ErrNotExist):
			empty = append(empty, fmt.Sprintf("%s (no directory %s)", s.Name, dir))
			continue
		case errors.Is(err, ErrNoFiles):
			empty = append(empty, fmt.Sprintf("%s (no non-hidden file directly in %s)", s.Name, dir))
			continue
		case err != nil:
			return fmt.Errorf("component %s: %w", s.Name, err)
		}
		jobs = append(jobs, &job{i: i, unit: &unit{name: s.Name, hash: s.CodeHash}, files: files})
	}
	if len(empty) > 0 {
		return fail(KindPackage, fmt.Errorf("%w for %s: %s; the build writes a component's files directly in %s",
			ErrNoFiles, words.Count(len(empty), "component", "components"), strings.Join(empty, ", "), filepath.Join(r.Config.PackageDir, "<name>")))
	}
	if len(jobs) == 0 {
		res.Skipped = SkippedFound
		r.logf("no component to upload: check found every one it looked up")
	}

	// Each component's set, and the commit's, as they are now: a matrix job
	// of another run, or an earlier attempt, may have completed some.
	var commitSet Set
	err = pool.Run(ctx, r.Config.Concurrency, len(jobs)+1, func(ctx context.Context, k int) (err error) {
		if k == len(jobs) {
			commitSet, err = r.LookupSet(ctx, Artifacts(commit))
		} else {
			jobs[k].unit.set, err = r.LookupSet(ctx, jobs[k].unit.ref(commit))
		}
		return err
	})
	if err != nil {
		return err
	}

	// Each component's files are sent one after another; its cache entry
	// and record are written meanwhile (finishUnit), up to the concurrency
	// at once. Those sent before one fails, or the run is cancelled, are
	// finished all the same.
	sets := make([]Set, len(states))
	start := time.Now()
	finishCtx, stop := r.Store.AfterCancel(ctx) // sent before a cancel: finished within its grace
	defer stop()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		storeErr error
		fillErrs []error
		already  []manifest.File // of components complete before this upload
	)
	slots := make(chan struct{}, max(1, r.Config.Concurrency))
	failed := func() error { mu.Lock(); defer mu.Unlock(); return storeErr }
	for _, j := range jobs {
		if failed() != nil {
			break
		}
		stored, skipped, rec, err := r.sendUnit(ctx, commit, j.unit, j.files)
		if err != nil {
			mu.Lock()
			storeErr = cmp.Or(storeErr, err)
			mu.Unlock()
			break
		}
		if skipped == SkippedNewer {
			continue
		}
		for _, f := range stored {
			f.Name = j.unit.name + "/" + f.Name
			if skipped != "" {
				already = append(already, f)
				continue
			}
			res.Files = append(res.Files, f)
			res.Bytes += f.Size
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			fillErr, err := r.finishUnit(finishCtx, j.unit, rec)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				storeErr = cmp.Or(storeErr, err)
				return
			}
			if fillErr != nil {
				fillErrs = append(fillErrs, fillErr)
			}
			sets[j.i] = j.unit.set
			s := &states[j.i]
			s.Found, s.Build, s.Reason = true, false, ""
		})
	}
	wg.Wait()
	res.Duration = time.Since(start)
	if len(res.Files) > 0 { // what was sent: those complete already said so
		what := "result: uploaded"
		if storeErr != nil {
			what = "before the failure, uploaded"
		}
		r.logf("%s %s, %s in %s (%s)", what, words.Count(len(res.Files), "file", "files"), progress.Size(res.Bytes),
			res.Duration.Round(time.Millisecond), humanRate(res.Bytes, res.Duration))
	}
	// Every one complete already (a second upload): said as for a whole set.
	if storeErr == nil && len(jobs) > 0 && len(res.Files) == 0 && len(already) > 0 {
		res.Skipped, res.Files = SkippedComplete, already
	}
	fillErr := errors.Join(fillErrs...)
	if storeErr != nil {
		if fillErr != nil && finishCtx.Err() == nil {
			r.logf("warning: %v", fillErr)
		}
		return storeErr
	}
	if fillErr != nil {
		return fillErr
	}
	res.Components = states
	return r.completeCommit(ctx, commit, states, sets, commitSet)
}

// uploadSelection gives the indexes of the components this upload deals
// with (selectComponents). PACKAGE_COMPONENT must name one the check looked
// up: a check of another component alone says nothing of this one, and
// uploading nothing, as if check had found it, would leave the build unstored.
func (r *Runner) uploadSelection(states []ComponentState) ([]int, error) {
	sel, err := r.selectComponents(states)
	if err != nil {
		return nil, err
	}
	if s := states[sel[0]]; r.Config.Component != "" && !s.Checked {
		var checked []string
		for _, c := range states {
			if c.Checked {
				checked = append(checked, c.Name)
			}
		}
		return nil, fail(KindConfig, fmt.Errorf("PACKAGE_COMPONENT %s: the check that wrote %s did not look it up (it checked %s): run check with PACKAGE_COMPONENT=%s, or none, before this upload",
			s.Name, r.workspace().path(ComponentsFile), strings.Join(checked, ", "), s.Name))
	}
	return sel, nil
}

// sendUnit uploads a unit's files as its set under the commit, as the write
// decision on its set (u.set, looked up) says, and gives the record to write
// for them (finishUnit). skipped says why nothing was uploaded, if so: the
// set is complete already (stored is its files; rec nil), or a later
// version's.
func (r *Runner) sendUnit(ctx context.Context, commit string, u *unit, files []packageFile) (stored []manifest.File, skipped string, rec *manifest.Record, err error) {
	set, logf := u.set, u.logf(r.logf)
	where := r.Store.URL(set.Prefix)
	switch set.State.Write() {
	case WriteSkip:
		logf("%s is already complete (%s, since %s): nothing uploaded", where, words.Count(len(set.Record.Files), "file", "files"), set.Record.Created.UTC().Format(time.RFC3339))
		return set.Record.Files, SkippedComplete, nil, nil
	case WriteLeave:
		// Uploading would overwrite the objects the later version recorded.
		logf("warning: nothing uploaded: %s", set.Reason)
		return nil, SkippedNewer, nil, nil
	case WriteReplace:
		logf("replacing the set: %s", set.Reason)
	}
	if err := r.recordFits(commit, u, files); err != nil {
		return nil, "", nil, err
	}
	what := "commit " + commit
	if u.name != "" {
		what = "component " + u.name
	}
	r.logf("%s: %s to upload from %s", what, words.Count(len(files), "file", "files"), filepath.Dir(files[0].path))
	stored, err = r.uploadAll(ctx, set.Prefix, files, commit, u.hash)
	if err != nil {
		return nil, "", nil, err
	}
	out := r.newRecord(manifest.KindArtifacts, commit, u.name, u.hash, "", stored)
	return stored, "", &out, nil
}

// finishUnit fills the cache entry of a unit whose files sendUnit stored,
// then writes its record, rec; u.set is then the set as stored. The cache
// entry first: a set complete under the commit has its entry however the
// run ends (killed too), since the re-run's check finds the set and its
// upload skips it, and nothing would fill it after. A fill that fails
// (fillErr) leaves the record to write all the same: the set is stored. With
// rec nil (complete already), it fills the cache entry if missing.
func (r *Runner) finishUnit(ctx context.Context, u *unit, rec *manifest.Record) (fillErr, err error) {
	if rec == nil {
		return r.fillCache(ctx, u), nil
	}
	set := u.set
	u.set.State, u.set.Record = SetComplete, rec // as the record will say: the fill copies what it lists
	fillErr = r.fillCache(ctx, u)
	if err := r.writeRecord(ctx, set.Ref, *rec, set.State.Write()); err != nil {
		u.set = set
		return fillErr, err
	}
	return fillErr, nil
}

// recordFits refuses, before anything is sent, files more than a completion
// record holds (a record no reader takes would leave the set a miss for
// ever). It encodes the record the files will make, with the shortest ETag a
// store gives (a quoted MD5): if that is too large, the real one is.
func (r *Runner) recordFits(commit string, u *unit, files []packageFile) error {
	probe := make([]manifest.File, len(files))
	for i, f := range files {
		name := filepath.Base(f.path)
		probe[i] = manifest.File{Name: name, Size: f.size, SHA256: strings.Repeat("0", 64), ContentType: ContentType(name), ETag: `"` + strings.Repeat("0", 32) + `"`}
	}
	rec := r.newRecord(manifest.KindArtifacts, commit, u.name, u.hash, "", probe)
	if _, err := manifest.Encode(rec, r.Config.SigningKey); errors.Is(err, manifest.ErrTooLarge) {
		return fail(KindPackage, fmt.Errorf("%s: %w: upload them as an archive, or fewer at a time", filepath.Dir(files[0].path), err))
	}
	return nil // anything else, as the record written after the upload says
}

// uploadAll sends the files in parallel; the store bounds requests in flight.
func (r *Runner) uploadAll(ctx context.Context, prefix string, files []packageFile, commit, codeHash string) ([]manifest.File, error) {
	// In the directory's order, which is by name, as the record lists them.
	stored := make([]manifest.File, len(files))
	var total int64
	for _, f := range files {
		total += f.size
	}
	rep, stop := r.startProgress("uploading", total, len(files))
	defer stop()
	err := pool.Run(ctx, r.Config.Concurrency, len(files), func(ctx context.Context, i int) error {
		path := files[i].path
		name := filepath.Base(path)
		meta := func(sum []byte) map[string]string {
			m := map[string]string{
				MetaCommit:      commit,
				MetaPackageHash: base64.StdEncoding.EncodeToString(sum),
			}
			if codeHash != "" {
				m[MetaCodeHash] = codeHash
			}
			return m
		}
		ct := ContentType(name)
		req := s3store.UploadRequest{Key: prefix + name, Path: path, ContentType: ct, Metadata: meta}
		if rep != nil {
			req.Progress = rep.Add
		}
		up, err := r.store().UploadFile(ctx, req)
		if err != nil {
			return err // it names the file and the key ("upload s3://…/fn1.zip: …")
		}
		if rep != nil {
			rep.FileDone()
		}
		how := "1 request"
		if up.Parts > 0 {
			how = words.Count(up.Parts, "part", "parts")
		}
		if up.Check != "" {
			how += ", checked by " + up.Check
		}
		r.logf("  %s  %s in %s (%s, %s)", words.Printable(name), progress.Size(up.Size), up.Duration.Round(time.Millisecond), humanRate(up.Size, up.Duration), how)
		stored[i] = manifest.File{Name: name, Size: up.Size, SHA256: hex.EncodeToString(up.SHA256), ContentType: ct, ETag: up.ETag}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}
