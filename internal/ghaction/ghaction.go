// Package ghaction tells a CI system the result: in GitHub Actions step
// outputs, masked secrets, log groups, error annotations and a job summary
// (the Reporter; outside GitHub Actions every method does nothing), and the
// same outputs as a dotenv file for GitLab (WriteDotenv).
//
// go-githubactions writes the workflow commands and the summary. Step outputs
// are written here: its SetOutput closes every value with one fixed
// delimiter, so a value holding that delimiter line adds outputs of its own.
package ghaction

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/nsmithuk/s3-asset-manager/internal/owner"
	"github.com/nsmithuk/s3-asset-manager/internal/progress"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Outputs of the action; Found and CacheHit are always written as exactly
// "true" or "false", the components as JSON ("[]" and "{}" without any).
type Outputs struct {
	Found      bool
	CacheHit   bool
	CommitHash string
	CodeHash   string
	// Prefix is the key prefix of the set found or downloaded; empty otherwise.
	Prefix string
	// Files of that set, written as one JSON object (FilesJSON); "{}" when none.
	Files []File
	// Components, sorted by name; empty without PACKAGE_COMPONENTS.
	Components []Component
	// Prune: prune's counts. Set, they are the only outputs written (prune
	// writes none of the others, nor the others prune's); see For.
	Prune *PruneOutputs
}

// For is the outputs a command writes, before its results fill them in:
// prune has its counts alone; check, upload and download the others
// (OutputNames), found and cache-hit "false" until found.
func For(cmd string) Outputs {
	if cmd == "prune" {
		return Outputs{Prune: &PruneOutputs{}}
	}
	return Outputs{}
}

// Component is one component's state, as the components output, the dotenv
// file and the job summary give it.
type Component struct {
	Name     string `json:"-"`
	Found    bool   `json:"found"`    // complete under the commit (found, copied or uploaded)
	CacheHit bool   `json:"cacheHit"` // copied from the cache by this check
	Build    bool   `json:"build"`    // to be built and uploaded
	CodeHash string `json:"codeHash"`
	// Reason: on a cache miss, what differs from the component's nearest
	// earlier build, on one short line (printable already).
	Reason string `json:"reason,omitempty"`
}

// ToBuildJSON is the components-to-build output: a JSON array of names,
// "[]" when there are none (never empty, so fromJSON always parses it).
func (o Outputs) ToBuildJSON() string {
	names := []string{}
	for _, c := range o.Components {
		if c.Build {
			names = append(names, c.Name)
		}
	}
	b, _ := json.Marshal(names)
	return string(b)
}

// ComponentsJSON is the components output: one JSON object, each component's
// state under its name ("{}" without components).
func (o Outputs) ComponentsJSON() string {
	m := make(map[string]Component, len(o.Components))
	for _, c := range o.Components {
		m[c.Name] = c
	}
	b, _ := json.Marshal(m) // map keys come out sorted
	return string(b)
}

// Names of the step outputs, as declared in action.yml.
const (
	OutputFound             = "found"
	OutputCacheHit          = "cache-hit"
	OutputCommitHash        = "commit-hash"
	OutputCodeHash          = "code-hash"
	OutputComponentsToBuild = "components-to-build"
	OutputComponents        = "components"
	OutputPrefix            = "prefix"
	OutputFiles             = "files"
)

// OutputNames lists every output SetOutputs writes for check, upload and
// download, in that order (prune writes PruneOutputNames instead).
var OutputNames = []string{OutputFound, OutputCacheHit, OutputCommitHash, OutputCodeHash, OutputComponentsToBuild, OutputComponents, OutputPrefix, OutputFiles}

// DotenvNames maps every output to its name in the dotenv file ("" when the
// file leaves it out), for the test that checks the documentation.
func DotenvNames() map[string]string {
	m := make(map[string]string, len(OutputNames)+len(PruneOutputNames))
	for _, o := range append(For("check").list(), For("prune").list()...) {
		m[o.name] = o.env
	}
	return m
}

// output is one value under its step-output name and its dotenv name.
type output struct {
	name, env, value string
}

