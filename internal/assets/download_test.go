package assets

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// dirFiles reads every file in dir (hidden ones too); nil if dir does not exist.
func dirFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// Download takes a set exactly when check would count it found (LookupSet's
// SetComplete); every other state is not found (exit 6), saying why, and
// nothing is written. An object that changes while the download runs is
// not found too, and no file of the set is left unverified.
func TestDownloadDecisions(t *testing.T) {
	key := []byte(theKey)
	prefix := "artifacts/" + commitA + "/"
	tests := []struct {
		name    string
		signed  bool
		seed    func(f *fakeStore)
		before  map[string]string // in the directory before
		kind    Kind              // 0: success
		reason  string            // the error names this
		after   map[string]string // in the directory after; nil: not even created
		lookups int               // record reads
	}{
		{"complete", false, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), build, nil, nil)
		}, nil, 0, "", build, 1},
		{"complete, signed", true, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), build, key, nil)
		}, map[string]string{"fn1.zip": "older", "notes.txt": "mine"}, 0, "", map[string]string{"fn1.zip": "one", "fn2.zip": "two", "notes.txt": "mine"}, 1},
		{"nothing", false, func(f *fakeStore) {}, nil, KindNotFound, "nothing under s3://fake/" + prefix, nil, 1},
		{"upload under way", false, func(f *fakeStore) {
			f.put(prefix+"fn1.zip", []byte("one"), nil, "")
		}, nil, KindNotFound, "no completion record", nil, 1},
		{"unsigned, key set", true, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), build, nil, nil)
		}, nil, KindNotFound, "not signed", nil, 1},
		{"signed with another key", true, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), build, []byte("another-key-0123456789"), nil)
		}, nil, KindNotFound, "another key", nil, 1},
		{"altered after signing", true, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), build, key, nil)
			o, _ := f.get(prefix + manifest.Name)
			f.put(prefix+manifest.Name, []byte(strings.Replace(string(o.body), `"size": 3`, `"size": 4`, 1)), nil, "")
		}, nil, KindNotFound, "altered", nil, 1},
		{"another commit's record", true, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitB, ""), build, key, nil)
		}, nil, KindNotFound, "belongs to artifacts " + commitB, nil, 1},
		{"newer format", false, func(f *fakeStore) {
			f.put(prefix+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
		}, nil, KindNotFound, "completion/v2", nil, 1},
		{"object replaced before", false, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), build, nil, nil)
			f.put(prefix+"fn2.zip", []byte("TWO"), nil, "")
		}, nil, KindNotFound, "fn2.zip was replaced", nil, 1},
		{"object deleted before", false, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), build, nil, nil)
			f.del(prefix + "fn1.zip")
		}, nil, KindNotFound, "fn1.zip was deleted", nil, 1},
		// After the lookup: the GET is refused; an older file of the name goes too.
		{"object replaced during", false, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), map[string]string{"fn1.zip": "one"}, nil, nil)
			f.beforeDownload = func(f *fakeStore, key string) { f.put(key, []byte("ONE"), nil, "") }
		}, map[string]string{"fn1.zip": "older"}, KindNotFound, "artifacts/" + commitA + "/fn1.zip", map[string]string{}, 1},
		{"object deleted during", false, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), map[string]string{"fn1.zip": "one"}, nil, nil)
			f.beforeDownload = func(f *fakeStore, key string) { f.del(key) }
		}, nil, KindNotFound, "artifacts/" + commitA + "/fn1.zip", map[string]string{}, 1},
		{"damaged every time", false, func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitA, ""), map[string]string{"fn1.zip": "one"}, nil, func(r *manifest.Record) {
				r.Files[0].SHA256 = sha("other")
			})
		}, nil, KindS3, "artifacts/" + commitA + "/fn1.zip", map[string]string{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.seed(f)
			r, logs := newRunner(t, f, keyIf(tt.signed), false, false)
			r.Config.PackageDir = filepath.Join(t.TempDir(), "deploy")
			r.Config.Commit = commitA
			if tt.before != nil {
				if err := os.MkdirAll(r.Config.PackageDir, 0o755); err != nil {
					t.Fatal(err)
				}
				writePackage(t, r.Config.PackageDir, "", "", tt.before)
				os.Remove(filepath.Join(r.Config.PackageDir, CommitFile))
			}
			res, err := r.Download(context.Background())
			var fl *Failure
			switch {
			case tt.kind == 0 && err != nil:
				t.Fatalf("error %v\n%s", err, logs)
			case tt.kind != 0 && (!errors.As(err, &fl) || fl.Kind != tt.kind || !strings.Contains(err.Error(), tt.reason)):
				t.Fatalf("error %v, want kind %d naming %q\n%s", err, tt.kind, tt.reason, logs)
			case tt.kind == KindNotFound && !errors.Is(err, ErrSetNotFound):
				t.Errorf("error %v is not ErrSetNotFound", err)
			}
			if tt.kind == 0 && (res.Prefix != prefix || len(res.Files) != len(build) || res.Commit != commitA) {
				t.Errorf("result %+v", res)
			}
			after := tt.after
			if after == nil && tt.before != nil {
				after = tt.before
			}
			if got := dirFiles(t, r.Config.PackageDir); !maps.Equal(got, after) || (after == nil) != (got == nil) {
				t.Errorf("directory holds %q, want %q", got, after)
			}
			if len(f.reads) != tt.lookups {
				t.Errorf("%d lookups, want %d (no waiting asked for)", len(f.reads), tt.lookups)
			}
		})
	}
}

