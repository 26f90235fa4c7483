package codehash

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/nsmithuk/s3-asset-manager/internal/gitrepo"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// files builds a sorted file list from "path=content" or "path=content@755".
func files(specs ...string) []gitrepo.File {
	var out []gitrepo.File
	for _, s := range specs {
		p, content, _ := strings.Cut(s, "=")
		mode := filemode.Regular
		if c, m, ok := strings.Cut(content, "@"); ok {
			content = c
			switch m {
			case "755":
				mode = filemode.Executable
			case "link":
				mode = filemode.Symlink
			}
		}
		out = append(out, gitrepo.File{Path: p, Mode: mode, ID: plumbing.ComputeHash(plumbing.BlobObject, []byte(content))})
	}
	return out
}

func lst(pats string, salt string, fs []gitrepo.File) *List {
	return &List{CodeHash: digest(fs, salt), SaltDigest: SaltDigest(salt), Patterns: strings.Fields(pats), Files: fs}
}

func TestCompare(t *testing.T) {
	base := files("a/index.js=1", "a/run.sh=2", "a/util.js=3", "b/x.py=4")
	for _, tc := range []struct {
		name     string
		old, cur *List
		headline string
		lines    []string
	}{
		{"same", lst("a/** b/**", "", base), lst("a/** b/**", "", base), "nothing differs", nil},
		{"modified", lst("**", "", base), lst("**", "", files("a/index.js=1x", "a/run.sh=2", "a/util.js=3", "b/x.py=4")),
			"1 file differs", []string{"modified a/index.js"}},
		{"added", lst("**", "", base), lst("**", "", files("a/index.js=1", "a/new.js=9", "a/run.sh=2", "a/util.js=3", "b/x.py=4")),
			"1 file differs", []string{"added a/new.js"}},
		{"deleted", lst("**", "", base), lst("**", "", files("a/index.js=1", "a/run.sh=2", "b/x.py=4")),
			"1 file differs", []string{"deleted a/util.js"}},
		{"renamed", lst("**", "", base), lst("**", "", files("a/index.js=1", "a/run.sh=2", "b/util.js=3", "b/x.py=4")),
			"1 file differs", []string{"renamed a/util.js → b/util.js"}},
		{"mode changed", lst("**", "", base), lst("**", "", files("a/index.js=1", "a/run.sh=2@755", "a/util.js=3", "b/x.py=4")),
			"1 file differs", []string{"mode changed a/run.sh (100644 → 100755)"}},
		{"modified and mode changed", lst("**", "", base), lst("**", "", files("a/index.js=1", "a/run.sh=2x@755", "a/util.js=3", "b/x.py=4")),
			"1 file differs", []string{"modified a/run.sh (mode 100644 → 100755)"}},
		{"salt", lst("**", "go1.25", base), lst("**", "go1.26", base), "the salt changed", nil},
		{"patterns", lst("a/**", "", files("a/index.js=1")), lst("a/** b/**", "", files("a/index.js=1", "b/x.py=4")),
			"the patterns changed and 1 file differs", []string{"patterns were a/**, now a/** b/**", "added b/x.py"}},
		{"all at once", lst("**", "1", base), lst("** !b/**", "2", files("a/index.js=1x", "a/run.sh=2@755", "a/z.js=3")),
			"the patterns changed, the salt changed and 4 files differ", []string{
				"patterns were **, now ** !b/**",
				"modified a/index.js",
				"mode changed a/run.sh (100644 → 100755)",
				"renamed a/util.js → a/z.js",
				"deleted b/x.py",
			}},
		// Two deleted files with the same content: the one with the same base name is the rename.
		{"rename by base name", lst("**", "", files("a/empty.txt=", "b/keep=", "c.txt=5")),
			lst("**", "", files("a/empty.txt=", "c.txt=5", "d/keep=")),
			"1 file differs", []string{"renamed b/keep → d/keep"}},
		{"copy is an addition", lst("**", "", files("a=1")), lst("**", "", files("a=1", "b=1")),
			"1 file differs", []string{"added b"}},
		{"from nothing", lst("**", "", nil), lst("**", "", files("a=1", "b=2")),
			"2 files differ", []string{"added a", "added b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Compare(tc.old, tc.cur)
			if got := d.Headline(); got != tc.headline {
				t.Errorf("headline %q, want %q", got, tc.headline)
			}
			if got := d.Lines(0); strings.Join(got, "\n") != strings.Join(tc.lines, "\n") {
				t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.lines, "\n"))
			}
			if d.Same() != (tc.name == "same") {
				t.Errorf("Same() = %v", d.Same())
			}
		})
	}
}

