package codehash

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/pool"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Component is one line of PACKAGE_COMPONENTS: either a named component with
// its own source patterns ("api: services/api/** !**/*.md"), or a directory
// glob ("lambdas/*") that makes every matching directory holding source
// files a component, named by the directory's base name, with the sources
// "<dir>/**".
type Component struct {
	Name     string    // the named form; "" for a directory glob
	Patterns []Pattern // the named form's patterns
	DirGlob  string    // the directory-glob form
	Line     int       // its line in PACKAGE_COMPONENTS, from 1 (0: not from a declaration)
}

// globNoMatchWhy says what a directory glob that matches no directory of
// source files may be: one matching only submodules, whose directories hold
// no source files of this repository, or noMatchWhy's guesses.
func globNoMatchWhy(repo *gitrepo.Repo, glob string) string {
	subs, _ := repo.Submodules() // best effort: the index was read already
	var hit []string
	for _, s := range subs {
		if doublestar.MatchUnvalidated(glob, s) {
			hit = append(hit, words.Printable(s))
		}
	}
	if len(hit) == 0 {
		return noMatchWhy
	}
	return fmt.Sprintf("it matches only submodules, %s, whose files never count: name one as a component, as in \"%s: %s\"",
		strings.Join(hit, ", "), path.Base(hit[0]), hit[0])
}

// noMatchWhy is what a pattern that matches no source file may be: the
// files git ignores never count, whatever the filter says.
const noMatchWhy = "a typo, files since deleted, or only files git ignores (.gitignore) or a ! pattern excludes?"

func (c Component) String() string {
	if c.DirGlob != "" {
		return c.DirGlob
	}
	ps := make([]string, len(c.Patterns))
	for i, p := range c.Patterns {
		ps[i] = p.String()
	}
	return c.Name + ": " + strings.Join(ps, " ")
}

// ErrComponentName: a component name that is not a plain name, or two
// components with the same name.
var ErrComponentName = manifest.ErrComponentName

// ValidName reports whether name can name a component: it becomes a
// directory in the package directory, a segment of S3 keys and a GitHub
// matrix value, so only [A-Za-z0-9._-], without a leading dot.
func ValidName(name string) error { return manifest.ValidComponent(name) }

// ParseComponents reads PACKAGE_COMPONENTS: one component a line, blank
// lines and lines starting with '#' skipped. A line whose first word ends
// in ':' (or holds one) is the named form, "name: pattern pattern ..."; any
// other line is one directory glob. Every problem is reported at once, each
// naming its line; the lines without one are returned with the error, so
// that what only the tree shows can be reported with it (see
// ComputeComponents).
func ParseComponents(text string) ([]Component, error) {
	var (
		comps []Component
		errs  []error
		seen  = map[string]int{} // name or directory glob → its first line
	)
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || IsCommentLine(line) {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, lineError(n+1, line, fmt.Errorf(format, args...)))
		}
		if name, rest, ok := strings.Cut(line, ":"); ok && !strings.ContainsAny(name, " \t") {
			if err := ValidName(name); err != nil {
				bad("%w", err)
				continue
			}
			if first, ok := seen["n:"+name]; ok {
				errs = append(errs, lineError(n+1, line, marked{fmt.Errorf("component %q is declared twice (first on line %d)", name, first), ErrComponentName}))
				continue
			}
			seen["n:"+name] = n + 1
			if strings.TrimSpace(rest) == "" {
				bad("component %q lists no source patterns", name)
				continue
			}
			pats, _, err := parsePatterns(rest, true)
			if err != nil {
				for _, e := range unjoin(err) {
					bad("%w", e)
				}
				continue
			}
			comps = append(comps, Component{Name: name, Patterns: pats, Line: n + 1})
			continue
		}
		f := strings.Fields(line)
		switch err := inlineComment(f, 1); {
		case err != nil:
			bad("%w", err)
			continue
		case len(f) > 1:
			bad("a directory glob is one pattern; to list patterns write \"name: pattern ...\"")
			continue
		case strings.HasPrefix(f[0], "!"):
			bad("a directory glob cannot be an exclusion")
			continue
		}
		if err := validGlob(f[0]); err != nil {
			bad("%w", err)
			continue
		}
		glob := strings.TrimPrefix(f[0], "./")
		if first, ok := seen["d:"+glob]; ok {
			bad("the directory glob is given twice (first on line %d)", first)
			continue
		}
		seen["d:"+glob] = n + 1
		comps = append(comps, Component{DirGlob: glob, Line: n + 1})
	}
	return comps, errors.Join(errs...)
}

