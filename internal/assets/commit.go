package assets

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/pool"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

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
	err := pool.Run(ctx, r.Config.Concurrency, len(unknown), func(ctx context.Context, k int) (err error) {
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
	rec := r.newRecord(manifest.KindArtifacts, commit, "", "", "", nil)
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
			// A whole set: stored before PACKAGE_COMPONENTS was set.
			other := "with other components (" + strings.Join(have, ", ") + "), not this configuration's"
			if len(have) == 0 {
				other = "without components (" + words.Count(len(commitSet.Record.Files), "file", "files") + "), not with this configuration's"
			}
			r.logf("warning: %s: the commit's record is complete %s (%s): left as it is."+
				" A download of the whole commit gets those; PACKAGE_COMPONENT=<name> downloads one of this configuration's, each complete under its own prefix",
				where, other, strings.Join(want, ", "))
			return nil
		}
		// The same components, other builds under them (a component replaced and rebuilt since).
		r.logf("%s: the commit's record lists other files of its components: rewriting it", where)
		how = WriteReplace
	case WriteLeave:
		r.logf("warning: %s: the commit's record not written: %s", where, commitSet.Reason)
		return nil
	}
	err = r.writeRecord(ctx, Artifacts(commit), rec, how)
	if errors.Is(err, manifest.ErrTooLarge) {
		// Each component is complete and found all the same; only a
		// download of the whole commit is not possible.
		r.logf("warning: %s: the commit's record not written: %v; each component is complete under its own prefix (PACKAGE_COMPONENT=<name> downloads one)", where, err)
		return nil
	}
	return err
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
