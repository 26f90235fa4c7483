package codehash

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// Pattern is one entry of CODE_HASH_FIND_FILTER: a doublestar glob relative
// to the repository root, or, with a leading '!', an exclusion.
type Pattern struct {
	Glob   string
	Negate bool
}

func (p Pattern) String() string {
	if p.Negate {
		return "!" + p.Glob
	}
	return p.Glob
}

// ParsePatterns splits a filter on white space (spaces, as the original tool
// did, or newlines, as YAML block scalars give) and validates every pattern,
// reporting all problems at once. A space inside a pattern is written [ ].
// '#' is as ParseFilter reads it.
func ParsePatterns(filter string) ([]Pattern, error) {
	pats, _, err := ParseFilter(filter)
	return pats, err
}

// ParseFilter is ParsePatterns, also returning the comment lines it skipped
// (to log them). Only a filter of more than one line has comment lines: a
// line whose first word begins with '#', as in PACKAGE_COMPONENTS (a YAML
// block with comment lines). A filter of one line is the original tool's
// form, a Python glob where '#' is literal: '#gen/** src/**' is two
// patterns there, as it was, never a comment that drops src/** unsaid. A
// '#' word after a pattern in a multi-line filter, or a bare '#' word in a
// one-line one, is refused (see inlineComment); a pattern that begins with
// '#' can always be written [#]...
func ParseFilter(filter string) (pats []Pattern, comments []string, err error) {
	return parsePatterns(filter, false)
}

// errInlineComment: YAML's habit, "lambdas/**  # the lambdas", in a setting
// that is not YAML (an environment variable, a block scalar's text).
var errInlineComment = errors.New("'#' starts a comment only at the start of a line: put the comment on a line of its own (a pattern that begins with '#' is written [#]...)")

// errBareHash: a '#' word alone in a one-line filter, where '#' is literal
// (the original's glob): surely a comment, not a file named '#'.
var errBareHash = errors.New("a '#' alone: a filter of one line has no comments ('#' is literal, as in the original tool); put the comment on a line of its own in a filter of several lines (a file named '#' is written [#])")

// inlineComment refuses a word of a line's words, from the from'th on, that
// begins with '#': said as the comment it is, not as patterns "#", "the"
// and "lambdas" that match nothing. ParsePatterns and the directory-glob
// form of PACKAGE_COMPONENTS both decide here.
func inlineComment(words []string, from int) error {
	for i := from; i < len(words); i++ {
		if strings.HasPrefix(words[i], "#") {
			return fmt.Errorf("%q: %w", strings.Join(words[i:], " "), errInlineComment)
		}
	}
	return nil
}

// parsePatterns is ParseFilter; with midLine, text continues a line (a
// component's patterns after "name:"), so its first word begins no line.
func parsePatterns(text string, midLine bool) ([]Pattern, []string, error) {
	var (
		pats     []Pattern
		errs     []error
		comments []string
	)
	lines := strings.Split(text, "\n")
	// One place decides what a comment line is: only where lines are.
	multiLine := !midLine && nonBlank(lines) > 1
	for n, line := range lines {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		switch {
		case multiLine && IsCommentLine(line):
			comments = append(comments, strings.TrimSpace(line))
			continue
		case multiLine || midLine && n == 0:
			from := 1
			if midLine {
				from = 0
			}
			if err := inlineComment(fields, from); err != nil {
				errs = append(errs, err)
				continue
			}
		case slices.Contains(fields, "#"):
			errs = append(errs, fmt.Errorf("%q: %w", strings.Join(fields[slices.Index(fields, "#"):], " "), errBareHash))
			continue
		}
		for _, f := range fields {
			p := Pattern{Glob: f}
			if strings.HasPrefix(f, "!") {
				p = Pattern{Glob: f[1:], Negate: true}
			}
			if err := validGlob(p.Glob); err != nil {
				errs = append(errs, fmt.Errorf("pattern %q: %w", f, err))
				continue
			}
			// "./src/**" means "src/**": paths are matched relative to the root.
			p.Glob = strings.TrimPrefix(p.Glob, "./")
			pats = append(pats, p)
		}
	}
	switch {
	case len(errs) > 0:
	case len(pats) == 0 && len(comments) > 0:
		// Not "no filter": that would turn the cache off unsaid.
		errs = append(errs, fmt.Errorf("every line of the filter begins with '#', so all %d are comments and no pattern is left: name the files to include (a pattern that begins with '#' is written [#]...)", len(comments)))
	case len(pats) > 0 && !hasPositive(pats):
		errs = append(errs, errors.New("only exclusions ('!...'): name the files to include first"))
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return pats, comments, nil
}

// IsCommentLine reports whether a line of several is a comment: its first
// word begins with '#'. PACKAGE_COMPONENTS and a multi-line filter both
// decide here.
func IsCommentLine(line string) bool {
	return strings.HasPrefix(strings.TrimSpace(line), "#")
}

func nonBlank(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

func validGlob(g string) error {
	switch {
	case g == "":
		return errors.New("empty pattern after '!'")
	case strings.HasPrefix(g, "/"):
		return errors.New("absolute path; patterns are relative to the repository root")
	case strings.Contains(g, "\\"):
		// doublestar would read it as an escape; on Windows-minded input it is a separator.
		return errors.New("contains '\\'; use '/' as the separator")
	}
	for _, seg := range strings.Split(strings.TrimPrefix(g, "./"), "/") {
		switch seg {
		case "..":
			return errors.New("'..' segment; patterns cannot leave the repository")
		case ".":
			return errors.New("'.' segment inside the pattern")
		case "":
			return errors.New("empty path segment ('//' or a trailing '/')")
		}
	}
	if !doublestar.ValidatePattern(g) {
		return errors.New("malformed glob (unclosed '[' or '{'?)")
	}
	return nil
}

func hasPositive(pats []Pattern) bool {
	for _, p := range pats {
		if !p.Negate {
			return true
		}
	}
	return false
}

// Match reports whether the slash-separated path relative to the repository
// root is selected: the last pattern that matches decides, as in .gitignore
// and GitHub Actions path filters.
func Match(pats []Pattern, path string) bool {
	selected := false
	for _, p := range pats {
		if p.Negate == selected && doublestar.MatchUnvalidated(p.Glob, path) {
			selected = !p.Negate
		}
	}
	return selected
}

// sameForDir reports whether Match(pats, dir+"/"+name) is the same for
// every file name in a directory of depth segments (0: the root), so that
// it can be decided once for the directory: when every pattern is "**" or
// "P/**" with P of at most depth segments, free of '**', braces and
// brackets (whose '/' or ',' could change the count). P then matches the
// directory's leading segments or not, whatever the name, and '**' takes
// the rest.
func sameForDir(pats []Pattern, depth int) bool {
	for _, p := range pats {
		if p.Glob == "**" {
			continue
		}
		prefix, ok := strings.CutSuffix(p.Glob, "/**")
		if !ok || strings.Contains(prefix, "**") || strings.ContainsAny(prefix, `{}[]\`) ||
			strings.Count(prefix, "/")+1 > depth {
			return false
		}
	}
	return true
}
