// Package manifest defines the completion record: the small JSON object written
// last, after every artifact of a set is stored, whose presence is what makes
// the set "found". Objects under a prefix without a valid record are an
// interrupted upload (or were written by the original tool) and never count.
package manifest

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// Name is the record's object name inside a set's prefix. The leading dot keeps
// it apart from artifacts: the package directory's dot-files are never uploaded,
// so no artifact can carry this name.
const Name = ".s3-asset-manager.json"

// Format identifies this layout of the record. A reader takes only this one:
// a record of a later version (".../v2") is ErrNewerFormat, anything else
// ErrInvalid.
const Format = formatFamily + "1"

// formatFamily is Format without its version number.
const formatFamily = "s3-asset-manager/completion/v"

// Kinds of set.
const (
	KindArtifacts = "artifacts"
	KindCache     = "cache"
)

// MaxSize bounds what a reader accepts, so a foreign object can't exhaust memory.
const MaxSize = 16 << 20

var (
	// ErrInvalid marks a record that is not a well-formed completion record.
	ErrInvalid = errors.New("invalid completion record")
	// ErrSignature marks a record whose signature is missing or wrong.
	ErrSignature = errors.New("completion record signature does not verify")
	// ErrNewerFormat marks a record written by a later version of the tool:
	// a later format version, or fields this version does not know (adding a
	// field is a format change). Readers treat it as a miss, not an error,
	// so that two versions can share a bucket.
	ErrNewerFormat = errors.New("completion record of a newer format")
	// ErrTooLarge marks a record larger than a reader takes (MaxSize):
	// more files than a record holds.
	ErrTooLarge = errors.New("more files than a completion record holds")
)

// The identifiers a record holds are plain runs of ASCII, checked byte by
// byte: the regular expressions they were (^[0-9a-f]{64}$ and the like)
// took 0.6 ms to compile at every start, and matching one per file of a
// record is slower too (manifest_test.go holds them, for the test that
// both agree).

// LowerHex reports whether s is n lower-case hex digits (the file list's
// blob ids and digests are checked with it too).
func LowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// plain reports whether s is 1 to max bytes, the first one of first's
// and the rest of rest's (each a table of the bytes allowed).
func plain(s string, max int, first, rest *[256]bool) bool {
	if len(s) == 0 || len(s) > max || !first[s[0]] {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !rest[s[i]] {
			return false
		}
	}
	return true
}

// byteSet is a table of the bytes of chars and of the ranges in ranges
// (pairs: "az09" is a-z and 0-9).
func byteSet(chars, ranges string) *[256]bool {
	var t [256]bool
	for i := 0; i < len(chars); i++ {
		t[chars[i]] = true
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		for c := int(ranges[i]); c <= int(ranges[i+1]); c++ {
			t[c] = true
		}
	}
	return &t
}

var (
	// A code hash: [0-9a-z][0-9a-z._-]{0,127}.
	codeHashFirst, codeHashRest = byteSet("", "09az"), byteSet("._-", "09az")
	// A component name: [A-Za-z0-9_-][A-Za-z0-9._-]{0,99}.
	componentFirst, componentRest = byteSet("_-", "AZaz09"), byteSet("._-", "AZaz09")
)

func validSHA256(s string) bool     { return LowerHex(s, 64) }
func validCodeHashID(s string) bool { return plain(s, 128, codeHashFirst, codeHashRest) }

// File is one stored object of a set.
type File struct {
	// Name is the object's name under the set's prefix (the file's base name).
	Name string `json:"name"`
	// Size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lower-case hex SHA-256 of the object's bytes.
	SHA256 string `json:"sha256"`
	// ContentType as stored.
	ContentType string `json:"contentType,omitempty"`
	// ETag as the store returned it; copies are made conditional on it, so a
	// replaced object is never copied as if it were the recorded one.
	ETag string `json:"etag,omitempty"`
}

