// Package docscheck reads the documentation (README.md and docs/*.md) for the
// tests that keep it true: the workflow snippets it shows, and the settings,
// inputs and outputs it names. It is used by tests only.
package docscheck

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Page is one documentation file, its path relative to the repository root.
type Page struct {
	Path string
	Text string
}

// Pages reads README.md and every docs/*.md under root, in a fixed order.
func Pages(root string) ([]Page, error) {
	paths, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	paths = append([]string{filepath.Join(root, "README.md")}, paths...)
	var pages []Page
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return nil, err
		}
		pages = append(pages, Page{Path: filepath.ToSlash(rel), Text: string(b)})
	}
	return pages, nil
}

// Block is one fenced code block of a page.
type Block struct {
	Page string
	Line int    // of the opening fence, 1-based
	Info string // the fence's info string: "yaml", "sh", ...
	Text string
}

var fence = regexp.MustCompile("^(\\s*)(```+)\\s*(.*)$")

// Blocks returns the page's fenced code blocks.
func (p Page) Blocks() []Block {
	var (
		blocks []Block
		cur    *Block
		marks  string
		body   strings.Builder
	)
	sc := bufio.NewScanner(strings.NewReader(p.Text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		m := fence.FindStringSubmatch(line)
		switch {
		case cur == nil && m != nil:
			cur, marks = &Block{Page: p.Path, Line: n, Info: strings.TrimSpace(m[3])}, m[2]
			body.Reset()
		case cur != nil && m != nil && m[2] == marks && m[3] == "":
			cur.Text = body.String()
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	return blocks
}

// Prose is the page without its fenced code blocks' contents.
func (p Page) Prose() string {
	var b strings.Builder
	in, marks := false, ""
	for _, line := range strings.Split(p.Text, "\n") {
		if m := fence.FindStringSubmatch(line); m != nil {
			if !in {
				in, marks = true, m[2]
				continue
			}
			if m[2] == marks && m[3] == "" {
				in = false
				continue
			}
		}
		if !in {
			b.WriteString(line)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

var (
	topJobs = regexp.MustCompile(`(?m)^jobs:`)
	topOn   = regexp.MustCompile(`(?m)^on:`)
	// What only a GitHub workflow (or a fragment of one) would hold.
	githubish = regexp.MustCompile(`(?m)^\s*(-\s*)?(runs-on|uses):|\$\{\{`)
	// This project's actions, as users name them.
	ownAction = regexp.MustCompile(`uses:(\s*)nsmithuk/s3-asset-manager(/native)?@v1\b`)
)

// IsWorkflow reports whether a YAML block is a whole GitHub workflow.
func (b Block) IsWorkflow() bool {
	return (b.Info == "yaml" || b.Info == "yml") && topJobs.MatchString(b.Text)
}

// LooksLikeWorkflowFragment reports a YAML block that holds GitHub workflow
// syntax but is not a whole workflow: it could not be linted.
func (b Block) LooksLikeWorkflowFragment() bool {
	return (b.Info == "yaml" || b.Info == "yml") && !b.IsWorkflow() && githubish.MatchString(b.Text)
}

// HasOn reports whether the workflow has its top-level on: key.
func (b Block) HasOn() bool { return topOn.MatchString(b.Text) }

// Local is the workflow with this project's actions named as local actions
// (./ and ./native), so that a linter reads their action.yml from the
// repository instead of needing the published ones.
func (b Block) Local() string {
	return ownAction.ReplaceAllStringFunc(b.Text, func(s string) string {
		m := ownAction.FindStringSubmatch(s)
		return "uses:" + m[1] + "./" + strings.TrimPrefix(m[2], "/")
	})
}
