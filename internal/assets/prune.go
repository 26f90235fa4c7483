package assets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"

	"github.com/nsmithuk/s3-asset-manager/internal/pool"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Prune deletes what no pipeline will use again: commit sets past an age
// (but the newest N), cache entries unused past an age, sets without a
// record and multipart uploads abandoned past a grace period. It never
// makes a set look found that is not: a set's record goes before its
// objects, and nothing written within the grace period is touched.

// PruneStore is what prune needs of S3 beyond Store.
type PruneStore interface {
	Store
	// Walk lists a prefix a page at a time, with each object's time.
	Walk(ctx context.Context, prefix string, fn func([]s3store.Listed) error) error
	// Delete removes keys in batches and returns those confirmed deleted.
	Delete(ctx context.Context, keys []string, done func(keys []string)) ([]string, error)
	Uploads(ctx context.Context, prefix string) ([]s3store.Upload, error)
	Abort(ctx context.Context, u s3store.Upload) error
}

var _ PruneStore = (*s3store.Store)(nil)

// What a planned deletion is, for the plan's table.
const (
	PruneCommit     = "commit"     // a commit's set (a whole set, or a commit's record of components)
	PruneComponent  = "component"  // a component's set under a commit
	PruneCache      = "cache"      // a cache entry
	PruneUnrecorded = "unrecorded" // objects without a record, or with one no reader trusts
	PruneUpload     = "upload"     // a multipart upload never completed
)

// PruneRow is one line of the plan: sets of one kind and component that go
// for one reason.
type PruneRow struct {
	Kind      string
	Component string
	Why       string
	Sets      int
	Files     int
	Bytes     int64
}

// PruneResult is the plan and what was done of it.
type PruneResult struct {
	Applied bool
	Rows    []PruneRow
	// Totals of the plan (uploads count as sets, with no files).
	Sets, Files int
	Bytes       int64
	// Kept counts the sets looked at and left alone.
	Kept int
	// Deleted are the sets and bytes whose every key the store confirmed
	// deleted (0 in a dry run).
	DeletedSets  int
	DeletedFiles int
	DeletedBytes int64
	// Aborted counts the multipart uploads aborted (among DeletedSets).
	Aborted int
}

// pset is one set as prune sees it: its objects from the listing, and what
// its record says (kept small: 10,000 sets must fit in a few MiB).
type pset struct {
	ref    SetRef
	prefix string
	objs   []s3store.Object // directly under the prefix, the record left out
	record *s3store.Listed  // the record object, when there is one
	newest time.Time        // newest LastModified of any of its objects, record included (the store's clock)

	state     SetState
	reason    string
	created   time.Time // the record's time (recorded sets)
	source    string    // the record's source (a copy from the cache)
	comps     []string  // a commit's record of components: their names
	component string    // the component the record names (a cache entry's too)
	lastUse   time.Time // cache entries: filled, or last copied from
	newerForm bool      // a later version's record, whatever the key says

	why  string // set when planned for deletion
	kind string
}

// files counts the set's artifacts: a cache entry's file list (ListName)
// is no more one than its record is; both count in bytes alone.
func (p *pset) files() int {
	n := len(p.objs)
	if p.ref.Kind == manifest.KindCache {
		for _, o := range p.objs {
			if strings.HasSuffix(o.Key, "/"+ListName) {
				n--
			}
		}
	}
	return n
}
func (p *pset) bytes() int64 {
	var n int64
	for _, o := range p.objs {
		n += o.Size
	}
	if p.record != nil {
		n += p.record.Size
	}
	return n
}