// list is every output the command writes: prune's alone (PruneOutputNames),
// or the others in the order of OutputNames.
func (o Outputs) list() []output {
	if o.Prune != nil {
		return o.Prune.list()
	}
	return []output{
		{OutputFound, "FOUND", fmt.Sprint(o.Found)},
		{OutputCacheHit, "CACHE_HIT", fmt.Sprint(o.CacheHit)},
		{OutputCommitHash, "COMMIT_HASH", o.CommitHash},
		{OutputCodeHash, "CODE_HASH", o.CodeHash},
		{OutputComponentsToBuild, "COMPONENTS_TO_BUILD", o.ToBuildJSON()},
		{OutputComponents, "COMPONENTS", o.ComponentsJSON()},
		{OutputPrefix, "PREFIX", o.Prefix},
		// Not in the dotenv file: GitLab limits a dotenv report to a few KiB.
		{OutputFiles, "", FilesJSON(o.Files)},
	}
}

// ErrUnsafeValue: an output value holds a line break or another control
// character. Both files are line based; such a value is not written.
var ErrUnsafeValue = errors.New("holds a line break or another control character")

// ErrWrite: a file of outputs (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, the dotenv file) could not be
// written (a missing directory, permissions, a full disk): the file
// system's problem, not a value's.
var ErrWrite = errors.New("cannot write")

// checkValue refuses a value that could add a line to a file of outputs, or
// hide text in a log. No legitimate output has one: they are true/false and
// hex ids.
func checkValue(name, value string) error {
	if strings.ContainsFunc(value, func(c rune) bool { return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) }) {
		return fmt.Errorf("output %s %w: not written", name, ErrUnsafeValue)
	}
	return nil
}

// File is one file of a set, for the outputs and the summaries.
type File struct {
	Name        string
	Key         string // its S3 key
	Size        int64
	PackageHash string // base64 SHA-256, as in the object's metadata
}

