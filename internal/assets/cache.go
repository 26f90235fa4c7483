package assets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// fromCache computes the code hash and, when a complete cache entry exists
// under it, copies the entry inside S3 to the commit's set, dst (as the
// lookup found it: a record there that cannot be trusted is replaced).
func (r *Runner) fromCache(ctx context.Context, repo Repo, commit string, dst Set, res *CheckResult) error {
	start := time.Now()
	list, err := repo.CodeHash(ctx)
	if err != nil {
		return failIn(KindGit, "code hash", err)
	}
	hash := list.CodeHash
	res.CodeHash = hash
	r.logf("code hash %s over %s (%s)", hash, words.Count(len(list.Files), "file", "files"), time.Since(start).Round(time.Millisecond))
	if err := r.workspace().writeCodeHash(hash); err != nil {
		return err
	}

	ref := Cache(hash)
	r.logf("looking up %s", r.Store.URL(r.prefix(ref)+manifest.Name))
	src, err := r.LookupSet(ctx, ref)
	if err != nil {
		return err
	}
	switch src.State {
	case SetComplete:
	case SetUnrecorded:
		r.logf("cache miss: %s (an interrupted cache fill)", src.Reason)
		return r.cacheMissed(ctx, list, res)
	case SetMissing:
		r.logf("cache miss: %s", src.Reason)
		return r.cacheMissed(ctx, list, res)
	default:
		r.logf("warning: cache miss: %s", src.Reason)
		return r.cacheMissed(ctx, list, res)
	}

	out, err := r.copyFromCache(ctx, src, dst, commit, hash, "")
	if errors.Is(err, errCacheChanged) {
		r.logf("cache miss: %v", err)
		return r.cacheMissed(ctx, list, res)
	}
	if err != nil {
		return err
	}
	res.Found, res.CacheHit, res.Where, res.Files, res.Bytes = true, true, r.Store.URL(dst.Prefix), len(out.Files), out.TotalSize()
	res.Prefix, res.FileList = dst.Prefix, out.Files
	return nil
}

// errCacheChanged: a cache object was replaced between the lookup and the
// copy (the copy's condition caught it): a miss.
var errCacheChanged = errors.New("the cache entry changed while it was copied")

// copyFromCache copies a complete cache entry, src, inside S3 to a set of
// the commit (the whole set, or component's), dst as the lookup found it (a
// record there that cannot be trusted is replaced), and writes its record.
// An entry replaced meanwhile is errCacheChanged: a miss, not a failure.
func (r *Runner) copyFromCache(ctx context.Context, src, dst Set, commit, hash, component string) (*manifest.Record, error) {
	rec := src.Record
	start := time.Now()
	r.logf("%scache hit: copying %s, %s, from %s", componentTag(component), words.Count(len(rec.Files), "file", "files"), progress.Size(rec.TotalSize()), r.Store.URL(src.Prefix))
	files, err := r.copySet(ctx, rec.Files, src.Prefix, dst.Prefix, func(f manifest.File) map[string]string {
		return map[string]string{MetaCommit: commit, MetaPackageHash: f.PackageHash(), MetaCodeHash: hash}
	})
	if errors.Is(err, s3store.ErrSourceChanged) {
		return nil, fmt.Errorf("%w: %w", errCacheChanged, err)
	}
	if err != nil {
		return nil, err
	}
	out := manifest.Record{
		Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: commit, Component: component, CodeHash: hash,
		Created: time.Now().UTC().Truncate(time.Second), Tool: r.Tool, Source: src.Prefix, Files: files,
	}
	if err := r.writeRecord(ctx, dst.Ref, out, dst.State.Write()); err != nil {
		return nil, err
	}
	d := time.Since(start)
	r.logf("%scopied %s, %s in %s (%s)", componentTag(component), words.Count(len(files), "file", "files"), progress.Size(out.TotalSize()), d.Round(time.Millisecond), humanRate(out.TotalSize(), d))
	return &out, nil
}

// cacheMissed keeps the file list for upload and explains the miss.
func (r *Runner) cacheMissed(ctx context.Context, list *codehash.List, res *CheckResult) error {
	// Compressing the list and reading the earlier one take about as long
	// each, for a large filter: side by side.
	kept := make(chan struct{})
	go func() { defer close(kept); r.keepList(list, "") }()
	e := r.explainMiss(ctx, "", list)
	<-kept
	e.Log(r.logf, time.Now())
	res.Miss = &e
	return nil
}

// fillCache copies a complete artifact set to cache/<code-hash>/ unless a
// complete entry is there already. An entry that cannot be trusted, or whose
// objects were replaced since it was recorded, is replaced.
func (r *Runner) fillCache(ctx context.Context, from Set, codeHash string) error {
	ref := Cache(codeHash)
	to := r.prefix(ref)
	if r.Config.CacheReadOnly {
		r.logf("cache is read-only (CODE_HASH_CACHE_READ_ONLY): %s not written", r.Store.URL(to))
		return nil
	}
	existing, err := r.LookupSet(ctx, ref)
	if err != nil {
		return fmt.Errorf("fill cache: %w", err)
	}
	switch existing.State.Write() {
	case WriteSkip:
		r.logf("cache entry %s exists already (%s)", r.Store.URL(to), words.Count(len(existing.Record.Files), "file", "files"))
		return nil
	case WriteLeave:
		r.logf("warning: cache not filled: %s", existing.Reason)
		return nil
	case WriteReplace:
		r.logf("replacing the cache entry: %s", existing.Reason)
	}
	rec := from.Record
	start := time.Now()
	files, err := r.copySet(ctx, rec.Files, from.Prefix, to, nil)
	if errors.Is(err, s3store.ErrSourceChanged) {
		// Another writer replaced an artifact since it was recorded: no entry
		// from it, and the next check of the commit misses and rebuilds.
		r.logf("warning: cache not filled: %v", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("fill cache (the artifacts themselves are complete): %w", err)
	}
	list := r.storeList(ctx, to, codeHash, rec.Component)
	out := manifest.Record{
		Format: manifest.Format, Kind: manifest.KindCache, Commit: rec.Commit, Component: rec.Component, CodeHash: codeHash,
		Created: time.Now().UTC().Truncate(time.Second), Tool: r.Tool, Source: from.Prefix, Files: files,
	}
	if err := r.writeRecord(ctx, ref, out, existing.State.Write()); err != nil {
		return err
	}
	r.logf("%scache filled: %s copied to %s in %s", componentTag(rec.Component), words.Count(len(files), "file", "files"), r.Store.URL(to), time.Since(start).Round(time.Millisecond))
	if list != nil {
		r.noteLatest(ctx, rec.Component, LatestEntry{CodeHash: codeHash, Commit: rec.Commit, Created: out.Created, Filter: FilterID(list.Patterns)})
	}
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
		etag, err := r.store().Copy(ctx, req)
		if err != nil {
			return err // it names the objects ("copy s3://…/fn1.zip: …")
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
