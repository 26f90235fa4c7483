package assets

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// ComponentCode is one component's code hash.
type ComponentCode struct {
	Name  string
	Hash  string
	Files int // source files it covers
	// List is what went into the hash, to explain a miss (nil: none).
	List *codehash.List
}

// ComponentState is one component's state: what check found, and after
// upload what was stored. It is the one place a component's outcome is
// kept; the package directory's files, the step outputs, the dotenv file and
// the job summary are all made from it.
type ComponentState struct {
	Name     string `json:"name"`
	CodeHash string `json:"codeHash"`
	// Checked: this check looked the component up (every component, or the
	// one PACKAGE_COMPONENT names).
	Checked bool `json:"checked"`
	// Found: complete under the commit (found there, copied from the cache,
	// or uploaded).
	Found    bool `json:"found"`
	CacheHit bool `json:"cacheHit"` // copied from the cache by this check
	Build    bool `json:"build"`    // to be built and uploaded
	// Reason is one short line saying why the component is to build: on a
	// cache miss, what differs from its nearest earlier build. The same
	// line in ComponentsFile, the components output and the dotenv file.
	Reason string `json:"reason,omitempty"`
	// Files and Bytes of the component's stored set, when known.
	Files int   `json:"-"`
	Bytes int64 `json:"-"`
}

// ComponentSet is the set of one component of a commit:
// artifacts/<commit>/<name>/.
func ComponentSet(commit, name string) SetRef {
	return SetRef{Kind: manifest.KindArtifacts, ID: commit, Component: name}
}

