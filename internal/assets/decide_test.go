package assets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

const (
	commitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	commitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	hashX   = "1111111111111111111111111111111111111111111111111111111111111111"
	hashY   = "2222222222222222222222222222222222222222222222222222222222222222"
	theKey  = "the-signing-key-0123456789"
)

var (
	build = map[string]string{"fn1.zip": "one", "fn2.zip": "two"}
	// built is what the pipeline builds in the tests that upload.
	built = map[string]string{"fn1.zip": "ONE", "fn2.zip": "TWO"}
)

func artifactsOf(commit, codeHash string) manifest.Record {
	return manifest.Record{Kind: manifest.KindArtifacts, Commit: commit, CodeHash: codeHash}
}

func cacheOf(codeHash, commit string) manifest.Record {
	return manifest.Record{Kind: manifest.KindCache, Commit: commit, CodeHash: codeHash}
}

// keyIf is theKey for a signed case, else no key.
func keyIf(signed bool) string {
	if signed {
		return theKey
	}
	return ""
}

// newRunner is a Runner over the fake store for commitA with code hash hashX.
func newRunner(t *testing.T, f *fakeStore, key string, cache, legacy bool) (*Runner, *bytes.Buffer) {
	t.Helper()
	cfg := &config.Config{PackageDir: t.TempDir(), RepoPath: "repo", Concurrency: 4, AcceptLegacy: legacy}
	if key != "" {
		cfg.SigningKey = []byte(key)
	}
	if cache {
		pats, err := codehash.ParsePatterns("src/**")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Filter = pats
	}
	var logs bytes.Buffer
	r := &Runner{
		Config: cfg, Store: f, Log: log.New(&logs, "", 0), Tool: "test",
		OpenRepo: func(string) (Repo, error) { return fakeRepo{commitA, hashX}, nil },
	}
	return r, &logs
}

// The lookup's verdict on each shape a set can be in.
// A listing that fails is an error, whatever it says: only the record's
// read tells what is stored. (A proxy answering a LIST with NoSuchKey used to
// leave an empty listing, and a complete set looked deleted.)
func TestLookupSetListFailure(t *testing.T) {
	f := newFake()
	f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, nil, nil)
	f.listErr = errors.Join(errors.New("list"), s3store.ErrNotFound)
	r, _ := newRunner(t, f, "", false, false)
	if set, err := r.LookupSet(context.Background(), Artifacts(commitA)); !errors.Is(err, s3store.ErrNotFound) {
		t.Fatalf("LookupSet = %v, %v; want the listing's error", set.State, err)
	}
}

