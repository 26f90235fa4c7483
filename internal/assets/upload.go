package assets

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"

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
	r.logf("commit %s: %s to upload from %s", commit, words.Count(len(files), "file", "files"), dir)

	ref := Artifacts(commit)
	set, err := r.LookupSet(ctx, ref)
	if err != nil {
		return res, err
	}
	prefix := set.Prefix
	res.Where = r.Store.URL(prefix)
	switch set.State.Write() {
	case WriteSkip:
		res.Skipped = SkippedComplete
		res.Files = set.Record.Files
		r.logf("%s is already complete (%s, since %s): nothing uploaded", res.Where, words.Count(len(set.Record.Files), "file", "files"), set.Record.Created.UTC().Format(time.RFC3339))
		return res, r.fillCacheAfter(ctx, set, codeHash)
	case WriteLeave:
		// Uploading would overwrite the objects the later version recorded.
		res.Skipped = SkippedNewer
		r.logf("warning: nothing uploaded: %s", set.Reason)
		return res, nil
	case WriteReplace:
		r.logf("replacing the set: %s", set.Reason)
	}

	start := time.Now()
	stored, err := r.uploadAll(ctx, prefix, files, commit, codeHash)
	if err != nil {
		return res, err
	}
	res.Files = stored
	for _, f := range stored {
		res.Bytes += f.Size
	}
	res.Duration = time.Since(start)

	rec := manifest.Record{
		Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: commit, CodeHash: codeHash,
		Created: time.Now().UTC().Truncate(time.Second), Tool: r.Tool, Files: stored,
	}
	if err := r.writeRecord(ctx, ref, rec, set.State.Write()); err != nil {
		return res, err
	}
	r.logf("result: uploaded %s, %s in %s (%s) to %s", words.Count(len(stored), "file", "files"), progress.Size(res.Bytes),
		res.Duration.Round(time.Millisecond), humanRate(res.Bytes, res.Duration), r.Store.URL(prefix))
	set.State, set.Record = SetComplete, &rec
	return res, r.fillCacheAfter(ctx, set, codeHash)
}

// fillCacheAfter fills the cache from a complete set when check computed a code hash.
func (r *Runner) fillCacheAfter(ctx context.Context, set Set, codeHash string) error {
	if codeHash == "" {
		return nil
	}
	return r.fillCache(ctx, set, codeHash)
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
	err := parallel(ctx, r.Config.Concurrency, len(files), func(ctx context.Context, i int) error {
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
		r.logf("  %s  %s in %s (%s, %s)", name, progress.Size(up.Size), up.Duration.Round(time.Millisecond), humanRate(up.Size, up.Duration), how)
		stored[i] = manifest.File{Name: name, Size: up.Size, SHA256: hex.EncodeToString(up.SHA256), ContentType: ct, ETag: up.ETag}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stored, nil
}

// writeRecord stores a set's completion record, signed when a signing key is
// set, as the write decision says: WriteExclusive only if none is there
// already, WriteReplace over whatever is. Refused because another writer's
// record got there first, it looks the set up again and goes on from what it
// finds (reconcile).
func (r *Runner) writeRecord(ctx context.Context, ref SetRef, rec manifest.Record, how Write) error {
	exclusive := how == WriteExclusive
	body, err := manifest.Encode(rec, r.Config.SigningKey)
	if err != nil {
		// Too many files, or names a record cannot hold: the package's.
		return fail(KindPackage, fmt.Errorf("encode completion record: %w", err))
	}
	key := r.prefix(ref) + manifest.Name
	err = r.store().WriteRecord(ctx, key, body, exclusive)
	if errors.Is(err, s3store.ErrExists) {
		return r.reconcile(ctx, ref, rec)
	}
	if err != nil {
		return fmt.Errorf("write completion record: %w", err)
	}
	r.logf("completion record %s written", r.Store.URL(key))
	return nil
}

// reconcile follows a record write refused because another writer's record
// was there first. Two writers of one set may each have overwritten some of
// the other's objects before the first record was written; every writer's
// own writes are finished by the time it gets here, so the last one here sees
// the final state. If the other record matches what is stored, there is
// nothing to do; if not, the record is rewritten to describe, for each file,
// whichever of the two writers' objects is stored. Only those two: an object
// neither wrote is never recorded (nor signed), so it stays a miss. A record
// that cannot be trusted is replaced; a later version's is left alone.
func (r *Runner) reconcile(ctx context.Context, ref SetRef, ours manifest.Record) error {
	set, err := r.LookupSet(ctx, ref)
	if err != nil {
		return fmt.Errorf("another writer completed %s first, but it does not read back: %w", r.Store.URL(r.prefix(ref)), err)
	}
	where := r.Store.URL(set.Prefix)
	switch set.State {
	case SetComplete:
		r.logf("%s was completed by another writer at the same time; its record matches what is stored", where)
		return nil
	case SetNewer:
		r.logf("warning: %s was completed at the same time by a later version of this tool: %s", where, set.Reason)
		return nil
	case SetDiffers:
		r.logf("%s was completed by another writer at the same time, and the two stored different builds: recording what is stored", where)
		fixed := *set.Record
		fixed.Files = storedOf(set.Record.Files, ours.Files, set.Prefix, set.tree)
		fixed.Created = time.Now().UTC().Truncate(time.Second)
		return r.writeRecord(ctx, ref, fixed, WriteReplace)
	default:
		r.logf("replacing the record another writer wrote at the same time: %s", set.Reason)
		return r.writeRecord(ctx, ref, ours, WriteReplace)
	}
}

// storedOf describes each of theirs' files by whichever of the two writers'
// versions (theirs or ours) is stored; by theirs where neither is.
func storedOf(theirs, ours []manifest.File, prefix string, objs []s3store.Object) []manifest.File {
	mine := make(map[string]manifest.File, len(ours))
	for _, f := range ours {
		mine[f.Name] = f
	}
	out := make([]manifest.File, len(theirs))
	for i, f := range theirs {
		out[i] = f
		if o, ok := mine[f.Name]; ok && compareListing([]manifest.File{f}, prefix, objs) != "" && compareListing([]manifest.File{o}, prefix, objs) == "" {
			out[i] = o
		}
	}
	return out
}
