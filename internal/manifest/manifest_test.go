package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const commit = "0123456789abcdef0123456789abcdef01234567"

func sample() Record {
	return Record{
		Format: Format, Kind: KindArtifacts, Commit: commit,
		Created: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC), Tool: "s3-asset-manager test",
		Files: []File{
			{Name: "fn2.zip", Size: 3, SHA256: strings.Repeat("b", 64)},
			{Name: "fn1.zip", Size: 5, SHA256: strings.Repeat("a", 64), ContentType: "application/zip"},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, key := range [][]byte{nil, []byte("a-long-signing-key-0123")} {
		data, err := Encode(sample(), key)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Decode(data, key)
		if err != nil {
			t.Fatalf("decode: %v\n%s", err, data)
		}
		if r.Files[0].Name != "fn1.zip" || r.TotalSize() != 8 || r.Commit != commit {
			t.Errorf("round trip: %+v", r)
		}
		if (key != nil) != (r.Signature != "") {
			t.Errorf("signature %q with key %q", r.Signature, key)
		}
	}
}

func TestSignature(t *testing.T) {
	key := []byte("a-long-signing-key-0123")
	signed, _ := Encode(sample(), key)
	unsigned, _ := Encode(sample(), nil)
	tampered := []byte(strings.Replace(string(signed), `"size": 3`, `"size": 4`, 1))
	tests := []struct {
		name string
		data []byte
		key  []byte
		want error
	}{
		{"unsigned with key", unsigned, key, ErrSignature},
		{"other key", signed, []byte("another-key-0123456789"), ErrSignature},
		{"tampered", tampered, key, ErrSignature},
		{"signed without key", signed, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.data, tt.key)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	tests := map[string]string{
		"not json":       `hello`,
		"other format":   `{"format":"x","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"no files":       `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[]}`,
		"bad commit":     `{"format":"` + Format + `","kind":"artifacts","commit":"abc","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"hidden name":    `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":".x","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"slash in name":  `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a/b","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"negative size":  `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":-1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"bad sha":        `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"xyz"}]}`,
		"trailing data":  `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]} {}`,
		"duplicate name": `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"},{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"cache no hash":  `{"format":"` + Format + `","kind":"cache","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"unknown kind":   `{"format":"` + Format + `","kind":"x","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"original tool":  `PK\x03\x04 a zip file`,
		"newline name":   `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a\nb","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"escape in name": `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a\u001b[2Kb","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"version zero":   `{"format":"s3-asset-manager/completion/v0","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]}`,
		"foreign":        `{"format":"other-tool/v9","files":[]}`,
		// Recorded ETags and content types go into copy headers and logs.
		"newline in etag":        `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `","etag":"\"abc\"\n::error::forged"}]}`,
		"space in etag":          `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `","etag":"ab cd"}]}`,
		"quote inside etag":      `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `","etag":"\"ab\"cd\""}]}`,
		"newline in contentType": `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `","contentType":"application/zip\r\nX-Evil: 1"}]}`,
		"contentType not a type": `{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `","contentType":"not a type"}]}`,
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Decode([]byte(data), nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// ETags stores really return are accepted: MD5 hex, multipart hex-N,
// quoted or not, weak, and other stores' tokens.
func TestValidETag(t *testing.T) {
	for _, e := range []string{`"d41d8cd98f00b204e9800998ecf8427e"`, "d41d8cd98f00b204e9800998ecf8427e",
		`"9b2cf535f27731c974343645a3985328-12"`, `W/"abc"`, `"AbC+/=_.:-123"`} {
		if !ValidETag(e) {
			t.Errorf("ValidETag(%q) = false", e)
		}
	}
	for _, e := range []string{`""`, `"a b"`, "a\nb", `"a"b"`, "\x7f", strings.Repeat("a", 300)} {
		if ValidETag(e) {
			t.Errorf("ValidETag(%q) = true", e)
		}
	}
}

// File names are printed in logs and job summaries and become S3 keys: one
// with a control character (a line break that forges a log line, an escape
// sequence that rewrites the terminal) is refused, in a message that quotes
// it safely.
func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{
		"fn1.zip":              true,
		"lib name (v2).tar.gz": true,
		"ünïcødé.zip":          true,
		"":                     false,
		".hidden":              false,
		"a/b":                  false,
		"a\x00b":               false,
		"a\nb":                 false,
		"a\rb":                 false,
		"a\tb":                 false,
		"a\x1b[31mred":         false,
		"a\x07":                false,
		"a\x7f":                false,
		"a\u0085b":             false, // C1: NEL
		"a\u009b31mb":          false, // C1: CSI
		"a\xffb":               false, // not UTF-8, which S3 keys must be
	} {
		err := ValidName(name)
		if (err == nil) != ok {
			t.Errorf("ValidName(%q) = %v, want ok=%t", name, err, ok)
		}
		if err != nil && strings.ContainsFunc(err.Error(), func(c rune) bool { return c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0 || c == 0xfffd }) {
			t.Errorf("ValidName(%q): the message holds the raw name: %q", name, err)
		}
	}
}