func TestLinesCapped(t *testing.T) {
	var old, cur []string
	for i := range 50 {
		old = append(old, fmt.Sprintf("f%02d=%d", i, i))
		cur = append(cur, fmt.Sprintf("f%02d=%dx", i, i))
	}
	d := Compare(lst("**", "", files(old...)), lst("**", "", files(cur...)))
	got := d.Lines(10)
	if len(got) != 10 || got[8] != "modified f08" || got[9] != "… and 41 more" {
		t.Fatalf("capped lines: %q", got)
	}
	if len(d.Lines(0)) != 50 || len(d.Lines(50)) != 50 || len(d.Lines(51)) != 50 {
		t.Fatal("uncapped lines should list all 50")
	}
	short := d.Short(60)
	if short != "modified f00; modified f01; modified f02; and 47 more" {
		t.Fatalf("short: %q", short)
	}
	if len(short) > 60 {
		t.Fatalf("short is %d bytes", len(short))
	}
	one := Compare(lst("**", "", files("a=1")), lst("**", "", files("a=2")))
	if s := one.Short(60); s != "modified a" {
		t.Fatalf("short of one: %q", s)
	}
	salt := Compare(lst("**", "1", files("a=1")), lst("**", "2", files("a=1")))
	if s := salt.Short(60); s != "" {
		t.Fatalf("short of salt: %q", s)
	}
}

// A list from a bucket, or the repository, may hold any bytes in its names:
// none may reach the log as a control character (no escape sequence, no line
// of its own) or as something the GitHub runner reads as a workflow command.
func TestLinesArePrintable(t *testing.T) {
	hostile := []string{
		"evil\x1b[2J\x1b[31mred",
		"two\nlines::error::fake",
		"carriage\rreturn",
		"bidi\u202eoverride",
		"bad utf8 \xff\xfe",
		`"quoted"`,
		"tab\there",
		strings.Repeat("long/", 300),
		"lambdas/fn1/##[warning]forged.py",
		"  ::warning::forged.py",
	}
	var specs []string
	for i, h := range hostile {
		specs = append(specs, fmt.Sprintf("%s=%d", h, i))
	}
	old := lst("**", "", files(specs...))
	sortFiles(old.Files)
	old.Patterns = []string{"a\x1b]0;title\x07", "b\nc"}
	cur := lst("**", "", nil)
	d := Compare(old, cur)
	lines := d.Lines(0)
	if len(lines) != len(hostile)+1 {
		t.Fatalf("%d lines for %d files and the patterns", len(lines), len(hostile))
	}
	for _, l := range lines {
		for _, r := range l {
			if r < 0x20 || r == 0x7f || r == '\u202e' || r == '\ufffd' {
				t.Errorf("line %q holds %U", l, r)
			}
		}
		if len(l) > 600 {
			t.Errorf("line of %d bytes", len(l))
		}
		if strings.Contains(l, "##[") || strings.Contains(l, "::") {
			t.Errorf("line %q could be read as a workflow command", l)
		}
	}
	checkGolden(t, "diff-hostile.golden", strings.Join(lines, "\n")+"\n")
}

