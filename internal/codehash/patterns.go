package codehash

import (
	"errors"
	"fmt"
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
// A line whose first word begins with '#' is a comment, as in
// PACKAGE_COMPONENTS; a '#' word later on a line is refused (see
// inlineComment), and a pattern that begins with '#' is written [#]...
func ParsePatterns(filter string) ([]Pattern, error) {
	return parsePatterns(filter, false)
}

// errInlineComment: YAML's habit, "lambdas/**  # the lambdas", in a setting
// that is not YAML (an environment variable, a block scalar's text).
var errInlineComment = errors.New("'#' starts a comment only at the start of a line: put the comment on a line of its own (a pattern that begins with '#' is written [#]...)")

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

// parsePatterns is ParsePatterns; with midLine, text continues a line (a
// component's patterns after "name:"), so its first word begins no line.
func parsePatterns(text string, midLine bool) ([]Pattern, error) {
	var (
		pats     []Pattern
		errs     []error
		comments bool
	)
	for n, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		from := 1
		if midLine && n == 0 {
			from = 0
		} else if strings.HasPrefix(fields[0], "#") {
			comments = true
			continue
		}
		if err := inlineComment(fields, from); err != nil {
			errs = append(errs, err)
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
	case len(pats) == 0 && comments:
		// Not "no filter": that would turn the cache off unsaid.
		errs = append(errs, errors.New("only comments: name the files to include"))
	case len(pats) > 0 && !hasPositive(pats):
		errs = append(errs, errors.New("only exclusions ('!...'): name the files to include first"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return pats, nil
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
