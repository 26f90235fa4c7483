package codehash

import (
	"slices"
	"strings"
	"testing"
)

func TestParsePatterns(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		want   []Pattern
		errs   []string // substrings, one per problem, all in the one error
	}{
		{name: "empty", filter: "", want: nil},
		{name: "space separated", filter: "lambdas/** shared/*.py", want: []Pattern{{Glob: "lambdas/**"}, {Glob: "shared/*.py"}}},
		{name: "newline separated", filter: "lambdas/**\n  shared/*.py\n", want: []Pattern{{Glob: "lambdas/**"}, {Glob: "shared/*.py"}}},
		{name: "leading ./", filter: "./src/** !./src/gen/**", want: []Pattern{{Glob: "src/**"}, {Glob: "src/gen/**", Negate: true}}},
		{name: "braces", filter: "{a,b}/**", want: []Pattern{{Glob: "{a,b}/**"}}},
		{name: "negated class", filter: "src/[!x]*.py", want: []Pattern{{Glob: "src/[!x]*.py"}}},
		{name: "negation", filter: "src/** !src/test/**", want: []Pattern{{Glob: "src/**"}, {Glob: "src/test/**", Negate: true}}},
		{name: "unclosed bracket", filter: "a/[b", errs: []string{`"a/[b": malformed glob`}},
		{name: "unclosed brace", filter: "a/{b,c", errs: []string{`"a/{b,c": malformed glob`}},
		{name: "absolute", filter: "/abs/**", errs: []string{`"/abs/**": absolute path`}},
		{name: "parent", filter: "../x", errs: []string{`"../x": '..' segment`}},
		{name: "parent after ./", filter: "./../x", errs: []string{`"./../x": '..' segment`}},
		{name: "parent inside", filter: "a/../b", errs: []string{`"a/../b": '..' segment`}},
		{name: "dot inside", filter: "a/./b", errs: []string{`"a/./b": '.' segment`}},
		{name: "empty segment", filter: "a//b", errs: []string{`"a//b": empty path segment`}},
		{name: "trailing slash", filter: "a/", errs: []string{`"a/": empty path segment`}},
		{name: "backslash", filter: `a\b`, errs: []string{`contains '\'`}},
		{name: "bare !", filter: "src/** !", errs: []string{"empty pattern after '!'"}},
		{name: "only negations", filter: "!a/** !b/**", errs: []string{"only exclusions"}},
		// '#': literal in a filter of one line, the original's Python glob
		// (pipelines keep their meaning); in a filter of several lines (a
		// YAML block) a line beginning with '#' is a comment, as in
		// PACKAGE_COMPONENTS, and a '#' word after a pattern is refused.
		{name: "one line: a pattern beginning with '#' then another", filter: "#gen/** src/**", want: []Pattern{{Glob: "#gen/**"}, {Glob: "src/**"}}},
		{name: "one line: a '#' pattern after another", filter: "src/** #gen/**", want: []Pattern{{Glob: "src/**"}, {Glob: "#gen/**"}}},
		{name: "one line: only a '#' pattern", filter: "#gen/**", want: []Pattern{{Glob: "#gen/**"}}},
		{name: "one line of a block scalar", filter: "  #gen/**\n", want: []Pattern{{Glob: "#gen/**"}}},
		{name: "one line: a bare '#' is refused", filter: "lambdas/**   # the lambdas", errs: []string{`"# the lambdas": a '#' alone: a filter of one line has no comments ('#' is literal, as in the original tool)`}},
		{name: "several lines: a comment line is skipped", filter: "src/**\n#gen/**", want: []Pattern{{Glob: "src/**"}}},
		{name: "several lines: a comment line first", filter: "# the lambdas\nlambdas/**", want: []Pattern{{Glob: "lambdas/**"}}},
		{name: "several lines: comment lines in a block scalar", filter: "  lambdas/**\n  # generated code stays out\n  !lambdas/gen/**\n", want: []Pattern{{Glob: "lambdas/**"}, {Glob: "lambdas/gen/**", Negate: true}}},
		{name: "several lines: a comment after a pattern", filter: "shared/**\nlambdas/**   # the lambdas", errs: []string{`"# the lambdas": '#' starts a comment only at the start of a line: put the comment on a line of its own (a pattern that begins with '#' is written [#]...)`}},
		{name: "several lines: a '#' word after a pattern", filter: "shared/**\nsrc/** #gen", errs: []string{`"#gen": '#' starts a comment only`}},
		{name: "several lines: [#] is a pattern", filter: "src/**\n[#]gen/**", want: []Pattern{{Glob: "src/**"}, {Glob: "[#]gen/**"}}},
		{name: "a pattern that begins with [#]", filter: "[#]gen/**", want: []Pattern{{Glob: "[#]gen/**"}}},
		{name: "several lines, all comments", filter: "# lambdas/**\n#shared/**", errs: []string{"every line of the filter begins with '#', so all 2 are comments and no pattern is left: name the files to include (a pattern that begins with '#' is written [#]...)"}},
		{
			name:   "all problems reported together",
			filter: "a/[b /abs ../x ok/** a/../b",
			errs:   []string{`"a/[b"`, `"/abs"`, `"../x"`, `"a/../b"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePatterns(tt.filter)
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
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

// The comment lines a filter of several lines skips are returned, to be
// logged; a filter of one line has none.
func TestParseFilterComments(t *testing.T) {
	for filter, want := range map[string][]string{
		"src/**\n  #gen/**  \n": {"#gen/**"},
		"#gen/** src/**":        nil,
		"src/**":                nil,
	} {
		_, got, err := ParseFilter(filter)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseFilter(%q): comments %q, %v; want %q", filter, got, err, want)
		}
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		filter string
		path   string
		want   bool
	}{
		{"src/**", "src/a.py", true},
		{"src/**", "src/deep/er/a.py", true},
		{"src/**", "srcx/a.py", false},
		{"src/**", "other/src/a.py", false},
		{"**/*.py", ".github/x.py", true}, // ** matches hidden directories
		{"src/**", "src/.env", true},
		{"{a,b}/*", "a/x", true},
		{"{a,b}/*", "b/x", true},
		{"{a,b}/*", "c/x", false},
		{"{a,b}/*", "a/x/y", false},
		{"[!x]*.py", "a.py", true},
		{"[!x]*.py", "x.py", false},
		// The last matching pattern wins.
		{"src/** !src/test/**", "src/a.py", true},
		{"src/** !src/test/**", "src/test/a.py", false},
		{"src/** !src/test/** src/test/keep.py", "src/test/keep.py", true},
		{"src/** !src/test/** src/test/keep.py", "src/test/other.py", false},
		{"!src/test/** src/**", "src/test/a.py", true}, // an exclusion before the inclusion has no effect
		{"src/** !**/*.md", "src/README.md", false},
		{"src/** !**/*.md", "src/a.py", true},
		{"[#]gen/**", "#gen/a.txt", true}, // as docs/code-hash.md writes one
		{"[#]gen/**", "gen/a.txt", false},
	}
	for _, tt := range tests {
		pats, err := ParsePatterns(tt.filter)
		if err != nil {
			t.Fatalf("%q: %v", tt.filter, err)
		}
		if got := Match(pats, tt.path); got != tt.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tt.filter, tt.path, got, tt.want)
		}
	}
}

// TestSameForDir: where sameForDir says a directory decides, every file
// name in it gets the answer of the probe name the selector uses.
func TestSameForDir(t *testing.T) {
	filters := []string{
		"**", "lambdas/**", "lambdas/*/**", "lambdas/fn?/src/**", "lambdas/** !lambdas/fn1/**",
		"lambdas/*/src/pkg0*/** !lambdas/fn2/**", "**/*.py", "lambdas/fn1/main.py", "{a,b}/**",
		"lambdas/[ab]/**", "lambdas/**/x/**", "*/**", "lambdas/fn1/*",
	}
	dirs := []string{"", "lambdas", "lambdas/fn1", "lambdas/fn2/src", "lambdas/fn1/src/pkg03",
		"lambdas/fn2/src/pkg0x/deep", "a", "b/c", "docs/x"}
	names := []string{"x", "main.py", ".env", "a.md", "src", "pkg01", "fn1", "**", "y z"}
	decided := 0
	for _, filter := range filters {
		pats, err := ParsePatterns(filter)
		if err != nil {
			t.Fatal(err)
		}
		for _, dir := range dirs {
			depth := 0
			if dir != "" {
				depth = strings.Count(dir, "/") + 1
			}
			if !sameForDir(pats, depth) {
				continue
			}
			decided++
			join := func(name string) string {
				if dir == "" {
					return name
				}
				return dir + "/" + name
			}
			want := Match(pats, join("x"))
			for _, name := range names {
				if got := Match(pats, join(name)); got != want {
					t.Errorf("%q in %q: %s selected = %v, but x = %v", filter, dir, name, got, want)
				}
			}
		}
	}
	if decided < 20 {
		t.Errorf("only %d (filter, directory) pairs decided: the test checks too little", decided)
	}
}
