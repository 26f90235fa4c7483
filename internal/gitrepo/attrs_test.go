package gitrepo

import (
	"testing"

	"github.com/go-git/go-git/v5/plumbing/format/gitattributes"
)

// TestAttributesLookup holds the resolution to git's rules (gitattributes(5)
// and convert.c), where go-git's own Matcher differs.
func TestAttributesLookup(t *testing.T) {
	a := &attributes{macros: map[string][]gitattributes.Attribute{}}
	a.parse(builtinMacros, nil, true)
	a.parse("*.png text=auto\n"+
		"*.png -text\n"+ // a later line wins
		"*.auto text=auto\n"+
		"*.sh eol=lf\n"+ // eol alone makes a file text
		"*.bat text=auto eol=crlf\n"+ // text=auto stays auto with eol
		"*.bin binary\n"+ // the built-in macro: -text
		"[attr]asset filter=lfs -text\n"+
		"*.psd asset\n"+
		"*.enc filter=crypt\n"+
		"*.id ident\n"+
		"*.u16 working-tree-encoding=UTF-16LE\n"+
		"*.u8 working-tree-encoding=UTF-8\n"+
		"*.txt -text text\n"+ // the last on a line wins
		"*.weird text=foo\n"+ // an unknown value means nothing: unspecified
		"old.c crlf\n"+
		"old.h -crlf\n"+
		"build/ -text\n"+ // a directory pattern: matches no file, and must not panic
		"!neg.txt -text\n"+ // negative patterns are ignored
		"[!a]*.cls -text\n"+ // classes as git's wildmatch reads them
		"[[:digit:]]*.num text\n"+
		"gen/**/*.out -text\n",
		nil, true)
	a.parse("*.png text\n"+ // deeper files win
		"[attr]nested -text\n", // macros are not allowed below the top
		[]string{"sub"}, false)
	a.parse("*.md text\n", []string{"docs"}, false)
	a.parse("*.md -text\n", nil, true) // info/attributes, read last: the highest priority

	tests := []struct {
		path string
		want fileAttrs
	}{
		{"a.go", fileAttrs{text: textAuto}},
		{"a.auto", fileAttrs{text: textAuto}},
		{"img.png", fileAttrs{text: textBinary}},
		{"sub/img.png", fileAttrs{text: textText}},
		{"sub/deeper/img.png", fileAttrs{text: textText}},
		{"run.sh", fileAttrs{text: textText}},
		{"run.bat", fileAttrs{text: textAuto}},
		{"x.bin", fileAttrs{text: textBinary}},
		{"art.psd", fileAttrs{text: textBinary, lfs: true}},
		{"secret.enc", fileAttrs{text: textAuto, unsupported: "filter=crypt"}},
		{"v.id", fileAttrs{text: textAuto, unsupported: "ident"}},
		{"w.u16", fileAttrs{text: textAuto, unsupported: "working-tree-encoding=UTF-16LE"}},
		{"w.u8", fileAttrs{text: textAuto}},
		{"notes.txt", fileAttrs{text: textText}},
		{"x.weird", fileAttrs{text: textAuto}},
		{"old.c", fileAttrs{text: textText}},
		{"old.h", fileAttrs{text: textBinary}},
		{"build", fileAttrs{text: textAuto}},
		{"build/x", fileAttrs{text: textAuto}},
		{"neg.txt", fileAttrs{text: textText}},
		{"docs/readme.md", fileAttrs{text: textBinary}},
		{"b.cls", fileAttrs{text: textBinary}},
		{"a.cls", fileAttrs{text: textAuto}},
		{"1.num", fileAttrs{text: textText}},
		{"x.num", fileAttrs{text: textAuto}},
		{"gen/a/b/x.out", fileAttrs{text: textBinary}},
		{"x/gen/x.out", fileAttrs{text: textAuto}},
	}
	for _, tt := range tests {
		if got := a.lookup(tt.path); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.path, got, tt.want)
		}
	}
	if !a.refuses {
		t.Error("refuses = false with a custom filter among the rules")
	}
	if _, ok := a.macros["nested"]; ok {
		t.Error("a macro below the top level was taken")
	}
}
