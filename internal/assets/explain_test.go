package assets

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

func hashOf(c byte) string   { return strings.Repeat(string(c), 64) }
func commitOf(c byte) string { return strings.Repeat(string(c), 40) }

func TestExplainMiss(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	pats := []string{"lambdas/**"}
	other := []string{"other/**"}
	cur := fileList(hashOf('c'), pats, "a", "b", "new")
	encode := func(l *codehash.List) []byte {
		b, err := l.EncodeBytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pointer := func(entries ...LatestEntry) []byte {
		b, _ := json.Marshal(Latest{Format: LatestFormat, Entries: entries})
		return b
	}
	entry := func(h, c byte, age time.Duration, p []string) LatestEntry {
		return LatestEntry{CodeHash: hashOf(h), Commit: commitOf(c), Created: now.Add(-age), Filter: FilterID(p)}
	}
	lists := map[string][]byte{
		"cache/" + hashOf('1') + "/" + ListName: encode(fileList(hashOf('1'), pats, "a", "b")),
		"cache/" + hashOf('2') + "/" + ListName: encode(fileList(hashOf('2'), pats, "a")),
		"cache/" + hashOf('3') + "/" + ListName: encode(fileList(hashOf('3'), other, "a", "b", "new")),
	}
	for _, tc := range []struct {
		name    string
		pointer []byte
		extra   map[string][]byte
		failGet error
		want    string // the sentence, "" for none
		reads   int
	}{
		{"newest of the same patterns", pointer(entry('2', 'e', 3*time.Hour, pats), entry('1', 'd', 2*time.Hour, pats), entry('3', 'f', time.Minute, other)), nil, nil,
			"1 file differs from the build of ddddddd (2 hours ago)", 2},
		{"else the newest of any", pointer(entry('3', 'f', time.Minute, other)), nil, nil,
			"the patterns changed from the build of fffffff (1 minute ago)", 2},
		{"never this code hash", pointer(entry('c', 'a', time.Minute, pats), entry('2', 'e', 50*time.Hour, pats)), nil, nil,
			"2 files differ from the build of eeeeeee (2 days ago)", 2},
		{"only this code hash", pointer(entry('c', 'a', time.Minute, pats)), nil, nil, "", 1},
		{"no pointer: nothing in the cache yet", nil, nil, nil, NothingCached, 1},
		{"pointer unreadable", pointer(entry('1', 'd', time.Hour, pats)), nil, errors.New("access denied"), "", 1},
		{"pointer not JSON", []byte("\x1b[2J"), nil, nil, "", 1},
		{"pointer of another format", []byte(`{"format":"s3-asset-manager/latest/v2","entries":[]}`), nil, nil, "", 1},
		{"malformed entries skipped", []byte(`{"format":"s3-asset-manager/latest/v1","entries":[{"codeHash":"../../x","commit":"` + commitOf('d') + `","created":"2026-11-29T11:00:00Z"},{"codeHash":"` + hashOf('1') + `","commit":"zz","created":"2026-11-29T11:00:00Z"}]}`), nil, nil, "", 1},
		{"list missing", pointer(entry('9', 'd', time.Hour, pats)), nil, nil, "", 2},
		{"list of another code hash", pointer(entry('8', 'd', time.Hour, pats)),
			map[string][]byte{"cache/" + hashOf('8') + "/" + ListName: lists["cache/"+hashOf('1')+"/"+ListName]}, nil, "", 2},
		{"list damaged", pointer(entry('8', 'd', time.Hour, pats)),
			map[string][]byte{"cache/" + hashOf('8') + "/" + ListName: []byte("not gzip")}, nil, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newFake()
			st.readErr = tc.failGet
			for k, v := range lists {
				st.put(k, v, nil, "application/gzip")
			}
			for k, v := range tc.extra {
				st.put(k, v, nil, "application/gzip")
			}
			if tc.pointer != nil {
				st.put("cache/"+LatestName, tc.pointer, nil, "application/json")
			}
			r := &Runner{Config: &config.Config{}, Store: st, Log: log.New(io.Discard, "", 0)}
			e := r.explainMiss(context.Background(), "", cur, nil, nil)
			got := e.Sentence(now)
			if tc.want == "" {
				if e.CodeHash != "" || !strings.HasPrefix(got, NoEarlierBuild+" (") {
					t.Errorf("got %q, want no earlier build", got)
				}
			} else if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if len(st.reads) != tc.reads {
				t.Errorf("%d reads, want %d: %q", len(st.reads), tc.reads, st.reads)
			}
		})
	}
}

