package assets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// fromCache computes the code hash and, when a complete cache entry exists
// under it, copies the entry inside S3 to the commit's prefix.
func (r *Runner) fromCache(ctx context.Context, ch codeHash, commit string, res *CheckResult) error {
	if ch.err != nil {
		return fail(KindGit, fmt.Errorf("code hash: %w", ch.err))
	}
	hash := ch.hash
	res.CodeHash = hash
	r.logf("code hash %s over %d files (%s)", hash, ch.files, ch.took.Round(time.Millisecond))
	if err := writeMarker(r.pkgPath(CodeHashFile), hash); err != nil {
		return fail(KindPackage, err)
	}

	from := r.cachePrefix(hash)
	r.logf("looking up %s", r.Store.URL(from+manifest.Name))
	rec, err := r.readRecord(ctx, from)
	switch {
	case err == nil && rec.Kind == manifest.KindCache && rec.CodeHash == hash:
	case err == nil:
		r.logf("cache miss: the record at %s is for %s %q, not this code hash", r.Store.URL(from), rec.Kind, rec.CodeHash)
		return nil
	case errors.Is(err, s3store.ErrNotFound):
		// Only a miss needs to tell a partial entry from none: a hit, the
		// case worth being fast, makes no listing.
		partial, err := r.Store.AnyUnder(ctx, from)
		if err != nil {
			return fail(KindS3, err)
		}
		if partial {
			r.logf("cache miss: objects under %s but no completion record (an interrupted cache fill)", r.Store.URL(from))
		} else {
			r.logf("cache miss: nothing under %s", r.Store.URL(from))
		}
		return nil
	case errors.Is(err, manifest.ErrSignature), errors.Is(err, manifest.ErrInvalid):
		r.logf("cache miss: %v", err)
		return nil
	default:
		return fail(KindS3, err)
	}

	to := r.artifactPrefix(commit)
	start := time.Now()
	r.logf("cache hit: copying %d files, %s, from %s", len(rec.Files), progress.Size(rec.TotalSize()), r.Store.URL(from))
	files, err := r.copySet(ctx, rec.Files, from, to, func(f manifest.File) map[string]string {
		return map[string]string{MetaCommit: commit, MetaPackageHash: f.PackageHash(), MetaCodeHash: hash}
	})
	if errors.Is(err, s3store.ErrSourceChanged) {
		r.logf("cache miss: %v", err)
		return nil
	}
	if err != nil {
		return fail(KindS3, err)
	}
	out := manifest.Record{
		Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: commit, CodeHash: hash,
		Created: time.Now().UTC().Truncate(time.Second), Tool: r.Tool, Source: from, Files: files,
	}
	if err := r.writeRecord(ctx, to, out, true); err != nil {
		return err
	}
	d := time.Since(start)
	r.logf("copied %d files, %s in %s (%s)", len(files), progress.Size(out.TotalSize()), d.Round(time.Millisecond), humanRate(out.TotalSize(), d))
	res.Found, res.CacheHit, res.Where, res.Files, res.Bytes = true, true, r.Store.URL(to), len(files), out.TotalSize()
	return nil
}

// fillCache copies a complete artifact set to cache/<code-hash>/ unless a
// valid entry is there already.
func (r *Runner) fillCache(ctx context.Context, rec *manifest.Record, codeHash string) error {
	to := r.cachePrefix(codeHash)
	if r.Config.CacheReadOnly {
		r.logf("cache is read-only (CODE_HASH_CACHE_READ_ONLY): %s not written", r.Store.URL(to))
		return nil
	}
	existing, err := r.readRecord(ctx, to)
	exclusive := true
	switch {
	case err == nil && existing.CodeHash == codeHash:
		r.logf("cache entry %s exists already (%d files)", r.Store.URL(to), len(existing.Files))
		return nil
	case err == nil, errors.Is(err, manifest.ErrSignature), errors.Is(err, manifest.ErrInvalid):
		r.logf("replacing the unusable cache record at %s: %v", r.Store.URL(to), err)
		exclusive = false
	case errors.Is(err, s3store.ErrNotFound):
	default:
		return fail(KindS3, fmt.Errorf("fill cache: %w", err))
	}
	from := r.artifactPrefix(rec.Commit)
	start := time.Now()
	files, err := r.copySet(ctx, rec.Files, from, to, nil)
	if err != nil {
		return fail(KindS3, fmt.Errorf("fill cache (the artifacts themselves are complete): %w", err))
	}
	out := manifest.Record{
		Format: manifest.Format, Kind: manifest.KindCache, Commit: rec.Commit, CodeHash: codeHash,
		Created: time.Now().UTC().Truncate(time.Second), Tool: r.Tool, Source: from, Files: files,
	}
	if err := r.writeRecord(ctx, to, out, exclusive); err != nil {
		return err
	}
	r.logf("cache filled: %d files copied to %s in %s", len(files), r.Store.URL(to), time.Since(start).Round(time.Millisecond))
	return nil
}

// copySet copies every file of a set from one prefix to another inside S3,
// in parallel (the store bounds requests in flight). meta gives each copy's
// new metadata; nil keeps the source's.
func (r *Runner) copySet(ctx context.Context, files []manifest.File, from, to string, meta func(manifest.File) map[string]string) ([]manifest.File, error) {
	out := make([]manifest.File, len(files))
	err := parallel(ctx, r.Config.Concurrency, len(files), func(ctx context.Context, i int) error {
		f := files[i]
		req := s3store.CopyRequest{Src: from + f.Name, Dst: to + f.Name, Size: f.Size, SrcETag: f.ETag, ContentType: f.ContentType}
		if meta != nil {
			req.Metadata = meta(f)
		}
		etag, err := r.Store.Copy(ctx, req)
		if err != nil {
			return fmt.Errorf("copy %s: %w", f.Name, err)
		}
		f.ETag = etag
		out[i] = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
