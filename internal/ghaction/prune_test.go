package ghaction

import (
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
