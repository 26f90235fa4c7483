package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
	"github.com/nsmithuk/s3-asset-manager/internal/words"
)

// File names with control characters: a line break forges log lines, an
// escape sequence rewrites what a terminal shows, and either is an S3 key
// nobody can type.
var controlNames = map[string]string{
	"newline":  "fn1.zip\nresult: uploaded 0 files",
	"CR":       "fn1.zip\rfake.zip",
	"ESC":      "fn1\x1b[2K.zip",
	"BEL":      "fn1\a.zip",
	"DEL":      "fn1\x7f.zip",
	"C1 CSI":   "fn1\u009b2K.zip",
	"not UTF8": "fn1\xff.zip",
}

// upload refuses such a package file with exit 5 before it logs or stores
// anything, naming the file quoted (words.Quote: Go-quoted, ':' and '#'
// escaped).
func TestControlCharacterInPackageFileName(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for what, name := range controlNames {
			t.Run(what, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				writeFiles(t, d.pkg, map[string]string{".commit-hash": d.head, "a.zip": "a", "z.zip": "z"})
				if err := os.WriteFile(filepath.Join(d.pkg, name), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				r := run(t, env, "upload")
				if r.code != ExitPackage || !strings.Contains(r.stderr, words.Quote(name)) {
					t.Fatalf("want exit %d naming %s, got %v", ExitPackage, words.Quote(name), r)
				}
				if strings.Contains(r.stdout+r.stderr, name) {
					t.Errorf("the name was printed raw:\n%v", r)
				}
				if objs := listAll(t, srv, bucket); len(objs) > 0 {
					t.Errorf("wrote to the bucket: %q", keysOf(objs))
				}
			})
		}
	})
}

// A record naming such a file is not a valid record: the set is not found,
// and the name is never printed raw.
func TestControlCharacterInRecord(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for what, name := range controlNames {
			if !strings.ContainsFunc(name, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
				continue // JSON carries only valid UTF-8; C1 is covered by the manifest tests
			}
			t.Run(what, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				body, err := json.Marshal(manifest.Record{
					Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: d.head, Created: time.Now().UTC(),
					Files: []manifest.File{{Name: name, Size: 1, SHA256: strings.Repeat("a", 64)}},
				})
				if err != nil {
					t.Fatal(err)
				}
				putObject(t, srv, bucket, "artifacts/"+d.head+"/"+manifest.Name, body)
				r := run(t, env, "check")
				if exists(filepath.Join(d.pkg, ".found")) {
					t.Errorf("found by a record naming %q:\n%v", name, r)
				}
				if strings.Contains(r.stdout+r.stderr, name) {
					t.Errorf("the name was printed raw:\n%v", r)
				}
			})
		}
	})
}
