package codehash

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// ChangeKind is how one file differs between two lists.
type ChangeKind int

const (
	Modified ChangeKind = iota + 1 // same path, other content (and perhaps mode)
	Added
	Deleted
	Renamed     // same content under another path
	ModeChanged // same path and content, other mode
)

var kindWords = map[ChangeKind]string{
	Modified: "modified", Added: "added", Deleted: "deleted", Renamed: "renamed", ModeChanged: "mode changed",
}

func (k ChangeKind) String() string { return kindWords[k] }

// Change is one file that differs.
type Change struct {
	Kind             ChangeKind
	Path             string // the new path (the old one for Deleted)
	From             string // the old path of a rename
	OldMode, NewMode filemode.FileMode
}

// Diff is what differs between the list of an earlier build and this one.
type Diff struct {
	PatternsChanged bool
	OldPatterns     []string
	NewPatterns     []string
	SaltChanged     bool
	Changes         []Change // by path
}

// Compare lists what changed from old to cur. Both lists' files are sorted
// by path, as Compute and DecodeList give them. A deleted file whose content
// reappears under an added path is a rename.
func Compare(old, cur *List) Diff {
	d := Diff{
		PatternsChanged: !slices.Equal(old.Patterns, cur.Patterns),
		OldPatterns:     old.Patterns,
		NewPatterns:     cur.Patterns,
		SaltChanged:     old.SaltDigest != cur.SaltDigest,
	}
	var added, deleted []Change
	var addedIDs []plumbing.Hash
	deletedIDs := map[plumbing.Hash][]int{} // content → indexes into deleted
	of, nf := old.Files, cur.Files
	i, j := 0, 0
	for i < len(of) || j < len(nf) {
		switch {
		case j == len(nf) || (i < len(of) && of[i].Path < nf[j].Path):
			deletedIDs[of[i].ID] = append(deletedIDs[of[i].ID], len(deleted))
			deleted = append(deleted, Change{Kind: Deleted, Path: of[i].Path, OldMode: of[i].Mode})
			i++
		case i == len(of) || nf[j].Path < of[i].Path:
			added = append(added, Change{Kind: Added, Path: nf[j].Path, NewMode: nf[j].Mode})
			addedIDs = append(addedIDs, nf[j].ID)
			j++
		default:
			o, n := of[i], nf[j]
			c := Change{Path: n.Path, OldMode: o.Mode, NewMode: n.Mode}
			switch {
			case o.ID != n.ID:
				c.Kind = Modified
			case o.Mode != n.Mode:
				c.Kind = ModeChanged
			}
			if c.Kind != 0 {
				d.Changes = append(d.Changes, c)
			}
			i, j = i+1, j+1
		}
	}
	// Renames: an added file with the content of a deleted one. Of several
	// deleted candidates, the one with the same base name, else the first.
	gone := make([]bool, len(deleted))
	for k, a := range added {
		cands := deletedIDs[addedIDs[k]]
		pick := -1
		for _, c := range cands {
			if gone[c] {
				continue
			}
			if pick < 0 {
				pick = c
			}
			if path.Base(deleted[c].Path) == path.Base(a.Path) {
				pick = c
				break
			}
		}
		if pick < 0 {
			d.Changes = append(d.Changes, a)
			continue
		}
		gone[pick] = true
		d.Changes = append(d.Changes, Change{Kind: Renamed, Path: a.Path, From: deleted[pick].Path, OldMode: deleted[pick].OldMode, NewMode: a.NewMode})
	}
	for k, c := range deleted {
		if !gone[k] {
			d.Changes = append(d.Changes, c)
		}
	}
	slices.SortStableFunc(d.Changes, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return d
}

// Same: nothing differs that goes into a code hash.
func (d Diff) Same() bool { return !d.PatternsChanged && !d.SaltChanged && len(d.Changes) == 0 }

// Headline says in a few words what differs: "3 files differ", "the
// patterns changed and 12 files differ", "the salt changed".
func (d Diff) Headline() string {
	var parts []string
	if d.PatternsChanged {
		parts = append(parts, "the patterns changed")
	}
	if d.SaltChanged {
		parts = append(parts, "the salt changed")
	}
	if n := len(d.Changes); n > 0 {
		parts = append(parts, words.Count(n, "file differs", "files differ"))
	}
	switch len(parts) {
	case 0:
		return "nothing differs"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// Lines describes the difference one item a line, at most max lines (max <=
// 0: all), the last then counting the rest: "… and 12 more". Every name is
// made printable (see words.Printable): a list read from a bucket must not be able
// to write terminal escapes or lines of its own into a log. The salt is never
// shown, only whether it changed.
func (d Diff) Lines(max int) []string {
	var lines []string
	if d.PatternsChanged {
		lines = append(lines, "patterns were "+patternText(d.OldPatterns)+", now "+patternText(d.NewPatterns))
	}
	for _, c := range d.Changes {
		lines = append(lines, c.String())
	}
	if max > 0 && len(lines) > max {
		rest := len(lines) - (max - 1)
		lines = append(lines[:max-1], fmt.Sprintf("… and %d more", rest))
	}
	return lines
}

// Short lists the files that differ on one line of about max bytes, for a
// component's reason: "modified a.js; added b.js; and 3 more" ("" when no
// file differs: the Headline says the rest).
func (d Diff) Short(max int) string {
	var items []string
	for _, c := range d.Changes {
		items = append(items, c.String())
	}
	if len(items) == 0 {
		return ""
	}
	out := items[0]
	for k := 1; k < len(items); k++ {
		need := len(out) + 2 + len(items[k])
		if k < len(items)-1 {
			need += len(fmt.Sprintf("; and %d more", len(items)-k-1))
		}
		if need > max {
			return out + fmt.Sprintf("; and %d more", len(items)-k)
		}
		out += "; " + items[k]
	}
	return out
}

func (c Change) String() string {
	modes := func() string { return fmt.Sprintf("%06o → %06o", uint32(c.OldMode), uint32(c.NewMode)) }
	p := words.Printable(c.Path)
	switch c.Kind {
	case Modified:
		if c.OldMode != c.NewMode {
			return "modified " + p + " (mode " + modes() + ")"
		}
		return "modified " + p
	case ModeChanged:
		return "mode changed " + p + " (" + modes() + ")"
	case Renamed:
		s := "renamed " + words.Printable(c.From) + " → " + p
		if c.OldMode != c.NewMode {
			s += " (mode " + modes() + ")"
		}
		return s
	}
	return c.Kind.String() + " " + p
}

// patternText shows a filter as it would be written, capped.
func patternText(ps []string) string {
	if len(ps) == 0 {
		return "(none)"
	}
	q := make([]string, len(ps))
	for i, p := range ps {
		q[i] = words.Printable(p)
	}
	return words.Truncate(strings.Join(q, " "), 200)
}