// FilesJSON is the files output: one JSON object keyed by file name, each
// with its S3 key, size and packageHash (the package-hash: what AWS Lambda reports as
// CodeSha256 and Terraform's source_code_hash wants), so that a deploy step
// can pick a file by name: fromJSON(steps.x.outputs.files)['fn1.zip'].key.
// One line, "{}" for no files.
func FilesJSON(files []File) string {
	type entry struct {
		Key         string `json:"key"`
		Size        int64  `json:"size"`
		PackageHash string `json:"packageHash"`
	}
	m := make(map[string]entry, len(files))
	for _, f := range files {
		m[f.Name] = entry{f.Key, f.Size, f.PackageHash}
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // names stay readable: "a&b.zip", not "a\u0026b.zip"
	if err := enc.Encode(m); err != nil {
		return "{}" // cannot happen: strings and numbers only
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// CheckSummary is what a check looked up and found.
type CheckSummary struct {
	Bucket   string
	Commit   string
	CodeHash string
	Found    bool
	CacheHit bool
	Where    string // s3:// URL of the set found or looked up
	Files    int
	Bytes    int64
	// Components, with PACKAGE_COMPONENTS: each gets a row.
	Components []Component
	// Why the cache missed: a sentence, and one line per difference (both
	// printable already; escaped here for markdown). Empty: not looked up.
	Miss      string
	MissLines []string
}

// UploadSummary is what an upload stored.
type UploadSummary struct {
	Commit  string
	Where   string
	Skipped string // why nothing was uploaded, if so
	Files   []File
}

// DownloadSummary is what a download fetched.
type DownloadSummary struct {
	Commit string
	Where  string
	Files  []File
}

// Reporter talks to the Actions runner through its environment files.
type Reporter struct {
	enabled bool
	action  *githubactions.Action
	// The runner always sets these; a bare GITHUB_ACTIONS=true (a script
	// imitating CI) may not, and go-githubactions panics on an empty path.
	hasOutput, hasSummary bool
}

// New returns a Reporter; it is active only when lookup shows a GitHub
// Actions runner (GITHUB_ACTIONS=true). w receives workflow commands.
func New(lookup func(string) (string, bool), w io.Writer) *Reporter {
	if v, _ := lookup("GITHUB_ACTIONS"); v != "true" {
		return &Reporter{}
	}
	getenv := func(k string) string { v, _ := lookup(k); return v }
	return &Reporter{
		enabled:    true,
		action:     githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(w)),
		hasOutput:  getenv("GITHUB_OUTPUT") != "",
		hasSummary: getenv("GITHUB_STEP_SUMMARY") != "",
	}
}

// Enabled reports whether the tool runs inside GitHub Actions.
func (r *Reporter) Enabled() bool { return r.enabled }

// Mask hides a secret in the rest of the job's log.
func (r *Reporter) Mask(secret string) {
	if !r.enabled || strings.TrimSpace(secret) == "" {
		return
	}
	// The runner masks line by line: a multi-line secret needs each line too.
	_ = r.do(func() { r.action.AddMask(secret) })
	if strings.ContainsAny(secret, "\r\n") {
		for _, line := range strings.FieldsFunc(secret, func(c rune) bool { return c == '\n' || c == '\r' }) {
			if strings.TrimSpace(line) != "" {
				_ = r.do(func() { r.action.AddMask(line) })
			}
		}
	}
}

// Group starts a collapsible log group; the returned func ends it.
func (r *Reporter) Group(title string) func() {
	if !r.enabled {
		return func() {}
	}
	_ = r.do(func() { r.action.Group(title) })
	return func() { _ = r.do(r.action.EndGroup) }
}

// Error adds an error annotation.
func (r *Reporter) Error(msg string) {
	if !r.enabled {
		return
	}
	_ = r.do(func() {
		r.action.WithFieldsMap(map[string]string{"title": "s3-asset-manager"}).Errorf("%s", msg)
	})
}

// SetOutputs appends the step outputs to the file GITHUB_OUTPUT names, as the
// Actions toolkit does: each value as "name<<delimiter" lines with a new
// random delimiter. A value with a line break is refused (ErrUnsafeValue) and
// the others are still written, so found and cache-hit are never empty.
func (r *Reporter) SetOutputs(o Outputs) error {
	if !r.enabled || !r.hasOutput {
		return nil
	}
	var b strings.Builder
	var errs []error
	for _, v := range o.list() {
		if err := checkValue(v.name, v.value); err != nil {
			errs = append(errs, err)
			continue
		}
		// 130 random bits: a value cannot guess the line that ends it.
		delim := "ghadelimiter_" + rand.Text()
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", v.name, delim, v.value, delim)
	}
	if err := appendFile(r.action.Getenv("GITHUB_OUTPUT"), b.String()); err != nil {
		errs = append(errs, fmt.Errorf("%w GITHUB_OUTPUT: %w", ErrWrite, err))
	}
	return errors.Join(errs...)
}

// WriteDotenv writes the outputs as KEY=value lines to path (GitLab's
// artifacts:reports:dotenv), always with explicit true/false, and returns
// the file's size (for DotenvSizeWarning). A value with a line break is
// refused (ErrUnsafeValue): the file holds one line per output, never more.
func WriteDotenv(path string, o Outputs) (int, error) {
	var b strings.Builder
	var errs []error
	for _, v := range o.list() {
		if v.env == "" {
			continue
		}
		if err := checkValue(v.env, v.value); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", v.env, v.value)
	}
	if err := owner.MkdirAll(filepath.Dir(path), nil, nil); err != nil {
		errs = append(errs, fmt.Errorf("%w dotenv file: %w", ErrWrite, err))
	} else if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		errs = append(errs, fmt.Errorf("%w dotenv file: %w", ErrWrite, err))
	} else if err := owner.LikeParent(path); err != nil {
		// A GitLab job container runs as root over the runner's build
		// directory: the file is the next job's, and its user's.
		errs = append(errs, fmt.Errorf("%w dotenv file: hand %s to the owner of its directory: %w", ErrWrite, path, err))
	}
	return b.Len(), errors.Join(errs...)
}

// GitLabDotenvLimit is the largest dotenv report GitLab accepts by default,
// in bytes (its dotenv_size limit, 5 KiB; a self-managed instance can
// change it).
const GitLabDotenvLimit = 5120

// DotenvSizeWarning is the warning for a dotenv file of size bytes at
// path, "" when GitLab would accept it. Only a warning: other CI systems
// read the file without such a limit. Only COMPONENTS= grows that large.
func DotenvSizeWarning(path string, size int) string {
	if size <= GitLabDotenvLimit {
		return ""
	}
	return fmt.Sprintf("warning: the dotenv file %s is %d bytes, more than GitLab's limit of %d bytes (5 KiB) for an artifacts:reports:dotenv, "+
		"which GitLab then refuses; in GitLab, leave RESULT_DOTENV_FILE unset and read the package directory's "+
		".components-to-build and .components.json instead (see docs/gitlab.md)", words.Printable(path), size, GitLabDotenvLimit)
}

// appendFile adds text to the end of a file the runner created, in one write.
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.WriteString(text)
	return errors.Join(err, f.Close())
}

// SummarizeCheck appends the check's result to the job summary.
func (r *Reporter) SummarizeCheck(s CheckSummary) error {
	return r.summary(func() string { return CheckMarkdown(s) })
}

