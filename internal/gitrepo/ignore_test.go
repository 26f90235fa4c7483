package gitrepo

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestSourceFilesIgnoreRules holds the untracked files left out to what git
// ignores, for the .gitignore idioms that go-git's matcher got wrong: it
// matched a pattern against every parent directory of a path too, so a
// negated directory pattern re-included every file under it (Kedro's
// "data/**" then "!data/**/", the whitelist "*" then "!*/"), and a
// byte order mark (Windows editors) hid the first pattern.
func TestSourceFilesIgnoreRules(t *testing.T) {
	t.Parallel()
	files := map[string]string{}
	for _, p := range []string{
		// Kedro's template: the data directories are kept, their data is not.
		"data/01_raw/.gitkeep", "data/01_raw/big.csv", "data/02/deep/model.pkl", "data/02/.gitkeep",
		// ignore everything but directories and C files
		"white/.gitignore", "white/a.c", "white/a.h", "white/x/b.c", "white/x/y/c.h", "white/x/y/d.c",
		// go-git#1596: "dir/*" then "!dir/" keeps the directory, not its files
		"kept/x.dat",
		// a re-included directory does not re-include files ignored by name
		"docs/a.txt", "docs/b.md", "src/build/out.o", "src/main.go",
		// a byte order mark before the first pattern
		"bom/.gitignore", "bom/first.tmp", "bom/second.bak", "bom/keep.txt",
		// anchoring, directory-only patterns, ** and escapes
		"sub/.gitignore", "sub/root-only", "sub/x/root-only", "sub/dironly/f", "sub/x/dironly",
		"sub/a/b/c/z.gen", "sub/a/z.gen", "sub/#hash", "sub/!bang", "sub/sp ace ",
		"sub/abc", "sub/abd", "sub/ab]", "sub/q1", "sub/qq",
		"plain.txt", "build.log", "keep.log",
	} {
		files[p] = p + "\n"
	}
	files[".gitignore"] = "data/**\n!data/**/\n!.gitkeep\n" +
		"kept/*\n!kept/\n" +
		"*.txt\n!docs\nbuild\n!src\n" +
		"*.log\n!keep.log\n" +
		"!plain.txt\n"
	files["white/.gitignore"] = "*\n!*/\n!*.c\n!.gitignore\n"
	files["bom/.gitignore"] = "\ufeff*.tmp\n*.bak\n"
	files["sub/.gitignore"] = "/root-only\ndironly/\na/**/*.gen\n\\#hash\n\\!bang\nsp\\ ace\\ \nab[!c]\n[]]\nq?\n"

	dir := t.TempDir()
	git(t, dir, "-c", "init.defaultBranch=main", "init", "-q")
	writeFiles(t, dir, files)
	// git reads no .gitignore that is a symlink (since 2.32).
	writeFiles(t, dir, map[string]string{"linked/a.tmp": "a"})
	symlink(t, "../bom/.gitignore", filepath.Join(dir, "linked/.gitignore"))
	got := lsFiles(sourceFiles(t, dir, nil, nil))
	if want := gitSource(t, dir); got != want {
		t.Errorf("SourceFiles differs from `git add -A; git ls-files -s`:\n got:\n%s\nwant:\n%s", got, want)
	}
}

