package assets

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// The planner's rules, one table row each: what goes, what stays, and the
// edges of every age (the plan reads nothing; the sets carry what their
// listing and records said).
func TestPlanPrune(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cfg := config.PruneSettings{CommitAge: 30 * day, KeepCommits: 2, CacheAge: 10 * day, Grace: day}
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	commit := func(id string, created time.Duration) *pset {
		return &pset{ref: Artifacts(id), prefix: "artifacts/" + id + "/", state: SetComplete, created: ago(created), newest: ago(created),
			objs: []s3store.Object{{Key: "artifacts/" + id + "/a.zip", Size: 10}}, record: &s3store.Listed{Key: "artifacts/" + id + "/.s3-asset-manager.json", Size: 1}}
	}
	comp := func(id, name string, created time.Duration) *pset {
		p := commit(id, created)
		p.ref, p.prefix = ComponentSet(id, name), "artifacts/"+id+"/"+name+"/"
		return p
	}
	cache := func(id string, created time.Duration) *pset {
		p := commit(id, created)
		p.ref, p.prefix = Cache(id), "cache/"+id+"/"
		return p
	}
	copied := func(p *pset, from string) *pset { p.source = "cache/" + from + "/"; return p }
	state := func(p *pset, s SetState, newest time.Duration) *pset {
		p.state, p.newest = s, ago(newest)
		if s != SetComplete {
			p.created = time.Time{}
		}
		return p
	}
	tests := []struct {
		name   string
		legacy bool
		cfg    func(*config.PruneSettings)
		sets   []*pset
		gone   []string
	}{
		{"older than the age, beyond the newest 2", false, nil,
			[]*pset{commit("c1", 100*day), commit("c2", 60*day), commit("c3", 40*day), commit("c4", 31*day), commit("c5", 2*day)},
			[]string{"artifacts/c1/", "artifacts/c2/", "artifacts/c3/"}},
		{"the newest 2 stay whatever their age", false, nil,
			[]*pset{commit("c1", 300*day), commit("c2", 200*day), commit("c3", 100*day)},
			[]string{"artifacts/c1/"}},
		{"a commit younger than the grace period counts among the newest", false, nil,
			[]*pset{commit("c1", 100*day), commit("c2", 90*day), commit("c3", time.Hour)},
			[]string{"artifacts/c1/"}},
		{"just within the age stays", false, nil,
			[]*pset{commit("c1", 30*day-time.Second), commit("c2", 30*day-time.Second), commit("c3", 30*day-time.Second)},
			nil},
		{"commit age off", false, func(c *config.PruneSettings) { c.CommitAge = 0 },
			[]*pset{commit("c1", 1000*day), commit("c2", 900*day), commit("c3", 800*day)},
			nil},
		{"keep 0", false, func(c *config.PruneSettings) { c.KeepCommits = 0 },
			[]*pset{commit("c1", 31*day), commit("c2", 29*day)},
			[]string{"artifacts/c1/"}},
		{"per component: the newest 2 of each", false, nil,
			[]*pset{comp("d1", "api", 100*day), comp("d2", "api", 90*day), comp("d3", "api", 80*day), comp("d1", "web", 100*day), comp("d9", "web", 90*day)},
			[]string{"artifacts/d1/api/"}},
		{"a commit's record of components goes with a component", false, nil,
			[]*pset{comp("d1", "api", 100*day), comp("d2", "api", 90*day), comp("d3", "api", 80*day),
				func() *pset { p := commit("d1", 100*day); p.comps = []string{"api"}; return p }(),
				func() *pset { p := commit("d2", 90*day); p.comps = []string{"api"}; return p }()},
			[]string{"artifacts/d1/", "artifacts/d1/api/"}},
		// The commit completed an hour ago (its last component then), but
		// an old component of it goes: a record left behind would describe
		// a component no longer stored.
		{"a young commit's record of components goes with an old component", false, nil,
			[]*pset{comp("d1", "api", 100*day), comp("d2", "api", 90*day), comp("d3", "api", 80*day), comp("d1", "web", time.Hour),
				func() *pset { p := commit("d1", time.Hour); p.comps = []string{"api", "web"}; return p }()},
			[]string{"artifacts/d1/", "artifacts/d1/api/"}},
		{"a cache entry unused past the age goes; one copied since stays", false, nil,
			[]*pset{cache("h1", 50*day), cache("h2", 50*day), cache("h3", 9*day), copied(commit("c1", 5*day), "h2")},
			[]string{"cache/h1/"}},
		{"a component's copy counts as a use", false, nil,
			[]*pset{cache("h1", 50*day), copied(comp("d1", "api", 3*day), "h1")},
			nil},
		{"a use older than the age does not save it", false, nil,
			[]*pset{cache("h1", 50*day), copied(commit("c1", 11*day), "h1"), commit("c2", time.Hour), commit("c3", time.Hour)},
			[]string{"cache/h1/"}},
		{"cache age off", false, func(c *config.PruneSettings) { c.CacheAge = 0 },
			[]*pset{cache("h1", 500*day)},
			nil},
		{"without a record: past the grace period goes, within stays", false, nil,
			[]*pset{state(commit("u1", 0), SetUnrecorded, 25*time.Hour), state(commit("u2", 0), SetUnrecorded, 23*time.Hour)},
			[]string{"artifacts/u1/"}},
		{"untrusted and differing records count as none", false, nil,
			[]*pset{state(commit("u1", 0), SetUntrusted, 2*day), state(cache("u2", 0), SetDiffers, 2*day), state(commit("u3", 0), SetUntrusted, time.Hour)},
			[]string{"artifacts/u1/", "cache/u2/"}},
		{"a complete set's time is its record's, not its objects'", false, nil,
			// An old record over objects the store dates today (a copy's
			// objects keep no time of their own): its record decides.
			[]*pset{func() *pset { p := commit("c1", 100*day); p.newest = now; return p }(), commit("c2", time.Hour), commit("c3", time.Hour)},
			[]string{"artifacts/c1/"}},
		{"with PACKAGE_ASSETS_ACCEPT_LEGACY, a commit without a record is a commit, by its newest object", true, nil,
			[]*pset{state(commit("l1", 0), SetUnrecorded, 100*day), state(commit("l2", 0), SetUnrecorded, 50*day), state(commit("l3", 0), SetUnrecorded, 2*day),
				state(commit("l4", 0), SetUnrecorded, 25*time.Hour), state(cache("u1", 0), SetUnrecorded, 2*day)},
			[]string{"artifacts/l1/", "artifacts/l2/", "cache/u1/"}},
		{"a later version's record is never pruned", false, nil,
			[]*pset{func() *pset { p := state(commit("n1", 0), SetNewer, 500*day); p.newerForm = true; return p }(),
				func() *pset { p := state(commit("n2", 0), SetUntrusted, 500*day); p.newerForm = true; return p }()},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			sets := map[string]*pset{}
			for _, p := range tt.sets {
				sets[p.prefix] = p
			}
			var gone []string
			for _, p := range planPrune(sets, now, c, tt.legacy) {
				gone = append(gone, p.prefix)
				if p.why == "" || p.kind == "" {
					t.Errorf("%s planned without a kind and reason", p.prefix)
				}
			}
			slices.Sort(tt.gone)
			if !slices.Equal(gone, tt.gone) {
				t.Errorf("planned %v, want %v", gone, tt.gone)
			}
		})
	}
}