func TestDiffGolden(t *testing.T) {
	old := lst("lambdas/** !lambdas/**/*.md", "node22", files(
		"lambdas/fn1/index.js=1", "lambdas/fn1/old.js=2", "lambdas/fn2/handler.py=3", "lambdas/fn2/run.sh=4",
		"lambdas/fn3/a.js=5", "lambdas/fn3/b.js=6", "lambdas/fn3/c.js=7"))
	cur := lst("lambdas/** !lambdas/**/*.md shared/**", "node22", files(
		"lambdas/fn1/index.js=1 edited", "lambdas/fn1/util.js=8", "lambdas/fn2/handler.py=3", "lambdas/fn2/run.sh=4@755",
		"lambdas/fn3/a.js=5", "lambdas/fn3/lib/b.js=6", "shared/x.js=9"))
	d := Compare(old, cur)
	var b strings.Builder
	b.WriteString(d.Headline() + "\n")
	for _, l := range d.Lines(5) {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("short: " + d.Short(100) + "\n")
	checkGolden(t, "diff-capped.golden", b.String())
}

func sortFiles(fs []gitrepo.File) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Path < fs[j-1].Path; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// The salt is never in the list in clear: only its digest, which still
// tells a changed salt. A list of the previous version, with "salt <value>",
// compares with a new one as one of its own would.
func TestListSaltDigest(t *testing.T) {
	fs := files("a/index.js=1")
	const salt = "node-20.11 secret-ish"
	data, err := lst("a/**", salt, fs).EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	text := gunzip(t, data)
	if strings.Contains(text, "secret-ish") || !strings.Contains(text, "\nsalt-sha256 "+SaltDigest(salt)+"\n") {
		t.Fatalf("the list holds the salt, or not its digest:\n%s", text)
	}

	old := func(saltLine string) *List {
		t.Helper()
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		fmt.Fprintf(zw, "%s\ncode-hash %s\n%s\npattern a/**\n100644 %s a/index.js\n", ListFormat, strings.Repeat("c", 64), saltLine, fs[0].ID)
		zw.Close()
		l, err := DecodeList(b.Bytes())
		if err != nil {
			t.Fatalf("a list of the previous version (%q) is refused: %v", saltLine, err)
		}
		return l
	}
	cur := lst("a/**", salt, fs)
	for _, tc := range []struct {
		saltLine, want string
	}{
		{"salt " + salt, "nothing differs"},
		{"salt other", "the salt changed"},
		{"salt ", "the salt changed"},
		{`salt "quoted\tvalue"`, "the salt changed"},
	} {
		if got := Compare(old(tc.saltLine), cur).Headline(); got != tc.want {
			t.Errorf("old list with %q against a new one: %q, want %q", tc.saltLine, got, tc.want)
		}
	}
	if got := Compare(old("salt "), lst("a/**", "", fs)).Headline(); got != "nothing differs" {
		t.Errorf("an empty salt, old against new: %q", got)
	}
	for _, bad := range []string{"salt-sha256 xyz", "salt-sha256 " + strings.Repeat("A", 64), "pepper x"} {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		fmt.Fprintf(zw, "%s\ncode-hash %s\n%s\n", ListFormat, strings.Repeat("c", 64), bad)
		zw.Close()
		if _, err := DecodeList(b.Bytes()); !errors.Is(err, ErrBadList) {
			t.Errorf("salt line %q: %v, want ErrBadList", bad, err)
		}
	}
}

func TestListRoundTrip(t *testing.T) {
	fs := files("a b/c.js=1", "a/run.sh=2@755", "a/link=../x@link", "line\nbreak=3", `"q"=4`, "ünï=5")
	sortFiles(fs)
	l := lst("a/** !a/*.md \"x", "salt with spaces", fs)
	data, err := l.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeList(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.CodeHash != l.CodeHash || got.SaltDigest != l.SaltDigest || strings.Join(got.Patterns, "|") != strings.Join(l.Patterns, "|") {
		t.Fatalf("header: %+v", got)
	}
	if len(got.Files) != len(fs) {
		t.Fatalf("%d files back, want %d", len(got.Files), len(fs))
	}
	for i := range fs {
		if got.Files[i].Path != fs[i].Path || got.Files[i].Mode != fs[i].Mode || got.Files[i].ID != fs[i].ID {
			t.Errorf("file %d: %+v, want %+v", i, got.Files[i], fs[i])
		}
	}
	if d := Compare(l, got); !d.Same() {
		t.Errorf("round trip differs: %v", d.Lines(0))
	}
}

// The uncompressed form is the documented one (zcat shows it).
func TestListText(t *testing.T) {
	l := lst("src/**", "v1", files("src/a.go=1", "src/run.sh=2@755"))
	data, err := l.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "list.txt", gunzip(t, data))
}

func TestDecodeListRefuses(t *testing.T) {
	good, err := lst("**", "", files("a=1", "b=2")).EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	text := gunzip(t, good)
	flipped := bytes.Clone(good)
	flipped[len(flipped)-10] ^= 0x40 // in the stream's checksum or length
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not gzip", []byte("{\"format\":\"x\"}")},
		{"truncated", good[:len(good)-5]},
		{"checksum", flipped},
		{"other format", gz(t, strings.Replace(text, ListFormat, "s3-asset-manager file list v9", 1))},
		{"no code hash", gz(t, ListFormat+"\nsalt \n")},
		{"out of order", gz(t, strings.Replace(text, " a\n", " c\n", 1))},
		{"repeated", gz(t, text+strings.SplitAfter(text, "\n")[4])},
		{"short id", gz(t, text+"100644 abc d\n")},
		{"bad mode", gz(t, text+"10064x "+strings.Repeat("0", 40)+" z\n")},
		{"pattern after files", gz(t, text+"pattern x\n")},
		{"too big", make([]byte, MaxListSize+1)},
		// Bombs: small compressed, large expanded.
		{"too many patterns", gz(t, ListFormat+"\ncode-hash x\nsalt \n"+strings.Repeat("pattern **\n", maxListPatterns+1))},
		{"expands beyond 80 MiB", bomb(t, 80<<20+1)}, // about 4x a 200,000-file list
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeList(tc.data); !errors.Is(err, ErrBadList) {
				t.Fatalf("got %v, want ErrBadList", err)
			}
		})
	}
}