func TestLookupSet(t *testing.T) {
	key := []byte(theKey)
	tests := []struct {
		name   string
		ref    SetRef
		signed bool // the runner has the key
		seed   func(f *fakeStore)
		want   SetState
		reason string // the reason names this
	}{
		{"nothing", Artifacts(commitA), false, func(f *fakeStore) {}, SetMissing, "nothing under"},
		{"complete", Artifacts(commitA), false, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, nil, nil)
		}, SetComplete, "2 files"},
		{"complete, signed", Artifacts(commitA), true, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, key, nil)
		}, SetComplete, "2 files"},
		{"extra object not in the record", Artifacts(commitA), false, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, nil, nil)
			f.put("artifacts/"+commitA+"/extra.zip", []byte("x"), nil, "")
			f.put("artifacts/"+commitA+"/component/fn1.zip", []byte("another set"), nil, "")
		}, SetComplete, "2 files"},
		{"unrecorded", Artifacts(commitA), false, func(f *fakeStore) {
			f.put("artifacts/"+commitA+"/fn1.zip", []byte("half"), nil, "")
		}, SetUnrecorded, "no completion record"},
		// Item 1: a record counts only where it belongs.
		{"another commit's signed record", Artifacts(commitB), true, func(f *fakeStore) {
			f.seed("artifacts/"+commitB+"/", artifactsOf(commitA, ""), build, key, nil)
		}, SetUntrusted, "belongs to artifacts " + commitA},
		{"cache record under artifacts/", Artifacts(commitA), false, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", cacheOf(commitA, commitA), build, nil, nil)
		}, SetUntrusted, "belongs to cache"},
		{"another code hash's cache record", Cache(hashY), false, func(f *fakeStore) {
			f.seed("cache/"+hashY+"/", cacheOf(hashX, commitA), build, nil, nil)
		}, SetUntrusted, "belongs to cache " + hashX},
		{"artifacts record under cache/", Cache(commitA), false, func(f *fakeStore) {
			f.seed("cache/"+commitA+"/", artifactsOf(commitA, ""), build, nil, nil)
		}, SetUntrusted, "belongs to artifacts"},
		// Item 2: the objects must be the recorded ones.
		{"object replaced, signed", Artifacts(commitA), true, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, key, nil)
			f.put("artifacts/"+commitA+"/fn1.zip", []byte("EVIL"), nil, "")
		}, SetDiffers, "fn1.zip was replaced"},
		{"object replaced, same size", Artifacts(commitA), false, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, nil, nil)
			f.put("artifacts/"+commitA+"/fn2.zip", []byte("TWO"), nil, "")
		}, SetDiffers, "fn2.zip was replaced (ETag"},
		{"object deleted", Cache(hashX), false, func(f *fakeStore) {
			f.seed("cache/"+hashX+"/", cacheOf(hashX, commitA), build, nil, nil)
			f.del("cache/" + hashX + "/fn2.zip")
		}, SetDiffers, "fn2.zip was deleted"},
		{"record without ETags: sizes compared", Artifacts(commitA), false, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, nil, func(r *manifest.Record) {
				for i := range r.Files {
					r.Files[i].ETag = ""
				}
			})
			f.put("artifacts/"+commitA+"/fn1.zip", []byte("longer"), nil, "")
		}, SetDiffers, "fn1.zip was replaced (6 bytes, recorded 3)"},
		// Item 3: untrusted records.
		{"unsigned, key set", Artifacts(commitA), true, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, nil, nil)
		}, SetUntrusted, "not signed"},
		{"signed with another key", Artifacts(commitA), true, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, []byte("another-key-0123456789"), nil)
		}, SetUntrusted, "another key"},
		{"garbage", Artifacts(commitA), false, func(f *fakeStore) {
			f.put("artifacts/"+commitA+"/"+manifest.Name, []byte("\x00 not json"), nil, "")
		}, SetUntrusted, "invalid completion record"},
		{"foreign", Artifacts(commitA), false, func(f *fakeStore) {
			f.put("artifacts/"+commitA+"/"+manifest.Name, []byte(`{"format":"other-tool/v9","files":[]}`), nil, "")
		}, SetUntrusted, "other-tool/v9"},
		{"oversized record", Artifacts(commitA), false, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, nil, nil)
			f.put("artifacts/"+commitA+"/"+manifest.Name, make([]byte, manifest.MaxSize+1), nil, "")
		}, SetUntrusted, "too large"},
		// Item 10: records of a later version.
		{"newer format", Artifacts(commitA), false, func(f *fakeStore) {
			f.put("artifacts/"+commitA+"/"+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
		}, SetNewer, "completion/v2"},
		// With a key, a record this version cannot verify is not trusted:
		// else an unsigned "newer" record wedges the commit.
		{"newer format, key set", Artifacts(commitA), true, func(f *fakeStore) {
			f.put("artifacts/"+commitA+"/"+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
		}, SetUntrusted, "cannot verify"},
		{"unknown field, key set", Artifacts(commitA), true, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, key, nil)
			o, _ := f.get("artifacts/" + commitA + "/" + manifest.Name)
			f.put("artifacts/"+commitA+"/"+manifest.Name, bytes.Replace(o.body, []byte(`"kind"`), []byte(`"variant": "arm64", "kind"`), 1), nil, "")
		}, SetUntrusted, "cannot verify"},
		// A hostile ETag in the record: refused, and its line break never
		// reaches the reason (a log line the Actions runner would obey).
		{"line break in a recorded etag", Artifacts(commitA), false, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, nil, nil)
			rewriteRecord(f, "artifacts/"+commitA+"/", `"etag": "`, `"etag": "\"x\"\n::error::forged`)
		}, SetUntrusted, "is not an ETag"},
		{"line break in a recorded content type", Cache(hashX), false, func(f *fakeStore) {
			f.seed("cache/"+hashX+"/", cacheOf(hashX, commitA), build, nil, nil)
			rewriteRecord(f, "cache/"+hashX+"/", `"name": "fn1.zip",`, `"name": "fn1.zip", "contentType": "application/zip\r\nX-Evil: 1",`)
		}, SetUntrusted, "contentType"},
		{"unknown field", Artifacts(commitA), false, func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", artifactsOf(commitA, ""), build, nil, nil)
			o, _ := f.get("artifacts/" + commitA + "/" + manifest.Name)
			f.put("artifacts/"+commitA+"/"+manifest.Name, bytes.Replace(o.body, []byte(`"kind"`), []byte(`"variant": "arm64", "kind"`), 1), nil, "")
		}, SetNewer, `"variant"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.seed(f)
			r, _ := newRunner(t, f, keyIf(tt.signed), false, false)
			set, err := r.LookupSet(context.Background(), tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if set.State != tt.want || !strings.Contains(set.Reason, tt.reason) {
				t.Errorf("state %v (%s), want %v naming %q", set.State, set.Reason, tt.want, tt.reason)
			}
			if strings.ContainsAny(set.Reason, "\r\n") {
				t.Errorf("reason is more than one line: %q", set.Reason)
			}
			if (set.State == SetComplete || set.State == SetDiffers) && set.Record == nil {
				t.Error("no record with a complete or differing set")
			}
		})
	}
}

// rewriteRecord edits the stored record's JSON, once: a record no writer of
// this version would make.
func rewriteRecord(f *fakeStore, prefix, old, new string) {
	o, _ := f.get(prefix + manifest.Name)
	f.put(prefix+manifest.Name, bytes.Replace(o.body, []byte(old), []byte(new), 1), nil, "application/json")
}

// Check, over every state the commit's set and the cache entry can be in.
func TestCheckDecisions(t *testing.T) {
	key := []byte(theKey)
	art, cch := "artifacts/"+commitA+"/", "cache/"+hashX+"/"
	goodCache := func(f *fakeStore) { f.seed(cch, cacheOf(hashX, commitB), build, key, nil) }
	tests := []struct {
		name          string
		key           string
		legacy        bool
		seed          func(f *fakeStore)
		found, hit    bool
		recordSignedA bool // afterwards the commit has a complete record signed with the key
	}{
		{"complete", theKey, false, func(f *fakeStore) { f.seed(art, artifactsOf(commitA, ""), build, key, nil) }, true, false, true},
		{"nothing, no cache entry", theKey, false, func(f *fakeStore) {}, false, false, false},
		{"nothing, cache hit", theKey, false, goodCache, true, true, true},
		{"unrecorded", "", false, func(f *fakeStore) { f.put(art+"fn1.zip", []byte("x"), nil, "") }, false, false, false},
		{"unrecorded, legacy accepted", "", true, func(f *fakeStore) { f.put(art+"fn1.zip", []byte("x"), nil, "") }, true, false, false},
		// Item 1.
		{"another commit's record copied here", theKey, false, func(f *fakeStore) { f.seed(art, artifactsOf(commitB, ""), build, key, nil) }, false, false, false},
		{"a cache record copied under artifacts/", theKey, false, func(f *fakeStore) { f.seed(art, cacheOf(hashX, commitA), build, key, nil) }, false, false, false},
		{"another code hash's entry under this one", theKey, false, func(f *fakeStore) { f.seed(cch, cacheOf(hashY, commitB), build, key, nil) }, false, false, false},
		// Item 2.
		{"signed set, object replaced", theKey, false, func(f *fakeStore) {
			f.seed(art, artifactsOf(commitA, ""), build, key, nil)
			f.put(art+"fn1.zip", []byte("EVIL"), nil, "")
		}, false, false, false},
		{"unsigned set, object deleted", "", false, func(f *fakeStore) {
			f.seed(art, artifactsOf(commitA, ""), build, nil, nil)
			f.del(art + "fn2.zip")
		}, false, false, false},
		{"signed set, object replaced, cache hit repairs it", theKey, false, func(f *fakeStore) {
			f.seed(art, artifactsOf(commitA, ""), build, key, nil)
			f.put(art+"fn1.zip", []byte("EVIL"), nil, "")
			goodCache(f)
		}, true, true, true},
		// Item 3: an untrusted record is replaced by a cache hit, exit 0.
		{"unsigned record, cache hit", theKey, false, func(f *fakeStore) {
			f.seed(art, artifactsOf(commitA, ""), map[string]string{"fn1.zip": "unsigned build"}, nil, nil)
			goodCache(f)
		}, true, true, true},
		{"edited record, cache hit", theKey, false, func(f *fakeStore) {
			f.seed(art, artifactsOf(commitA, ""), build, key, nil)
			o, _ := f.get(art + manifest.Name)
			f.put(art+manifest.Name, bytes.Replace(o.body, []byte(`"size": 3`), []byte(`"size": 4`), 1), nil, "")
			goodCache(f)
		}, true, true, true},
		{"garbage record, cache hit", theKey, false, func(f *fakeStore) {
			f.put(art+manifest.Name, []byte("garbage"), nil, "")
			goodCache(f)
		}, true, true, true},
		{"garbage record, no cache entry", theKey, false, func(f *fakeStore) { f.put(art+manifest.Name, []byte("garbage"), nil, "") }, false, false, false},
		{"unsigned cache entry", theKey, false, func(f *fakeStore) { f.seed(cch, cacheOf(hashX, commitB), build, nil, nil) }, false, false, false},
		{"garbage cache record", theKey, false, func(f *fakeStore) { f.put(cch+manifest.Name, []byte("garbage"), nil, "") }, false, false, false},
		// Item 4 (the check half): a broken cache entry is a miss.
		{"cache object replaced", theKey, false, func(f *fakeStore) {
			goodCache(f)
			f.put(cch+"fn2.zip", []byte("EVIL"), nil, "")
		}, false, false, false},
		// Item 10: a later version's set is a miss, and no cache hit is copied over it.
		// Without a signing key, that is.
		{"newer record", "", false, func(f *fakeStore) {
			f.put(art+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
			goodCache(f)
		}, false, false, false},
		{"newer cache record", "", false, func(f *fakeStore) {
			f.put(cch+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v3"}`), nil, "")
		}, false, false, false},
		// With one, a record this version cannot verify is untrusted: the
		// cache hit replaces it, or the commit would be wedged.
		{"newer record, key set", theKey, false, func(f *fakeStore) {
			f.put(art+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
			goodCache(f)
		}, true, true, true},
		{"newer cache record, key set", theKey, false, func(f *fakeStore) {
			f.put(cch+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v3"}`), nil, "")
		}, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.seed(f)
			before, _ := f.get(art + manifest.Name)
			r, logs := newRunner(t, f, tt.key, true, tt.legacy)
			res, err := r.Check(context.Background())
			if err != nil {
				t.Fatalf("check failed: %v\n%s", err, logs)
			}
			if res.Found != tt.found || res.CacheHit != tt.hit {
				t.Fatalf("found %v, cache hit %v; want %v, %v\n%s", res.Found, res.CacheHit, tt.found, tt.hit, logs)
			}
			if _, err := os.Stat(filepath.Join(r.Config.PackageDir, FoundFile)); (err == nil) != tt.found {
				t.Errorf(".found exists: %v, want %v", err == nil, tt.found)
			}
			after, _ := f.get(art + manifest.Name)
			if tt.recordSignedA {
				if rec := f.record(art, key); rec == nil || rec.Commit != commitA {
					t.Errorf("the commit has no valid signed record afterwards\n%s", logs)
				}
			} else if !bytes.Equal(before.body, after.body) {
				t.Errorf("check changed the commit's record without a cache hit\n%s", logs)
			}
			set, err := r.LookupSet(context.Background(), Artifacts(commitA))
			if err != nil {
				t.Fatal(err)
			}
			if tt.hit && set.State != SetComplete {
				t.Errorf("after the cache hit the set is %v: %s", set.State, set.Reason)
			}
		})
	}
}

