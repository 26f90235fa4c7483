package assets

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
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
}

// Reasons an upload sent nothing.
const (
	SkippedFound    = "found by check"
	SkippedComplete = "already complete"
)

// ErrNoFiles: the package directory holds nothing to upload.
var ErrNoFiles = errors.New("no files to upload")

// Upload stores the package directory's files under the commit, then the
// completion record, last.
func (r *Runner) Upload(ctx context.Context) (UploadResult, error) {
	var res UploadResult
	dir := r.Config.PackageDir
	if _, err := os.Stat(r.pkgPath(FoundFile)); err == nil {
		res.Skipped = SkippedFound
		// For the outputs only: a missing or odd marker is not an error here.
		res.Commit, _ = readMarker(r.pkgPath(CommitFile))
		res.CodeHash, _ = readMarker(r.pkgPath(CodeHashFile))
		r.logf("%s exists: the artifacts were found by check, nothing to upload", r.pkgPath(FoundFile))
		return res, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return res, fail(KindPackage, err)
	}

	commit, err := readMarker(r.pkgPath(CommitFile))
	if errors.Is(err, os.ErrNotExist) {
		return res, fail(KindPackage, fmt.Errorf("%s: %w", dir, ErrNoCommitHash))
	} else if err != nil {
		return res, fail(KindPackage, err)
	}
	if !manifest.ValidCommit(commit) {
		return res, fail(KindPackage, fmt.Errorf("%s holds %q, not a 40 or 64 hex commit id", r.pkgPath(CommitFile), truncate(commit, 80)))
	}
	res.Commit = commit
	codeHash, err := readMarker(r.pkgPath(CodeHashFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return res, fail(KindPackage, err)
	}
	// Checked before anything is sent: the record written at the end would refuse it.
	if codeHash != "" && !manifest.ValidCodeHash(codeHash) {
		return res, fail(KindPackage, fmt.Errorf("%s holds %q, not a code hash (run check again)", r.pkgPath(CodeHashFile), truncate(codeHash, 80)))
	}
	res.CodeHash = codeHash

	files, err := packageFiles(dir, r.logf)
	if err != nil {
		return res, fail(KindPackage, err)
	}
	r.logf("commit %s: %d files to upload from %s", commit, len(files), dir)

	prefix := r.artifactPrefix(commit)
	res.Where = r.Store.URL(prefix)
	exclusive := true
	rec, err := r.readRecord(ctx, prefix)
	switch {
	case err == nil:
		res.Skipped = SkippedComplete
		res.Files = rec.Files
		r.logf("%s is already complete (%d files, since %s): nothing uploaded", r.Store.URL(prefix), len(rec.Files), rec.Created.UTC().Format(time.RFC3339))
		return res, r.fillCacheAfter(ctx, rec, codeHash)
	case errors.Is(err, s3store.ErrNotFound):
	case errors.Is(err, manifest.ErrSignature):
		r.logf("replacing the completion record at %s: %v", r.Store.URL(prefix), err)
		exclusive = false
	default:
		return res, fail(KindS3, err)
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

	rec = &manifest.Record{
		Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: commit, CodeHash: codeHash,
		Created: time.Now().UTC().Truncate(time.Second), Tool: r.Tool, Files: stored,
	}
	if err := r.writeRecord(ctx, prefix, *rec, exclusive); err != nil {
		return res, err
	}
	r.logf("result: uploaded %d files, %s in %s (%s) to %s", len(stored), progress.Size(res.Bytes),
		res.Duration.Round(time.Millisecond), humanRate(res.Bytes, res.Duration), r.Store.URL(prefix))
	return res, r.fillCacheAfter(ctx, rec, codeHash)
}

// fillCacheAfter fills the cache from a complete set when check computed a code hash.
func (r *Runner) fillCacheAfter(ctx context.Context, rec *manifest.Record, codeHash string) error {
	if codeHash == "" {
		return nil
	}
	return r.fillCache(ctx, rec, codeHash)
}

// uploadAll sends the files in parallel; the store bounds requests in flight.
func (r *Runner) uploadAll(ctx context.Context, prefix string, files []packageFile, commit, codeHash string) ([]manifest.File, error) {
	// In the directory's order, which is by name, as the record lists them.
	stored := make([]manifest.File, len(files))
	var rep *progress.Reporter
	if r.ProgressTo != nil {
		var total int64
		for _, f := range files {
			total += f.size
		}
		rep = progress.Start(r.ProgressTo, r.Terminal, total, len(files), nil)
		out := r.Log.Writer()
		r.Log.SetOutput(rep.Writer())
		defer func() { rep.Stop(); r.Log.SetOutput(out) }()
	}
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
		up, err := r.Store.UploadFile(ctx, req)
		if err != nil {
			k := KindS3
			if errors.Is(err, s3store.ErrChanged) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
				k = KindPackage
			}
			return fail(k, fmt.Errorf("upload %s: %w", name, err))
		}
		if rep != nil {
			rep.FileDone()
		}
		how := "1 request"
		if up.Parts > 0 {
			how = fmt.Sprintf("%d parts", up.Parts)
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

// writeRecord stores a completion record, signed when a signing key is set.
// exclusive: only if none is there already; then a concurrent writer of the
// same set that finished first is fine, as long as its record is valid.
func (r *Runner) writeRecord(ctx context.Context, prefix string, rec manifest.Record, exclusive bool) error {
	body, err := manifest.Encode(rec, r.Config.SigningKey)
	if err != nil {
		return fmt.Errorf("encode completion record: %w", err)
	}
	key := prefix + manifest.Name
	err = r.Store.WriteRecord(ctx, key, body, exclusive)
	if errors.Is(err, s3store.ErrExists) {
		winner, rerr := r.readRecord(ctx, prefix)
		if rerr != nil {
			return fail(KindS3, fmt.Errorf("another writer completed %s first, but its record does not read back: %w", r.Store.URL(prefix), rerr))
		}
		r.logf("%s was completed by another writer at the same time; checking its record against what is stored", r.Store.URL(prefix))
		return r.reconcile(ctx, prefix, winner)
	}
	if err != nil {
		return fail(KindS3, fmt.Errorf("write completion record: %w", err))
	}
	r.logf("completion record %s written", r.Store.URL(key))
	return nil
}

// reconcile makes a record that won a race describe what is stored. Two
// writers of one set may each have overwritten some of the other's objects
// before the first record was written; every writer's own PUTs are finished
// by the time it gets here, so the last one to get here sees the final state
// and, if the record no longer matches it, rewrites the record from it.
func (r *Runner) reconcile(ctx context.Context, prefix string, rec *manifest.Record) error {
	actual := make([]manifest.File, len(rec.Files))
	err := parallel(ctx, r.Config.Concurrency, len(rec.Files), func(ctx context.Context, i int) error {
		f := rec.Files[i]
		info, err := r.Store.Head(ctx, prefix+f.Name)
		if err != nil {
			return err
		}
		sum, err := base64.StdEncoding.DecodeString(info.Metadata[MetaPackageHash])
		if err != nil || len(sum) != 32 {
			return fmt.Errorf("%s: no valid %s metadata", r.Store.URL(prefix+f.Name), MetaPackageHash)
		}
		actual[i] = manifest.File{Name: f.Name, Size: info.Size, SHA256: hex.EncodeToString(sum), ContentType: info.ContentType, ETag: info.ETag}
		return nil
	})
	if err != nil {
		return fail(KindS3, fmt.Errorf("check the concurrent writer's record: %w", err))
	}
	// A changed ETag matters too: cache copies are conditional on it.
	stale := false
	for i, f := range rec.Files {
		a := actual[i]
		stale = stale || a.Size != f.Size || a.SHA256 != f.SHA256 || (f.ETag != "" && a.ETag != f.ETag)
	}
	if !stale {
		return nil
	}
	r.logf("the concurrent uploads stored different builds: rewriting the record to match what is stored")
	fixed := *rec
	fixed.Files = actual
	fixed.Created = time.Now().UTC().Truncate(time.Second)
	return r.writeRecord(ctx, prefix, fixed, false)
}

// packageFile is a file to upload, with its size when it was listed.
type packageFile struct {
	path string
	size int64
}

// packageFiles lists what upload sends: every non-hidden regular file directly
// in dir. Sub-directories are left out, as by the original tool; a symlink is
// followed (its target's content is uploaded under the link's name) and one
// that leads nowhere is an error, as is any other kind of file.
func packageFiles(dir string, logf func(string, ...any)) ([]packageFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read package directory: %w", err)
	}
	var files []packageFile
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		// Before the name is logged or becomes a key.
		if err := manifest.ValidName(name); err != nil {
			return nil, fmt.Errorf("%s: %w: rename it, or move it out of the package directory", dir, err)
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows symlinks
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && e.Type()&os.ModeSymlink != 0 {
				return nil, fmt.Errorf("%s is a symlink to nothing", path)
			}
			return nil, err
		}
		switch {
		case fi.IsDir():
			logf("  skipping sub-directory %s/ (only files directly in the package directory are uploaded)", name)
		case fi.Mode().IsRegular():
			files = append(files, packageFile{path: path, size: fi.Size()})
		default:
			return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: %w (upload sends the non-hidden files directly inside it; did the build write them elsewhere?)", dir, ErrNoFiles)
	}
	return files, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