// Prune plans, and with PACKAGE_ASSETS_PRUNE_APPLY deletes.
// Ages are judged by the runner's clock (tests set one instead of waiting).
func (r *Runner) Prune(ctx context.Context) (PruneResult, error) {
	now := r.clock().Now()
	var res PruneResult
	st, ok := r.Store.(PruneStore)
	if !ok {
		return res, fail(KindConfig, errors.New("this store cannot prune"))
	}
	cfg := r.Config.Prune
	commits := fmt.Sprintf("commit sets older than %s except the newest %d (per component)", ageText(cfg.CommitAge), cfg.KeepCommits)
	if cfg.CommitAge == 0 {
		commits = "no commit set by age (PACKAGE_ASSETS_PRUNE_COMMIT_AGE=off)"
	}
	caches := "cache entries unused for " + ageText(cfg.CacheAge)
	if cfg.CacheAge == 0 {
		caches = "no cache entry by age (PACKAGE_ASSETS_PRUNE_CACHE_AGE=off)"
	}
	r.logf("pruning s3://%s/%s: %s, %s, anything without a record or abandoned for %s",
		r.Config.Bucket, r.Config.KeyPrefix, commits, caches, ageText(cfg.Grace))

	start := time.Now()
	sets, pointers, err := r.pruneList(ctx, st)
	if err != nil {
		return res, fail(KindS3, err)
	}
	r.logf("listed %s in %s", words.Count(len(sets), "set", "sets"), time.Since(start).Round(time.Millisecond))
	if len(sets) == 0 && len(pointers) == 0 {
		// A first run's likely mistake: another bucket or key prefix than
		// the pipelines'. Not an error: a new bucket is empty too.
		r.logf("no sets under %s nor %s: is this the bucket, and PACKAGE_ASSETS_KEY_PREFIX the prefix, that the pipelines use?",
			r.Store.URL(r.Config.KeyPrefix+manifest.KindArtifacts+"/"), r.Store.URL(r.Config.KeyPrefix+manifest.KindCache+"/"))
	}
	if err := r.pruneReadRecords(ctx, sets); err != nil {
		return res, fail(KindS3, err)
	}
	ups, err := r.pruneUploads(ctx, st, now)
	if err != nil {
		return res, fail(KindS3, err)
	}
	plan := planPrune(sets, now, cfg, r.Config.AcceptLegacy)
	res = summarize(plan, ups, len(sets))
	r.logPlan(res)
	if !cfg.Apply {
		r.logf("dry run: nothing deleted (PACKAGE_ASSETS_PRUNE_APPLY=true deletes what the plan lists)")
		return res, nil
	}
	res.Applied = true
	err = r.pruneApply(ctx, st, plan, ups, pointers, &res)
	what := "result: deleted"
	if err != nil {
		what = "before the failure, deleted"
	}
	r.logf("%s %s (%s, %s); %s aborted", what, words.Count(res.DeletedSets-res.Aborted, "set", "sets"), words.Count(res.DeletedFiles, "file", "files"),
		progress.Size(res.DeletedBytes), words.Count(res.Aborted, "multipart upload", "multipart uploads"))
	if err != nil {
		return res, fail(KindS3, err)
	}
	return res, nil
}

