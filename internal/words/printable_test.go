package words

import (
	"strconv"
	"strings"
	"testing"
)

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// Ordinary names are shown as they are.
		{"fn1.zip", "fn1.zip"},
		{"lambdas/fn1/index.js", "lambdas/fn1/index.js"},
		{"with space ü €.zip", "with space ü €.zip"},
		{"C#.zip", "C#.zip"},       // one '#' is nothing to the runner
		{"a:b.zip", "a:b.zip"},     // nor is one ':'
		{"#[x].zip", "#[x].zip"},   // nor "#["
		{"x ##y.zip", "x ##y.zip"}, // nor "##" without '['
		{"", ""},
		// Unprintable ones are Go-quoted, as before.
		{"evil\x1b[2K.zip", `"evil\x1b[2K.zip"`},
		{"two\nlines", `"two\nlines"`},
		{"bidi\u202eoverride", `"bidi\u202eoverride"`},
		{"bad \xff", `"bad \xff"`},
		{`"quoted"`, `"\"quoted\""`},
		// Names the runner could read as a workflow command: quoted, with
		// ':' and '#' escaped so neither parser can match the line.
		{"::warning title=forged::x.zip", `"\x3a\x3awarning title=forged\x3a\x3ax.zip"`},
		{"  ::error::x", `"  \x3a\x3aerror\x3a\x3ax"`},
		{"\u00a0::error::x", "\"\u00a0\\x3a\\x3aerror\\x3a\\x3ax\""}, // TrimStart takes any white space
		{"x::y", "x::y"}, // "::" only counts at the start
		{"arn:aws:iam::123456789012:role/ci", "arn:aws:iam::123456789012:role/ci"},
		{"man/Foo::Bar.3pm", "man/Foo::Bar.3pm"},
		{"x ##[error]forged.zip", `"x \x23\x23[error]forged.zip"`},
		{"lambdas/fn1/##[warning]forged.py", `"lambdas/fn1/\x23\x23[warning]forged.py"`},
		{"##[stop-commands]t", `"\x23\x23[stop-commands]t"`},
		// Invisible characters between do not hide them (.NET's default
		// comparison may skip them).
		{":\u034f:warning::x", "\"\\x3a\u034f\\x3awarning\\x3a\\x3ax\""},
		{"#\u034f#[error]x", "\"\\x23\u034f\\x23[error]x\""},
		{":\u00ad:warning::x", `"\x3a\u00ad\x3awarning\x3a\x3ax"`},
		// Unprintable and a command at once.
		{"evil\n::error::x", `"evil\n\x3a\x3aerror\x3a\x3ax"`},
	} {
		got := Printable(c.in)
		if got != c.want {
			t.Errorf("Printable(%q) = %s, want %s", c.in, got, c.want)
		}
		if got != c.in {
			// Quoted: still a Go literal of the same name.
			if back, err := strconv.Unquote(got); err != nil || back != c.in {
				t.Errorf("Printable(%q) = %s does not unquote to it (%q, %v)", c.in, got, back, err)
			}
		}
		for _, line := range []string{got, "  " + got + "  2 B", "error: upload " + got + ": denied"} {
			if CommandLike(line) {
				t.Errorf("Printable(%q) makes the line %q a workflow command", c.in, line)
			}
		}
	}
	if got := Printable(strings.Repeat("a", 600)); len(got) > 520 {
		t.Errorf("a long name is %d bytes", len(got))
	}
}

func TestCommandLike(t *testing.T) {
	for _, c := range []struct {
		line string
		want bool
	}{
		{"::error::x", true},
		{"  ::warning title=t::x", true},
		{"\t\u00a0\u3000::add-mask::x", true},
		{"error: x ##[error]y", true},
		{"a ##[ b", true},
		{":\u200b:group::x", true},
		{"  fn1.zip  2 B in 1ms", false},
		{"error: a::b", false}, // "::" only counts at the start
		{"x :: y", false},
		{"# [x]", false},
		{"", false},
	} {
		if got := CommandLike(c.line); got != c.want {
			t.Errorf("CommandLike(%q) = %v, want %v", c.line, got, c.want)
		}
	}
}

func TestSafeLines(t *testing.T) {
	in := "plan:\n  ::warning::x\n  fine a::b\nx ##[error]y"
	want := "plan:\n" + `"  \x3a\x3awarning\x3a\x3ax"` + "\n  fine a::b\n" + `"x \x23\x23[error]y"`
	if got := SafeLines(in); got != want {
		t.Errorf("SafeLines = %q, want %q", got, want)
	}
	if s := "nothing to do: a line"; SafeLines(s) != s {
		t.Errorf("SafeLines changed %q", s)
	}
}
