package words

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Printable returns s (a file name, a path, a key, a message from a store)
// as it may be printed in a log line: unchanged when it holds only graphic
// characters (letters, marks, numbers, punctuation, symbols, spaces) in
// valid UTF-8 and could not be read as a workflow command, else as Quote
// gives it. So no control character (ESC, CR, LF, a bidirectional override)
// reaches the terminal, and no name makes the GitHub runner act on a line
// (see CommandLike). Very long values are shortened.
func Printable(s string) string {
	if !utf8.ValidString(s) || strings.HasPrefix(s, `"`) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) }) || CommandLike(s) {
		s = Quote(s)
	}
	return Truncate(s, 512)
}

// Quote is s Go-quoted (strconv.QuoteToGraphic), with every ':' and '#'
// written \x3a and \x23: still a Go string literal that unquotes to s, but
// one that holds neither "::" nor "##[". For messages that quote a value
// (in place of %q, which leaves both).
func Quote(s string) string {
	return quoteReplacer.Replace(strconv.QuoteToGraphic(s))
}

// Go's quoting never writes ':' or '#' as part of an escape, so each one
// in its output is the character itself.
var quoteReplacer = strings.NewReplacer(":", `\x3a`, "#", `\x23`)

// CommandLike reports whether the GitHub Actions runner could take the log
// line for a workflow command. It tries two parsers on every line of a
// step's output (actions/runner, ActionCommand): the current one, when the
// line starts with "::" after leading white space (TrimStart), and the
// legacy one, when "##[" appears anywhere in it. Both compare as .NET
// strings do by default, which may skip characters that do not show
// (format characters, combining marks): those are left out before
// looking, so ":\u00ad:" counts as "::" too. For a value (a name that may
// start a line, after any indentation, or come after other text) the same
// holds: a "::" after its first characters cannot start a line (an ARN's
// "arn:aws:iam::123" is no command), and a line break in it is quoted
// anyway (not graphic).
func CommandLike(s string) bool {
	if !strings.ContainsAny(s, ":#") {
		return false // the usual case, at no cost
	}
	v := s
	if !isASCII(s) {
		var b strings.Builder
		for _, r := range s {
			if !unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf) {
				b.WriteRune(r)
			}
		}
		v = b.String()
	}
	return strings.Contains(v, "##[") || strings.HasPrefix(strings.TrimLeftFunc(v, unicode.IsSpace), "::")
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// SafeLines returns text (one or more lines of a log message) with each line
// that CommandLike finds replaced by its Quote: the last guard for a
// message that carries a value from outside (a store's error message, a
// path) which no caller made Printable. Other lines are unchanged.
func SafeLines(text string) string {
	if !strings.ContainsAny(text, ":#") {
		return text
	}
	lines := strings.Split(text, "\n")
	changed := false
	for i, l := range lines {
		if CommandLike(l) {
			lines[i], changed = Quote(l), true
		}
	}
	if !changed {
		return text
	}
	return strings.Join(lines, "\n")
}
