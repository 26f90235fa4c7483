package gitrepo

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/gitattributes"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// ErrUnsupportedAttribute: a selected file has a gitattribute whose effect on
// the stored content cannot be computed here: a filter driver other than
// git-lfs (its clean command is a program configured on each machine),
// ident, or working-tree-encoding.
var ErrUnsupportedAttribute = errors.New("unsupported gitattribute")

// textRule is how git would convert a file's line endings when it stores it
// (convert.c's crlf_action, for the check-in direction only).
type textRule uint8

const (
	// textAuto: text=auto, or no text attribute at all: CRLF becomes LF in a
	// file that looks like text, unless the committed version has CRLF.
	textAuto   textRule = iota
	textBinary          // -text (binary): stored as it is
	textText            // text, or eol=lf|crlf: CRLF becomes LF
)

// fileAttrs are the attributes that decide a file's stored content.
type fileAttrs struct {
	text        textRule
	lfs         bool   // filter=lfs
	unsupported string // an attribute that cannot be applied, as the user wrote it; "" for none
}

// attributes holds the gitattributes rules of a checkout, in git's order of
// increasing priority: the root .gitattributes, those of subdirectories
// (deeper ones later), then info/attributes. The user's and the system's
// attribute files are left out, as the global excludes are, so two machines
// agree.
//
// go-git's gitattributes package parses the lines and matches the patterns;
// its Matcher is not used: it lets a lower-priority rule override a higher
// one, does not know the built-in binary macro, and panics on a "dir/"
// pattern.
type attributes struct {
	rules  []gitattributes.MatchAttribute
	macros map[string][]gitattributes.Attribute
	// refuses is true when some rule could make a file unsupported; only
	// then does every selected file need its attributes looked up.
	refuses bool
}

// builtinMacros are git's own: binary is -diff -merge -text.
const builtinMacros = "[attr]binary -diff -merge -text\n"

