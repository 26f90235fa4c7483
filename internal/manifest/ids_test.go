package manifest

import (
	"regexp"
	"strings"
	"testing"
)

// The regular expressions the byte checks replaced: both must agree on
// every string (FuzzIDs, over the seeds below in a plain test run).
var (
	reSHA256    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	reCommit    = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	reCodeHash  = regexp.MustCompile(`^[0-9a-z][0-9a-z._-]{0,127}$`)
	reComponent = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$`)
)

func FuzzIDs(f *testing.F) {
	hex40, hex64 := strings.Repeat("a1", 20), strings.Repeat("0f", 32)
	for _, s := range []string{
		"", hex40, hex64, hex40 + "0", hex64[:63], strings.ToUpper(hex64), hex64 + "\n", "\n" + hex40,
		"a", "-", ".a", "_a", "a.b-c_d", "A", "fn01-pkg9", "é", "a\x00", "a b", "a/b", "aZ9",
		strings.Repeat("z", 128), strings.Repeat("z", 129), strings.Repeat("Z", 100), strings.Repeat("Z", 101),
		"-" + strings.Repeat(".", 99), "0" + strings.Repeat("_", 127), "g" + hex64[1:],
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validSHA256(s), reSHA256.MatchString(s); got != want {
			t.Errorf("validSHA256(%q) = %t, the expression says %t", s, got, want)
		}
		if got, want := ValidCommit(s), reCommit.MatchString(s); got != want {
			t.Errorf("ValidCommit(%q) = %t, the expression says %t", s, got, want)
		}
		if got, want := ValidCodeHash(s), reCodeHash.MatchString(s); got != want {
			t.Errorf("ValidCodeHash(%q) = %t, the expression says %t", s, got, want)
		}
		if got, want := ValidComponent(s) == nil, reComponent.MatchString(s); got != want {
			t.Errorf("ValidComponent(%q) = %t, the expression says %t", s, got, want)
		}
	})
}