// A later version's record is told apart from a foreign or damaged one, so
// readers can take it as a miss: a later format version, or a field this
// version does not know.
func TestNewerFormat(t *testing.T) {
	file := `"files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `"}]`
	tests := map[string]struct{ data, names string }{
		"v2":            {`{"format":"s3-asset-manager/completion/v2","whatever":true}`, `completion/v2`},
		"v10":           {`{"format":"s3-asset-manager/completion/v10","kind":"x"}`, `completion/v10`},
		"unknown field": {`{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z","variant":"arm64",` + file + `}`, `"variant"`},
		"unknown file field": {`{"format":"` + Format + `","kind":"artifacts","commit":"` + commit + `","created":"2026-01-01T00:00:00Z",` +
			`"files":[{"name":"a","size":1,"sha256":"` + strings.Repeat("a", 64) + `","mode":"0755"}]}`, `"mode"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode([]byte(tt.data), []byte("a-long-signing-key-0123"))
			if !errors.Is(err, ErrNewerFormat) || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.names) {
				t.Errorf("err = %v, want ErrNewerFormat naming %s", err, tt.names)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := Encode(sample(), nil)
	signed, _ := Encode(sample(), []byte("a-long-signing-key-0123"))
	f.Add(good)
	f.Add(signed)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"` + Format + `","files":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data, nil)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNewerFormat) {
				t.Fatalf("error neither ErrInvalid nor ErrNewerFormat: %v", err)
			}
			return
		}
		// Whatever decodes must validate and re-encode to something that decodes.
		again, err := Encode(*r, nil)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := Decode(again, nil); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

// A component's record names its component; a commit's record of components
// lists them, and its files as <component>/<file>.
func TestComponentRecords(t *testing.T) {
	hash := strings.Repeat("c", 64)
	commitOf := func(edit func(*Record)) Record {
		r := sample()
		r.Components = []ComponentRef{{Name: "fn1", CodeHash: hash}, {Name: "fn2", CodeHash: hash}}
		r.Files[0].Name, r.Files[1].Name = "fn2/fn2.zip", "fn1/fn1.zip"
		if edit != nil {
			edit(&r)
		}
		return r
	}
	componentOf := func(edit func(*Record)) Record {
		r := sample()
		r.Component, r.CodeHash = "fn1", hash
		if edit != nil {
			edit(&r)
		}
		return r
	}
	tests := []struct {
		name string
		rec  Record
		want string // "" valid, else part of the error
	}{
		{"a component's record", componentOf(nil), ""},
		{"a commit's record of components", commitOf(nil), ""},
		{"component with a slash", componentOf(func(r *Record) { r.Component = "a/b" }), "not a plain name"},
		{"hidden component", componentOf(func(r *Record) { r.Component = ".fn1" }), "not a plain name"},
		{"component listing components", componentOf(func(r *Record) { r.Components = commitOf(nil).Components }), "lists components"},
		{"file of no listed component", commitOf(func(r *Record) { r.Files[0].Name = "fn3/fn3.zip" }), `"fn3/fn3.zip" is not <component>/<file>`},
		{"file without its component", commitOf(func(r *Record) { r.Files[0].Name = "fn2.zip" }), "is not <component>/<file>"},
		{"hidden file of a component", commitOf(func(r *Record) { r.Files[0].Name = "fn2/.x" }), "hidden"},
		{"nested file of a component", commitOf(func(r *Record) { r.Files[0].Name = "fn2/a/b" }), "contains '/'"},
		{"a component twice", commitOf(func(r *Record) { r.Components[1].Name = "fn1" }), "listed twice"},
		{"a component's bad code hash", commitOf(func(r *Record) { r.Components[0].CodeHash = "A B" }), "code hash"},
		{"a file with a slash without components", func() Record { r := sample(); r.Files[0].Name = "fn2/fn2.zip"; return r }(), "contains '/'"},
		{"a cache record with components", commitOf(func(r *Record) { r.Kind, r.CodeHash = KindCache, hash }), "a cache record lists components"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := Encode(tt.rec, nil)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Decode(data, nil); err != nil {
					t.Fatalf("decode: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want ErrInvalid naming %q", err, tt.want)
			}
		})
	}
}

// A record no reader would take (larger than MaxSize) is never written: the
// set would be a miss for ever, rebuilt and rewritten by every pipeline.
func TestEncodeTooLarge(t *testing.T) {
	r := sample()
	r.Files = nil
	for i := range 80_000 {
		r.Files = append(r.Files, File{Name: fmt.Sprintf("%06d-%s.zip", i, strings.Repeat("x", 40)), Size: 1, SHA256: strings.Repeat("a", 64), ContentType: "application/zip", ETag: `"` + strings.Repeat("e", 32) + `"`})
	}
	data, err := Encode(r, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encoded %d files into %d bytes (a reader takes %d): %v", len(r.Files), len(data), MaxSize, err)
	}
	r.Files = r.Files[:1000]
	if _, err := Encode(r, nil); err != nil {
		t.Fatalf("1,000 files: %v", err)
	}
}
