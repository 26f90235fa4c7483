package codehash

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
)

func TestParseComponents(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string // Component.String() of each
		errs []string // substrings, one per problem, all in the one error
	}{
		{name: "empty", text: "", want: nil},
		{name: "named", text: "api: services/api/** !services/api/**/*.md", want: []string{"api: services/api/** !services/api/**/*.md"}},
		{name: "named without a space", text: "api:services/api/**", want: []string{"api: services/api/**"}},
		{name: "directory glob", text: "lambdas/*", want: []string{"lambdas/*"}},
		{name: "leading ./", text: "./lambdas/*\nweb: ./web/**", want: []string{"lambdas/*", "web: web/**"}},
		{name: "comments and blank lines", text: "\n# the lambdas\n  lambdas/*  \n\n  # the api\napi: services/api/**\n", want: []string{"lambdas/*", "api: services/api/**"}},
		{name: "plain name characters", text: "a.b_c-1: x/**", want: []string{"a.b_c-1: x/**"}},
		{name: "leading dot", text: ".api: x/**", errs: []string{`".api" is not a plain name`}},
		{name: "odd character", text: "a+b: x/**", errs: []string{`"a+b" is not a plain name`}},
		{name: "declared twice", text: "api: a/**\napi: b/**", errs: []string{`line 2 "api: b/**": component "api" is declared twice (first on line 1)`}},
		{name: "a glob given twice", text: "lambdas/*\nweb: web/**\n./lambdas/*", errs: []string{`line 3 "./lambdas/*": the directory glob is given twice (first on line 1)`}},
		{name: "two names declared twice", text: "a: x/**\nb: y/**\na: z/**\nb: w/**", errs: []string{`line 3 "a: z/**": component "a"`, `line 4 "b: w/**": component "b"`}},
		{name: "no patterns", text: "api:", errs: []string{`component "api" lists no source patterns`}},
		{name: "several globs", text: "lambdas/* services/*", errs: []string{"a directory glob is one pattern"}},
		{name: "name with a space", text: "my api: x/**", errs: []string{"a directory glob is one pattern"}},
		{name: "negated glob", text: "!lambdas/*", errs: []string{"cannot be an exclusion"}},
		{name: "bad glob", text: "lambdas/[a", errs: []string{"malformed glob"}},
		{name: "bad pattern in a component", text: "api: /abs/**", errs: []string{`line 1 "api: /abs/**": pattern "/abs/**": absolute path`}},
		{name: "only exclusions", text: "api: !a/**", errs: []string{"only exclusions"}},
		// As YAML writes them: one problem each, not each word a pattern.
		{name: "a comment after a glob", text: "lambdas/*   # every lambda", errs: []string{`line 1 "lambdas/*   # every lambda": "# every lambda": '#' starts a comment only at the start of a line`}},
		{name: "a comment after patterns", text: "api: services/api/** # the api", errs: []string{`line 1 "api: services/api/** # the api": "# the api": '#' starts a comment only at the start of a line`}},
		{name: "a comment after the name", text: "api: # the api", errs: []string{`"# the api": '#' starts a comment only`}},
		{name: "a comment word after the name", text: "api:#x", errs: []string{`"#x": '#' starts a comment only`}},
		{name: "a pattern that begins with '#'", text: "gen: [#]gen/**", want: []string{"gen: [#]gen/**"}},
		{
			name: "all problems together, with line numbers",
			text: "ok: a/**\n.bad: x/**\nlambdas/[a\n\napi:\nok: b/**\nx/*\nx/*",
			errs: []string{"line 2", "line 3", "line 5", "line 6", "line 8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseComponents(tt.text)
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				var s []string
				for _, c := range got {
					s = append(s, c.String())
				}
				if !slices.Equal(s, tt.want) {
					t.Fatalf("got %q, want %q", s, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, got %v", got)
			}
			wantProblems(t, err, tt.errs)
		})
	}
}

// wantProblems fails unless err reports the problems errs, every one at
// once: it mentions each, and is an errors.Join of one error, of one line,
// each.
func wantProblems(t *testing.T, err error, errs []string) {
	t.Helper()
	for _, e := range errs {
		if !strings.Contains(err.Error(), e) {
			t.Errorf("error %q does not mention %q", err, e)
		}
	}
	if n, lines := len(unjoin(err)), strings.Count(err.Error(), "\n")+1; n != len(errs) || lines != len(errs) {
		t.Errorf("%d problems reported in %d lines, want %d (one error, one line each):\n%v", n, lines, len(errs), err)
	}
}

