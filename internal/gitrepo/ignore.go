package gitrepo

import (
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// readIgnore parses a gitignore file whose patterns apply under domain; a
// missing or unreadable file has none. A UTF-8 byte order mark before the
// first line is skipped, as git does (Windows editors write one).
func readIgnore(path string, domain []string) []gitignore.Pattern {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var ps []gitignore.Pattern
	for line := range strings.Lines(withoutBOM(b)) {
		if p, ok := parseIgnore(strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), domain); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// ignorePattern is one gitignore pattern, matched as git matches it
// (gitignore(5), dir.c). It is go-git's gitignore.Pattern, for
// gitignore.NewMatcher, whose last-match-wins order is git's; go-git's own
// patterns are not used: they match every parent directory of a path as
// well as the path, so "!data/**/" re-included every file under data/
// (the walk checks each directory itself, as git does), and they read
// "[!a]" as a literal "!".
type ignorePattern struct {
	domain    []string // the directory of the .gitignore file
	glob      string   // leading "/" and trailing "/" removed
	negate    bool     // "!pattern"
	mustBeDir bool     // "pattern/"
	basename  bool     // no "/" in it: matched against the last name alone
}

// parseIgnore parses one line of a gitignore file; ok is false for a
// comment or a blank line.
func parseIgnore(line string, domain []string) (gitignore.Pattern, bool) {
	if line == "" || line[0] == '#' {
		return nil, false
	}
	line = trimTrailingSpaces(line)
	p := &ignorePattern{domain: domain}
	if line != "" && line[0] == '!' {
		p.negate = true
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		p.mustBeDir = true
		line = line[:len(line)-1]
	}
	if line == "" {
		return nil, false
	}
	p.basename = !strings.Contains(line, "/")
	p.glob = strings.TrimPrefix(line, "/")
	return p, true
}

// trimTrailingSpaces drops the spaces that end a line, but one a backslash
// escapes ("a\ ").
func trimTrailingSpaces(s string) string {
	end := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ':
			continue
		case '\\':
			i++ // the escaped character stays, space or not
		}
		end = min(i+1, len(s))
	}
	return s[:end]
}

// Match reports whether the pattern matches path (its names, from the
// repository root) itself; a parent directory's match is the walk's to
// find, when it reaches that directory.
func (p *ignorePattern) Match(path []string, isDir bool) gitignore.MatchResult {
	if len(path) <= len(p.domain) || p.mustBeDir && !isDir {
		return gitignore.NoMatch
	}
	for i, d := range p.domain {
		if path[i] != d {
			return gitignore.NoMatch
		}
	}
	var ok bool
	if p.basename {
		ok = wildmatch(p.glob, path[len(path)-1], false)
	} else {
		ok = wildmatch(p.glob, strings.Join(path[len(p.domain):], "/"), true)
	}
	switch {
	case !ok:
		return gitignore.NoMatch
	case p.negate:
		return gitignore.Include
	}
	return gitignore.Exclude
}

// wildmatch reports whether text matches the glob pattern as git's
// wildmatch does: "*" and "?" match anything but "/" when pathname is set,
// "**" between slashes (or at either end) also matches any number of
// directories, "[...]" is a class ("[!...]" or "[^...]" negated, ranges,
// [:alpha:] and the other POSIX classes), "\" escapes. A malformed pattern
// matches nothing.
func wildmatch(pattern, text string, pathname bool) bool {
	return doWild(pattern, 0, text, pathname) == wmMatch
}

type wmResult uint8

const (
	wmMatch wmResult = iota
	wmNoMatch
	wmAbortAll        // no later start in text can match either
	wmAbortToStarStar // only a "**" further back could match
)

