package assets

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"

	"github.com/nsmithuk/s3-asset-manager/internal/pool"
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
	r.workspace().dropSpares()
	if err != nil {
		r.workspace().rollback()
		return res, err
	}
	if !res.Found && r.Config.FailOnMiss {
		return res, fail(KindNotFound, fmt.Errorf("%w: %s, and PACKAGE_ASSETS_FAIL_ON_MISS is set", ErrSetNotFound, r.lookedFor(res)))
	}
	return res, nil
}

// lookedFor says what a check that found nothing looked for: the set and the
// cache entry, or the components to build.
func (r *Runner) lookedFor(res CheckResult) string {
	if r.Config.ComponentsEnabled() {
		var names []string
		for _, c := range res.Components {
			if c.Checked && c.Build {
				names = append(names, words.Printable(c.Name))
			}
		}
		return fmt.Sprintf("%s to build (%s)", words.Count(len(names), "component", "components"), strings.Join(names, ", "))
	}
	looked := r.Store.URL(r.prefix(Artifacts(res.Commit)))
	if res.CodeHash != "" {
		looked += " nor " + r.Store.URL(r.prefix(Cache(res.CodeHash)))
	}
	return "no complete set at " + looked
}

// RollBack removes every marker the last Check wrote, for a caller whose
// own part of the check failed after it (its outputs could not be written):
// a failed check leaves no marker.
func (r *Runner) RollBack() {
	if r.work != nil {
		r.work.rollback()
	}
}