// lineError is a problem of one line of PACKAGE_COMPONENTS, naming it.
func lineError(n int, line string, err error) error {
	return fmt.Errorf("line %d %q: %w", n, words.Truncate(line, 60), err)
}

// problem names a component's line in its problems: 'line 3 "lambdas/*"'.
func (c Component) problem(err error) error {
	if c.Line == 0 {
		return fmt.Errorf("%q: %w", words.Truncate(c.String(), 60), err)
	}
	return lineError(c.Line, c.String(), err)
}

// ComponentHash is one component's code hash and the files it covers (the
// shared ones and its own), in path order.
type ComponentHash struct {
	Name string
	// Dir is the directory that made the component, for the directory-glob form.
	Dir string
	Result
}

// ComputeComponents hashes every component in one pass over the index and
// the working tree (see Compute for which files are source). Each
// component's hash covers the files shared selects (CODE_HASH_FIND_FILTER;
// may be empty), its own, and its name:
//
//	s3-asset-manager code hash v1\n
//	<salt>\n
//	component <name>\n
//
// then the files as in Compute. (A file line always holds a NUL, so no
// component hash equals a hash without components.) The result is sorted by
// name. Refused, with every problem at once (an errors.Join, one error a
// problem, each naming its setting and line), wrapping ErrNoMatch: a shared
// or component pattern that selects no source file, a directory glob that
// matches no directory with source files; wrapping ErrComponentName: two
// components of one name, a matched directory whose name is not plain.
func ComputeComponents(ctx context.Context, repo *gitrepo.Repo, shared []Pattern, comps []Component, salt string) ([]ComponentHash, error) {
	if strings.ContainsAny(salt, "\n\r\x00") {
		return nil, errors.New("the salt must be a single line")
	}
	if len(comps) == 0 {
		return nil, errors.New("no components")
	}
	sel := newSelector(shared, comps)
	files, err := repo.SourceFiles(ctx, sel.any, descender(sel.positives))
	if err != nil {
		return nil, err
	}

	// Partition: each file goes to the shared list and to every component
	// that selects it; directory-glob components appear as their files do.
	type acc struct {
		name, dir string
		glob      int // index in comps of the line that made it
		own       []int
	}
	var (
		sharedIdx []int
		byKey     = map[string]*acc{} // "n:<name>" for named, "d:<dir>" for directories
		order     []*acc
		globHit   = make([]bool, len(comps)) // a directory glob matched a directory
	)
	get := func(key, name, dir string, glob int) *acc {
		a := byKey[key]
		if a == nil {
			a = &acc{name: name, dir: dir, glob: glob}
			byKey[key] = a
			order = append(order, a)
		}
		return a
	}
	for _, i := range sel.named {
		get("n:"+comps[i].Name, comps[i].Name, "", i)
	}
	var (
		sharedFiles []gitrepo.File
		lastDir     = "\x00" // no directory's name
		d           *dirSelection
	)
	for i, f := range files {
		// The files are in path order: a directory's files one after
		// another, and its decisions looked up once for them all.
		if dir := f.Path[:max(0, strings.LastIndexByte(f.Path, '/'))]; dir != lastDir {
			d, lastDir = sel.forDir(f.Path), dir
		}
		if d.shared == decidedYes || d.shared == perFile && Match(shared, f.Path) {
			sharedIdx = append(sharedIdx, i)
			sharedFiles = append(sharedFiles, f)
		}
		sel.membersIn(d, f.Path, func(ci int, dir string) {
			c := comps[ci]
			var a *acc
			if c.DirGlob == "" {
				a = byKey["n:"+c.Name]
			} else {
				a = get("d:"+dir, path.Base(dir), dir, ci)
				globHit[ci] = true
			}
			if n := len(a.own); n == 0 || a.own[n-1] != i { // two patterns of one line, one file
				a.own = append(a.own, i)
			}
		})
	}

	// Every problem only the tree shows, all of them at once, each naming
	// its line: what a typo makes (patterns selecting nothing, globs
	// matching no directory), and names that are not plain or taken twice.
	var errs []error
	if len(shared) > 0 {
		for _, p := range selectsNothing(positivesOf(shared), sharedFiles) {
			errs = append(errs, fmt.Errorf("CODE_HASH_FIND_FILTER: %w %s", ErrNoMatch, whyNoMatch(repo, []Pattern{p})))
		}
	}
	components := func(err error) error { return fmt.Errorf("PACKAGE_COMPONENTS: %w", err) }
	for ci, c := range comps {
		if c.DirGlob != "" {
			if !globHit[ci] {
				errs = append(errs, components(c.problem(marked{errors.New("matches no directory holding source files (" + globNoMatchWhy(repo, c.DirGlob) + ")"), ErrNoMatch})))
			}
			continue
		}
		own := byKey["n:"+c.Name].own
		ownFiles := make([]gitrepo.File, len(own))
		for k, i := range own {
			ownFiles[k] = files[i]
		}
		for _, p := range selectsNothing(positivesOf(c.Patterns), ownFiles) {
			errs = append(errs, components(c.problem(fmt.Errorf("%w %s", ErrNoMatch, whyNoMatch(repo, []Pattern{p})))))
		}
	}
	byName := map[string][]string{}
	var names []string
	for _, a := range order {
		if a.dir != "" {
			if err := ValidName(a.name); err != nil {
				errs = append(errs, components(comps[a.glob].problem(marked{fmt.Errorf("directory %s: %s (lambdas/[!.]* leaves out hidden directories)",
					a.dir, strings.TrimPrefix(err.Error(), ErrComponentName.Error()+": ")), ErrComponentName})))
				continue
			}
		}
		if _, ok := byName[a.name]; !ok {
			names = append(names, a.name)
		}
		from := fmt.Sprintf("line %d %q", comps[a.glob].Line, words.Truncate(comps[a.glob].String(), 40))
		if a.dir != "" {
			from = fmt.Sprintf("%s (line %d)", a.dir, comps[a.glob].Line)
		}
		byName[a.name] = append(byName[a.name], from)
	}
	for _, n := range names {
		if from := byName[n]; len(from) > 1 {
			errs = append(errs, components(marked{fmt.Errorf("%d components named %q: %s", len(from), n, strings.Join(from, ", ")), ErrComponentName}))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Each component's files and hash, on every core: this follows the
	// walk, on the critical path (100 components over 200,000 files: 25 ms
	// on one).
	out := make([]ComponentHash, len(order))
	err = pool.Run(ctx, runtime.GOMAXPROCS(0), len(order), func(_ context.Context, k int) error {
		a := order[k]
		// Shared and own, merged in path order (both are in it already).
		cf := make([]gitrepo.File, 0, len(sharedIdx)+len(a.own))
		i, j := 0, 0
		for i < len(sharedIdx) || j < len(a.own) {
			switch {
			case j == len(a.own) || (i < len(sharedIdx) && sharedIdx[i] < a.own[j]):
				cf = append(cf, files[sharedIdx[i]])
				i++
			case i == len(sharedIdx) || a.own[j] < sharedIdx[i]:
				cf = append(cf, files[a.own[j]])
				j++
			default: // shared and its own
				cf = append(cf, files[a.own[j]])
				i, j = i+1, j+1
			}
		}
		header := Scheme + "\n" + salt + "\ncomponent " + a.name + "\n"
		out[k] = ComponentHash{Name: a.name, Dir: a.dir, Result: Result{Hash: digestWith(header, cf), Files: cf}}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(x, y ComponentHash) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// ComponentNames names the components comps declares for the tracked tree,
// as ComputeComponents would, without reading or hashing a file: a named
// component names itself; a directory glob names each matching directory
// holding a tracked file (the index is read only for a directory glob).
// Sorted. ok is false when the names alone show a declaration
// ComputeComponents refuses (a glob matching no tracked directory, a
// directory name that is not plain, a name taken twice), and when a
// directory glob matches a directory of the working tree that holds no
// tracked file (untracked sources, which ComputeComponents would make a
// component of, or only ignored ones): the caller hashes, which decides.
func ComponentNames(repo *gitrepo.Repo, comps []Component) (names []string, ok bool, err error) {
	var paths []string
	if slices.ContainsFunc(comps, func(c Component) bool { return c.DirGlob != "" }) {
		if paths, err = repo.TrackedPaths(); err != nil {
			return nil, false, err
		}
	}
	names, ok = componentNames(paths, comps)
	if !ok {
		return nil, false, nil
	}
	if !slices.IsSorted(paths) {
		paths = slices.Sorted(slices.Values(paths))
	}
	root := os.DirFS(repo.Root)
	for _, c := range comps {
		if c.DirGlob == "" {
			continue
		}
		dirs, err := doublestar.Glob(root, c.DirGlob, doublestar.WithFailOnIOErrors())
		if err != nil {
			return nil, false, nil // the hashing path reads the tree and says what is wrong
		}
		for _, d := range dirs {
			if fi, err := fs.Stat(root, d); err != nil || !fi.IsDir() {
				continue
			}
			// Index paths are sorted: the first at or after "d/" says
			// whether any is under d.
			i, _ := slices.BinarySearch(paths, d+"/")
			if i == len(paths) || !strings.HasPrefix(paths[i], d+"/") {
				return nil, false, nil
			}
		}
	}
	return names, true, nil
}

// componentNames is ComponentNames over the tracked paths given, through
// the selector ComputeComponents uses.
func componentNames(paths []string, comps []Component) ([]string, bool) {
	var named []Component
	for _, c := range comps {
		if c.DirGlob == "" {
			named = append(named, c)
		}
	}
	dirs := map[string]bool{}
	globHit := make([]bool, len(comps))
	if len(named) < len(comps) {
		sel := newSelector(nil, comps)
		prev := "\x00"
		for _, p := range paths {
			// A directory glob depends on a path's directories alone: one
			// file a directory says it for all of them.
			dir := ""
			if i := strings.LastIndexByte(p, '/'); i >= 0 {
				dir = p[:i]
			}
			if dir == prev {
				continue
			}
			prev = dir
			sel.members(p, func(ci int, d string) {
				if comps[ci].DirGlob != "" {
					dirs[d], globHit[ci] = true, true
				}
			})
		}
	}
	for ci, c := range comps {
		if c.DirGlob != "" && !globHit[ci] {
			return nil, false
		}
	}
	names := make([]string, 0, len(named)+len(dirs))
	for _, c := range named {
		names = append(names, c.Name)
	}
	for d := range dirs {
		n := path.Base(d)
		if ValidName(n) != nil {
			return nil, false
		}
		names = append(names, n)
	}
	slices.Sort(names)
	if len(slices.Compact(slices.Clone(names))) != len(names) {
		return nil, false
	}
	return names, true
}

// ErrUnknownComponent: PACKAGE_COMPONENT names no component.
var ErrUnknownComponent = errors.New("PACKAGE_COMPONENT names no component")

// Select keeps the component called name, or all of them when name is "".
func Select(comps []ComponentHash, name string) ([]ComponentHash, error) {
	if name == "" {
		return comps, nil
	}
	names := make([]string, len(comps))
	for i, c := range comps {
		if c.Name == name {
			return comps[i : i+1], nil
		}
		names[i] = c.Name
	}
	return nil, fmt.Errorf("%w: %q is not one of %s", ErrUnknownComponent, name, strings.Join(names, ", "))
}

// selector decides which components a path belongs to, without matching
// every component's patterns against every path: a component is a candidate
// only for the paths under the literal leading segments of one of its
// patterns ("lambdas/fn1" of "lambdas/fn1/**/*.js"), found by one map lookup
// a directory level of the path; a pattern that starts with glob syntax
// makes its component a candidate for every path.
type selector struct {
	shared    []Pattern
	comps     []Component
	named     []int            // indexes of the named components
	byPrefix  map[string][]int // literal leading segments → candidate components
	anywhere  []int            // components with a pattern that can match anything
	globSegs  []int            // per directory glob: its segment count, or 0 with '**'
	positives []Pattern        // every positive pattern, for the walk's pruning
	dirs      sync.Map         // directory → *dirSelection
}

func newSelector(shared []Pattern, comps []Component) *selector {
	s := &selector{shared: shared, comps: comps, byPrefix: map[string][]int{}, globSegs: make([]int, len(comps))}
	s.positives = append(s.positives, positivesOf(shared)...)
	for i, c := range comps {
		var globs []string
		if c.DirGlob != "" {
			globs = []string{c.DirGlob}
			s.positives = append(s.positives, Pattern{Glob: c.DirGlob + "/**"})
			if !strings.Contains(c.DirGlob, "**") {
				s.globSegs[i] = strings.Count(c.DirGlob, "/") + 1
			}
		} else {
			s.named = append(s.named, i)
			for _, p := range positivesOf(c.Patterns) {
				globs = append(globs, p.Glob)
				s.positives = append(s.positives, p)
			}
		}
		prefixes := map[string]bool{}
		for _, g := range globs {
			segs := strings.Split(g, "/")
			n := 0
			for n < len(segs) && !strings.ContainsAny(segs[n], `*?[]{}\`) {
				n++
			}
			prefixes[strings.Join(segs[:n], "/")] = true
		}
		if prefixes[""] {
			s.anywhere = append(s.anywhere, i)
			continue
		}
		for p := range prefixes {
			s.byPrefix[p] = append(s.byPrefix[p], i)
		}
	}
	return s
}

// any reports whether the shared patterns or any component select path.
func (s *selector) any(p string) bool {
	d := s.forDir(p)
	if d.shared == decidedYes || d.shared == perFile && Match(s.shared, p) {
		return true
	}
	found := false
	s.members(p, func(int, string) { found = true })
	return found
}

// members calls fn for every component that selects p: the index of its
// line, and for a directory glob the matching directory (a file under two
// matching directories, with '**', belongs to both).
func (s *selector) members(p string, fn func(ci int, dir string)) {
	s.membersIn(s.forDir(p), p, fn)
}

// membersIn is members with the decisions of p's directory (forDir) at hand.
func (s *selector) membersIn(d *dirSelection, p string, fn func(ci int, dir string)) {
	for _, m := range d.all {
		fn(m.ci, m.dir)
	}
	for _, ci := range d.perFile {
		s.visit(ci, p, fn)
	}
	// A literal pattern names a file: the path itself is a candidate
	// prefix too, unless its component was met above.
	for _, ci := range s.byPrefix[p] {
		if !slices.Contains(d.seen, ci) {
			s.visit(ci, p, fn)
		}
	}
}

// visit calls fn if component ci selects p.
func (s *selector) visit(ci int, p string, fn func(ci int, dir string)) {
	c := s.comps[ci]
	if c.DirGlob == "" {
		if Match(c.Patterns, p) {
			fn(ci, "")
		}
		return
	}
	if n := s.globSegs[ci]; n > 0 {
		// The directory is the path's first n segments, if more follow.
		end := -1
		for range n {
			j := strings.IndexByte(p[end+1:], '/')
			if j < 0 {
				return
			}
			end += j + 1
		}
		if dir := p[:end]; doublestar.MatchUnvalidated(c.DirGlob, dir) {
			fn(ci, dir)
		}
		return
	}
	for j := range len(p) {
		if p[j] == '/' && doublestar.MatchUnvalidated(c.DirGlob, p[:j]) {
			fn(ci, p[:j])
		}
	}
}

// dirSelection is what the selector decides once for all the files
// directly in one directory: matching every component's patterns against
// every path was most of the time of hashing 100 components.
type dirSelection struct {
	shared  decision
	all     []member // components that select every file of the directory
	perFile []int    // candidates to match file by file
	seen    []int    // every candidate met through the directory's prefixes
}

type member struct {
	ci  int
	dir string
}

type decision int8

const (
	perFile decision = iota
	decidedYes
	decidedNo
)

// forDir gives the decisions for the directory of the file at p, computed
// on first use (the walk asks from several goroutines).
func (s *selector) forDir(p string) *dirSelection {
	dir, depth := "", 0
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, depth = p[:i], strings.Count(p[:i], "/")+1
	}
	if d, ok := s.dirs.Load(dir); ok {
		return d.(*dirSelection)
	}
	// Every file of the directory gives the same answers as this one, for
	// the patterns forDir decides (see sameForDir).
	probe := "x"
	if dir != "" {
		probe = dir + "/x"
	}
	d := &dirSelection{}
	if len(s.shared) == 0 {
		d.shared = decidedNo
	} else if sameForDir(s.shared, depth) {
		d.shared = decidedNo
		if Match(s.shared, probe) {
			d.shared = decidedYes
		}
	}
	candidate := func(ci int) {
		if slices.Contains(d.seen, ci) {
			return // listed under two prefixes (patterns "a/**" and "a/b/**")
		}
		d.seen = append(d.seen, ci)
		// A directory glob depends on the directories of a path alone.
		if c := s.comps[ci]; c.DirGlob != "" || sameForDir(c.Patterns, depth) {
			s.visit(ci, probe, func(ci int, dir string) { d.all = append(d.all, member{ci, dir}) })
			return
		}
		d.perFile = append(d.perFile, ci)
	}
	for j := range len(probe) {
		if probe[j] == '/' {
			for _, ci := range s.byPrefix[probe[:j]] {
				candidate(ci)
			}
		}
	}
	for _, ci := range s.anywhere {
		candidate(ci)
	}
	actual, _ := s.dirs.LoadOrStore(dir, d)
	return actual.(*dirSelection)
}

func positivesOf(pats []Pattern) []Pattern {
	var out []Pattern
	for _, p := range pats {
		if !p.Negate {
			out = append(out, p)
		}
	}
	return out
}

// marked is an error that errors.Is counts as kind, its text its own.
type marked struct {
	error
	kind error
}

func (m marked) Is(target error) bool { return target == m.kind }
func (m marked) Unwrap() error        { return m.error }

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