// The plan's table: a row per kind, component (a cache entry's from its
// record) and reason, and totals.
func TestPruneSummary(t *testing.T) {
	plan := []*pset{
		{ref: Artifacts("c1"), kind: PruneCommit, why: "old", objs: []s3store.Object{{Size: 3}, {Size: 4}}, record: &s3store.Listed{Size: 1}},
		{ref: Artifacts("c2"), kind: PruneCommit, why: "old", objs: []s3store.Object{{Size: 2}}},
		{ref: ComponentSet("d1", "api"), kind: PruneComponent, why: "old", objs: []s3store.Object{{Size: 5}}},
		// A cache entry's file list is no artifact: it counts in the size
		// alone, as the record does (an artifact set's file of that name
		// is one of its files).
		{ref: Cache("h1"), component: "api", kind: PruneCache, why: "unused",
			objs: []s3store.Object{{Key: "cache/h1/fn.zip", Size: 6}, {Key: "cache/h1/" + ListName, Size: 2}}},
		{ref: Artifacts("c3"), kind: PruneUnrecorded, why: "none", objs: []s3store.Object{{Key: "artifacts/c3/" + ListName, Size: 1}}},
	}
	res := summarize(plan, []s3store.Upload{{Key: "x"}}, 11)
	want := []PruneRow{
		{Kind: PruneCommit, Why: "old", Sets: 2, Files: 3, Bytes: 10},
		{Kind: PruneComponent, Component: "api", Why: "old", Sets: 1, Files: 1, Bytes: 5},
		{Kind: PruneCache, Component: "api", Why: "unused", Sets: 1, Files: 1, Bytes: 8},
		{Kind: PruneUnrecorded, Why: "none", Sets: 1, Files: 1, Bytes: 1},
		{Kind: PruneUpload, Why: "multipart upload abandoned", Sets: 1},
	}
	if !slices.Equal(res.Rows, want) || res.Sets != 6 || res.Files != 6 || res.Bytes != 24 || res.Kept != 6 {
		t.Errorf("summary %+v, want rows %+v, 6 sets, 6 files, 24 bytes, 6 kept", res, want)
	}
	var b strings.Builder
	WritePruneTable(&b, res)
	if !regexp.MustCompile(`(?m)^ +component +api +1 +1 `).MatchString(b.String()) || !strings.Contains(b.String(), "total") {
		t.Errorf("table:\n%s", b.String())
	}
}

func TestStoreRefused(t *testing.T) {
	keys := fmt.Errorf("delete: 1 of 3 keys %w: a.zip: AccessDenied", s3store.ErrNotDeleted)
	whole := fmt.Errorf("delete s3://b/x: %w", s3store.ErrUnreachable)
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"none", nil, false},
		{"keys of a batch refused", keys, false},
		{"keys of two batches refused", errors.Join(nil, keys, keys), false},
		{"a request failed whole", whole, true},
		{"one batch failed whole, another's keys refused", errors.Join(whole, keys), true},
	} {
		if got := s3store.StoreRefused(tc.err); got != tc.want {
			t.Errorf("%s: StoreRefused = %v, want %v", tc.name, got, tc.want)
		}
	}
}