// monorepo is a checkout of a few lambdas, a service, a shared library and a
// lock file.
func monorepo(t *testing.T) string {
	t.Helper()
	return initRepo(t, map[string]string{
		".gitignore":               "node_modules/\n",
		"package-lock.json":        "{}\n",
		"libs/util/util.js":        "exports.util = 1\n",
		"lambdas/fn1/index.js":     "exports.fn1 = 1\n",
		"lambdas/fn1/README.md":    "fn1\n",
		"lambdas/fn2/index.js":     "exports.fn2 = 1\n",
		"lambdas/fn3/index.js":     "exports.fn3 = 1\n",
		"lambdas/README.md":        "the lambdas\n",
		"services/api/main.go":     "package main\n",
		"services/api/api_test.go": "package main\n",
		"docs/index.md":            "docs\n",
	})
}

func computeComponents(t *testing.T, dir, shared, comps, salt string) ([]ComponentHash, error) {
	t.Helper()
	sh, err := ParsePatterns(shared)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ParseComponents(comps)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := gitrepo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ComputeComponents(context.Background(), repo, sh, cs, salt)
}

func hashes(t *testing.T, dir, shared, comps string) map[string]string {
	t.Helper()
	res, err := computeComponents(t, dir, shared, comps, "")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, c := range res {
		m[c.Name] = c.Hash
	}
	return m
}

const (
	sharedFilter = "package-lock.json libs/**"
	monoComps    = "lambdas/*\napi: services/api/** !**/*_test.go"
)

// Each component covers the shared files and its own, and its hash is the
// one a separate pass over exactly those files would give, under its name.
func TestComputeComponentsFiles(t *testing.T) {
	dir := monorepo(t)
	res, err := computeComponents(t, dir, sharedFilter, monoComps, "salt")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		dir    string
		filter string // the same files as one filter
		files  []string
	}{
		"api": {"", sharedFilter + " services/api/** !**/*_test.go",
			[]string{"libs/util/util.js", "package-lock.json", "services/api/main.go"}},
		"fn1": {"lambdas/fn1", sharedFilter + " lambdas/fn1/**",
			[]string{"lambdas/fn1/README.md", "lambdas/fn1/index.js", "libs/util/util.js", "package-lock.json"}},
		"fn2": {"lambdas/fn2", sharedFilter + " lambdas/fn2/**",
			[]string{"lambdas/fn2/index.js", "libs/util/util.js", "package-lock.json"}},
		"fn3": {"lambdas/fn3", sharedFilter + " lambdas/fn3/**",
			[]string{"lambdas/fn3/index.js", "libs/util/util.js", "package-lock.json"}},
	}
	var names []string
	for _, c := range res {
		names = append(names, c.Name)
		w, ok := want[c.Name]
		if !ok {
			continue
		}
		var paths []string
		for _, f := range c.Files {
			paths = append(paths, f.Path)
		}
		if !slices.Equal(paths, w.files) {
			t.Errorf("%s: files %q, want %q", c.Name, paths, w.files)
		}
		if c.Dir != w.dir {
			t.Errorf("%s: dir %q, want %q", c.Name, c.Dir, w.dir)
		}
		single := compute(t, dir, w.filter, "salt")
		if got := digestWith(Scheme+"\nsalt\ncomponent "+c.Name+"\n", single.Files); got != c.Hash {
			t.Errorf("%s: hash %s, want %s (the layout over the same files as one filter)", c.Name, c.Hash, got)
		}
		if c.Hash == single.Hash {
			t.Errorf("%s: the component hash equals the plain hash of its files; it must cover its name", c.Name)
		}
	}
	if want := []string{"api", "fn1", "fn2", "fn3"}; !slices.Equal(names, want) {
		t.Errorf("components %q, want %q (sorted by name)", names, want)
	}
}

