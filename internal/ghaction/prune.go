package ghaction

import (
	"fmt"
	"strings"

	"github.com/nsmithuk/s3-asset-manager/internal/progress"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Outputs of prune alone, as declared in action.yml.
const (
	OutputPruneSets  = "prune-sets"
	OutputPruneFiles = "prune-files"
	OutputPruneBytes = "prune-bytes"
)

// PruneOutputNames lists the outputs prune writes (it writes no others).
var PruneOutputNames = []string{OutputPruneSets, OutputPruneFiles, OutputPruneBytes}

// PruneOutputs are prune's counts: what was deleted, or with a dry run what
// the plan would delete.
type PruneOutputs struct {
	Sets, Files int
	Bytes       int64
}

func (p *PruneOutputs) list() []output {
	return []output{
		{OutputPruneSets, "PRUNE_SETS", fmt.Sprint(p.Sets)},
		{OutputPruneFiles, "PRUNE_FILES", fmt.Sprint(p.Files)},
		{OutputPruneBytes, "PRUNE_BYTES", fmt.Sprint(p.Bytes)},
	}
}

// PruneRow is one row of prune's plan.
type PruneRow struct {
	Kind, Component, Why string
	Sets, Files          int
	Bytes                int64
}

// PruneSummary is prune's plan and result for the job summary.
type PruneSummary struct {
	Bucket  string
	Applied bool
	Rows    []PruneRow
	Sets    int
	Files   int
	Bytes   int64
	Kept    int
}

// SummarizePrune appends prune's plan to the job summary.
func (r *Reporter) SummarizePrune(s PruneSummary) error {
	return r.summary(func() string { return PruneMarkdown(s) })
}

// PruneMarkdown is the plan as a table, with its totals.
func PruneMarkdown(s PruneSummary) string {
	var b strings.Builder
	if s.Applied {
		fmt.Fprintf(&b, "### s3-asset-manager prune: deleted %s, %s\n\n", words.Count(s.Sets, "set", "sets"), progress.Size(s.Bytes))
	} else {
		fmt.Fprintf(&b, "### s3-asset-manager prune: dry run, %s (%s) would be deleted\n\n", words.Count(s.Sets, "set", "sets"), progress.Size(s.Bytes))
		b.WriteString("Nothing was deleted: set `prune-apply: true` (`PACKAGE_ASSETS_PRUNE_APPLY=true`) to delete.\n\n")
	}
	if len(s.Rows) == 0 {
		fmt.Fprintf(&b, "Nothing to prune in `%s`: %s kept.\n", escape(s.Bucket), words.Count(s.Kept, "set", "sets"))
		return b.String()
	}
	b.WriteString("| Kind | Component | Sets | Files | Size | Why |\n| --- | --- | ---: | ---: | ---: | --- |\n")
	for _, r := range s.Rows {
		comp := "–"
		if r.Component != "" {
			comp = code(words.Printable(r.Component))
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %s | %s |\n", r.Kind, comp, r.Sets, r.Files, progress.Size(r.Bytes), escape(r.Why))
	}
	fmt.Fprintf(&b, "| **total** | | **%d** | **%d** | **%s** | %s kept |\n", s.Sets, s.Files, progress.Size(s.Bytes), words.Count(s.Kept, "set", "sets"))
	return b.String()
}
