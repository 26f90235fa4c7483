package assets

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/pool"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// The writers of sets: a completion record (written as the write decision
// says, reconciled with a concurrent writer's), a copy from the cache to a
// commit, and a fill of the cache from a commit.

// newRecord is a completion record of this run: the one place one is made.
func (r *Runner) newRecord(kind, commit, component, codeHash, source string, files []manifest.File) manifest.Record {
	return manifest.Record{
		Format: manifest.Format, Kind: kind, Commit: commit, Component: component, CodeHash: codeHash,
		Created: time.Now().UTC().Truncate(time.Second), Tool: r.Tool, Source: source, Files: files,
	}
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
	out := r.newRecord(manifest.KindArtifacts, commit, component, hash, src.Prefix, files)
	if err := r.writeRecord(ctx, dst.Ref, out, dst.State.Write()); err != nil {
		return nil, err
	}
	d := time.Since(start)
	r.logf("%scopied %s, %s in %s (%s)", componentTag(component), words.Count(len(files), "file", "files"), progress.Size(out.TotalSize()), d.Round(time.Millisecond), humanRate(out.TotalSize(), d))
	return &out, nil
}

// fillCache copies a unit's complete set to cache/<code-hash>/ unless a
// complete entry is there already; nothing for a unit without a code hash
// or whose set is not complete. An entry that cannot be trusted, or whose
// objects were replaced since it was recorded, is replaced.
func (r *Runner) fillCache(ctx context.Context, u *unit) error {
	from, codeHash := u.set, u.hash
	if codeHash == "" || from.State != SetComplete {
		return nil
	}
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
	out := r.newRecord(manifest.KindCache, rec.Commit, rec.Component, codeHash, from.Prefix, files)
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
	err := pool.Run(ctx, r.Config.Concurrency, len(files), func(ctx context.Context, i int) error {
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