func (r *Runner) check(ctx context.Context) (CheckResult, error) {
	var res CheckResult
	w := r.workspace()
	// Every setting before anything is written.
	if r.Config.Component != "" && !r.Config.ComponentsEnabled() {
		return res, fail(KindConfig, errors.New("PACKAGE_COMPONENT is set but PACKAGE_COMPONENTS is not: declare the components"))
	}
	// The earlier run's markers are moved aside (a rename a component) while
	// the checkout is opened and the commit's set is looked up; whatever
	// fails, the check ends only once they are.
	prepared := make(chan error, 1)
	go func() { prepared <- w.prepare() }()
	ctx, cancel := context.WithCancel(ctx)
	var commitSet, compSet *pendingSet
	// Whatever returns, no lookup outlives the check (wait is idempotent:
	// those already waited for return at once).
	defer func() {
		cancel()
		commitSet.wait()
		compSet.wait()
	}()
	repo, err := r.OpenRepo(r.Config.RepoPath)
	if err != nil {
		err = failIn(KindGit, "open git repository", err) // its error names the path
	}
	var commit string
	if err == nil {
		if commit, err = repo.Head(); err != nil {
			err = fail(KindGit, err)
		}
	}
	if err == nil {
		commitSet = r.lookupLater(ctx, Artifacts(commit))
		if r.Config.Component != "" && r.Config.ComponentsEnabled() {
			compSet = r.lookupLater(ctx, ComponentSet(commit, r.Config.Component))
		}
	}
	if perr := <-prepared; perr != nil || err != nil {
		return res, cmp.Or(perr, err)
	}
	res.Commit = commit
	r.logf("commit %s (HEAD of %s)", commit, r.Config.RepoPath)
	if err := w.writeCommit(commit); err != nil {
		return res, err
	}
	if r.Config.ComponentsEnabled() {
		return res, r.checkComponents(ctx, repo, commit, commitSet, compSet, &res)
	}

	// The whole commit: one unnamed unit, hashed only if its lookup misses.
	u := &unit{hashFn: func(ctx context.Context) (*codehash.List, error) {
		start := time.Now()
		list, err := repo.CodeHash(ctx)
		if err != nil {
			return nil, failIn(KindGit, "code hash", err)
		}
		r.logf("code hash %s over %s (%s)", list.CodeHash, words.Count(len(list.Files), "file", "files"), time.Since(start).Round(time.Millisecond))
		return list, w.writeCodeHash(list.CodeHash)
	}}
	if u.set, err = commitSet.wait(); err != nil {
		return res, err
	}
	if err := r.resolve(ctx, commit, u, r.Config.CacheEnabled()); err != nil {
		return res, err
	}
	res.CodeHash, res.Miss = u.hash, u.miss
	if !u.found {
		if !r.Config.FailOnMiss {
			r.logf("result: not found, the build must run and upload")
		}
		return res, nil
	}
	res.Found, res.CacheHit, res.Where, res.Prefix = true, u.hit, r.Store.URL(u.set.Prefix), u.set.Prefix
	if rec := u.set.Record; rec != nil && !u.legacy {
		res.Files, res.Bytes, res.FileList = len(rec.Files), rec.TotalSize(), rec.Files
	}
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

// checkComponents is check with PACKAGE_COMPONENTS: every component (or the
// one PACKAGE_COMPONENT names) is a named unit, resolved as the whole
// commit is. When that leaves every component complete, the commit's own
// record is written.
func (r *Runner) checkComponents(ctx context.Context, repo Repo, commit string, commitLookup, compLookup *pendingSet, res *CheckResult) error {
	// The commit's own set (and PACKAGE_COMPONENT's) is looked up while the
	// components are named.
	names, err := repo.ComponentNames(ctx)
	commitSet, commitErr := commitLookup.wait()
	compSet, compErr := compLookup.wait()
	if err != nil {
		return failIn(KindGit, "component names", err)
	}
	if err := errors.Join(commitErr, compErr); err != nil {
		return err
	}
	if err := r.workspace().setAsideLinked(names); err != nil {
		return err
	}
	if done, err := r.foundInRecord(commit, names, commitSet, compSet, res); done || err != nil {
		return err
	}

	start := time.Now()
	codes, err := repo.Components(ctx)
	if err != nil {
		return failIn(KindGit, "code hash", err)
	}
	files := 0
	states := make([]ComponentState, len(codes))
	units := make([]*unit, len(codes))
	ptrs := &pointerIndex{} // listed if a component misses
	for i, c := range codes {
		states[i] = ComponentState{Name: c.Name, CodeHash: c.Hash}
		units[i] = &unit{name: c.Name, hash: c.Hash, list: c.List, pointers: ptrs}
		files += c.Files
	}
	if names == nil { // known only now
		all := make([]string, len(codes))
		for i, c := range codes {
			all[i] = c.Name
		}
		if err := r.workspace().setAsideLinked(all); err != nil {
			return err
		}
	}
	r.logf("code hashes of %s over %s (%s)", words.Count(len(codes), "component", "components"), words.Count(files, "file", "files"), time.Since(start).Round(time.Millisecond))
	sel, err := r.selectComponents(states)
	if err != nil {
		return err
	}
	if r.Config.Component != "" && len(sel) == 1 {
		units[sel[0]].set = compSet // looked up already
	}
	// The commit's listing (at any depth) shows which components have
	// anything stored under the commit: the others are missing, with no
	// request of their own (a new commit's hundred components: two hundred
	// requests fewer before their cache lookups).
	stored := commitSet.components()
	for _, i := range sel {
		if _, has := stored[units[i].name]; !has && units[i].set.State == 0 {
			u := units[i]
			ref := u.ref(commit)
			u.set = r.judgeSet(Set{Ref: ref, Prefix: r.prefix(ref)}, recordRead{readErr: s3store.ErrNotFound}, nil)
		}
	}
	err = pool.Run(ctx, r.Config.Concurrency, len(sel), func(ctx context.Context, k int) error {
		u, st := units[sel[k]], &states[sel[k]]
		st.Checked = true
		if err := r.resolve(ctx, commit, u, true); err != nil {
			return err
		}
		switch {
		case u.found:
			st.Found, st.CacheHit, st.Files, st.Bytes = true, u.hit, len(u.set.Record.Files), u.set.Record.TotalSize()
		case u.miss != nil:
			st.Build, st.Reason = true, u.miss.ShortSentence()
		default:
			st.Build, st.Reason = true, u.reason
		}
		return nil
	})
	if err != nil {
		return err
	}
	res.Components = states
	res.Where = r.Store.URL(r.prefix(Artifacts(commit)))
	res.Found, res.CacheHit = true, false
	for _, i := range sel {
		res.Found = res.Found && states[i].Found
		res.CacheHit = res.CacheHit || states[i].CacheHit
		res.Files += states[i].Files
		res.Bytes += states[i].Bytes
	}
	res.CodeHash = r.singleCodeHash(states)
	if err := r.writeComponentMarkers(commit, states, res.Found); err != nil {
		return err
	}
	if !res.Found {
		return nil
	}
	sets := make([]Set, len(units))
	for i, u := range units {
		sets[i] = u.set
	}
	return r.completeCommit(ctx, commit, states, sets, commitSet)
}

// foundInRecord ends a check with components whose commit is complete
// without hashing anything (done true): when the commit's record is
// complete (every component file it names stored as recorded) and names
// exactly this configuration's components (names, nil when they cannot be
// told without the hash), and, for PACKAGE_COMPONENT, that component's own
// set is complete too. Each component's code hash is the record's. Anything
// else is for the code hash (done false): a record of another component
// list says nothing of the components this configuration adds.
//
// The declaration's problems only the tree shows (a pattern selecting no
// file, issue 20) are reported on the hashing path alone: a commit that
// completed under the same names was hashed, and so valid, for this same
// tracked tree.
func (r *Runner) foundInRecord(commit string, names []string, commitSet, compSet Set, res *CheckResult) (done bool, err error) {
	if names == nil || commitSet.State != SetComplete {
		return false, nil
	}
	rec := commitSet.Record
	if !slices.Equal(componentNames(rec.Components), names) {
		return false, nil
	}
	// The commit's record counts only while every component's own record
	// is stored too (prune deletes a component's record before its files):
	// the listing the lookup made already says, at no extra request.
	recorded := commitSet.components()
	for _, c := range rec.Components {
		if !recorded[c.Name] {
			return false, nil
		}
	}
	states := make([]ComponentState, len(rec.Components))
	for i, c := range rec.Components {
		states[i] = ComponentState{Name: c.Name, CodeHash: c.CodeHash}
	}
	slices.SortFunc(states, func(a, b ComponentState) int { return strings.Compare(a.Name, b.Name) })
	sel, err := r.selectComponents(states)
	if err != nil || r.Config.Component != "" && compSet.State != SetComplete {
		return false, nil // the hashing path says why
	}
	// Each component's files in the record ("<name>/<file>").
	type count struct {
		files int
		bytes int64
	}
	counts := make(map[string]count, len(rec.Components))
	for _, f := range rec.Files {
		if name, _, ok := strings.Cut(f.Name, "/"); ok {
			c := counts[name]
			c.files++
			c.bytes += f.Size
			counts[name] = c
		}
	}
	for _, i := range sel {
		st := &states[i]
		st.Checked, st.Found = true, true
		if r.Config.Component != "" {
			st.Files, st.Bytes = len(compSet.Record.Files), compSet.Record.TotalSize()
		} else {
			st.Files, st.Bytes = counts[st.Name].files, counts[st.Name].bytes
		}
		res.Files += st.Files
		res.Bytes += st.Bytes
	}
	res.Components, res.Found = states, true
	res.Where = r.Store.URL(r.prefix(Artifacts(commit)))
	res.CodeHash = r.singleCodeHash(states)
	r.logf("found: %s: the commit's record is complete with this configuration's %s (%s, %s, recorded %s); nothing hashed",
		res.Where, words.Count(len(states), "component", "components"), words.Count(len(rec.Files), "file", "files"),
		progress.Size(rec.TotalSize()), rec.Created.UTC().Format(time.RFC3339))
	return true, r.writeComponentMarkers(commit, states, true)
}

// writeComponentMarkers leaves in the package directory what the build and
// upload need (workspace.writeComponents), and .found when every component
// this check dealt with is complete.
func (r *Runner) writeComponentMarkers(commit string, states []ComponentState, all bool) error {
	w := r.workspace()
	build, err := w.writeComponents(commit, states)
	if err != nil {
		return err
	}
	if all {
		if err := w.writeFound(""); err != nil {
			return err
		}
		r.logf("result: every component is complete, the build can be skipped (%s written)", w.path(FoundFile))
		return nil
	}
	r.logf("result: %s to build, listed in %s: %s", words.Count(len(build), "component", "components"),
		w.path(ToBuildFile), strings.Join(build, ", "))
	return nil
}

// resolve looks a unit up under the commit: complete, else (unless a later
// version's record is there, which a copy would overwrite) a complete cache
// entry under the unit's code hash, computed now, copied to the commit;
// else the unit is to build, and its miss is explained.
func (r *Runner) resolve(ctx context.Context, commit string, u *unit, useCache bool) error {
	logf := u.logf(r.logf)
	ref := u.ref(commit)
	if u.name == "" {
		logf("looking up %s", r.Store.URL(r.prefix(ref)+manifest.Name))
	}
	start := time.Now()
	set := u.set
	if set.State == 0 { // not looked up yet
		var err error
		if set, err = r.LookupSet(ctx, ref); err != nil {
			return err
		}
	}
	u.set, u.reason = set, set.Reason
	switch set.State {
	case SetComplete:
		rec := set.Record
		u.found = true
		logf("found: %s, %s, complete since %s (%s)", words.Count(len(rec.Files), "file", "files"), progress.Size(rec.TotalSize()),
			rec.Created.UTC().Format(time.RFC3339), time.Since(start).Round(time.Millisecond))
		return nil
	case SetUnrecorded:
		switch {
		case u.name != "":
			logf("not found: %s", set.Reason)
		case r.Config.AcceptLegacy:
			// The original tool's layout (it had no components).
			u.found, u.legacy = true, true
			logf("found objects under %s without a completion record; counted as found (PACKAGE_ASSETS_ACCEPT_LEGACY)", r.Store.URL(set.Prefix))
			return nil
		default:
			logf("not found: %s (an interrupted upload, or written by the original tool; PACKAGE_ASSETS_ACCEPT_LEGACY=true accepts the latter)", set.Reason)
		}
	case SetNewer:
		logf("warning: not found: %s; the cache is not copied over it", set.Reason)
	case SetUntrusted, SetDiffers:
		logf("warning: not found: %s; a cache hit or the next upload replaces it", set.Reason)
	default:
		logf("not found: %s", set.Reason)
	}
	if !useCache || set.State.Write() == WriteLeave {
		return nil
	}

	// The whole commit's pointer (for the explanation of a miss) depends
	// on neither the hash nor the cache lookup's answer: it is read while
	// the hash is computed, on a connection the cache lookup's two requests
	// do not need (one request off a miss's path; a hit drops the answer).
	// Not a component's: a hundred components found in the cache would
	// make a hundred reads for nothing (their pointerIndex lists them).
	if u.pointers == nil {
		u.pointer = r.readLater(ctx, r.latestKey(u.name), maxLatestSize)
		defer u.pointer.stop() // nothing of the check left running
	}
	hash, err := u.codeHash(ctx)
	if err != nil {
		return err
	}
	list := r.encodeList(u.list) // for a miss; from now, beside the lookups
	cache := Cache(hash)
	if u.name == "" {
		logf("looking up %s", r.Store.URL(r.prefix(cache)+manifest.Name))
	}
	src, err := r.LookupSet(ctx, cache)
	if err != nil {
		return err
	}
	switch src.State {
	case SetComplete:
	case SetUnrecorded:
		logf("cache miss: %s (an interrupted cache fill)", src.Reason)
		return r.missed(ctx, u, list)
	case SetMissing:
		logf("cache miss: %s", src.Reason)
		return r.missed(ctx, u, list)
	default:
		logf("warning: cache miss: %s", src.Reason)
		return r.missed(ctx, u, list)
	}
	out, err := r.copyFromCache(ctx, src, u.set, commit, hash, u.name)
	if errors.Is(err, errCacheChanged) {
		logf("cache miss: %v", err)
		return r.missed(ctx, u, list)
	}
	if err != nil {
		return err
	}
	u.found, u.hit = true, true
	u.set.State, u.set.Record = SetComplete, out
	return nil
}

// missed keeps the unit's file list for upload (to store beside the cache
// entry it fills) and explains the miss against the unit's nearest earlier
// build.
func (r *Runner) missed(ctx context.Context, u *unit, list encodedList) error {
	// Compressing the list (begun before the cache lookup) and reading the
	// earlier one take about as long each, for a large filter: side by side.
	kept := make(chan struct{})
	go func() { defer close(kept); r.keepList(list, u.name) }()
	e := r.explainMiss(ctx, u.name, u.list, u.pointers, u.pointer)
	<-kept
	e.Log(u.logf(r.logf), time.Now())
	u.miss = &e
	return nil
}

// pendingSet is a lookup under way (lookupLater).
type pendingSet struct {
	done chan struct{}
	set  Set
	err  error
}

// lookupLater starts LookupSet; wait returns its answer.
func (r *Runner) lookupLater(ctx context.Context, ref SetRef) *pendingSet {
	p := &pendingSet{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.set, p.err = r.LookupSet(ctx, ref)
	}()
	return p
}

// wait returns the lookup's answer; a nil pendingSet (none started) is a
// zero Set, not looked up.
func (p *pendingSet) wait() (Set, error) {
	if p == nil {
		return Set{}, nil
	}
	<-p.done
	return p.set, p.err
}

// pendingRead is a ReadSmall under way (readLater).
type pendingRead struct {
	done   chan struct{}
	cancel context.CancelFunc
	data   []byte
	err    error
}

// readLater starts ReadSmall; wait returns its answer, stop abandons it.
func (r *Runner) readLater(ctx context.Context, key string, max int64) *pendingRead {
	ctx, cancel := context.WithCancel(ctx)
	p := &pendingRead{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(p.done)
		p.data, p.err = r.store().ReadSmall(ctx, key, max)
	}()
	return p
}

// wait returns the read's answer.
func (p *pendingRead) wait() ([]byte, error) {
	<-p.done
	return p.data, p.err
}

// stop cancels the read if it is still under way, and returns once it has
// ended; a nil pendingRead is none.
func (p *pendingRead) stop() {
	if p == nil {
		return
	}
	p.cancel()
	<-p.done
}