// A component's pointer is its own; the key prefix applies.
func TestLatestKey(t *testing.T) {
	r := &Runner{Config: &config.Config{KeyPrefix: "team/"}}
	if got := r.latestKey(""); got != "team/cache/"+LatestName {
		t.Errorf("filter pointer %q", got)
	}
	if got := r.latestKey("fn1"); got != "team/cache/"+LatestDir+"fn1.json" {
		t.Errorf("component pointer %q", got)
	}
}

// The pointer keeps the newest builds, each once, newest first; a damaged
// one is replaced.
func TestNoteLatest(t *testing.T) {
	st := newFake()
	st.put("cache/"+LatestName, []byte("garbage"), nil, "application/json")
	r := &Runner{Config: &config.Config{}, Store: st, Log: log.New(io.Discard, "", 0)}
	base := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	for i := range maxLatest + 4 {
		r.noteLatest(context.Background(), "", LatestEntry{CodeHash: hashOf("0123456789abcdefghijklmnop"[i]), Commit: commitOf('d'), Created: base.Add(time.Duration(i) * time.Minute)})
	}
	// The same build again moves to the front instead of appearing twice.
	r.noteLatest(context.Background(), "", LatestEntry{CodeHash: hashOf('5'), Commit: commitOf('d'), Created: base.Add(time.Hour)})
	o, _ := st.get("cache/" + LatestName)
	l, ok := decodeLatest(o.body)
	if !ok || len(l.Entries) != maxLatest {
		t.Fatalf("pointer: %v %+v", ok, l)
	}
	if l.Entries[0].CodeHash != hashOf('5') || l.Entries[1].CodeHash != hashOf('j') {
		t.Errorf("order: %s, %s", l.Entries[0].CodeHash[:1], l.Entries[1].CodeHash[:1])
	}
	seen := map[string]bool{}
	for _, e := range l.Entries {
		if seen[e.CodeHash] {
			t.Errorf("%s twice", e.CodeHash[:1])
		}
		seen[e.CodeHash] = true
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		10 * time.Second: "just now", time.Minute: "1 minute ago", 59 * time.Minute: "59 minutes ago",
		time.Hour: "1 hour ago", 47 * time.Hour: "47 hours ago", 48 * time.Hour: "2 days ago", -time.Hour: "just now",
	} {
		if got := ago(now.Add(-d), now); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}

// A component's reason: the headline, the build, then the files if any.
func TestShortSentence(t *testing.T) {
	pats := []string{"**"}
	cur := fileList(hashOf('c'), pats, "a", "b")
	for _, tc := range []struct {
		name string
		old  *codehash.List
		want string
	}{
		{"files", fileList(hashOf('1'), pats, "a"), "1 file differs from ddddddd: added b"},
		{"salt", &codehash.List{CodeHash: hashOf('1'), SaltDigest: codehash.SaltDigest("x"), Patterns: pats, Files: cur.Files}, "the salt changed from ddddddd"},
		{"patterns and files", fileList(hashOf('1'), []string{"a"}, "a"), "the patterns changed and 1 file differs from ddddddd: added b"},
	} {
		e := explain(commitOf('d'), hashOf('1'), time.Time{}, tc.old, cur, explainLines)
		if got := e.ShortSentence(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := (Explanation{Headline: NoEarlierBuild}).ShortSentence(); got != NoEarlierBuild {
		t.Errorf("none: %q", got)
	}
}

// Check keeps the file list of a miss uncompressed (it is on check's path);
// upload stores it Huffman-coded, as codehash.Encode writes it, and a list
// damaged in the package directory is not stored at all. Compressed in
// TMPDIR, and beside the kept list (hidden, never uploaded) only without
// one; one left there by a killed upload is removed by check and upload.
func TestListKeptStoredSentCompressed(t *testing.T) {
	want, err := fakeRepo{commitA, hashX}.CodeHash(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	compressed, err := want.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name              string
		damaged, noTmpDir bool
	}{{"kept", false, false}, {"damaged", true, false}, {"no temporary directory", false, true}} {
		damaged := tt.damaged
		t.Run(tt.name, func(t *testing.T) {
			if tt.noTmpDir {
				t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
			}
			f := newFake()
			r, logs := newRunner(t, f, theKey, true, false)
			// One left by an upload that was killed: removed by check.
			leftover := filepath.Join(r.Config.PackageDir, ".s3-asset-manager-files-1234.gz")
			os.MkdirAll(r.Config.PackageDir, 0o755)
			if err := os.WriteFile(leftover, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if res, err := r.Check(context.Background()); err != nil || res.Found {
				t.Fatalf("check: %+v, %v\n%s", res, err, logs)
			}
			if _, err := os.Lstat(leftover); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("check left an earlier upload's compressed list: %v", err)
			}
			os.WriteFile(leftover, []byte("x"), 0o644) // and by upload
			// Compressed in TMPDIR, and in the package directory only
			// without one: never there while the upload runs otherwise.
			var sent string
			f.onUpload = func(req s3store.UploadRequest) {
				if strings.HasSuffix(req.Key, "/"+ListName) {
					sent = req.Path
				}
			}
			path := filepath.Join(r.Config.PackageDir, CodeHashListFile)
			kept, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(kept, []byte(codehash.ListFormat+"\ncode-hash "+hashX+"\n")) {
				t.Errorf("the kept list is compressed (%d bytes)", len(kept))
			}
			if damaged {
				kept[len(kept)-6] ^= 0x40 // the gzip stream's checksum
				os.WriteFile(path, kept, 0o644)
			}
			for n, b := range built {
				os.WriteFile(filepath.Join(r.Config.PackageDir, n), []byte(b), 0o644)
			}
			if _, err := r.Upload(context.Background()); err != nil {
				t.Fatalf("upload: %v\n%s", err, logs)
			}
			o, ok := f.get("cache/" + hashX + "/" + ListName)
			switch {
			case damaged && ok:
				t.Errorf("a damaged list was stored\n%s", logs)
			case !damaged && !bytes.Equal(o.body, compressed):
				t.Errorf("stored list: %d bytes, want Encode's %d\n%s", len(o.body), len(compressed), logs)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("upload removed the kept list: %v", err)
			}
			if inPkg := filepath.Dir(sent) == filepath.Clean(r.Config.PackageDir); !damaged && inPkg != tt.noTmpDir {
				t.Errorf("the list was compressed into %s (in the package directory: %t, want %t)", sent, inPkg, tt.noTmpDir)
			}
			left, _ := filepath.Glob(filepath.Join(r.Config.PackageDir, ".*files-*"))
			if len(left) > 0 {
				t.Errorf("temporary files left in the package directory: %q", left)
			}
			for _, k := range f.keys() {
				if strings.Contains(k, "files-") {
					t.Errorf("a temporary file was uploaded: %s", k)
				}
			}
		})
	}
}

// A whole commit's miss reads its pointer before its cache lookup answers
// (from the hash on), not after it: the fake store holds the cache lookup
// until the pointer's read has started (before, the pointer was read only
// once the lookup had missed, and this failed). A hit may read the pointer
// but never the earlier build's file list, and the whole check reads each
// object at most once.
func TestWholePointerReadBeforeCacheLookup(t *testing.T) {
	for _, hit := range []bool{false, true} {
		name := "miss"
		if hit {
			name = "hit"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			prev := fileList(hashY, []string{"**"}, "a", "b")
			b, err := prev.EncodeBytes()
			if err != nil {
				t.Fatal(err)
			}
			prevList := "cache/" + hashY + "/" + ListName
			f.put(prevList, b, nil, "application/gzip")
			ptr, _ := json.Marshal(Latest{Format: LatestFormat, Entries: []LatestEntry{{
				CodeHash: hashY, Commit: commitB, Created: time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC), Filter: FilterID([]string{"**"}),
			}}})
			f.put("cache/"+LatestName, ptr, nil, "application/json")
			if hit {
				f.seed("cache/"+hashX+"/", cacheOf(hashX, commitB), build, nil, nil)
			}
			started := make(chan struct{})
			var once sync.Once
			hold := func() {
				select {
				case <-started:
				case <-time.After(10 * time.Second): // a failure, not a wait: the read never comes
					t.Error("the cache was looked up before the pointer's read started: the miss waited for the lookup")
				}
			}
			f.onRead = func(key string) {
				switch {
				case key == "cache/"+LatestName:
					once.Do(func() { close(started) })
				case strings.HasPrefix(key, "cache/"+hashX+"/"):
					hold()
				}
			}
			f.beforeList = func(prefix string) {
				if strings.HasPrefix(prefix, "cache/"+hashX+"/") {
					hold()
				}
			}
			r, logs := newRunner(t, f, "", true, false)
			res, err := r.Check(context.Background())
			if err != nil {
				t.Fatalf("check: %v\n%s", err, logs)
			}
			if res.Found != hit || res.CacheHit != hit {
				t.Fatalf("found %v, hit %v; want %v\n%s", res.Found, res.CacheHit, hit, logs)
			}
			if !hit && (res.Miss == nil || res.Miss.Against != commitB) {
				t.Errorf("miss explained as %+v, want against %s\n%s", res.Miss, commitB, logs)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			seen := map[string]int{}
			for _, k := range f.reads {
				seen[k]++
				if seen[k] > 1 {
					t.Errorf("%s read twice", k)
				}
			}
			if hit && seen[prevList] != 0 {
				t.Errorf("a hit read the earlier build's file list")
			}
			if !hit && seen[prevList] != 1 {
				t.Errorf("the miss read the earlier build's file list %d times, want 1", seen[prevList])
			}
		})
	}
}