// A file or directory the download made that could not be handed to the
// owner of its directory (a chown refused) is not left behind, root's, in
// that user's directory: the download fails, and removes it.
func TestDownloadHandOverRefused(t *testing.T) {
	prefix := "artifacts/" + commitA + "/"
	refused := errors.New("operation not permitted")
	for _, name := range []string{"fn2.zip", "deploy"} {
		t.Run(name, func(t *testing.T) {
			f := newFake()
			f.seed(prefix, artifactsOf(commitA, ""), build, nil, nil)
			r, logs := newRunner(t, f, "", false, false)
			r.Config.PackageDir = filepath.Join(t.TempDir(), "deploy")
			r.Config.Commit = commitA
			r.handOver = func(path string) error {
				if filepath.Base(path) == name {
					return refused
				}
				return nil
			}
			_, err := r.Download(context.Background())
			var fl *Failure
			if !errors.As(err, &fl) || fl.Kind != KindPackage || !errors.Is(err, refused) {
				t.Fatalf("error %v, want the package directory's, the refusal\n%s", err, logs)
			}
			got := dirFiles(t, r.Config.PackageDir)
			if _, ok := got["fn2.zip"]; ok {
				t.Errorf("fn2.zip, not handed over, is left: %q", got)
			}
			if name == "deploy" && got != nil {
				t.Errorf("the directory not handed over is left, holding %q", got)
			}
		})
	}
}