// TestIgnorePatternsMatchGit holds each pattern, in a .gitignore of its own
// directory, to what git ignores among the same names.
func TestIgnorePatternsMatchGit(t *testing.T) {
	t.Parallel()
	patterns := []string{
		"*.o", "a*", "*", "?b", "a?c", "**", "**/c", "a/**", "a/**/c", "a/*/c", "/a/b", "a/b/",
		"**/b/", "a**c", "a/**c", "**c", "[ab]c", "[!a]c", "[^a]c", "[a-c]", "[]]", "[!]]",
		"[[:digit:]]*", "[[:alpha:]][[:alpha:]]", "[[:upper:]]*", "[[:nope:]]", "[a-]", "[-a]",
		"\\*", "a\\?c", "\\[ab]", "[", "a[", "abc\\", "x   ", "x\\ ", "a/", "b/*", "*/c", "a/b/c/",
		"#c", "\\#c", "!*", "\\!b", "ab*c*", "a*b*c", "*.[oa]", "**/", "a/**/", "/*",
		"**/**/c", "a/**/**/c", "*/*/c", "[a-z]/**", "a/**/b/c", "a/x/**", "**/x/*", "a/*b*/c", "[!]a-]*",
		"[[:alpha:]-]*", "[a\\]]*", "a?", "**/*.o", "a/[a-b]*", "d/**/c",
	}
	names := []string{
		"ab", "abc", "ac", "bb", "bc", "xc", "]c", "]", "c", "-", "x", "x ", "*", "a?c", "aXc",
		"[ab]", "#c", "!b", "1", "12a", "Ab", "ab.o", "x.a", "a/c", "a/b/c", "a/x/c", "a/x/y/c",
		"b/c", "b/x", "a/abc", "d/a/b/c", "a/bc", "abc\\", "a/bb/c",
	}
	files := map[string]string{}
	for i, p := range patterns {
		dir := fmt.Sprintf("p%02d/", i)
		files[dir+".gitignore"] = p + "\n"
		for _, n := range names {
			files[dir+n] = n
		}
	}
	dir := t.TempDir()
	git(t, dir, "-c", "init.defaultBranch=main", "init", "-q")
	writeFiles(t, dir, files)
	got := lsFiles(sourceFiles(t, dir, nil, nil))
	if want := gitSource(t, dir); got != want {
		for i, p := range patterns {
			prefix := fmt.Sprintf("p%02d/", i)
			g, w := linesUnder(got, prefix), linesUnder(want, prefix)
			if !slices.Equal(g, w) {
				t.Errorf("pattern %q: the files kept differ from git's:\n got %q\nwant %q", p, g, w)
			}
		}
	}
}

// linesUnder gives the paths of the lsFiles lines under prefix.
func linesUnder(ls, prefix string) []string {
	var out []string
	for line := range strings.Lines(ls) {
		_, p, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if rest, ok := strings.CutPrefix(p, prefix); ok && rest != ".gitignore" {
			out = append(out, rest)
		}
	}
	return out
}

// TestIgnoreClassesMatchGit holds bracket expressions with POSIX classes to
// what git ignores, over names "x<c>" for every ASCII byte c a file name can
// hold: the classes are git's sane_ctype, not C's (its space is ' ', '\t',
// '\n', '\r', not '\v' or '\f'). Every class alone and negated, then
// seeded random expressions, so a run is repeatable and quick (one git).
func TestIgnoreClassesMatchGit(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("control characters cannot be in a Windows file name")
	}
	t.Parallel()
	classes := []string{"alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "xdigit"}
	var patterns []string
	for _, c := range classes {
		patterns = append(patterns, "x[[:"+c+":]]", "x[![:"+c+":]]")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	items := func() string {
		var b strings.Builder
		for range 1 + rng.IntN(3) {
			switch rng.IntN(3) {
			case 0, 1:
				b.WriteString("[:" + classes[rng.IntN(len(classes))] + ":]")
			default:
				b.WriteString([]string{"a-f", "0", "_", " ", "-", "Z", "\t-\r"}[rng.IntN(7)])
			}
		}
		return b.String()
	}
	for range 24 {
		neg := []string{"", "!", "^"}[rng.IntN(3)]
		p := "x[" + neg + items() + "]"
		if rng.IntN(4) == 0 {
			p += "*"
		}
		patterns = append(patterns, p)
	}
	var names []string
	for c := byte(1); c < 128; c++ {
		if c != '/' {
			names = append(names, "x"+string(c))
		}
	}
	names = append(names, "xab")
	files := map[string]string{}
	for i, p := range patterns {
		dir := fmt.Sprintf("p%02d/", i)
		files[dir+".gitignore"] = p + "\n"
		for _, n := range names {
			files[dir+n] = "n"
		}
	}
	dir := t.TempDir()
	git(t, dir, "-c", "init.defaultBranch=main", "init", "-q")
	writeFiles(t, dir, files)
	kept := func(ls string) map[string][]string { // pattern directory → names kept
		m := map[string][]string{}
		for line := range strings.Lines(ls) {
			_, p, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
			d, n, _ := strings.Cut(p, "/")
			m[d] = append(m[d], n)
		}
		return m
	}
	// Names hold '\n': compare whole listings, then name what differs.
	got := lsFiles(sourceFiles(t, dir, nil, nil))
	if want := gitSource(t, dir); got != want {
		g, w := kept(got), kept(want)
		for i, p := range patterns {
			d := fmt.Sprintf("p%02d", i)
			if !slices.Equal(g[d], w[d]) {
				t.Errorf("pattern %q: the files kept differ from git's:\n got %q\nwant %q", p, g[d], w[d])
			}
		}
	}
}