// loadAttributes reads every .gitattributes file that can apply: those the
// index lists and those the walk found (untracked ones), from the working
// tree, or from the index's blob where the file is not on disk (a sparse
// checkout), as `git add` reads them; then info/attributes.
func (r *Repo) loadAttributes(entries []*index.Entry, walked []string) (*attributes, error) {
	files := map[string]plumbing.Hash{} // path → index blob (zero: untracked)
	for _, e := range entries {
		// git does not follow a .gitattributes that is a symlink.
		if (e.Name == ".gitattributes" || strings.HasSuffix(e.Name, "/.gitattributes")) &&
			(e.Mode == filemode.Regular || e.Mode == filemode.Executable) {
			files[e.Name] = e.Hash
		}
	}
	for _, p := range walked {
		if _, ok := files[p]; !ok {
			files[p] = plumbing.ZeroHash
		}
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	// Shallower files first: deeper ones take precedence.
	slices.SortFunc(paths, func(a, b string) int {
		if d := strings.Count(a, "/") - strings.Count(b, "/"); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})

	a := &attributes{macros: map[string][]gitattributes.Attribute{}}
	a.parse(builtinMacros, nil, true)
	for _, p := range paths {
		b, err := os.ReadFile(filepath.Join(r.Root, filepath.FromSlash(p)))
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir) {
			if files[p].IsZero() {
				continue
			}
			if b, err = r.readBlob(files[p]); errors.Is(err, plumbing.ErrObjectNotFound) && outsideCheckout(entries, path.Dir(p)) {
				// A partial clone (actions/checkout with sparse-checkout
				// fetches no blob outside the cone): every file it
				// governs counts as the index's id, needing no rule; only
				// a filter driver among them goes unrefused.
				continue
			} else if err != nil {
				return nil, fmt.Errorf("read %s from the index: %w", p, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		var domain []string
		if dir := path.Dir(p); dir != "." {
			domain = strings.Split(dir, "/")
		}
		// Macros may be defined only at the top level, as in git.
		a.parse(withoutBOM(b), domain, domain == nil)
	}
	if b, err := os.ReadFile(filepath.Join(r.CommonDir, "info", "attributes")); err == nil {
		a.parse(withoutBOM(b), nil, true)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read info/attributes: %w", err)
	}
	return a, nil
}

// outsideCheckout reports whether every entry under dir (slash-separated,
// "." for the root) is outside the sparse checkout (skip-worktree).
func outsideCheckout(entries []*index.Entry, dir string) bool {
	prefix := dir + "/"
	if dir == "." {
		prefix = ""
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name, prefix) && !e.SkipWorktree {
			return false
		}
	}
	return true
}

// withoutBOM is the file's text without the UTF-8 byte order mark a
// Windows editor may put before its first line, which git skips.
func withoutBOM(b []byte) string {
	return strings.TrimPrefix(string(b), "\ufeff")
}

// parse adds the rules of one attributes file. Lines git would ignore (with
// a warning) are skipped: invalid ones, negative patterns, macros where they
// are not allowed, and "dir/" patterns, which match no file.
func (a *attributes) parse(text string, domain []string, allowMacro bool) {
	for line := range strings.Lines(text) {
		m, err := gitattributes.ParseAttributesLine(strings.TrimSuffix(line, "\n"), domain, allowMacro)
		if err != nil || m.Name == "" || strings.HasPrefix(m.Name, "!") {
			continue
		}
		if m.Pattern == nil {
			a.macros[m.Name] = m.Attributes
		} else if strings.HasSuffix(m.Name, "/") {
			continue
		} else {
			// Matched as a gitignore pattern is, by git's wildmatch: go-git's
			// own reads "[!a]" as a literal "!" and knows no [:digit:].
			m.Pattern = attrPattern{domain: domain, glob: strings.TrimPrefix(m.Name, "/"), basename: !strings.Contains(m.Name, "/")}
			a.rules = append(a.rules, m)
		}
		for _, at := range m.Attributes {
			switch at.Name() {
			case "filter":
				a.refuses = a.refuses || at.IsValueSet() && at.Value() != "lfs"
			case "ident":
				a.refuses = a.refuses || at.IsSet()
			case "working-tree-encoding":
				a.refuses = a.refuses || at.IsValueSet() && !isUTF8(at.Value())
			}
		}
	}
}

// attrPattern is an attribute line's pattern (gitattributes.Pattern):
// what a gitignore pattern is without "!" or a trailing "/".
type attrPattern ignorePattern

func (p attrPattern) Match(path []string) bool {
	return (*ignorePattern)(&p).Match(path, false) != gitignore.NoMatch
}

// lookup gives the attributes of the file at p (slash-separated), resolved
// as git does: the highest-priority rule that says something about an
// attribute decides it, later attributes on a line win over earlier ones,
// and a set macro stands for its attributes at its rule's priority.
func (a *attributes) lookup(p string) fileAttrs {
	if len(a.rules) == 0 {
		return fileAttrs{}
	}
	var (
		parts = strings.Split(p, "/")
		got   = map[string]gitattributes.Attribute{}
		fill  func(attrs []gitattributes.Attribute, depth int)
	)
	fill = func(attrs []gitattributes.Attribute, depth int) {
		for i := len(attrs) - 1; i >= 0; i-- {
			at := attrs[i]
			if _, done := got[at.Name()]; done {
				continue
			}
			got[at.Name()] = at
			if m, ok := a.macros[at.Name()]; ok && at.IsSet() && depth < 8 {
				fill(m, depth+1)
			}
		}
	}
	for i := len(a.rules) - 1; i >= 0; i-- {
		if a.rules[i].Pattern.Match(parts) {
			fill(a.rules[i].Attributes, 0)
		}
	}

	var fa fileAttrs
	// text decides; the old crlf attribute stands in where text says nothing.
	act := crlfAction(got["text"])
	if act == crlfUndefined {
		act = crlfAction(got["crlf"])
	}
	// eol=lf or eol=crlf makes a file text (text=auto stays auto), unless it is binary.
	if eol := got["eol"]; act != crlfBinary && eol != nil && eol.IsValueSet() && (eol.Value() == "lf" || eol.Value() == "crlf") && act != crlfAuto {
		act = crlfText
	}
	switch act {
	case crlfBinary:
		fa.text = textBinary
	case crlfText:
		fa.text = textText
	default:
		// Unspecified: git would follow core.autocrlf, which a Windows runner
		// sets to true in its system config, out of our sight. Auto gives the
		// committed content back for every checkout that did not change the
		// file, whatever core.autocrlf was, so it is the rule everywhere.
		fa.text = textAuto
	}
	if f := got["filter"]; f != nil && f.IsValueSet() {
		fa.lfs = f.Value() == "lfs"
		if !fa.lfs {
			fa.unsupported = "filter=" + f.Value()
		}
	}
	if at := got["ident"]; fa.unsupported == "" && at != nil && at.IsSet() {
		fa.unsupported = "ident"
	}
	if at := got["working-tree-encoding"]; fa.unsupported == "" && at != nil && at.IsValueSet() && !isUTF8(at.Value()) {
		fa.unsupported = "working-tree-encoding=" + at.Value()
	}
	return fa
}

// crlfActions, as git's git_path_check_crlf reads the text and crlf attributes.
type crlfAct uint8

const (
	crlfUndefined crlfAct = iota
	crlfBinary
	crlfText
	crlfAuto
)

func crlfAction(at gitattributes.Attribute) crlfAct {
	switch {
	case at == nil || at.IsUnspecified():
		return crlfUndefined
	case at.IsSet():
		return crlfText
	case at.IsUnset():
		return crlfBinary
	case at.Value() == "input":
		return crlfText
	case at.Value() == "auto":
		return crlfAuto
	}
	return crlfUndefined // any other value means nothing
}

// isUTF8 reports whether a working-tree-encoding names UTF-8, which git does
// not convert.
func isUTF8(enc string) bool {
	e := strings.ToUpper(enc)
	return e == "" || e == "UTF-8" || e == "UTF8"
}

// readBlob reads a blob from the object store.
func (r *Repo) readBlob(id plumbing.Hash) ([]byte, error) {
	obj, err := r.storage.EncodedObject(plumbing.BlobObject, id)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", id, err)
	}
	rd, err := obj.Reader()
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", id, err)
	}
	defer rd.Close()
	return io.ReadAll(rd)
}