// PackageHash is the file's SHA-256 in base64, the form of the package-hash
// metadata and of AWS Lambda's CodeSha256.
func (f File) PackageHash() string {
	b, err := hex.DecodeString(f.SHA256)
	if err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Record is the completion record of one set.
type Record struct {
	Format   string    `json:"format"`
	Kind     string    `json:"kind"`
	Commit   string    `json:"commit,omitempty"`
	CodeHash string    `json:"codeHash,omitempty"`
	Created  time.Time `json:"created"`
	Tool     string    `json:"tool,omitempty"`
	// Source is where a copied set came from ("cache/<code-hash>/"), empty for uploads.
	Source string `json:"source,omitempty"`
	// Component names the component a set belongs to (PACKAGE_COMPONENTS):
	// an artifacts record at artifacts/<commit>/<component>/, or a cache
	// entry made from one. Empty for a whole set.
	Component string `json:"component,omitempty"`
	// Components lists, in the commit's own record of a set of components,
	// every component with its code hash; Files then names each file
	// "<component>/<file>".
	Components []ComponentRef `json:"components,omitempty"`
	Files      []File         `json:"files"`
	// Signature is "hmac-sha256:<hex>" over the record encoded with this field
	// empty; set only when the writer has a signing key.
	Signature string `json:"signature,omitempty"`
}

// ComponentRef is one component of a commit's set of components.
type ComponentRef struct {
	Name     string `json:"name"`
	CodeHash string `json:"codeHash"`
}

// TotalSize is the sum of the files' sizes.
func (r *Record) TotalSize() int64 {
	var n int64
	for _, f := range r.Files {
		n += f.Size
	}
	return n
}

// Validate reports every problem with the record at once.
func (r *Record) Validate() error {
	var errs []error
	if r.Format != Format {
		errs = append(errs, fmt.Errorf("format %s, want %s", words.Quote(r.Format), words.Quote(Format)))
	}
	switch r.Kind {
	case KindArtifacts:
		if r.Commit == "" {
			errs = append(errs, errors.New("an artifacts record names no commit"))
		}
	case KindCache:
		if r.CodeHash == "" {
			errs = append(errs, errors.New("a cache record names no code hash"))
		}
	default:
		errs = append(errs, fmt.Errorf("kind %s, want %s or %s", words.Quote(r.Kind), words.Quote(KindArtifacts), words.Quote(KindCache)))
	}
	if r.Commit != "" && !ValidCommit(r.Commit) {
		errs = append(errs, fmt.Errorf("commit %s is not a 40 or 64 hex commit id", words.Quote(r.Commit)))
	}
	if r.CodeHash != "" && !validCodeHashID(r.CodeHash) {
		errs = append(errs, fmt.Errorf("code hash %s is malformed", words.Quote(r.CodeHash)))
	}
	if len(r.Files) == 0 {
		errs = append(errs, errors.New("lists no files"))
	}
	if r.Component != "" {
		if err := ValidComponent(r.Component); err != nil {
			errs = append(errs, err)
		}
		if len(r.Components) > 0 {
			errs = append(errs, errors.New("a component's record lists components"))
		}
	}
	comps := make(map[string]bool, len(r.Components))
	for _, c := range r.Components {
		if err := ValidComponent(c.Name); err != nil {
			errs = append(errs, err)
		}
		if comps[c.Name] {
			errs = append(errs, fmt.Errorf("component %s listed twice", words.Quote(c.Name)))
		}
		comps[c.Name] = true
		if !validCodeHashID(c.CodeHash) {
			errs = append(errs, fmt.Errorf("component %s: code hash %s is malformed", words.Quote(c.Name), words.Quote(c.CodeHash)))
		}
	}
	if len(r.Components) > 0 && r.Kind != KindArtifacts {
		errs = append(errs, errors.New("a cache record lists components"))
	}
	seen := make(map[string]bool, len(r.Files))
	for i, f := range r.Files {
		name := f.Name
		if len(r.Components) > 0 {
			// A commit's record of components: "<component>/<file>".
			c, rest, ok := strings.Cut(name, "/")
			if !ok || !comps[c] {
				errs = append(errs, fmt.Errorf("file %d: %s is not <component>/<file> of a listed component", i, words.Quote(name)))
			}
			name = rest
		}
		if err := ValidName(name); err != nil {
			errs = append(errs, fmt.Errorf("file %d: %w", i, err))
		}
		if seen[f.Name] {
			errs = append(errs, fmt.Errorf("file %s listed twice", words.Quote(f.Name)))
		}
		seen[f.Name] = true
		if f.Size < 0 {
			errs = append(errs, fmt.Errorf("file %s: negative size", words.Quote(f.Name)))
		}
		if !validSHA256(f.SHA256) {
			errs = append(errs, fmt.Errorf("file %s: sha256 %s is not 64 lower-case hex", words.Quote(f.Name), words.Quote(f.SHA256)))
		}
		if f.ETag != "" && !ValidETag(f.ETag) {
			errs = append(errs, fmt.Errorf("file %s: etag %s is not an ETag (printable ASCII, no space or quote inside)", words.Quote(f.Name), words.Quote(words.Truncate(f.ETag, 80))))
		}
		if f.ContentType != "" {
			if err := validContentType(f.ContentType); err != nil {
				errs = append(errs, fmt.Errorf("file %s: contentType %s: %w", words.Quote(f.Name), words.Quote(words.Truncate(f.ContentType, 80)), err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// maxHeaderValue bounds a recorded ETag or content type: both go into request
// headers of copies, and are printed.
const maxHeaderValue = 256

// ValidETag reports whether etag can be an ETag a store returned: one token
// of printable ASCII without spaces or quotes, optionally in quotes and with
// a weak "W/" prefix. Stores differ in what is inside (MD5 hex, hex-N for
// multipart uploads, other digests), so nothing stricter is asked; what is
// refused is what could break a request header or forge a log line.
func ValidETag(etag string) bool {
	if len(etag) > maxHeaderValue {
		return false
	}
	t := strings.TrimPrefix(etag, "W/")
	if len(t) >= 2 && t[0] == '"' && t[len(t)-1] == '"' {
		t = t[1 : len(t)-1]
	}
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c >= 0x7f || c == '"' {
			return false
		}
	}
	return true
}

// validContentType: printable ASCII (it is sent as a header) that parses as
// a media type.
func validContentType(ct string) error {
	if len(ct) > maxHeaderValue {
		return fmt.Errorf("longer than %d bytes", maxHeaderValue)
	}
	for i := 0; i < len(ct); i++ {
		if c := ct[i]; c < ' ' || c >= 0x7f {
			return errors.New("not printable ASCII")
		}
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return err
	}
	return nil
}

// ValidCommit reports whether s is a full commit id: 40 (SHA-1) or 64
// (SHA-256) lower-case hex digits.
func ValidCommit(s string) bool { return LowerHex(s, 40) || LowerHex(s, 64) }

// ParseCommit reads a full commit id given by a person (a setting, a
// .commit-hash written by a script): hex digits of either case, as git
// accepts them; the id is the lower-case form keys and records use.
func ParseCommit(s string) (string, bool) {
	s = strings.ToLower(s)
	return s, ValidCommit(s)
}

// ValidCodeHash reports whether s can be a code hash in keys and metadata.
func ValidCodeHash(s string) bool { return validCodeHashID(s) }

// ErrComponentName: a component name that is not a plain name.
var ErrComponentName = errors.New("bad component name")

// ValidComponent reports whether name can name a component: only
// [A-Za-z0-9._-], no leading dot, at most 100 characters.
func ValidComponent(name string) error {
	// A component's name is a directory in the package directory, a key
	// segment and a GitHub matrix value.
	if !plain(name, 100, componentFirst, componentRest) {
		return fmt.Errorf("%w: %s is not a plain name (letters, digits, '.', '_', '-'; no leading dot; at most 100)", ErrComponentName, words.Quote(name))
	}
	return nil
}

// ValidName reports whether name can be an artifact's object name: a plain,
// non-hidden file name, as upload takes them from the package directory. The
// one rule for package files and records alike. Names are printed in logs and
// summaries: a control character (a line break that forges a log line, an
// escape sequence that rewrites a terminal; C0, DEL and C1) is refused, as is
// a name that is not UTF-8, which S3 keys must be. The message quotes the
// name with Go escapes, so it is safe to print.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("file name %s is hidden", words.Quote(name))
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("file name %s contains '/' or NUL", words.Quote(name))
	case !utf8.ValidString(name):
		return fmt.Errorf("file name %s is not valid UTF-8", words.Quote(name))
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("file name %s contains a control character", words.Quote(name))
	}
	return nil
}

// Encode returns the record as indented JSON, files sorted by name, signed
// with key when key is non-empty.
func Encode(r Record, key []byte) ([]byte, error) {
	r.Files = append([]File(nil), r.Files...)
	sort.Slice(r.Files, func(i, j int) bool { return r.Files[i].Name < r.Files[j].Name })
	r.Signature = ""
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if len(key) > 0 {
		body, err := marshal(r)
		if err != nil {
			return nil, err
		}
		r.Signature = sign(body, key)
	}
	body, err := marshal(r)
	if err == nil && len(body) > MaxSize {
		return nil, fmt.Errorf("%w: %s make a record of %d bytes, more than a reader takes (%d)", ErrTooLarge, words.Count(len(r.Files), "file", "files"), len(body), MaxSize)
	}
	return body, err
}

// Decode parses and validates a record. With a non-empty key the record must
// carry a valid signature made with that key (ErrSignature otherwise).
func Decode(data []byte, key []byte) (*Record, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxSize)
	}
	// The format first, leniently: a later version may have changed anything else.
	var probe struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if probe.Format != Format {
		if v, ok := strings.CutPrefix(probe.Format, formatFamily); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 1 {
				return nil, fmt.Errorf("%w: %s (this version reads %s)", ErrNewerFormat, words.Quote(probe.Format), words.Quote(Format))
			}
		}
		return nil, fmt.Errorf("%w: format %s, want %s", ErrInvalid, words.Quote(words.Truncate(probe.Format, 80)), words.Quote(Format))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		// encoding/json names an unknown field only in its message.
		if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
			return nil, fmt.Errorf("%w: %s with a field this version does not know (%s)", ErrNewerFormat, words.Quote(Format), words.Printable(strings.TrimPrefix(msg, "json: ")))
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalid)
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	if len(key) > 0 {
		got := r.Signature
		r.Signature = ""
		body, err := marshal(r)
		if err != nil {
			return nil, err
		}
		if got == "" {
			return nil, fmt.Errorf("%w: the record is not signed", ErrSignature)
		}
		if !hmac.Equal([]byte(got), []byte(sign(body, key))) {
			return nil, fmt.Errorf("%w: signed with another key, or altered", ErrSignature)
		}
		r.Signature = got
	}
	return &r, nil
}

func marshal(r Record) ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func sign(body, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(body)
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))
}