// SummarizeDownload appends the downloaded files to the job summary.
func (r *Reporter) SummarizeDownload(s DownloadSummary) error {
	return r.summary(func() string { return DownloadMarkdown(s) })
}

// SummarizeUpload appends the upload's files to the job summary.
func (r *Reporter) SummarizeUpload(s UploadSummary) error {
	return r.summary(func() string { return UploadMarkdown(s) })
}

// summary appends the markdown md makes, made only when there is a job
// summary to append it to (a check of 100 components spent 1.5 ms on it).
func (r *Reporter) summary(md func() string) error {
	if !r.enabled || !r.hasSummary {
		return nil
	}
	if err := r.do(func() { r.action.AddStepSummary(md()) }); err != nil {
		return fmt.Errorf("%w GITHUB_STEP_SUMMARY: %w", ErrWrite, err)
	}
	return nil
}

// do turns go-githubactions' panics (an unwritable file or stdout) into an
// error: reporting must never crash the tool after the work is done.
func (r *Reporter) do(f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", p)
			}
		}
	}()
	f()
	return nil
}

// CheckMarkdown renders the job summary of a check.
func CheckMarkdown(s CheckSummary) string {
	var b strings.Builder
	b.WriteString("### s3-asset-manager check\n\n")
	if len(s.Components) > 0 {
		componentsMarkdown(&b, s)
		return b.String()
	}
	switch {
	case s.Found && s.CacheHit:
		b.WriteString("**Found** in the code-hash cache and copied to this commit's artifacts: the build can be skipped.\n\n")
	case s.Found:
		b.WriteString("**Found**: this commit's artifacts are complete in S3; the build can be skipped.\n\n")
	case s.CodeHash != "":
		b.WriteString("**Not found**: no artifacts for this commit and no cached build for its code hash; the build must run and upload.\n\n")
	default:
		b.WriteString("**Not found**: no artifacts for this commit; the build must run and upload.\n\n")
	}
	b.WriteString("| | |\n|---|---|\n")
	row(&b, "Bucket", code(s.Bucket))
	row(&b, "Commit", code(s.Commit))
	if s.CodeHash != "" {
		row(&b, "Code hash", code(s.CodeHash))
	}
	if s.Found {
		source := "artifacts"
		if s.CacheHit {
			source = "copied from the cache"
		}
		row(&b, "Source", source)
		if s.Where != "" {
			row(&b, "Location", code(s.Where))
		}
		if s.Files > 0 || s.Bytes > 0 {
			row(&b, "Files", fmt.Sprintf("%d (%s)", s.Files, progress.Size(s.Bytes)))
		}
	}
	if s.Miss != "" {
		fmt.Fprintf(&b, "\n**Why the cache missed**: %s.\n", escape(s.Miss))
		if len(s.MissLines) > 0 {
			b.WriteString("\n")
		}
		for _, l := range s.MissLines {
			fmt.Fprintf(&b, "- %s\n", escape(l))
		}
	}
	return b.String()
}

