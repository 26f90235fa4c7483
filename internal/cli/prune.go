package cli

import (
	"github.com/nsmithuk/s3-asset-manager/internal/assets"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/ghaction"
)

// pruneOutputs are the counts prune reports: what it deleted, or in a dry
// run what its plan would delete.
func pruneOutputs(p assets.PruneResult) *ghaction.PruneOutputs {
	if p.Applied {
		return &ghaction.PruneOutputs{Sets: p.DeletedSets, Files: p.DeletedFiles, Bytes: p.DeletedBytes}
	}
	return &ghaction.PruneOutputs{Sets: p.Sets, Files: p.Files, Bytes: p.Bytes}
}

// pruneSummary is the plan as the job summary shows it.
func pruneSummary(cfg *config.Config, p assets.PruneResult) ghaction.PruneSummary {
	s := ghaction.PruneSummary{Bucket: cfg.Bucket, Applied: p.Applied, Sets: p.Sets, Files: p.Files, Bytes: p.Bytes, Kept: p.Kept}
	for _, r := range p.Rows {
		s.Rows = append(s.Rows, ghaction.PruneRow{Kind: r.Kind, Component: r.Component, Why: r.Why, Sets: r.Sets, Files: r.Files, Bytes: r.Bytes})
	}
	return s
}