func ageText(d time.Duration) string {
	switch {
	case d == 0:
		return "(off)"
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// pruneList lists artifacts/ and cache/ and groups the objects into sets.
// The listings run side by side, one per leading character of the ids
// (hex commits, code hashes of [0-9a-z]): a bucket of 200,000 objects is
// 200 pages, too slow one after the other. Keys that belong to no set this
// tool writes (another id syntax, deeper paths) are left alone.
func (r *Runner) pruneList(ctx context.Context, st PruneStore) (map[string]*pset, []string, error) {
	var (
		mu       sync.Mutex
		sets     = map[string]*pset{}
		pointers []string
	)
	const first = "0123456789abcdefghijklmnopqrstuvwxyz"
	var prefixes []string
	for _, kind := range []string{manifest.KindArtifacts, manifest.KindCache} {
		for _, c := range first {
			if kind == manifest.KindArtifacts && c > 'f' {
				break
			}
			prefixes = append(prefixes, r.Config.KeyPrefix+kind+"/"+string(c))
		}
	}
	latest := r.Config.KeyPrefix + "cache/" + strings.TrimSuffix(LatestName, ".json")
	prefixes = append(prefixes, latest) // both pointer names start so
	// Eight at once: each page is a burst of garbage from the XML decoder.
	err := pool.Run(ctx, min(r.Config.Concurrency, 8), len(prefixes), func(ctx context.Context, i int) error {
		return st.Walk(ctx, prefixes[i], func(objs []s3store.Listed) error {
			mu.Lock()
			defer mu.Unlock()
			for _, o := range objs {
				if strings.HasPrefix(o.Key, latest) {
					if r.isPointer(o.Key) {
						pointers = append(pointers, o.Key)
					}
					continue
				}
				r.addListed(sets, o)
			}
			return nil
		})
	})
	return sets, pointers, err
}

// isPointer reports whether key is a pointer this tool writes (latestKey's:
// the whole filter's, or a component's). Another object beside them (a
// copy kept by hand, a name no component can have) is not prune's to
// rewrite, nor to print.
func (r *Runner) isPointer(key string) bool {
	name, ok := strings.CutPrefix(key, r.Config.KeyPrefix+"cache/"+LatestDir)
	if !ok {
		return key == r.latestKey("")
	}
	name, ok = strings.CutSuffix(name, ".json")
	return ok && manifest.ValidComponent(name) == nil
}

// addListed puts one listed object into its set.
func (r *Runner) addListed(sets map[string]*pset, o s3store.Listed) {
	rel := strings.TrimPrefix(o.Key, r.Config.KeyPrefix)
	parts := strings.Split(rel, "/")
	var ref SetRef
	switch {
	case len(parts) == 3 && parts[0] == manifest.KindArtifacts && manifest.ValidCommit(parts[1]):
		ref = Artifacts(parts[1])
	case len(parts) == 4 && parts[0] == manifest.KindArtifacts && manifest.ValidCommit(parts[1]) && manifest.ValidComponent(parts[2]) == nil:
		ref = ComponentSet(parts[1], parts[2])
	case len(parts) == 3 && parts[0] == manifest.KindCache && manifest.ValidCodeHash(parts[1]):
		ref = Cache(parts[1])
	default:
		return
	}
	name := parts[len(parts)-1]
	if name == "" {
		return
	}
	prefix := strings.TrimSuffix(o.Key, name)
	p := sets[prefix]
	if p == nil {
		p = &pset{ref: ref, prefix: prefix}
		sets[prefix] = p
	}
	if o.LastModified.After(p.newest) {
		p.newest = o.LastModified
	}
	if name == manifest.Name {
		l := o
		p.record = &l
		return
	}
	p.objs = append(p.objs, s3store.Object{Key: o.Key, Size: o.Size, ETag: o.ETag})
}

// pruneReadRecords reads every set's record and judges the set by the
// lookup's own rules (judgeSet), against the listing already made. A
// commit's record of components is judged against its components' objects
// too, as every reader does.
func (r *Runner) pruneReadRecords(ctx context.Context, sets map[string]*pset) error {
	var withRecord []*pset
	components := map[string][]s3store.Object{} // a commit's components' objects, by commit
	for _, p := range sets {
		if p.ref.Kind == manifest.KindArtifacts && p.ref.Component != "" {
			components[p.ref.ID] = append(components[p.ref.ID], p.objs...)
		}
	}
	for _, p := range sets {
		if p.record == nil {
			p.state, p.reason = SetUnrecorded, fmt.Sprintf("%s but no completion record", words.Count(len(p.objs), "object", "objects"))
			continue
		}
		withRecord = append(withRecord, p)
	}
	var total int64
	for _, p := range withRecord {
		total += p.record.Size
	}
	r.logf("reading %d completion records", len(withRecord))
	rep, stop := r.startProgress("reading records", total, len(withRecord))
	defer stop()
	return pool.Run(ctx, r.Config.Concurrency, len(withRecord), func(ctx context.Context, i int) error {
		p := withRecord[i]
		data, err := r.Store.ReadSmall(ctx, p.record.Key, manifest.MaxSize)
		if err != nil && !stored(err) {
			return err
		}
		tree := p.objs
		if p.ref.Component == "" && p.ref.Kind == manifest.KindArtifacts {
			tree = append(slices.Clone(p.objs), components[p.ref.ID]...)
		}
		set := r.judgeSet(Set{Ref: p.ref, Prefix: p.prefix}, r.decodeRecord(data, err), tree)
		p.state, p.reason = set.State, set.Reason
		if set.State == SetMissing {
			// The record vanished between the listing and the read.
			p.state, p.reason = SetUnrecorded, "its record was deleted while prune ran"
		}
		if _, derr := manifest.Decode(data, nil); errors.Is(derr, manifest.ErrNewerFormat) {
			p.newerForm = true
		}
		if rec := set.Record; rec != nil {
			p.created, p.source, p.component = rec.Created, rec.Source, rec.Component
			for _, c := range rec.Components {
				p.comps = append(p.comps, c.Name)
			}
		}
		if rep != nil {
			rep.Add(p.record.Size)
			rep.FileDone()
		}
		return nil
	})
}

// pruneUploads lists the multipart uploads under artifacts/ and cache/
// started longer ago than the grace period.
func (r *Runner) pruneUploads(ctx context.Context, st PruneStore, now time.Time) ([]s3store.Upload, error) {
	var old []s3store.Upload
	for _, kind := range []string{manifest.KindArtifacts, manifest.KindCache} {
		ups, err := st.Uploads(ctx, r.Config.KeyPrefix+kind+"/")
		if err != nil {
			return nil, err
		}
		for _, u := range ups {
			if now.Sub(u.Initiated) > r.Config.Prune.Grace {
				old = append(old, u)
			}
		}
	}
	return old, nil
}

// planPrune decides, set by set, what goes and why. It reads nothing: the
// sets carry what their listing and records said.
//
// With legacy (PACKAGE_ASSETS_ACCEPT_LEGACY, where check counts a commit's
// objects without a record as found), such a commit set is judged as a
// commit, by its newest object's time, not removed as unrecorded.
func planPrune(sets map[string]*pset, now time.Time, cfg config.PruneSettings, legacy bool) []*pset {
	// When each cache entry was last used: filled (its record), or copied
	// from by a hit (the copy's record names it as its source). The hit
	// itself writes nothing more, so check's hot path costs nothing.
	for _, p := range sets {
		if p.ref.Kind == manifest.KindCache && p.state == SetComplete {
			p.lastUse = p.created
		}
	}
	for _, p := range sets {
		if p.ref.Kind != manifest.KindArtifacts || p.source == "" || p.created.IsZero() {
			continue
		}
		if c := sets[p.source]; c != nil && c.ref.Kind == manifest.KindCache && p.created.After(c.lastUse) {
			c.lastUse = p.created
		}
	}

	// The newest N of each component ("" for whole sets) stay.
	groups := map[string][]*pset{}
	var plan []*pset
	for _, p := range sets {
		young := p.young(now, cfg.Grace)
		asCommit := legacy && p.state == SetUnrecorded && p.ref.Kind == manifest.KindArtifacts && p.ref.Component == ""
		if asCommit {
			p.created = p.newest
		}
		if (p.state == SetComplete || asCommit) && p.ref.Kind == manifest.KindArtifacts && len(p.comps) == 0 {
			// Young ones too: they are the newest, and count among the N.
			groups[p.ref.Component] = append(groups[p.ref.Component], p)
		}
		switch {
		case young:
			// An upload, copy or fill may be under way: never touched.
		case p.newerForm:
			// A later version's: not this version's to judge.
		case asCommit:
			// Judged with the commits below.
		case p.state == SetUnrecorded || p.state == SetUntrusted || p.state == SetDiffers || p.state == SetNewer:
			p.kind, p.why = PruneUnrecorded, unrecordedWhy(p.state)
			plan = append(plan, p)
		case p.ref.Kind == manifest.KindCache:
			if cfg.CacheAge > 0 && now.Sub(p.lastUse) > cfg.CacheAge {
				p.kind, p.why = PruneCache, "not used for "+ageText(cfg.CacheAge)
				plan = append(plan, p)
			}
		}
	}
	for comp, g := range groups {
		slices.SortFunc(g, func(a, b *pset) int {
			if c := b.created.Compare(a.created); c != 0 {
				return c
			}
			return strings.Compare(a.ref.ID, b.ref.ID)
		})
		if cfg.CommitAge == 0 {
			continue
		}
		for _, p := range g[min(len(g), cfg.KeepCommits):] {
			if now.Sub(p.created) > cfg.CommitAge && !p.young(now, cfg.Grace) {
				p.kind = PruneCommit
				if comp != "" {
					p.kind = PruneComponent
				}
				p.why = fmt.Sprintf("recorded more than %s ago, not among the newest %d", ageText(cfg.CommitAge), cfg.KeepCommits)
				plan = append(plan, p)
			}
		}
	}
	// A commit's record of components goes with any of its components,
	// however young: it would no longer describe what is stored, and a
	// record left over a deleted component's files counts it found. Deleting
	// a record only ever makes a miss.
	for _, p := range sets {
		if len(p.comps) == 0 || p.why != "" || p.state != SetComplete {
			continue
		}
		for _, c := range p.comps {
			if q := sets[p.prefix+c+"/"]; q != nil && q.why != "" {
				p.kind, p.why = PruneCommit, "the record of components whose sets go"
				plan = append(plan, p)
				break
			}
		}
	}
	slices.SortFunc(plan, func(a, b *pset) int { return strings.Compare(a.prefix, b.prefix) })
	return plan
}

// young reports a set written within the grace period, which may be an
// upload, copy or fill under way. A complete set's time is its record's
// (written last, by the writer's clock); any other's, its newest object's.
func (p *pset) young(now time.Time, grace time.Duration) bool {
	if p.state == SetComplete {
		return now.Sub(p.created) < grace
	}
	return now.Sub(latest(p.newest, p.created)) < grace
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func unrecordedWhy(s SetState) string {
	switch s {
	case SetUntrusted:
		return "its record is not trusted (unsigned, damaged or misplaced)"
	case SetDiffers:
		return "its objects differ from its record"
	case SetNewer:
		return "its record is of a newer format"
	}
	return "no completion record (an interrupted upload or copy, or the original tool's)"
}

// summarize groups the plan into the table's rows.
func summarize(plan []*pset, ups []s3store.Upload, looked int) PruneResult {
	var res PruneResult
	rows := map[[3]string]*PruneRow{}
	for _, p := range plan {
		comp := p.ref.Component
		if comp == "" {
			comp = p.component // a cache entry of a component
		}
		k := [3]string{p.kind, comp, p.why}
		row := rows[k]
		if row == nil {
			row = &PruneRow{Kind: p.kind, Component: comp, Why: p.why}
			rows[k] = row
		}
		row.Sets++
		row.Files += p.files()
		row.Bytes += p.bytes()
	}
	if len(ups) > 0 {
		rows[[3]string{PruneUpload}] = &PruneRow{Kind: PruneUpload, Why: "multipart upload abandoned", Sets: len(ups)}
	}
	order := map[string]int{PruneCommit: 0, PruneComponent: 1, PruneCache: 2, PruneUnrecorded: 3, PruneUpload: 4}
	for _, row := range rows {
		res.Rows = append(res.Rows, *row)
		res.Sets += row.Sets
		res.Files += row.Files
		res.Bytes += row.Bytes
	}
	slices.SortFunc(res.Rows, func(a, b PruneRow) int {
		if c := order[a.Kind] - order[b.Kind]; c != 0 {
			return c
		}
		if c := strings.Compare(a.Component, b.Component); c != 0 {
			return c
		}
		return strings.Compare(a.Why, b.Why)
	})
	res.Kept = looked - len(plan)
	return res
}

// logPlan prints the plan as a table.
func (r *Runner) logPlan(res PruneResult) {
	if len(res.Rows) == 0 {
		r.logf("plan: nothing to prune (%s kept)", words.Count(res.Kept, "set", "sets"))
		return
	}
	var b strings.Builder
	WritePruneTable(&b, res)
	r.logf("plan (%s kept):\n%s", words.Count(res.Kept, "set", "sets"), strings.TrimRight(b.String(), "\n"))
}

// WritePruneTable writes the plan as aligned text.
func WritePruneTable(w io.Writer, res PruneResult) {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  kind\tcomponent\tsets\tfiles\tsize\twhy")
	for _, row := range res.Rows {
		comp := words.Printable(row.Component) // from a key or a record
		if comp == "" {
			comp = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\n", row.Kind, comp, row.Sets, row.Files, progress.Size(row.Bytes), row.Why)
	}
	fmt.Fprintf(tw, "  total\t\t%d\t%d\t%s\t\n", res.Sets, res.Files, progress.Size(res.Bytes))
	tw.Flush()
}

// pruneApply deletes the plan: first the pointers drop the cache entries
// that go, then every record (a commit's record of components before its
// components'), then the objects of the sets whose record is confirmed
// gone. So at every moment a set is complete or has no record: a check
// sees a miss, never a partial set as found, and a prune stopped half-way
// leaves sets without a record, which the next one finishes (they are old
// enough to be past the grace period).
func (r *Runner) pruneApply(ctx context.Context, st PruneStore, plan []*pset, ups []s3store.Upload, pointers []string, res *PruneResult) error {
	gone := map[string]bool{}
	for _, p := range plan {
		if p.ref.Kind == manifest.KindCache {
			gone[p.ref.ID] = true
		}
	}
	if err := r.prunePointers(ctx, pointers, gone); err != nil {
		return err
	}

	var keys, first []string
	sizes := map[string]int64{}
	for _, p := range plan {
		for _, o := range p.objs {
			sizes[o.Key] = o.Size
		}
		if p.record == nil {
			continue
		}
		sizes[p.record.Key] = p.record.Size
		if len(p.comps) > 0 {
			first = append(first, p.record.Key)
		}
	}
	total := int64(0)
	for _, n := range sizes {
		total += n
	}
	rep, stop := r.startProgress("deleting", total, len(sizes))
	defer stop()
	done := func(ks []string) {
		for _, k := range ks {
			if rep != nil {
				rep.Add(sizes[k])
				rep.FileDone()
			}
		}
	}
	deleted := map[string]bool{}
	got, firstErr := st.Delete(ctx, first, done)
	for _, k := range got {
		deleted[k] = true
	}
	if s3store.StoreRefused(firstErr) {
		return fmt.Errorf("delete records: %w", firstErr)
	}
	// A refused key fails its own set alone: the other sets go on, their
	// objects included. A record the store keeps refusing (a bucket policy
	// protecting it) would otherwise leave the plan's other sets without a
	// record at every prune, and their objects never deleted. A component's
	// record waits for its commit's record of components.
	held := map[string]bool{}
	var second []string
	for _, p := range plan {
		if len(p.comps) > 0 && !deleted[p.record.Key] {
			held[p.ref.ID] = true
		}
	}
	for _, p := range plan {
		if p.record != nil && len(p.comps) == 0 && !(p.ref.Component != "" && held[p.ref.ID]) {
			second = append(second, p.record.Key)
		}
	}
	got, secondErr := st.Delete(ctx, second, done)
	for _, k := range got {
		deleted[k] = true
	}
	if s3store.StoreRefused(secondErr) {
		return errors.Join(firstErr, fmt.Errorf("delete records: %w", secondErr))
	}
	var recordsErr error
	for _, err := range []error{firstErr, secondErr} {
		if err != nil {
			recordsErr = errors.Join(recordsErr, fmt.Errorf("delete records: %w", err))
		}
	}
	for _, p := range plan {
		if p.record == nil || deleted[p.record.Key] {
			for _, o := range p.objs {
				keys = append(keys, o.Key)
			}
		}
	}
	got, err := st.Delete(ctx, keys, done)
	for _, k := range got {
		deleted[k] = true
	}
	for _, p := range plan {
		if p.record != nil && !deleted[p.record.Key] {
			continue
		}
		all := true
		for _, o := range p.objs {
			all = all && deleted[o.Key]
		}
		if all {
			res.DeletedSets++
			res.DeletedFiles += p.files()
			res.DeletedBytes += p.bytes()
		}
	}
	var objectsErr error
	if err != nil {
		objectsErr = fmt.Errorf("delete objects: %w", err)
		if s3store.StoreRefused(err) {
			return errors.Join(recordsErr, objectsErr)
		}
	}
	// The aborts depend on no set: a key refused for good (a bucket policy,
	// Object Lock) must not keep every later prune from aborting them.
	abortErr := r.pruneAborts(ctx, st, ups, res)
	return errors.Join(recordsErr, objectsErr, abortErr)
}

// abortsShown is how many refused aborts an error names (a role without
// s3:AbortMultipartUpload refuses them all).
const abortsShown = 3

// pruneAborts aborts the abandoned multipart uploads. One the store
// refuses alone fails alone, as a refused key does; an error of the
// store's stops the rest.
func (r *Runner) pruneAborts(ctx context.Context, st PruneStore, ups []s3store.Upload, res *PruneResult) error {
	var refused []error
	var whole error
	for _, u := range ups {
		if err := st.Abort(ctx, u); err != nil {
			if s3store.StoreRefused(err) {
				whole = err // the next would fail as well
				break
			}
			refused = append(refused, err)
			continue
		}
		res.DeletedSets++
		res.Aborted++
	}
	if len(refused) > abortsShown {
		more := fmt.Errorf("and %d more multipart uploads refused", len(refused)-abortsShown)
		refused = append(refused[:abortsShown], more)
	}
	return errors.Join(append(refused, whole)...)
}

// prunePointers rewrites each pointer the explanation reads without the
// cache entries that go. Advice only, as when upload writes it.
func (r *Runner) prunePointers(ctx context.Context, pointers []string, gone map[string]bool) error {
	for _, key := range pointers {
		data, err := r.Store.ReadSmall(ctx, key, maxLatestSize)
		if err != nil {
			if stored(err) {
				continue
			}
			return err
		}
		l, ok := decodeLatest(data)
		if !ok {
			continue
		}
		kept := slices.DeleteFunc(slices.Clone(l.Entries), func(e LatestEntry) bool { return gone[e.CodeHash] })
		if len(kept) == len(l.Entries) {
			continue
		}
		body, err := json.Marshal(Latest{Format: LatestFormat, Entries: kept})
		if err != nil {
			return err
		}
		if err := r.Store.WriteRecord(ctx, key, body, false); err != nil {
			return err
		}
		r.logf("%s: dropped %s", r.Store.URL(key), words.Count(len(l.Entries)-len(kept), "pruned cache entry", "pruned cache entries"))
	}
	return nil
}