// doWild matches text against pat[pi:]; the whole pattern is kept to see
// what precedes a "**".
func doWild(pat string, pi int, text string, pathname bool) wmResult {
	for ; pi < len(pat); pi, text = pi+1, text[1:] {
		pc := pat[pi]
		if text == "" && pc != '*' {
			return wmAbortAll
		}
		switch pc {
		case '\\':
			if pi++; pi == len(pat) {
				return wmAbortAll // a trailing backslash matches nothing
			}
			if text[0] != pat[pi] {
				return wmNoMatch
			}
		default:
			if text[0] != pc {
				return wmNoMatch
			}
		case '?':
			if pathname && text[0] == '/' {
				return wmNoMatch
			}
		case '*':
			matchSlash := !pathname
			if pi+1 < len(pat) && pat[pi+1] == '*' {
				first := pi
				for pi+1 < len(pat) && pat[pi+1] == '*' {
					pi++
				}
				rest := pat[pi+1:]
				// "**" matches across directories only as a whole name:
				// "a/**/b", "**/b", "a/**"; elsewhere it is "*".
				if (first == 0 || pat[first-1] == '/') &&
					(rest == "" || rest[0] == '/' || strings.HasPrefix(rest, "\\/")) {
					// "**/" also matches no directory at all.
					if rest != "" && rest[0] == '/' && doWild(pat, pi+2, text, pathname) == wmMatch {
						return wmMatch
					}
					matchSlash = true
				}
			}
			pi++
			if pi == len(pat) {
				if !matchSlash && strings.Contains(text, "/") {
					return wmAbortToStarStar
				}
				return wmMatch
			}
			if !matchSlash && pat[pi] == '/' {
				// "*/": the star takes the rest of this name.
				i := strings.IndexByte(text, '/')
				if i < 0 {
					return wmAbortAll
				}
				text = text[i:] // the loop steps over the two slashes
				continue
			}
			for ; text != ""; text = text[1:] {
				r := doWild(pat, pi, text, pathname)
				if r != wmNoMatch {
					if !matchSlash || r != wmAbortToStarStar {
						return r
					}
				} else if !matchSlash && text[0] == '/' {
					return wmAbortToStarStar
				}
			}
			return wmAbortAll
		case '[':
			var r wmResult
			if pi, r = matchClass(pat, pi, text[0], pathname); r != wmMatch {
				return r
			}
		}
	}
	if text == "" {
		return wmMatch
	}
	return wmNoMatch
}

// matchClass matches c against the class that starts at pat[pi] ("["),
// and returns where it ends ("]").
func matchClass(pat string, pi int, c byte, pathname bool) (int, wmResult) {
	at := func(i int) byte { // 0 past the end, as a C string reads
		if i < len(pat) {
			return pat[i]
		}
		return 0
	}
	pi++
	pc := at(pi)
	if pc == '^' {
		pc = '!'
	}
	negated := pc == '!'
	if negated {
		pi++
		pc = at(pi)
	}
	var prev byte
	matched := false
	for {
		switch {
		case pc == 0:
			return pi, wmAbortAll
		case pc == '\\':
			pi++
			if pc = at(pi); pc == 0 {
				return pi, wmAbortAll
			}
			matched = matched || c == pc
		case pc == '-' && prev != 0 && at(pi+1) != 0 && at(pi+1) != ']':
			pi++
			pc = at(pi)
			if pc == '\\' {
				pi++
				if pc = at(pi); pc == 0 {
					return pi, wmAbortAll
				}
			}
			matched = matched || prev <= c && c <= pc
			pc = 0 // a range does not start another
		case pc == '[' && at(pi+1) == ':':
			s := pi + 2
			end := strings.IndexByte(pat[s:], ']')
			if end < 0 {
				return len(pat), wmAbortAll
			}
			end += s
			if end-s < 1 || pat[end-1] != ':' {
				// No ":]": the "[" is a member like any other.
				matched = matched || c == '['
				break
			}
			in, ok := posixClass(pat[s:end-1], c)
			if !ok {
				return end, wmAbortAll
			}
			matched = matched || in
			pi = end
			pc = 0
		default:
			matched = matched || c == pc
		}
		prev = pc
		pi++
		if pc = at(pi); pc == ']' {
			break
		}
	}
	if matched == negated || pathname && c == '/' {
		return pi, wmNoMatch
	}
	return pi, wmMatch
}

// posixClass reports whether c is in the [:name:] class; ok is false for
// a name git does not know.
func posixClass(name string, c byte) (in, ok bool) {
	lower, upper, digit := 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9'
	switch name {
	case "alnum":
		return lower || upper || digit, true
	case "alpha":
		return lower || upper, true
	case "blank":
		return c == ' ' || c == '\t', true
	case "cntrl":
		return c < 32 || c == 127, true
	case "digit":
		return digit, true
	case "graph":
		return 32 < c && c < 127, true
	case "lower":
		return lower, true
	case "print":
		return 32 <= c && c < 127, true
	case "punct":
		return 32 < c && c < 127 && !lower && !upper && !digit, true
	case "space":
		// git's sane_ctype, not C's isspace: no '\v', no '\f'.
		return c == ' ' || c == '\t' || c == '\n' || c == '\r', true
	case "upper":
		return upper, true
	case "xdigit":
		return digit || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F', true
	}
	return false, false
}