// Which components' hashes change for each kind of change: exactly the
// affected ones.
func TestComputeComponentsChanges(t *testing.T) {
	base := monorepo(t)
	before := hashes(t, base, sharedFilter, monoComps)
	all := []string{"api", "fn1", "fn2", "fn3"}
	tests := []struct {
		name    string
		edit    func(t *testing.T, dir string)
		shared  string
		comps   string
		changed []string
		added   []string
	}{
		{name: "nothing", changed: nil},
		{name: "one component's source", edit: write("lambdas/fn2/index.js", "exports.fn2 = 2\n"), changed: []string{"fn2"}},
		{name: "a new file in a component", edit: write("lambdas/fn1/util.js", "x\n"), changed: []string{"fn1"}},
		{name: "a shared source", edit: write("libs/util/util.js", "exports.util = 2\n"), changed: all},
		{name: "the lock file", edit: write("package-lock.json", "{\"v\":2}\n"), changed: all},
		{name: "an excluded file", edit: write("services/api/api_test.go", "package main // x\n"), changed: nil},
		{name: "outside every component", edit: write("docs/index.md", "more docs\n"), changed: nil},
		{name: "a file beside the component directories", edit: write("lambdas/README.md", "more\n"), changed: nil},
		{name: "an ignored file", edit: write("lambdas/fn1/node_modules/x.js", "junk\n"), changed: nil},
		{name: "a component's pattern", comps: "lambdas/*\napi: services/api/**", changed: []string{"api"}},
		{name: "a shared pattern", shared: "package-lock.json libs/** docs/**", changed: all},
		{name: "a component added", comps: monoComps + "\ndocs: docs/**", added: []string{"docs"}},
		{name: "a component directory added", edit: write("lambdas/fn4/index.js", "x\n"), added: []string{"fn4"}},
		{name: "a component renamed", comps: "lambdas/*\nrest: services/api/** !**/*_test.go", changed: nil, added: []string{"rest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			copyRepo(t, base, dir)
			if tt.edit != nil {
				tt.edit(t, dir)
			}
			after := hashes(t, dir, cmp.Or(tt.shared, sharedFilter), cmp.Or(tt.comps, monoComps))
			var changed, added []string
			for name, h := range after {
				b, ok := before[name]
				switch {
				case !ok:
					added = append(added, name)
				case b != h:
					changed = append(changed, name)
				}
			}
			slices.Sort(changed)
			slices.Sort(added)
			if !slices.Equal(changed, tt.changed) {
				t.Errorf("changed %q, want %q", changed, tt.changed)
			}
			if !slices.Equal(added, tt.added) {
				t.Errorf("added %q, want %q", added, tt.added)
			}
		})
	}
}

// A component's hash does not depend on which other components are declared,
// nor on the order of the lines.
func TestComputeComponentsIndependent(t *testing.T) {
	dir := monorepo(t)
	a := hashes(t, dir, "", "lambdas/*\napi: services/api/**")
	b := hashes(t, dir, "", "api: services/api/**\nlambdas/*")
	c := hashes(t, dir, "", "fn1: lambdas/fn1/**")
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("line order changed the hashes:\n%v\n%v", a, b)
	}
	if a["fn1"] != c["fn1"] {
		t.Errorf("fn1 from a directory glob %s, named %s: the same files and name must give the same hash", a["fn1"], c["fn1"])
	}
}