// Upload, over every state the commit's set and the cache entry can be in.
func TestUploadDecisions(t *testing.T) {
	key := []byte(theKey)
	art, cch := "artifacts/"+commitA+"/", "cache/"+hashX+"/"
	tests := []struct {
		name     string
		key      string
		seed     func(f *fakeStore)
		skipped  string
		uploaded bool // the stored files are the ones built
		filled   bool // the cache entry is the commit's set afterwards
	}{
		{"nothing", theKey, func(f *fakeStore) {}, "", true, true},
		{"complete", theKey, func(f *fakeStore) { f.seed(art, artifactsOf(commitA, hashX), build, key, nil) }, SkippedComplete, false, true},
		{"unrecorded", theKey, func(f *fakeStore) { f.put(art+"fn1.zip", []byte("half"), nil, "") }, "", true, true},
		// Item 3: untrusted records are replaced, exit 0.
		{"unsigned record", theKey, func(f *fakeStore) { f.seed(art, artifactsOf(commitA, hashX), build, nil, nil) }, "", true, true},
		{"garbage record", theKey, func(f *fakeStore) { f.put(art+manifest.Name, []byte("garbage"), nil, "") }, "", true, true},
		{"another commit's record", theKey, func(f *fakeStore) { f.seed(art, artifactsOf(commitB, ""), build, key, nil) }, "", true, true},
		{"garbage cache record", theKey, func(f *fakeStore) { f.put(cch+manifest.Name, []byte("garbage"), nil, "") }, "", true, true},
		{"unsigned cache entry", theKey, func(f *fakeStore) { f.seed(cch, cacheOf(hashX, commitB), build, nil, nil) }, "", true, true},
		// Item 2: a set whose objects were replaced is uploaded again.
		{"object replaced", theKey, func(f *fakeStore) {
			f.seed(art, artifactsOf(commitA, hashX), build, key, nil)
			f.put(art+"fn1.zip", []byte("EVIL"), nil, "")
		}, "", true, true},
		// Item 4: a broken cache entry is rewritten by the upload after the miss.
		{"cache object replaced", theKey, func(f *fakeStore) {
			f.seed(cch, cacheOf(hashX, commitB), build, key, nil)
			f.put(cch+"fn2.zip", []byte("EVIL"), nil, "")
		}, "", true, true},
		{"cache object deleted", "", func(f *fakeStore) {
			f.seed(cch, cacheOf(hashX, commitB), build, nil, nil)
			f.del(cch + "fn1.zip")
		}, "", true, true},
		{"complete cache entry of another commit", theKey, func(f *fakeStore) { f.seed(cch, cacheOf(hashX, commitB), build, key, nil) }, "", true, false},
		// Item 10: a later version's set is left alone.
		// Without a signing key, that is.
		{"newer record", "", func(f *fakeStore) {
			f.put(art+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
		}, SkippedNewer, false, false},
		{"newer cache record", "", func(f *fakeStore) {
			f.put(cch+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
		}, "", true, false},
		// With one, such a record (unverifiable) is replaced like an unsigned one.
		{"newer record, key set", theKey, func(f *fakeStore) {
			f.put(art+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
		}, "", true, true},
		{"newer cache record, key set", theKey, func(f *fakeStore) {
			f.put(cch+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
		}, "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.seed(f)
			r, logs := newRunner(t, f, tt.key, true, false)
			writePackage(t, r.Config.PackageDir, commitA, hashX, built)
			res, err := r.Upload(context.Background())
			if err != nil {
				t.Fatalf("upload failed: %v\n%s", err, logs)
			}
			if res.Skipped != tt.skipped {
				t.Errorf("skipped %q, want %q\n%s", res.Skipped, tt.skipped, logs)
			}
			o, _ := f.get(art + "fn1.zip")
			if got := string(o.body) == built["fn1.zip"]; got != tt.uploaded {
				t.Errorf("uploaded: %v, want %v\n%s", got, tt.uploaded, logs)
			}
			if tt.skipped == SkippedNewer {
				return
			}
			set, err := r.LookupSet(context.Background(), Artifacts(commitA))
			if err != nil || set.State != SetComplete {
				t.Fatalf("after upload the set is %v (%s), %v\n%s", set.State, set.Reason, err, logs)
			}
			entry, err := r.LookupSet(context.Background(), Cache(hashX))
			if err != nil {
				t.Fatal(err)
			}
			filled := entry.State == SetComplete && entry.Record.Commit == commitA
			if filled != tt.filled {
				t.Errorf("cache entry filled from the commit: %v, want %v (%v: %s)\n%s", filled, tt.filled, entry.State, entry.Reason, logs)
			}
			if !tt.filled && entry.State == SetComplete && entry.Record.Commit != commitB {
				t.Errorf("a complete entry was replaced\n%s", logs)
			}
		})
	}
}

// Another writer's record gets there first (a concurrent upload of the same
// commit): its record stays when it describes what is stored, and is
// rewritten, file by file, to what is stored when the two stored different
// builds; an object neither wrote is never recorded.
func TestConcurrentRecordWrite(t *testing.T) {
	art := "artifacts/" + commitA + "/"
	key := []byte(theKey)
	tests := []struct {
		name string
		// other is what the other writer stored before its record; theirs
		// what its record lists.
		other, theirs map[string]string
		third         map[string]string // objects a third writer puts after both
		rewrites      int               // record writes after the other's
		want          map[string]string // what the final record describes
		complete      bool
	}{
		{"same build", built, built, nil, 0, built, true},
		{"other build, all of ours stored last", map[string]string{}, build, nil, 1, built, true},
		{"other build, mixed", map[string]string{"fn2.zip": "two"}, build, nil, 1, map[string]string{"fn1.zip": "ONE", "fn2.zip": "two"}, true},
		{"third writer", map[string]string{}, build, map[string]string{"fn1.zip": "EVIL"}, 1, map[string]string{"fn1.zip": "one", "fn2.zip": "TWO"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.beforeRecord = func(f *fakeStore, _ string) {
				// The other writer's objects and record land first (as the
				// test proxy arranges on the real servers).
				f.seed("tmp/", artifactsOf(commitA, ""), tt.theirs, key, nil)
				body, _ := f.get("tmp/" + manifest.Name)
				for n, b := range tt.other {
					f.put(art+n, []byte(b), nil, "")
				}
				for n, b := range tt.third {
					f.put(art+n, []byte(b), nil, "")
				}
				f.put(art+manifest.Name, body.body, nil, "")
			}
			r, logs := newRunner(t, f, theKey, false, false)
			writePackage(t, r.Config.PackageDir, commitA, "", built)
			if _, err := r.Upload(context.Background()); err != nil {
				t.Fatalf("upload: %v\n%s", err, logs)
			}
			if got := f.writes[art+manifest.Name]; got != tt.rewrites {
				t.Errorf("%d record writes after the other's, want %d\n%s", got, tt.rewrites, logs)
			}
			rec := f.record(art, key)
			if rec == nil {
				t.Fatalf("no valid record\n%s", logs)
			}
			for _, file := range rec.Files {
				if want := sha(tt.want[file.Name]); file.SHA256 != want {
					t.Errorf("%s recorded as %s, want the build stored (%s)", file.Name, file.SHA256, want)
				}
			}
			set, err := r.LookupSet(context.Background(), Artifacts(commitA))
			if err != nil || (set.State == SetComplete) != tt.complete {
				t.Errorf("set %v (%s), %v; want complete %v", set.State, set.Reason, err, tt.complete)
			}
		})
	}
}

// An artifact replaced between upload's lookup and the cache fill's copy
// (a hostile writer, racing) leaves the cache unfilled, with exit 0.
func TestFillCacheSourceChanged(t *testing.T) {
	f := newFake()
	art := "artifacts/" + commitA + "/"
	f.seed(art, artifactsOf(commitA, hashX), build, nil, nil)
	f.beforeCopy = func(f *fakeStore, r s3store.CopyRequest) {
		if r.Src == art+"fn1.zip" {
			f.put(r.Src, []byte("EVIL"), nil, "")
		}
	}
	r, logs := newRunner(t, f, "", true, false)
	writePackage(t, r.Config.PackageDir, commitA, hashX, built)
	res, err := r.Upload(context.Background())
	if err != nil || res.Skipped != SkippedComplete {
		t.Fatalf("upload: %+v, %v\n%s", res, err, logs)
	}
	if entry, err := r.LookupSet(context.Background(), Cache(hashX)); err != nil || entry.State == SetComplete {
		t.Errorf("cache entry %v, %v: filled from a changed artifact", entry.State, err)
	}
}

// A whole set's upload fills its cache entry before it writes the set's
// record: killed at any point (kill -9), a set complete under the commit has
// its entry. Killed between the two, the re-run's check found the set and
// its upload skipped it, so the entry was never filled and the next commit
// rebuilt the set unchanged.
func TestUploadFillsCacheBeforeRecord(t *testing.T) {
	f := newFake()
	r, logs := newRunner(t, f, "", true, false)
	var written bool
	f.onWriteRecord = func(key string) {
		if key == "artifacts/"+commitA+"/"+manifest.Name {
			written = true
			if f.record("cache/"+hashX+"/", nil) == nil {
				t.Errorf("the set's record is written before its cache entry: killed now, the set is complete and not cached\n%s", logs)
			}
		}
	}
	writePackage(t, r.Config.PackageDir, commitA, hashX, built)
	if _, err := r.Upload(context.Background()); err != nil || !written {
		t.Fatalf("upload: record written %t, %v\n%s", written, err, logs)
	}
}

// A whole set's upload cancelled (SIGINT, SIGTERM: exit 130) after every
// file is sent, while its cache entry is filled, still fills it and writes
// the set's record, within the grace a component gets: the bytes sent are
// not wasted, and the re-run's check finds the set, cached.
func TestUploadCancelledFinishesSet(t *testing.T) {
	f := newFake()
	r, logs := newRunner(t, f, "", true, false)
	writePackage(t, r.Config.PackageDir, commitA, hashX, built)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.beforeCopy = func(*fakeStore, s3store.CopyRequest) { cancel() } // the cache fill: every file sent
	if _, err := r.Upload(ctx); err != nil {
		t.Errorf("upload: %v\n%s", err, logs)
	}
	if ctx.Err() == nil {
		t.Fatal("the upload filled no cache entry")
	}
	f.beforeCopy = nil
	set, err := r.LookupSet(context.Background(), Artifacts(commitA))
	if err != nil || set.State != SetComplete {
		t.Errorf("set %v (%s), %v after the cancel: want complete\n%s", set.State, set.Reason, err, logs)
	}
	entry, err := r.LookupSet(context.Background(), Cache(hashX))
	if err != nil || entry.State != SetComplete {
		t.Errorf("cache entry %v (%s), %v after the cancel: want complete\n%s", entry.State, entry.Reason, err, logs)
	}
}

// Item 9: check removes the previous run's markers before anything can
// fail, so an upload after a failed check has no commit to store under.
func TestFailedCheckLeavesNoMarkers(t *testing.T) {
	f := newFake()
	r, _ := newRunner(t, f, "", true, false)
	writePackage(t, r.Config.PackageDir, commitB, hashY, built)
	if err := os.WriteFile(filepath.Join(r.Config.PackageDir, FoundFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.OpenRepo = func(string) (Repo, error) { return nil, errors.New("not a git repository") }
	if _, err := r.Check(context.Background()); err == nil {
		t.Fatal("check succeeded without a repository")
	}
	for _, m := range []string{FoundFile, CommitFile, CodeHashFile} {
		if _, err := os.Stat(filepath.Join(r.Config.PackageDir, m)); err == nil {
			t.Errorf("%s survived the failed check", m)
		}
	}
	_, err := r.Upload(context.Background())
	if f := (*Failure)(nil); !errors.As(err, &f) || f.Kind != KindPackage || !errors.Is(err, ErrNoCommitHash) {
		t.Errorf("upload after the failed check: %v, want ErrNoCommitHash", err)
	}
	if objs, _ := f.List(context.Background(), "artifacts/"+commitB+"/"); len(objs) > 0 {
		t.Error("upload stored the build under the previous run's commit")
	}
}

// Item 7 (markers): with .found, upload still checks the markers it
// publishes as step outputs.
func TestFoundUploadChecksMarkers(t *testing.T) {
	for name, tc := range map[string]struct{ commit, codeHash string }{
		"commit with a newline": {commitA + "\nfound=false", hashX},
		"code hash with ESC":    {commitA, "\x1b[31m" + hashX},
		"not hex":               {strings.Repeat("z", 40), ""},
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := newRunner(t, newFake(), "", true, false)
			writePackage(t, r.Config.PackageDir, tc.commit, tc.codeHash, nil)
			if err := os.WriteFile(filepath.Join(r.Config.PackageDir, FoundFile), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			res, err := r.Upload(context.Background())
			if f := (*Failure)(nil); !errors.As(err, &f) || f.Kind != KindPackage {
				t.Errorf("err = %v, want a package failure", err)
			}
			if res.Commit != "" || res.CodeHash != "" {
				t.Errorf("published %q, %q", res.Commit, res.CodeHash)
			}
		})
	}
	r, _ := newRunner(t, newFake(), "", true, false)
	writePackage(t, r.Config.PackageDir, commitA, hashX, nil)
	os.WriteFile(filepath.Join(r.Config.PackageDir, FoundFile), nil, 0o644)
	if res, err := r.Upload(context.Background()); err != nil || res.Commit != commitA || res.CodeHash != hashX || res.Skipped != SkippedFound {
		t.Errorf("valid markers: %+v, %v", res, err)
	}
}

// writePackage fills a package directory as check and a build leave it.
func writePackage(t *testing.T, dir, commit, codeHash string, files map[string]string) {
	t.Helper()
	all := map[string]string{CommitFile: commit}
	if codeHash != "" {
		all[CodeHashFile] = codeHash
	}
	for n, b := range files {
		all[n] = b
	}
	for n, b := range all {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sha(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }

// One write decision on the lookup's state, for every writer.
func TestWriteDecision(t *testing.T) {
	for state, want := range map[SetState]Write{
		0:             WriteExclusive, // not looked up: never overwrite what may be there
		SetMissing:    WriteExclusive,
		SetUnrecorded: WriteExclusive,
		SetComplete:   WriteSkip,
		SetUntrusted:  WriteReplace,
		SetDiffers:    WriteReplace,
		SetNewer:      WriteLeave,
	} {
		if got := state.Write(); got != want {
			t.Errorf("%v: %d, want %d", state, got, want)
		}
	}
}

// hashRepo is fakeRepo whose code hash fails with err, when set.
type hashRepo struct {
	fakeRepo
	err error
}

func (r hashRepo) CodeHash(ctx context.Context) (*codehash.List, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.fakeRepo.CodeHash(ctx)
}

// The code hash counts only when the commit's lookup missed: a found commit
// leaves no code-hash marker nor log line of a hash, and a hash that would
// fail (a filter selecting nothing) does not fail it; a miss uses the hash
// (and fails with it); a lookup that fails is the check's error whatever the
// hash does. (Whether the hash is computed beside the lookup or after it.)
func TestCheckHashOnlyOnMiss(t *testing.T) {
	art := "artifacts/" + commitA + "/"
	badFilter := fmt.Errorf("CODE_HASH_FIND_FILTER: %w", codehash.ErrNoMatch)
	tests := []struct {
		name     string
		found    bool // the commit's set is complete
		listErr  error
		hashErr  error
		wantKind Kind // 0: the check succeeds
		marker   bool // .code-hash written, with the hash
	}{
		{"found", true, nil, nil, 0, false},
		{"found, the hash would fail", true, nil, badFilter, 0, false},
		{"missed", false, nil, nil, 0, true},
		{"missed, the hash fails", false, nil, badFilter, KindGit, false},
		{"the lookup fails, the hash is fine", false, s3store.ErrAccessDenied, nil, KindS3, false},
		{"the lookup fails, and the hash", false, s3store.ErrAccessDenied, badFilter, KindS3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake()
			if tt.found {
				f.seed(art, artifactsOf(commitA, ""), build, nil, nil)
			}
			f.listErr = tt.listErr
			r, logs := newRunner(t, f, "", true, false)
			r.OpenRepo = func(string) (Repo, error) { return hashRepo{fakeRepo{commitA, hashX}, tt.hashErr}, nil }
			res, err := r.Check(context.Background())
			var fl *Failure
			switch {
			case tt.wantKind == 0 && err != nil:
				t.Fatalf("check: %v\n%s", err, logs)
			case tt.wantKind != 0 && (!errors.As(err, &fl) || fl.Kind != tt.wantKind):
				t.Fatalf("check: %v, want a failure of kind %v\n%s", err, tt.wantKind, logs)
			}
			if tt.wantKind == 0 && res.Found != tt.found {
				t.Errorf("found %v, want %v\n%s", res.Found, tt.found, logs)
			}
			b, rerr := os.ReadFile(filepath.Join(r.Config.PackageDir, CodeHashFile))
			if tt.marker != (rerr == nil) || tt.marker && strings.TrimSpace(string(b)) != hashX {
				t.Errorf(".code-hash: %q, %v; want it written: %v\n%s", b, rerr, tt.marker, logs)
			}
			if hashed := strings.Contains(logs.String(), "code hash "); hashed != tt.marker {
				t.Errorf("a code hash logged: %v, want %v\n%s", hashed, tt.marker, logs)
			}
			if tt.marker != (res.CodeHash == hashX) {
				t.Errorf("code-hash output %q, want it set: %v", res.CodeHash, tt.marker)
			}
		})
	}
}

// More files than a completion record holds: refused before anything is
// sent (a record no reader takes would leave the set a miss for ever).
func TestUploadTooManyFiles(t *testing.T) {
	t.Parallel()
	f := newFake()
	r, logs := newRunner(t, f, "", false, false)
	// Some 60,000 files of names of 50 bytes fill a record (manifest.MaxSize).
	var files []packageFile
	for i := range 70_000 {
		files = append(files, packageFile{path: filepath.Join(r.Config.PackageDir, fmt.Sprintf("%045d.zip", i)), size: 1})
	}
	u := &unit{}
	set, err := r.LookupSet(context.Background(), u.ref(commitA))
	if err != nil {
		t.Fatal(err)
	}
	u.set = set
	_, _, _, err = r.sendUnit(context.Background(), commitA, u, files)
	var fl *Failure
	if !errors.As(err, &fl) || fl.Kind != KindPackage || !errors.Is(err, manifest.ErrTooLarge) {
		t.Fatalf("upload: %v, want %v, of the package directory\n%s", err, manifest.ErrTooLarge, logs)
	}
	if len(f.objs) != 0 {
		t.Errorf("the refused upload stored %d objects", len(f.objs))
	}
}
