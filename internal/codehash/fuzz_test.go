package codehash

import (
	"strings"
	"testing"
)

func FuzzParsePatterns(f *testing.F) {
	for _, s := range []string{"lambdas/**", "a/** !a/*.md", "{a,b}/[!x]*", "/abs ../x a/[b", "!only", "./x\ny/**", "a//b", `a\b`} {
		f.Add(s, "lambdas/fn1/index.py")
	}
	f.Fuzz(func(t *testing.T, filter, path string) {
		pats, err := ParsePatterns(filter)
		if err != nil {
			return
		}
		if len(pats) == 0 && strings.TrimSpace(filter) != "" {
			t.Fatalf("%q parsed to nothing", filter)
		}
		positive := false
		for _, p := range pats {
			if p.Glob == "" || strings.HasPrefix(p.Glob, "/") || containsDotDotSegment(p.Glob) {
				t.Fatalf("%q accepted pattern %q", filter, p.Glob)
			}
			positive = positive || !p.Negate
		}
		if len(pats) > 0 && !positive {
			t.Fatalf("%q accepted only exclusions", filter)
		}
		Match(pats, path) // must not panic on any path
	})
}

func containsDotDotSegment(g string) bool {
	for _, s := range strings.Split(g, "/") {
		if s == ".." {
			return true
		}
	}
	return false
}