// componentsMarkdown renders a check of components: what it comes to, then
// a row a component.
func componentsMarkdown(b *strings.Builder, s CheckSummary) {
	var found, hits int
	var build []string
	for _, c := range s.Components {
		switch {
		case c.Build:
			build = append(build, code(c.Name))
		case c.Found:
			found++
			if c.CacheHit {
				hits++
			}
		}
	}
	n := len(s.Components)
	switch {
	case len(build) == 0:
		fmt.Fprintf(b, "**Found**: all %d %s complete", n, words.Plural(n, "component", "components"))
	default:
		fmt.Fprintf(b, "**%d of %d %s to build**: %s", len(build), n, words.Plural(n, "component", "components"), strings.Join(build, ", "))
	}
	if hits > 0 {
		fmt.Fprintf(b, " (%d copied from the cache)", hits)
	}
	b.WriteString(".\n\n| | |\n|---|---|\n")
	row(b, "Bucket", code(s.Bucket))
	row(b, "Commit", code(s.Commit))
	if s.Where != "" {
		row(b, "Location", code(s.Where))
	}
	b.WriteString("\n| Component | State | Code hash |\n|---|---|---|\n")
	for _, c := range s.Components {
		state := "to build"
		switch {
		case c.CacheHit:
			state = "copied from the cache"
		case c.Found:
			state = "found"
		case c.Reason != "":
			state = "to build: " + escape(c.Reason)
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", code(c.Name), state, code(c.CodeHash))
	}
}

// UploadMarkdown renders the job summary of an upload.
func UploadMarkdown(s UploadSummary) string {
	var b strings.Builder
	b.WriteString("### s3-asset-manager upload\n\n")
	switch {
	case s.Skipped != "":
		fmt.Fprintf(&b, "**Nothing uploaded**: %s.\n\n", escape(s.Skipped))
	case len(s.Files) == 0:
		b.WriteString("**Nothing uploaded**: no files.\n\n")
	default:
		fmt.Fprintf(&b, "**Uploaded** %s.\n\n", filesAndSize(s.Files))
	}
	if s.Commit != "" || s.Where != "" {
		b.WriteString("| | |\n|---|---|\n")
		if s.Commit != "" {
			row(&b, "Commit", code(s.Commit))
		}
		if s.Where != "" {
			row(&b, "Location", code(s.Where))
		}
		b.WriteString("\n")
	}
	if len(s.Files) > 0 {
		if s.Skipped != "" {
			b.WriteString("Already stored:\n\n")
		}
		filesTable(&b, s.Files)
	}
	return b.String()
}

// DownloadMarkdown renders the job summary of a download.
func DownloadMarkdown(s DownloadSummary) string {
	var b strings.Builder
	b.WriteString("### s3-asset-manager download\n\n")
	fmt.Fprintf(&b, "**Downloaded** %s, each verified against the completion record.\n\n", filesAndSize(s.Files))
	b.WriteString("| | |\n|---|---|\n")
	row(&b, "Commit", code(s.Commit))
	row(&b, "Location", code(s.Where))
	b.WriteString("\n")
	filesTable(&b, s.Files)
	return b.String()
}

// filesAndSize says how many files and bytes: "3 files (1.2 MiB)".
func filesAndSize(files []File) string {
	var total int64
	for _, f := range files {
		total += f.Size
	}
	return fmt.Sprintf("%d %s (%s)", len(files), words.Plural(len(files), "file", "files"), progress.Size(total))
}

// filesTable renders files with their size and package-hash; a name as the
// log shows it (words.Printable).
func filesTable(b *strings.Builder, files []File) {
	b.WriteString("| File | Size | package-hash |\n|---|--:|---|\n")
	for _, f := range files {
		fmt.Fprintf(b, "| %s | %s | %s |\n", code(words.Printable(f.Name)), progress.Size(f.Size), code(f.PackageHash))
	}
}

func row(b *strings.Builder, k, v string) { fmt.Fprintf(b, "| %s | %s |\n", k, v) }

// Built once: a Replacer's first use builds its tables, and code is called
// a few times per component.
var (
	codeReplacer   = strings.NewReplacer("\r", " ", "\n", " ", "|", `\|`)
	escapeReplacer = strings.NewReplacer("\\", `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "<", "&lt;", ">", "&gt;", "|", `\|`, "\n", " ")
)

// code renders s as a code span inside a table cell: file names may hold
// backticks, pipes or newlines, none of which may break the table.
func code(s string) string {
	if s == "" {
		return "-"
	}
	s = codeReplacer.Replace(s)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || fence != "`" {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// escape keeps free text from turning into markdown or HTML.
func escape(s string) string {
	return escapeReplacer.Replace(s)
}

// IDTokenSource returns a source of the job's OIDC token for audience, or
// nil when the workflow did not grant `id-token: write` (the runner then
// sets no ACTIONS_ID_TOKEN_REQUEST_URL).
func (r *Reporter) IDTokenSource(audience string) func(context.Context) (string, error) {
	if !r.enabled || r.action.Getenv("ACTIONS_ID_TOKEN_REQUEST_URL") == "" {
		return nil
	}
	return func(ctx context.Context) (string, error) { return r.action.GetIDToken(ctx, audience) }
}

// ParseOutputFile reads a GITHUB_OUTPUT file as the runner does: "name=value"
// lines and "name<<delimiter" blocks. The tests read back what SetOutputs
// wrote with it.
func ParseOutputFile(text string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			closed := false
			for sc.Scan() {
				if sc.Text() == delim {
					closed = true
					break
				}
				val = append(val, sc.Text())
			}
			if !closed {
				return nil, fmt.Errorf("GITHUB_OUTPUT: %s<<%s is never closed", name, delim)
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("GITHUB_OUTPUT: malformed line %q", line)
		}
		out[name] = val
	}
	return out, sc.Err()
}