// The commit comes from the setting, else .commit-hash, else HEAD; a
// malformed .commit-hash is the package directory's problem.
func TestDownloadCommit(t *testing.T) {
	for _, tt := range []struct {
		name, setting, marker string
		want                  string
		kind                  Kind
	}{
		{"setting wins", commitA, commitB, commitA, 0},
		{"marker", "", commitB + "\n", commitB, 0},
		{"HEAD", "", "", commitA, 0},
		{"malformed marker", "", "abc", "", KindPackage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			r, _ := newRunner(t, f, "", false, false)
			r.Config.Commit = tt.setting
			if tt.marker != "" {
				writePackage(t, r.Config.PackageDir, tt.marker, "", nil)
			}
			got, _, err := r.downloadCommit()
			var fl *Failure
			if tt.kind != 0 {
				if !errors.As(err, &fl) || fl.Kind != tt.kind {
					t.Fatalf("error %v, want kind %d", err, tt.kind)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("commit %q, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// fakeClock advances only when waited on; each wait may change the bucket.
// Download waits with Now and After alone (the embedded Clock is nil).
type fakeClock struct {
	clockwork.Clock
	now    time.Time
	slept  []time.Duration
	onWake func(n int)
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	if c.onWake != nil {
		c.onWake(len(c.slept))
	}
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// With PACKAGE_ASSETS_WAIT, download looks again with growing pauses (2 s,
// then half as long again each time, at most 30 s, never past the end of
// the wait) and takes the set once it is complete, whichever state it was
// in before; one that never is, is not found when the wait is over.
func TestDownloadWaits(t *testing.T) {
	prefix := "artifacts/" + commitA + "/"
	for _, tt := range []struct {
		name       string
		seed       func(f *fakeStore)
		completeAt int // complete the set after this many pauses; 0: never
		wait       time.Duration
		slept      []time.Duration
	}{
		{"appears", func(f *fakeStore) {}, 3, 10 * time.Minute, []time.Duration{2 * time.Second, 3 * time.Second, 4500 * time.Millisecond}},
		{"upload under way, then complete", func(f *fakeStore) {
			f.put(prefix+"fn1.zip", []byte("one"), nil, "")
		}, 1, time.Minute, []time.Duration{2 * time.Second}},
		{"untrusted, then replaced", func(f *fakeStore) {
			f.seed(prefix, artifactsOf(commitB, ""), build, nil, nil)
		}, 2, time.Minute, []time.Duration{2 * time.Second, 3 * time.Second}},
		{"never", func(f *fakeStore) {}, 0, time.Minute, []time.Duration{
			2 * time.Second, 3 * time.Second, 4500 * time.Millisecond, 6750 * time.Millisecond, 10125 * time.Millisecond,
			15187500 * time.Microsecond, 18437500 * time.Microsecond, // the rest of the minute
		}},
		{"newer format: not waited for", func(f *fakeStore) {
			// A later version's set: no upload of this version replaces it.
			f.put(prefix+".s3-asset-manager.json", []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
		}, 0, time.Minute, nil},
		{"never, long", func(f *fakeStore) {}, 0, 2 * time.Minute, []time.Duration{
			2 * time.Second, 3 * time.Second, 4500 * time.Millisecond, 6750 * time.Millisecond, 10125 * time.Millisecond,
			15187500 * time.Microsecond, 22781250 * time.Microsecond, 30 * time.Second, 25656250 * time.Microsecond,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.seed(f)
			r, logs := newRunner(t, f, "", false, false)
			r.Config.Commit, r.Config.Wait = commitA, tt.wait
			clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			clock.onWake = func(n int) {
				if n == tt.completeAt {
					f.seed(prefix, artifactsOf(commitA, ""), build, nil, nil)
				}
			}
			r.Clock = clock
			_, err := r.Download(context.Background())
			if tt.completeAt > 0 {
				if err != nil {
					t.Fatalf("%v\n%s", err, logs)
				}
				if got := dirFiles(t, r.Config.PackageDir); !maps.Equal(got, build) {
					t.Errorf("directory holds %q", got)
				}
			} else if !errors.Is(err, ErrSetNotFound) || strings.Contains(err.Error(), "still after waiting") != (tt.slept != nil) {
				t.Fatalf("error %v, want not found, after waiting if it paused\n%s", err, logs)
			}
			if !slices.Equal(clock.slept, tt.slept) {
				t.Errorf("paused %v, want %v", clock.slept, tt.slept)
			}
			if len(f.reads) != len(tt.slept)+1 {
				t.Errorf("%d lookups after %d pauses", len(f.reads), len(tt.slept))
			}
			// A log line at the first look, then at most one every 30 s.
			if n := strings.Count(logs.String(), "not there yet"); tt.slept != nil && (n < 1 || n > 1+int(tt.wait/waitLogEvery)) {
				t.Errorf("%d waiting lines in %s:\n%s", n, tt.wait, logs)
			}
		})
	}
}

// checkTargets refuses, before anything is fetched, a set's file that
// could not be put in place, whichever way the clash goes.
func TestCheckTargets(t *testing.T) {
	base := t.TempDir()
	for _, f := range []string{"dir-at-file/a.zip/inner", "file-at-dir/sub", "fine/a.zip", "fine/sub/b.zip"} {
		if err := os.MkdirAll(filepath.Join(base, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		dir, name string
		refused   string // the path the error names; "" for none
	}{
		{"dir-at-file", "a.zip", "dir-at-file/a.zip"},
		{"file-at-dir", "sub/b.zip", "file-at-dir/sub"},
		{"file-at-dir", "sub/deeper/b.zip", "file-at-dir/sub"},
		{"fine", "a.zip", ""},        // replaced
		{"fine", "sub/b.zip", ""},    // replaced
		{"fine", "new/c.zip", ""},    // made
		{"not-there", "d/e.zip", ""}, // made
	} {
		err := checkTargets(filepath.Join(base, c.dir), []string{"first.zip", c.name})
		if c.refused == "" && err != nil {
			t.Errorf("%s/%s: %v", c.dir, c.name, err)
		}
		if c.refused != "" && (err == nil || !strings.Contains(err.Error(), filepath.Join(base, c.refused)+" ")) {
			t.Errorf("%s/%s: error %v, want one naming %s", c.dir, c.name, err, c.refused)
		}
	}
}

// What a store's file request fails with is the package directory's when
// the local file is at fault, S3's otherwise.
func TestFileKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want Kind
	}{
		{fmt.Errorf("put x in place: %w", s3store.ErrLocalFile), KindPackage},
		{fmt.Errorf("upload x: %w", s3store.ErrChanged), KindPackage},
		{fmt.Errorf("open x: %w", os.ErrNotExist), KindPackage},
		{fmt.Errorf("get x: %w", s3store.ErrAccessDenied), KindS3},
		{fmt.Errorf("get x: %w", s3store.ErrUnreachable), KindS3},
	} {
		if got := KindOf(fileKind(c.err)); got != c.want {
			t.Errorf("%v: kind %d, want %d", c.err, got, c.want)
		}
	}
}