func TestComputeComponentsRefused(t *testing.T) {
	dir := monorepo(t)
	gitMkdir(t, dir, "services/fn1/main.go", "lambdas/.cache/x.js")
	sub := initRepo(t, map[string]string{"lib.js": "lib\n"})
	git(t, dir, "-c", "protocol.file.allow=always", "submodule", "add", "-q", "file://"+sub, "vendor/lib")
	tests := []struct {
		name, shared, comps string
		is                  error
		errs                []string
	}{
		{name: "a glob matching only submodules", comps: "vendor/*", is: ErrNoMatch, errs: []string{
			`line 1 "vendor/*": matches no directory holding source files (it matches only submodules, vendor/lib, whose files never count: name one as a component, as in "lib: vendor/lib")`}},
		{name: "a glob matching no directory", comps: "lambda/*", is: ErrNoMatch, errs: []string{`line 1 "lambda/*": matches no directory`}},
		{name: "a glob matching only files", comps: "lambdas/fn1/*", is: ErrNoMatch, errs: []string{"matches no directory"}},
		{name: "a component pattern matching nothing", comps: "api: service/api/**", is: ErrNoMatch, errs: []string{`line 1 "api: service/api/**": no source file matches pattern service/api/**`}},
		{name: "a component pattern all excluded", comps: "api: services/api/*_test.go !**/*_test.go", is: ErrNoMatch, errs: []string{`line 1 "api: services/api/*_test.go !**/*_test.go": no source file matches pattern services/api/*_test.go`}},
		{name: "a shared pattern matching nothing", shared: "lib/**", comps: "api: services/api/**", is: ErrNoMatch, errs: []string{"CODE_HASH_FIND_FILTER: no source file matches pattern lib/** (a typo, files since deleted, or only files git ignores (.gitignore)"}},
		{name: "two directories of one name", comps: "lambdas/[!.]*\nservices/*", is: ErrComponentName, errs: []string{`2 components named "fn1": lambdas/fn1 (line 1), services/fn1 (line 2)`}},
		{name: "a named component and a directory", comps: "lambdas/[!.]*\nfn2: docs/**", is: ErrComponentName, errs: []string{`2 components named "fn2"`}},
		{name: "a hidden directory", comps: "lambdas/*", is: ErrComponentName, errs: []string{`line 1 "lambdas/*": directory lambdas/.cache: ".cache" is not a plain name`}},
		{
			// A pattern selecting nothing hides no other problem.
			name: "every problem together", shared: "lib/**", comps: "# the lambdas\nlambdas/[!.]*\nservices/*\nsvc: service/api/**\nweb/*\nfn2: docs/**",
			is: ErrNoMatch, errs: []string{
				"CODE_HASH_FIND_FILTER: no source file matches pattern lib/**",
				`PACKAGE_COMPONENTS: line 4 "svc: service/api/**": no source file matches pattern service/api/**`,
				`PACKAGE_COMPONENTS: line 5 "web/*": matches no directory`,
				`PACKAGE_COMPONENTS: 2 components named "fn1": lambdas/fn1 (line 2), services/fn1 (line 3)`,
				`PACKAGE_COMPONENTS: 2 components named "fn2": line 6 "fn2: docs/**", lambdas/fn2 (line 2)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := computeComponents(t, dir, tt.shared, tt.comps, "")
			if !errors.Is(err, tt.is) {
				t.Fatalf("error %v, want %v", err, tt.is)
			}
			wantProblems(t, err, tt.errs)
		})
	}
}

// With '**' in a directory glob, every matching directory is a component,
// nested ones too.
func TestComputeComponentsDeepGlob(t *testing.T) {
	dir := initRepo(t, map[string]string{
		"svc/a/lambda-x/main.py":       "x\n",
		"svc/b/c/lambda-y/main.py":     "y\n",
		"svc/b/c/lambda-y/lambda-z/z":  "z\n",
		"svc/lambda-nothing-inside.py": "n\n",
	})
	res, err := computeComponents(t, dir, "", "svc/**/lambda-*", "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range res {
		got[c.Dir] = len(c.Files)
	}
	want := map[string]int{"svc/a/lambda-x": 1, "svc/b/c/lambda-y": 2, "svc/b/c/lambda-y/lambda-z": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("components %v, want %v", got, want)
	}
}

func write(path, content string) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) { writeFiles(t, dir, map[string]string{path: content}) }
}

// gitMkdir adds and commits files (content: their path).
func gitMkdir(t *testing.T, dir string, paths ...string) {
	t.Helper()
	m := map[string]string{}
	for _, p := range paths {
		m[p] = p + "\n"
	}
	writeFiles(t, dir, m)
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-q", "-m", "more")
}

// copyRepo copies a checkout, .git included, as cp -a would.
func copyRepo(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, info.Mode().Perm()); err != nil {
			return err
		}
		return os.Chtimes(dst, info.ModTime(), info.ModTime())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSelectorMembers holds the selector's per-directory decisions to
// matching every component against every path.
func TestSelectorMembers(t *testing.T) {
	spec := "lambdas/*\nsvc/**/cmd\n" +
		"api: services/api/** !services/api/**/*.md\n" +
		"one: services/one/main.go lambdas/fn1/**\n" +
		"pkgs: lambdas/*/src/pkg0*/** !lambdas/fn2/**\n" +
		"py: **/*.py\n" +
		"brace: {lambdas,services}/fn1/**\n" +
		"all: **\n"
	comps, err := ParseComponents(spec)
	if err != nil {
		t.Fatal(err)
	}
	shared, _ := ParsePatterns("libs/** go.mod")
	paths := []string{
		"go.mod", "main.py", "libs/a.go", "lambdas/fn1/index.js", "lambdas/fn1/src/pkg03/a.py",
		"lambdas/fn2/src/pkg01/b.js", "lambdas/fn3/src/pkg11/c.py", "services/api/x.go",
		"services/api/doc/readme.md", "services/one/main.go", "services/one/other.go",
		"svc/a/cmd/main.go", "svc/a/b/cmd/x/y.go", "svc/cmd/z.go", "services/fn1/q.txt", "lambdas/x",
	}
	type hit struct {
		ci  int
		dir string
	}
	for _, fresh := range []bool{true, false} {
		sel := newSelector(shared, comps)
		if !fresh { // decisions cached by a walk over every path first
			for _, p := range paths {
				sel.any(p)
			}
		}
		for _, p := range paths {
			var got, want []hit
			sel.members(p, func(ci int, dir string) { got = append(got, hit{ci, dir}) })
			for ci := range comps {
				sel.visit(ci, p, func(ci int, dir string) { want = append(want, hit{ci, dir}) })
			}
			sortHits := func(h []hit) {
				slices.SortFunc(h, func(a, b hit) int { return cmp.Or(a.ci-b.ci, strings.Compare(a.dir, b.dir)) })
			}
			sortHits(got)
			sortHits(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s: members %v, want %v", p, got, want)
			}
			if a, w := sel.any(p), len(want) > 0 || Match(shared, p); a != w {
				t.Errorf("%s: any = %v, want %v", p, a, w)
			}
		}
	}
}

// ComponentNames gives, without hashing, the names ComputeComponents gives
// for every declaration it accepts, and ok false for those it refuses on
// names alone; an untracked directory makes no component there.
// An untracked directory a glob matches is a component to ComputeComponents
// (the code hash counts untracked files): the names alone cannot tell, so a
// found check hashes rather than count a commit complete without it.
func TestComponentNamesUntrackedDirectory(t *testing.T) {
	dir := monorepo(t)
	writeFiles(t, dir, map[string]string{"lambdas/fn9/index.js": "generated\n"})
	repo, err := gitrepo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ParseComponents("lambdas/[!.]*")
	if err != nil {
		t.Fatal(err)
	}
	res, err := ComputeComponents(context.Background(), repo, nil, cs, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(res, func(c ComponentHash) bool { return c.Name == "fn9" }) {
		t.Fatalf("ComputeComponents made no component of the untracked lambdas/fn9: %v", res)
	}
	if names, ok, err := ComponentNames(repo, cs); err != nil || ok {
		t.Errorf("ComponentNames = %q, ok %t, %v; want not ok (an untracked component)", names, ok, err)
	}
}

func TestComponentNames(t *testing.T) {
	dir := monorepo(t)
	gitMkdir(t, dir, "services/fn1/main.go", "lambdas/.cache/x.js", "svc/a/lambda-x/main.py", "svc/b/c/lambda-y/lambda-z/z")
	writeFiles(t, dir, map[string]string{"web/untracked/x.js": "x\n"})
	repo, err := gitrepo.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		comps string
		ok    bool
	}{
		{"lambdas/[!.]*\napi: services/api/**", true},
		{"api: services/api/**\ndocs: docs/**", true},
		{"svc/**/lambda-*", true},
		{"lambdas/[!.]*\nlambdas/fn*\napi: services/api/**", true}, // one directory, two globs
		{"lambdas/*", false},                                       // lambdas/.cache: not a plain name
		{"lambdas/[!.]*\nservices/*", false},                       // two fn1
		{"lambdas/[!.]*\nfn2: docs/**", false},                     // fn2 twice
		{"lambda/*", false},                                        // matches no directory
		{"web/*", false},                                           // only untracked files
	} {
		t.Run(tt.comps, func(t *testing.T) {
			cs, err := ParseComponents(tt.comps)
			if err != nil {
				t.Fatal(err)
			}
			names, ok, err := ComponentNames(repo, cs)
			if err != nil || ok != tt.ok {
				t.Fatalf("names %q ok %t (%v), want ok %t", names, ok, err, tt.ok)
			}
			res, err := ComputeComponents(context.Background(), repo, nil, cs, "")
			if tt.ok != (err == nil) && !strings.HasPrefix(tt.comps, "web/") {
				t.Fatalf("ComputeComponents: %v", err)
			}
			if !ok {
				return
			}
			var want []string
			for _, c := range res {
				want = append(want, c.Name)
			}
			if !slices.Equal(names, want) {
				t.Errorf("names %q, ComputeComponents %q", names, want)
			}
		})
	}
}