// checkComponents is check with PACKAGE_COMPONENTS: every component (or the
// one PACKAGE_COMPONENT names) is looked up under the commit, else in the
// cache under its own code hash, else is to build. When that leaves every
// component complete, the commit's own record is written.
func (r *Runner) checkComponents(ctx context.Context, repo Repo, commit string, res *CheckResult) error {
	// The commit's own set is looked up while the components are hashed.
	var (
		commitSet Set
		commitErr error
		wg        sync.WaitGroup
	)
	wg.Go(func() { commitSet, commitErr = r.LookupSet(ctx, Artifacts(commit)) })
	start := time.Now()
	codes, err := repo.Components(ctx)
	wg.Wait()
	if err != nil {
		return failIn(KindGit, "code hash", err)
	}
	if commitErr != nil {
		return commitErr
	}
	files := 0
	states := make([]ComponentState, len(codes))
	lists := make([]*codehash.List, len(codes))
	for i, c := range codes {
		lists[i] = c.List
		states[i] = ComponentState{Name: c.Name, CodeHash: c.Hash}
		files += c.Files
	}
	r.logf("code hashes of %s over %s (%s)", words.Count(len(codes), "component", "components"), words.Count(files, "file", "files"), time.Since(start).Round(time.Millisecond))
	sel, err := r.selectComponents(states)
	if err != nil {
		return err
	}

	sets := make([]Set, len(states))
	err = parallel(ctx, r.Config.Concurrency, len(sel), func(ctx context.Context, k int) error {
		i := sel[k]
		return r.checkComponent(ctx, commit, &states[i], &sets[i], lists[i])
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
	if res.Found {
		return r.completeCommit(ctx, commit, states, sets, commitSet)
	}
	return nil
}

// singleCodeHash is the code-hash output with components: the one
// component's, when PACKAGE_COMPONENT names one; else empty.
func (r *Runner) singleCodeHash(states []ComponentState) string {
	for _, s := range states {
		if r.Config.Component != "" && s.Name == r.Config.Component {
			return s.CodeHash
		}
	}
	return ""
}

// selectComponents gives the indexes of the components this run deals with:
// all of them, or the one PACKAGE_COMPONENT names.
func (r *Runner) selectComponents(states []ComponentState) ([]int, error) {
	var sel []int
	for i, s := range states {
		if r.Config.Component == "" || s.Name == r.Config.Component {
			sel = append(sel, i)
		}
	}
	if len(sel) == 0 {
		all := make([]string, len(states))
		for i, s := range states {
			all[i] = s.Name
		}
		return nil, fail(KindConfig, fmt.Errorf("PACKAGE_COMPONENT %q is not one of the components: %s", r.Config.Component, strings.Join(all, ", ")))
	}
	return sel, nil
}

// checkComponent looks one component up: complete under the commit, else a
// complete cache entry under its code hash copied to the commit, else to
// build. set receives the component's set as it is afterwards.
func (r *Runner) checkComponent(ctx context.Context, commit string, st *ComponentState, set *Set, list *codehash.List) error {
	st.Checked = true
	dst, err := r.LookupSet(ctx, ComponentSet(commit, st.Name))
	if err != nil {
		return err
	}
	*set = dst
	if dst.State == SetComplete {
		st.Found, st.Files, st.Bytes = true, len(dst.Record.Files), dst.Record.TotalSize()
		r.logf("component %s: found, %s, %s", st.Name, words.Count(st.Files, "file", "files"), progress.Size(st.Bytes))
		return nil
	}
	if dst.State.Write() == WriteLeave {
		// A cache copy would overwrite the objects the later version recorded.
		st.Build, st.Reason = true, dst.Reason
		r.logf("warning: component %s: not found: %s", st.Name, dst.Reason)
		return nil
	}
	src, err := r.LookupSet(ctx, Cache(st.CodeHash))
	if err != nil {
		return err
	}
	if src.State != SetComplete {
		st.Build = true
		r.logf("component %s: to build (%s; cache miss: %s)", st.Name, dst.Reason, src.Reason)
		r.componentMissed(ctx, st, list)
		return nil
	}
	rec, err := r.copyFromCache(ctx, src, dst, commit, st.CodeHash, st.Name)
	if errors.Is(err, errCacheChanged) {
		st.Build = true
		r.logf("component %s: to build (cache miss: %v)", st.Name, err)
		r.componentMissed(ctx, st, list)
		return nil
	}
	if err != nil {
		return err
	}
	st.Found, st.CacheHit, st.Files, st.Bytes = true, true, len(rec.Files), rec.TotalSize()
	set.State, set.Record = SetComplete, rec
	r.logf("component %s: copied from the cache, %s, %s", st.Name, words.Count(st.Files, "file", "files"), progress.Size(st.Bytes))
	return nil
}

// componentMissed keeps a component's file list for upload and explains its
// miss against the component's nearest earlier build: in the log, and in
// its reason on one short line.
func (r *Runner) componentMissed(ctx context.Context, st *ComponentState, list *codehash.List) {
	kept := make(chan struct{})
	go func() { defer close(kept); r.keepList(list, st.Name) }()
	e := r.explainMiss(ctx, st.Name, list)
	<-kept
	e.Log(func(format string, args ...any) { r.logf("component "+st.Name+": "+format, args...) }, time.Now())
	st.Reason = e.ShortSentence()
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

// uploadComponents is upload with the state check left for components: the
// components check marked to build (PACKAGE_COMPONENT's alone, when set) are
// uploaded from <package dir>/<name>/, each with its record and cache entry;
// then the commit's record, when every component is complete.
func (r *Runner) uploadComponents(ctx context.Context, commit string, cs componentsState, res *UploadResult) error {
	states := cs.Components
	sel, err := r.selectComponents(states)
	if err != nil {
		return err
	}
	// Every directory first: a missing one stops the upload before anything is sent.
	type job struct {
		i     int
		dir   string
		files []packageFile
		set   Set
	}
	var jobs []*job
	var missing []string
	for _, i := range sel {
		s := states[i]
		if !s.Build {
			continue
		}
		dir := r.workspace().path(s.Name)
		if found, err := r.workspace().found(s.Name); err != nil {
			return err
		} else if found {
			continue // complete: check found it
		}
		files, err := r.workspace().files(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				missing = append(missing, s.Name)
				continue
			}
			return fmt.Errorf("component %s: %w", s.Name, err)
		}
		jobs = append(jobs, &job{i: i, dir: dir, files: files})
	}
	if len(missing) > 0 {
		return fail(KindPackage, fmt.Errorf("%w: no directory for component %s in %s (the build writes a component's files to %s)",
			ErrNoFiles, strings.Join(missing, ", "), r.Config.PackageDir, filepath.Join(r.Config.PackageDir, "<name>")))
	}
	if len(jobs) == 0 {
		res.Skipped = SkippedFound
		r.logf("no component to upload: check found every one it looked up")
	}

	// Each component's set, and the commit's, as they are now: a matrix job
	// of another run, or an earlier attempt, may have completed some.
	var commitSet Set
	err = parallel(ctx, r.Config.Concurrency, len(jobs)+1, func(ctx context.Context, k int) (err error) {
		if k == len(jobs) {
			commitSet, err = r.LookupSet(ctx, Artifacts(commit))
		} else {
			jobs[k].set, err = r.LookupSet(ctx, ComponentSet(commit, states[jobs[k].i].Name))
		}
		return err
	})
	if err != nil {
		return err
	}

	sets := make([]Set, len(states))
	start := time.Now()
	for _, j := range jobs {
		s := &states[j.i]
		switch j.set.State.Write() {
		case WriteSkip:
			r.logf("component %s: %s is already complete: nothing uploaded", s.Name, r.Store.URL(j.set.Prefix))
			sets[j.i] = j.set
			s.Found, s.Build = true, false
			continue
		case WriteLeave:
			r.logf("warning: component %s: nothing uploaded: %s", s.Name, j.set.Reason)
			continue
		case WriteReplace:
			r.logf("component %s: replacing the set: %s", s.Name, j.set.Reason)
		}
		r.logf("component %s: %s to upload from %s", s.Name, words.Count(len(j.files), "file", "files"), j.dir)
		stored, err := r.uploadAll(ctx, j.set.Prefix, j.files, commit, s.CodeHash)
		if err != nil {
			return err
		}
		rec := manifest.Record{
			Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: commit, Component: s.Name, CodeHash: s.CodeHash,
			Created: time.Now().UTC().Truncate(time.Second), Tool: r.Tool, Files: stored,
		}
		if err := r.writeRecord(ctx, j.set.Ref, rec, j.set.State.Write()); err != nil {
			return err
		}
		sets[j.i] = Set{Ref: j.set.Ref, Prefix: j.set.Prefix, State: SetComplete, Record: &rec}
		s.Found, s.Build = true, false
		for _, f := range stored {
			f.Name = s.Name + "/" + f.Name
			res.Files = append(res.Files, f)
			res.Bytes += f.Size
		}
	}
	res.Duration = time.Since(start)
	if len(res.Files) > 0 {
		r.logf("result: uploaded %s, %s in %s (%s)", words.Count(len(res.Files), "file", "files"), progress.Size(res.Bytes),
			res.Duration.Round(time.Millisecond), humanRate(res.Bytes, res.Duration))
	}

	// The cache entries, in parallel, then the commit's record.
	err = parallel(ctx, r.Config.Concurrency, len(jobs), func(ctx context.Context, k int) error {
		j := jobs[k]
		if sets[j.i].State != SetComplete {
			return nil
		}
		return r.fillCache(ctx, sets[j.i], states[j.i].CodeHash)
	})
	if err != nil {
		return err
	}
	res.Components = states
	return r.completeCommit(ctx, commit, states, sets, commitSet)
}

// completeCommit writes the commit's own record once every component is
// complete under it: it lists every component's files as "<name>/<file>",
// and each component with its code hash. sets holds the component sets this
// run knows; the others (another job's components) are looked up here. A
// record already there that says the same is left as it is.
//
// A complete record of other components (a configuration with another
// component list ran first) is left as it is too, with a warning: like every
// complete record, it stands, so a download of the whole commit gets the same
// set whichever configuration ran last. This configuration's own components
// are complete all the same, each under artifacts/<commit>/<name>/.
func (r *Runner) completeCommit(ctx context.Context, commit string, states []ComponentState, sets []Set, commitSet Set) error {
	var unknown []int
	for i := range states {
		if sets[i].State != SetComplete {
			unknown = append(unknown, i)
		}
	}
	err := parallel(ctx, r.Config.Concurrency, len(unknown), func(ctx context.Context, k int) (err error) {
		i := unknown[k]
		sets[i], err = r.LookupSet(ctx, ComponentSet(commit, states[i].Name))
		return err
	})
	if err != nil {
		return err
	}
	var waiting []string
	for i, s := range sets {
		if s.State != SetComplete {
			waiting = append(waiting, states[i].Name)
		}
	}
	where := r.Store.URL(r.prefix(Artifacts(commit)))
	if len(waiting) > 0 {
		r.logf("%s: the commit's record waits for %s: %s", where, words.Count(len(waiting), "component", "components"), strings.Join(waiting, ", "))
		return nil
	}
	rec := manifest.Record{
		Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: commit,
		Created: time.Now().UTC().Truncate(time.Second), Tool: r.Tool,
	}
	for i, s := range sets {
		rec.Components = append(rec.Components, manifest.ComponentRef{Name: states[i].Name, CodeHash: s.Record.CodeHash})
		for _, f := range s.Record.Files {
			f.Name = states[i].Name + "/" + f.Name
			rec.Files = append(rec.Files, f)
		}
	}
	how := commitSet.State.Write()
	switch how {
	case WriteSkip:
		if sameCommitRecord(commitSet.Record, &rec) {
			r.logf("%s: the commit's record is complete", where)
			return nil
		}
		if have, want := componentNames(commitSet.Record.Components), componentNames(rec.Components); !slices.Equal(have, want) {
			r.logf("warning: %s: the commit's record is complete with other components (%s), not this configuration's (%s): left as it is."+
				" A download of the whole commit gets those; PACKAGE_COMPONENT=<name> downloads one of this configuration's, each complete under its own prefix",
				where, strings.Join(have, ", "), strings.Join(want, ", "))
			return nil
		}
		// The same components, other builds under them (a component replaced and rebuilt since).
		r.logf("%s: the commit's record lists other files of its components: rewriting it", where)
		how = WriteReplace
	case WriteLeave:
		r.logf("warning: %s: the commit's record not written: %s", where, commitSet.Reason)
		return nil
	}
	return r.writeRecord(ctx, Artifacts(commit), rec, how)
}

// componentNames lists a record's component names, sorted.
func componentNames(refs []manifest.ComponentRef) []string {
	names := make([]string, len(refs))
	for i, c := range refs {
		names[i] = c.Name
	}
	slices.Sort(names)
	return names
}

// sameCommitRecord reports whether two records of a commit's components name
// the same components, code hashes and files.
func sameCommitRecord(a, b *manifest.Record) bool {
	if !slices.Equal(a.Components, b.Components) || len(a.Files) != len(b.Files) {
		return false
	}
	fa, fb := slices.Clone(a.Files), slices.Clone(b.Files)
	for _, fs := range [][]manifest.File{fa, fb} {
		slices.SortFunc(fs, func(x, y manifest.File) int { return strings.Compare(x.Name, y.Name) })
	}
	return slices.Equal(fa, fb)
}

// componentTag starts a log line about a component ("" for a whole set).
func componentTag(name string) string {
	if name == "" {
		return ""
	}
	return "component " + name + ": "
}
