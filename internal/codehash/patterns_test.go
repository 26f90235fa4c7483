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
		// '#' as PACKAGE_COMPONENTS reads it: a comment line, or refused
		// after a pattern (YAML's habit), not patterns "#", "the", "lambdas".
		{name: "a comment after a pattern", filter: "lambdas/**   # the lambdas", errs: []string{`"# the lambdas": '#' starts a comment only at the start of a line`}},
		{name: "a comment word after a pattern", filter: "src/** #gen", errs: []string{`"#gen": '#' starts a comment only`}},
		{name: "a comment line", filter: "# the lambdas\nlambdas/**", want: []Pattern{{Glob: "lambdas/**"}}},
		{name: "comment lines in a block scalar", filter: "  lambdas/**\n  # generated code stays out\n  !lambdas/gen/**\n", want: []Pattern{{Glob: "lambdas/**"}, {Glob: "lambdas/gen/**", Negate: true}}},
		{name: "a pattern that begins with '#'", filter: "[#]gen/**", want: []Pattern{{Glob: "[#]gen/**"}}},
		{name: "only comments", filter: "# lambdas/**\n#shared/**", errs: []string{"only comments"}},
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
