package assets

import (
	"context"
	"fmt"
	"strings"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
)

// unit is what one build makes and one set holds: the whole commit (the
// unnamed unit, artifacts/<commit>/) or a component (a named unit,
// artifacts/<commit>/<name>/, PACKAGE_COMPONENTS). Check resolves each unit
// (look up, copy from the cache, explain a miss); upload stores each unit
// built and fills its cache entry; the commit's record then covers the named
// units. Nothing else differs between the two.
type unit struct {
	name string // "" for the whole commit
	// set is the unit's set under the commit, as last looked up or written.
	set Set

	// The code hash: computed only when asked for (a lookup missed), by
	// hashFn; or known from the start (components are hashed in one pass).
	hashFn func(ctx context.Context) (*codehash.List, error)
	hash   string
	list   *codehash.List // what went into it, to explain a miss (nil: none)
	// pointers lists the components' pointers for the explanations of
	// their misses (nil: the whole commit's, read alone).
	pointers *pointerIndex
	// pointer is the whole commit's pointer, read beside its cache lookup
	// (nil: not read yet).
	pointer *pendingRead

	// What check found.
	found, hit bool
	legacy     bool         // found without a record (PACKAGE_ASSETS_ACCEPT_LEGACY)
	reason     string       // why it is to build, when not explained by miss
	miss       *Explanation // a cache miss explained
}

// codeHash is the unit's code hash, computed on first use; "" when the unit
// has none (no filter).
func (u *unit) codeHash(ctx context.Context) (string, error) {
	if u.hash == "" && u.hashFn != nil {
		list, err := u.hashFn(ctx)
		if err != nil {
			return "", err
		}
		u.hash, u.list, u.hashFn = list.CodeHash, list, nil
	}
	return u.hash, nil
}

// ref is the unit's set under the commit.
func (u *unit) ref(commit string) SetRef { return ComponentSet(commit, u.name) }

// logf starts the unit's log lines with its name (nothing for the whole commit).
func (u *unit) logf(logf func(string, ...any)) func(string, ...any) {
	if u.name == "" {
		return logf
	}
	return func(format string, args ...any) { logf("component "+u.name+": "+format, args...) }
}

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
// artifacts/<commit>/<name>/ (the whole commit's for "").
func ComponentSet(commit, name string) SetRef {
	return SetRef{Kind: manifest.KindArtifacts, ID: commit, Component: name}
}

// componentTag starts a log line about a component ("" for a whole set).
func componentTag(name string) string {
	if name == "" {
		return ""
	}
	return "component " + name + ": "
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
