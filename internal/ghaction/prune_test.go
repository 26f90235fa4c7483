package ghaction

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"
)

// The job summary of prune: dry run or deleted, one row per kind and
// component, names from the bucket escaped, totals.
func TestPruneMarkdown(t *testing.T) {
	s := PruneSummary{Bucket: "b", Sets: 3, Files: 5, Bytes: 2048, Kept: 7, Rows: []PruneRow{
		{Kind: "commit", Why: "recorded more than 90d ago", Sets: 2, Files: 4, Bytes: 1024},
		{Kind: "component", Component: "a|b", Why: "old", Sets: 1, Files: 1, Bytes: 1024},
	}}
	md := PruneMarkdown(s)
	for _, want := range []string{"dry run, 3 sets (2.0 KiB) would be deleted", "prune-apply: true",
		"| commit | – | 2 | 4 | 1.0 KiB | recorded more than 90d ago |", "`a\\|b`", "| **total** | | **3** | **5** | **2.0 KiB** | 7 sets kept |"} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	s.Applied = true
	if md := PruneMarkdown(s); !strings.Contains(md, "deleted 3 sets, 2.0 KiB") || strings.Contains(md, "Nothing was deleted") {
		t.Errorf("applied summary:\n%s", md)
	}
	if md := PruneMarkdown(PruneSummary{Bucket: "b", Kept: 1}); !strings.Contains(md, "Nothing to prune in `b`: 1 set kept.") {
		t.Errorf("empty plan:\n%s", md)
	}
}

// Prune writes its counts and nothing else: no found=false or empty
// commit-hash for GitLab's dotenv report to export to later jobs, in the
// step outputs and in the dotenv file alike.
func TestPruneWritesOnlyItsOutputs(t *testing.T) {
	o := For("prune")
	o.Prune.Sets, o.Prune.Files, o.Prune.Bytes = 5, 5, 1234
	r := newRunner(t)
	if err := r.reporter().SetOutputs(o); err != nil {
		t.Fatal(err)
	}
	got := parseOutputs(t, readFile(t, r.output))
	want := map[string]string{OutputPruneSets: "5", OutputPruneFiles: "5", OutputPruneBytes: "1234"}
	if !maps.Equal(got, want) {
		t.Errorf("step outputs %v, want %v", got, want)
	}
	path := filepath.Join(t.TempDir(), "prune.env")
	if _, err := WriteDotenv(path, o); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, path), "PRUNE_SETS=5\nPRUNE_FILES=5\nPRUNE_BYTES=1234\n"; got != want {
		t.Errorf("dotenv file %q, want %q", got, want)
	}
	// The other commands write none of prune's.
	r = newRunner(t)
	if err := r.reporter().SetOutputs(For("check")); err != nil {
		t.Fatal(err)
	}
	for _, n := range PruneOutputNames {
		if _, ok := parseOutputs(t, readFile(t, r.output))[n]; ok {
			t.Errorf("check wrote %s", n)
		}
	}
}