// bomb is a well-formed list of at least n bytes expanded: few lines with
// long paths, so it is cheap to make and to parse.
func bomb(t *testing.T, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	fmt.Fprintf(w, "%s\ncode-hash x\nsalt \n", ListFormat)
	long := strings.Repeat("a", 60000)
	for i, size := 0, 0; size < n; i++ {
		k, _ := fmt.Fprintf(w, "100644 %s %08d%s\n", strings.Repeat("0", 40), i, long)
		size += k
	}
	w.Close()
	if b.Len() > MaxListSize {
		t.Fatalf("the bomb is %d bytes compressed", b.Len())
	}
	return b.Bytes()
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := newGzip(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func newGzip(w io.Writer) *gzip.Writer { return gzip.NewWriter(w) }

func gunzip(t *testing.T, data []byte) string {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Check keeps a list in gzip's stored blocks (cheap to write on every miss);
// upload Compresses it for the bucket. Both read back as the same list, the
// stored one holds its text as is, and Compress gives exactly what Encode
// writes.
func TestListStoredAndCompressed(t *testing.T) {
	var fs []gitrepo.File
	for i := range 3000 { // several 64 KiB blocks
		fs = append(fs, files(fmt.Sprintf("src/dir%03d/file%04d.js=%d", i/100, i, i))...)
	}
	fs = append(fs, files("z/line\nbreak=1")...)
	sortFiles(fs)
	l := lst("src/** z/** !src/*.md", "salt", fs)
	stored, err := l.EncodeStored()
	if err != nil {
		t.Fatal(err)
	}
	huff, err := l.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	text := gunzip(t, huff)
	if got := gunzip(t, stored); got != text {
		t.Fatalf("the stored list's text differs from the compressed one's")
	}
	if !bytes.Contains(stored, []byte("pattern !src/*.md\n100644 ")) || len(stored) < len(text) {
		t.Errorf("the stored list is compressed: %d bytes for %d of text", len(stored), len(text))
	}
	got, err := DecodeList(stored)
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(l, got); !d.Same() || got.CodeHash != l.CodeHash {
		t.Errorf("the stored list reads back differently: %v", d.Lines(0))
	}
	var b bytes.Buffer
	if err := Compress(&b, bytes.NewReader(stored)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), huff) {
		t.Errorf("Compress of the stored list: %d bytes, not Encode's %d", b.Len(), len(huff))
	}
}

// Compress refuses what is not a whole gzip stream, and passes on its
// writer's own error as it is.
func TestCompressRefuses(t *testing.T) {
	stored, err := lst("**", "", files("a=1", "b=2")).EncodeStored()
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(stored)
	flipped[len(flipped)-6] ^= 0x40 // in the stream's checksum
	for name, data := range map[string][]byte{
		"not gzip":  []byte("plain text"),
		"truncated": stored[:len(stored)-5],
		"checksum":  flipped,
		"bomb":      bomb(t, 80<<20+1),
	} {
		if err := Compress(io.Discard, bytes.NewReader(data)); !errors.Is(err, ErrBadList) {
			t.Errorf("%s: %v, want ErrBadList", name, err)
		}
	}
	full := errors.New("disk full")
	if err := Compress(failWriter{full}, bytes.NewReader(stored)); err != full {
		t.Errorf("a failing writer: %v, want its error", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// EncodeStored writes its blocks itself: byte for byte what compress/gzip
// writes at NoCompression, whatever falls on a block's edge (a line split
// by it, the text ending exactly on it, a line longer than a block).
func TestEncodeStoredAsGzip(t *testing.T) {
	many := func(n int, extra ...string) []gitrepo.File {
		var fs []gitrepo.File
		for i := range n {
			fs = append(fs, files(fmt.Sprintf("src/dir%03d/file%04d.js=%d", i/100, i, i))...)
		}
		fs = append(fs, files(extra...)...)
		sortFiles(fs)
		return fs
	}
	lists := map[string]*List{
		"no files":             lst("src/**", "", nil),
		"two":                  lst("src/**", "salt", files("src/a.go=1", "src/run.sh=2@755")),
		"modes and quoting":    lst("a/** \"x", "", sorted(files("a/link=../x@link", "line\nbreak=3", `"q"=4`, "ünï=5"))),
		"blocks":               lst("src/**", "", many(3000, "z/line\nbreak=1")),
		"a line over 3 blocks": lst("**", "", many(10, "x/"+strings.Repeat("p", 3*maxStored)+"=1")),
	}
	// The text ending exactly on a block's edge (then one byte short, one
	// byte over): the last path's length makes it so.
	for _, d := range []int{-1, 0, 1} {
		l := lst("src/**", "", many(2000, "zz/x=1"))
		text := gunzip(t, must(t, l.EncodeStored))
		last := &l.Files[len(l.Files)-1]
		last.Path += strings.Repeat("x", (len(text)/maxStored+1)*maxStored-len(text)+d)
		lists[fmt.Sprintf("text ends %+d from a block's edge", d)] = l
	}
	for name, l := range lists {
		head, err := l.header()
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := l.encode(&want, head, gzip.NoCompression); err != nil {
			t.Fatal(err)
		}
		got := must(t, l.EncodeStored)
		if !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%s: %d bytes, not the %d compress/gzip writes (first difference at %d)", name, len(got), want.Len(), firstDiff(got, want.Bytes()))
			continue
		}
		if name == "a line over 3 blocks" {
			continue // longer than DecodeList reads
		}
		if back, err := DecodeList(got); err != nil || !Compare(l, back).Same() {
			t.Errorf("%s: reads back as %v, %v", name, back, err)
		}
	}
}

func sorted(fs []gitrepo.File) []gitrepo.File { sortFiles(fs); return fs }

func must(t *testing.T, f func() ([]byte, error)) []byte {
	t.Helper()
	b, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// needsQuote reads eight bytes at a time: each byte value, at each place in
// a word and in the tail, against the one-byte test.
func TestNeedsQuote(t *testing.T) {
	for c := range 256 {
		for at := range 19 {
			b := []byte(strings.Repeat("a/b", 7)[:19])
			b[at] = byte(c)
			s := string(b)
			want := s[0] == '"' || c < 0x20 || c == 0x7f
			if got := needsQuote(s); got != want {
				t.Errorf("needsQuote(%q) = %v, want %v", s, got, want)
			}
		}
	}
	for _, s := range []string{"", "plain/path.go", "ünïcödé/ﬁle", "\x80\xff\x7e\x20 ok"} {
		if needsQuote(s) {
			t.Errorf("needsQuote(%q) = true", s)
		}
	}
}
