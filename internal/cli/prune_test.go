package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/nsmithuk/s3-asset-manager/internal/assets"
	"github.com/nsmithuk/s3-asset-manager/internal/ghaction"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// runAt runs the program in-process as run does, with prune's clock at now.
func runAt(t *testing.T, now time.Time, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx := context.WithValue(context.Background(), clockKey{}, clockwork.NewFakeClockAt(now))
	code := Run(ctx, append([]string{"s3-asset-manager"}, args...), lookup, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// fakeID makes a 40-hex commit id (or a 64-hex code hash) from a name.
func fakeID(name string, n int) string { return sha256hex([]byte(name))[:n] }

// putSet stores a set as a writer would: its files, then (unless rec is
// nil) its record naming them, with the time and source the test picks.
func putSet(t *testing.T, srv *s3test.Server, bucket, prefix string, files map[string]string, rec *manifest.Record, key []byte) {
	t.Helper()
	ctx := context.Background()
	var recorded []manifest.File
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		body := []byte(files[n])
		k := prefix + n
		out, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: &k, Body: bytes.NewReader(body)})
		if err != nil {
			t.Fatal(err)
		}
		recorded = append(recorded, manifest.File{Name: n, Size: int64(len(body)), SHA256: sha256hex(body), ETag: aws.ToString(out.ETag)})
	}
	if rec == nil {
		return
	}
	rec.Format, rec.Files = manifest.Format, recorded
	if rec.Files == nil {
		rec.Files = []manifest.File{}
	}
	body, err := manifest.Encode(*rec, key)
	if err != nil {
		t.Fatal(err)
	}
	putObject(t, srv, bucket, prefix+manifest.Name, body)
}

// pruneBucket is a bucket with one set of every kind prune judges, its
// times relative to now. want lists the prefixes the first prune deletes.
type pruneBucket struct {
	bucket, prefix string
	now            time.Time
	keep, gone     []string // set prefixes (without the key prefix)
}

func newPruneBucket(t *testing.T, srv *s3test.Server, keyPrefix string) *pruneBucket {
	t.Helper()
	b := &pruneBucket{bucket: srv.NewBucket(t), prefix: keyPrefix, now: time.Now().UTC().Truncate(time.Second)}
	day := 24 * time.Hour
	ago := func(d time.Duration) time.Time { return b.now.Add(-d) }
	add := func(keep bool, rel string, files map[string]string, rec *manifest.Record) {
		putSet(t, srv, b.bucket, keyPrefix+rel, files, rec, nil)
		if keep {
			b.keep = append(b.keep, rel)
		} else {
			b.gone = append(b.gone, rel)
		}
	}
	art := func(name string, created time.Time, source string) *manifest.Record {
		return &manifest.Record{Kind: manifest.KindArtifacts, Commit: fakeID(name, 40), Created: created, Source: source}
	}
	cache := func(name string, created time.Time) *manifest.Record {
		return &manifest.Record{Kind: manifest.KindCache, CodeHash: fakeID(name, 64), Commit: fakeID("c1", 40), Created: created}
	}
	files := map[string]string{"fn1.zip": "one", "fn2.zip": "two two"}
	cp := func(name string) string { return keyPrefix + "cache/" + fakeID(name, 64) + "/" }
	// Commits, keep 2 newest, 30d: c5 and c4 are the newest two (c4 past
	// the age); c3, c2, c1 are older than 30 days.
	add(false, "artifacts/"+fakeID("c1", 40)+"/", files, art("c1", ago(100*day), ""))
	add(false, "artifacts/"+fakeID("c2", 40)+"/", files, art("c2", ago(90*day), ""))
	add(false, "artifacts/"+fakeID("c3", 40)+"/", files, art("c3", ago(60*day), cp("h1")))
	add(true, "artifacts/"+fakeID("c4", 40)+"/", files, art("c4", ago(40*day), cp("h1")))
	add(true, "artifacts/"+fakeID("c5", 40)+"/", files, art("c5", ago(time.Hour), cp("h2")))
	// Cache entries, 10d: h1 last copied 40 days ago, h4 filled 20 days ago
	// and never used: both go; h2 was filled long ago but copied an hour
	// ago, h3 filled 5 days ago: both stay.
	add(false, "cache/"+fakeID("h1", 64)+"/", files, cache("h1", ago(50*day)))
	add(true, "cache/"+fakeID("h2", 64)+"/", files, cache("h2", ago(50*day)))
	add(true, "cache/"+fakeID("h3", 64)+"/", files, cache("h3", ago(5*day)))
	add(false, "cache/"+fakeID("h4", 64)+"/", files, cache("h4", ago(20*day)))
	// Components api and web, per component the same rule: d1 goes (both
	// components and the commit's record of them), d2 and d3 stay.
	for i, age := range []time.Duration{100 * day, 80 * day, 70 * day} {
		name := fmt.Sprintf("d%d", i+1)
		commit := fakeID(name, 40)
		keep := i > 0
		var all []manifest.File
		for _, comp := range []string{"api", "web"} {
			rec := &manifest.Record{Kind: manifest.KindArtifacts, Commit: commit, Component: comp, Created: ago(age)}
			add(keep, "artifacts/"+commit+"/"+comp+"/", map[string]string{comp + ".zip": comp + name}, rec)
			for _, f := range rec.Files {
				f.Name = comp + "/" + f.Name
				all = append(all, f)
			}
		}
		rec := manifest.Record{Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: commit, Created: ago(age), Files: all,
			Components: []manifest.ComponentRef{{Name: "api", CodeHash: fakeID("api"+name, 64)}, {Name: "web", CodeHash: fakeID("web"+name, 64)}}}
		body, err := manifest.Encode(rec, nil)
		if err != nil {
			t.Fatal(err)
		}
		putObject(t, srv, b.bucket, keyPrefix+"artifacts/"+commit+"/"+manifest.Name, body)
		if keep {
			b.keep = append(b.keep, "artifacts/"+commit+"/"+manifest.Name)
		} else {
			b.gone = append(b.gone, "artifacts/"+commit+"/"+manifest.Name)
		}
	}
	// Objects without a record, written just now: young, kept (the next
	// test moves the clock past the grace period).
	add(true, "artifacts/"+fakeID("u1", 40)+"/", files, nil)
	// A record written by a later version: never this version's to prune.
	newer := []byte(`{"format":"s3-asset-manager/completion/v9","kind":"artifacts","commit":"` + fakeID("n1", 40) + `","created":"2000-01-01T00:00:00Z","files":[]}`)
	putObject(t, srv, b.bucket, keyPrefix+"artifacts/"+fakeID("n1", 40)+"/"+manifest.Name, newer)
	b.keep = append(b.keep, "artifacts/"+fakeID("n1", 40)+"/")
	// Not sets of this tool: left alone.
	putObject(t, srv, b.bucket, keyPrefix+"artifacts/README", []byte("x"))
	putObject(t, srv, b.bucket, keyPrefix+"other/"+fakeID("c1", 40)+"/x", []byte("x"))
	b.keep = append(b.keep, "artifacts/README", "other/")
	// The pointer names h1 (which goes) and h2.
	latest, _ := json.Marshal(assets.Latest{Format: assets.LatestFormat, Entries: []assets.LatestEntry{
		{CodeHash: fakeID("h2", 64), Commit: fakeID("c1", 40), Created: ago(50 * day)},
		{CodeHash: fakeID("h1", 64), Commit: fakeID("c1", 40), Created: ago(50 * day)},
	}})
	putObject(t, srv, b.bucket, keyPrefix+"cache/"+assets.LatestName, latest)
	return b
}

func (b *pruneBucket) env(srv *s3test.Server) map[string]string {
	env := srv.Env(b.bucket)
	env["PACKAGE_ASSETS_KEY_PREFIX"] = b.prefix
	env["PACKAGE_ASSETS_PRUNE_COMMIT_AGE"] = "30d"
	env["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"] = "2"
	env["PACKAGE_ASSETS_PRUNE_CACHE_AGE"] = "10d"
	env["PACKAGE_ASSETS_PRUNE_GRACE"] = "24h"
	return env
}

// under reports whether key lies under one of the set prefixes (or is one).
func under(key string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// Each rule keeps and deletes exactly what it says: a dry run deletes
// nothing and plans exactly the sets that then go; the pointer drops the
// pruned cache entry; a later prune, past the grace period, takes the
// objects without a record and the abandoned multipart upload, and
// nothing else.
func TestPruneRules(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for _, keyPrefix := range []string{"", "team-a/"} {
			t.Run("prefix="+keyPrefix, func(t *testing.T) {
				t.Parallel()
				b := newPruneBucket(t, srv, keyPrefix)
				env := b.env(srv)
				upKey := keyPrefix + "artifacts/" + fakeID("m1", 40) + "/big.zip"
				if _, err := srv.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: &b.bucket, Key: &upKey}); err != nil {
					t.Fatal(err)
				}
				before := listAll(t, srv, b.bucket)

				r := runAt(t, b.now, env, "prune")
				if r.code != ExitOK {
					t.Fatal(r)
				}
				if after := listAll(t, srv, b.bucket); !slices.Equal(keysOf(after), keysOf(before)) {
					t.Fatalf("a dry run deleted something:\n%v", r)
				}
				// c1-c3 and d1's two components and commit record: 6 commit
				// sets; h1, h4; 14 objects (records included in the sets).
				for _, want := range []string{"dry run", "commit", "component", "cache", "total"} {
					if !strings.Contains(r.stderr, want) {
						t.Errorf("plan lacks %q:\n%s", want, r.stderr)
					}
				}

				env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
				r = runAt(t, b.now, env, "prune")
				if r.code != ExitOK {
					t.Fatal(r)
				}
				after := listAll(t, srv, b.bucket)
				for _, o := range before {
					rel := strings.TrimPrefix(o.Key, keyPrefix)
					gone := !slices.Contains(keysOf(after), o.Key)
					switch {
					case strings.HasPrefix(rel, "cache/"+assets.LatestName):
					case under(rel, b.gone) && !gone:
						t.Errorf("%s kept, want it deleted", o.Key)
					case under(rel, b.keep) && gone:
						t.Errorf("%s deleted, want it kept", o.Key)
					case !under(rel, b.gone) && !under(rel, b.keep):
						t.Errorf("%s: in neither list", o.Key)
					}
				}
				_, latest := srv.Get(t, b.bucket, keyPrefix+"cache/"+assets.LatestName)
				if strings.Contains(string(latest), fakeID("h1", 64)) || !strings.Contains(string(latest), fakeID("h2", 64)) {
					t.Errorf("pointer after prune: %s, want h2 alone", latest)
				}
				if n := srv.PendingUploads(t, b.bucket); n != 1 {
					t.Errorf("%d multipart uploads, want the young one kept", n)
				}

				// Past the grace period: the objects without a record and the
				// upload go, nothing else.
				r = runAt(t, b.now.Add(25*time.Hour), env, "prune")
				if r.code != ExitOK {
					t.Fatal(r)
				}
				last := listAll(t, srv, b.bucket)
				for _, o := range after {
					rel := strings.TrimPrefix(o.Key, keyPrefix)
					gone := !slices.Contains(keysOf(last), o.Key)
					if want := strings.HasPrefix(rel, "artifacts/"+fakeID("u1", 40)+"/"); gone != want {
						t.Errorf("second prune: %s deleted %t, want %t", o.Key, gone, want)
					}
				}
				if n := srv.PendingUploads(t, b.bucket); n != 0 {
					t.Errorf("%d multipart uploads left, want the abandoned one aborted", n)
				}
			})
		}
	})
}

// A prune that fails half-way (a store refusing every delete after the
// first ones, as a killed job stops) leaves every set complete or without
// a record, never a record with objects missing; the next prune finishes
// them. 350 old sets of 3 files: the records go in one DeleteObjects, the
// objects in two.
func TestPruneStoppedHalfWay(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for _, failAt := range []int64{2, 3} {
			t.Run(fmt.Sprintf("refused from delete %d", failAt), func(t *testing.T) {
				t.Parallel()
				bucket := srv.NewBucket(t)
				now := time.Now().UTC()
				const sets = 350
				for i := range sets {
					name := fmt.Sprintf("old%d", i)
					rec := &manifest.Record{Kind: manifest.KindArtifacts, Commit: fakeID(name, 40), Created: now.Add(-200 * 24 * time.Hour)}
					putSet(t, srv, bucket, "artifacts/"+fakeID(name, 40)+"/", map[string]string{"a.zip": "a" + name, "b.zip": "b" + name, "c.zip": "c" + name}, rec, nil)
				}
				proxy := s3test.NewProxy(t, srv.Endpoint)
				var deletes atomic.Int64
				proxy.SetPlan(func(n int64, r *http.Request) s3test.Fault {
					if r.Method == http.MethodPost && r.URL.Query().Has("delete") && deletes.Add(1) >= failAt {
						return s3test.Forbidden
					}
					return s3test.Pass
				})
				env := srv.Env(bucket)
				env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
				env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
				env["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"] = "0"
				r := runAt(t, now, env, "prune")
				if r.code != ExitS3 {
					t.Fatalf("prune through a store refusing deletes: %v, want exit %d", r, ExitS3)
				}
				byPrefix := map[string][]string{}
				for _, o := range listAll(t, srv, bucket) {
					i := strings.LastIndex(o.Key, "/")
					byPrefix[o.Key[:i+1]] = append(byPrefix[o.Key[:i+1]], o.Key[i+1:])
				}
				partial := 0
				for prefix, names := range byPrefix {
					if slices.Contains(names, manifest.Name) && len(names) != 4 {
						t.Errorf("%s: a record with %v: a set neither complete nor without a record", prefix, names)
					}
					if !slices.Contains(names, manifest.Name) {
						partial++
					}
				}
				if failAt > 1 && partial == 0 {
					t.Errorf("no set lost its record: the failure came too late to test anything")
				}

				// The next prune, when the objects are past the grace period.
				delete(env, "PACKAGE_ASSETS_ENDPOINT")
				env = mergeEnv(srv.Env(bucket), env)
				if r := runAt(t, now.Add(25*time.Hour), env, "prune"); r.code != ExitOK {
					t.Fatal(r)
				}
				if left := listAll(t, srv, bucket); len(left) != 0 {
					t.Errorf("after the next prune %d objects are left, e.g. %s", len(left), left[0].Key)
				}
			})
		}
	})
}

// A store that refuses to delete some keys (per-key AccessDenied inside a
// 200 answer, as S3 answers keys a bucket policy protects): a set whose
// record is refused stays complete, and the other sets go whole, their
// objects included: the refusal of one record, which every later prune
// meets again, must not leave the others without a record for good. A set
// whose object is refused is left without a record, for the next prune; a
// commit's record of components refused keeps its components' records.
// Exit 4, and the outputs count what went.
func TestPruneRefusedKeys(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		now := time.Now().UTC()
		prefix := map[string]string{}
		for _, name := range []string{"protected", "objrefused", "b", "c"} {
			c := fakeID(name, 40)
			prefix[name] = "artifacts/" + c + "/"
			putSet(t, srv, bucket, prefix[name], map[string]string{"a.zip": "a" + name, "b.zip": "b" + name},
				&manifest.Record{Kind: manifest.KindArtifacts, Commit: c, Created: now.Add(-200 * 24 * time.Hour)}, nil)
		}
		// Two commits of components: the record of components of one is
		// refused, so its components' records stay too (they go after it).
		var protectedComps []string
		for _, name := range []string{"compsprotected", "comps"} {
			c := fakeID(name, 40)
			prefix[name] = "artifacts/" + c + "/"
			var all []manifest.File
			for _, comp := range []string{"api", "web"} {
				rec := &manifest.Record{Kind: manifest.KindArtifacts, Commit: c, Component: comp, Created: now.Add(-200 * 24 * time.Hour)}
				putSet(t, srv, bucket, prefix[name]+comp+"/", map[string]string{comp + ".zip": comp + name}, rec, nil)
				for _, f := range rec.Files {
					f.Name = comp + "/" + f.Name
					all = append(all, f)
				}
				if name == "compsprotected" {
					protectedComps = append(protectedComps, prefix[name]+comp+"/"+manifest.Name, prefix[name]+comp+"/"+comp+".zip")
				}
			}
			body, err := manifest.Encode(manifest.Record{Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: c, Created: now.Add(-200 * 24 * time.Hour), Files: all,
				Components: []manifest.ComponentRef{{Name: "api", CodeHash: fakeID("api"+name, 64)}, {Name: "web", CodeHash: fakeID("web"+name, 64)}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			putObject(t, srv, bucket, prefix[name]+manifest.Name, body)
		}
		proxy := s3test.NewProxy(t, srv.Endpoint)
		proxy.DeleteKeyError = func(key string) string {
			if key == prefix["protected"]+manifest.Name || key == prefix["objrefused"]+"b.zip" || key == prefix["compsprotected"]+manifest.Name {
				return "AccessDenied"
			}
			return ""
		}
		dir := t.TempDir()
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		env["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"] = "0"
		env["RESULT_DOTENV_FILE"] = filepath.Join(dir, "prune.env")
		r := runAt(t, now, env, "prune")
		if r.code != ExitS3 || !strings.Contains(r.stderr, "AccessDenied") {
			t.Fatalf("prune through a store refusing two keys: %v, want exit %d naming the refusal", r, ExitS3)
		}
		left := keysOf(listAll(t, srv, bucket))
		want := append([]string{prefix["protected"] + manifest.Name, prefix["protected"] + "a.zip", prefix["protected"] + "b.zip", prefix["objrefused"] + "b.zip",
			prefix["compsprotected"] + manifest.Name}, protectedComps...)
		slices.Sort(want)
		if !slices.Equal(left, want) {
			t.Errorf("left %v,\nwant %v: the protected sets whole and the refused object alone", left, want)
		}
		dotenv, _ := os.ReadFile(env["RESULT_DOTENV_FILE"])
		if !strings.HasPrefix(string(dotenv), "PRUNE_SETS=5\nPRUNE_FILES=6\n") {
			t.Errorf("dotenv:\n%s\nwant the five sets deleted whole (two of files, a commit's two components and its record of them)", dotenv)
		}
	})
}

// A delete refused as a whole (a 403 for the request, not a key of its
// answer) is the store's or the credentials', not a set's: prune stops at
// once, with nothing of any set deleted, rather than go on to the next
// batches, each refused again after its retries.
func TestPruneDeleteRefusedStops(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		now := time.Now().UTC()
		for _, name := range []string{"a", "b"} {
			c := fakeID(name, 40)
			putSet(t, srv, bucket, "artifacts/"+c+"/", map[string]string{"a.zip": name},
				&manifest.Record{Kind: manifest.KindArtifacts, Commit: c, Created: now.Add(-200 * 24 * time.Hour)}, nil)
		}
		// A commit of components: its record of components goes in the
		// first batch, the other records in a second.
		c := fakeID("comps", 40)
		rec := &manifest.Record{Kind: manifest.KindArtifacts, Commit: c, Component: "api", Created: now.Add(-200 * 24 * time.Hour)}
		putSet(t, srv, bucket, "artifacts/"+c+"/api/", map[string]string{"api.zip": "api"}, rec, nil)
		files := slices.Clone(rec.Files)
		files[0].Name = "api/" + files[0].Name
		body, err := manifest.Encode(manifest.Record{Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: c, Created: now.Add(-200 * 24 * time.Hour), Files: files,
			Components: []manifest.ComponentRef{{Name: "api", CodeHash: fakeID("api", 64)}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		putObject(t, srv, bucket, "artifacts/"+c+"/"+manifest.Name, body)
		before := keysOf(listAll(t, srv, bucket))
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var deletes atomic.Int64
		proxy.SetPlan(func(n int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
				deletes.Add(1)
				return s3test.Forbidden
			}
			return s3test.Pass
		})
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		env["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"] = "0"
		r := runAt(t, now, env, "prune")
		if r.code != ExitS3 {
			t.Fatalf("prune through a store refusing every delete: %v, want exit %d", r, ExitS3)
		}
		if n := deletes.Load(); n != 1 {
			t.Errorf("%d delete requests, want 1: the first refusal of the whole request stops prune", n)
		}
		if after := keysOf(listAll(t, srv, bucket)); !slices.Equal(after, before) {
			t.Errorf("left %v, want every object %v", after, before)
		}
	})
}

// Prune rewrites the pointers it writes (the whole filter's, a
// component's) without the cache entries that go, and no other object
// beside them: a copy kept by hand, a name no component can have (never
// printed raw), a deeper path.
func TestPrunePointersOnlyTheTools(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		now := time.Now().UTC()
		h1, h2 := fakeID("h1", 64), fakeID("h2", 64)
		putSet(t, srv, bucket, "cache/"+h1+"/", map[string]string{"a.zip": "a"},
			&manifest.Record{Kind: manifest.KindCache, CodeHash: h1, Commit: fakeID("c1", 40), Created: now.Add(-100 * 24 * time.Hour)}, nil)
		latest, _ := json.Marshal(assets.Latest{Format: assets.LatestFormat, Entries: []assets.LatestEntry{
			{CodeHash: h2, Commit: fakeID("c2", 40), Created: now.Add(-time.Hour)},
			{CodeHash: h1, Commit: fakeID("c1", 40), Created: now.Add(-100 * 24 * time.Hour)},
		}})
		ours := []string{"cache/" + assets.LatestName, "cache/" + assets.LatestDir + "api.json"}
		foreign := []string{"cache/.s3-asset-manager-latest-copy.json", "cache/" + assets.LatestDir + "a\x1b[2Kb.json", "cache/" + assets.LatestDir + "old/api.json"}
		for _, k := range append(slices.Clone(ours), foreign...) {
			putObject(t, srv, bucket, k, latest)
		}
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		r := runAt(t, now, env, "prune")
		if r.code != ExitOK {
			t.Fatal(r)
		}
		for _, k := range ours {
			if _, b := srv.Get(t, bucket, k); strings.Contains(string(b), h1) || !strings.Contains(string(b), h2) {
				t.Errorf("%s after prune: %s, want h2 alone", k, b)
			}
		}
		for _, k := range foreign {
			if _, b := srv.Get(t, bucket, k); !bytes.Equal(b, latest) {
				t.Errorf("%q rewritten by prune: %s", k, b)
			}
		}
		if strings.Contains(r.stdout+r.stderr, "\x1b") {
			t.Errorf("a key printed raw:\n%v", r)
		}
	})
}

// An abandoned multipart upload the store refuses to abort (403) fails
// alone: the others are still aborted, and prune exits 4 naming it.
func TestPruneRefusedAbort(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		refused := "artifacts/" + fakeID("m1", 40) + "/big.zip"
		for _, k := range []string{refused, "artifacts/" + fakeID("m2", 40) + "/big.zip", "cache/" + fakeID("m3", 64) + "/big.zip"} {
			if _, err := srv.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &k}); err != nil {
				t.Fatal(err)
			}
		}
		proxy := s3test.NewProxy(t, srv.Endpoint)
		proxy.SetPlan(func(n int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodDelete && r.URL.Query().Has("uploadId") && strings.HasSuffix(r.URL.Path, "/"+refused) {
				return s3test.Forbidden
			}
			return s3test.Pass
		})
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		r := runAt(t, time.Now().Add(25*time.Hour), env, "prune")
		if r.code != ExitS3 || !strings.Contains(r.stderr, fakeID("m1", 40)) {
			t.Fatalf("prune through a store refusing one abort: %v, want exit %d naming it", r, ExitS3)
		}
		out, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Uploads) != 1 || aws.ToString(out.Uploads[0].Key) != refused {
			var left []string
			for _, u := range out.Uploads {
				left = append(left, aws.ToString(u.Key))
			}
			t.Errorf("uploads left %v, want the refused one alone", left)
		}
	})
}

// A key refused for good (a bucket policy, Object Lock) fails its own set
// alone, and the abandoned multipart uploads are still aborted: they depend
// on no set, and the refusal meets every later prune again.
func TestPruneRefusedKeyStillAborts(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		now := time.Now().UTC().Add(200 * 24 * time.Hour)
		protected := "artifacts/" + fakeID("protected", 40) + "/"
		for _, name := range []string{"protected", "b"} {
			c := fakeID(name, 40)
			putSet(t, srv, bucket, "artifacts/"+c+"/", map[string]string{"a.zip": name},
				&manifest.Record{Kind: manifest.KindArtifacts, Commit: c, Created: now.Add(-200 * 24 * time.Hour)}, nil)
		}
		k := "artifacts/" + fakeID("m1", 40) + "/big.zip"
		if _, err := srv.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &k}); err != nil {
			t.Fatal(err)
		}
		proxy := s3test.NewProxy(t, srv.Endpoint)
		proxy.DeleteKeyError = func(key string) string {
			if key == protected+manifest.Name {
				return "AccessDenied"
			}
			return ""
		}
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		env["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"] = "0"
		r := runAt(t, now, env, "prune")
		if r.code != ExitS3 || !strings.Contains(r.stderr, "AccessDenied") {
			t.Fatalf("prune through a store refusing a record: %v, want exit %d naming the refusal", r, ExitS3)
		}
		if n := srv.PendingUploads(t, bucket); n != 0 {
			t.Errorf("%d multipart uploads left, want the abandoned one aborted", n)
		}
		want := []string{protected + manifest.Name, protected + "a.zip"}
		if left := keysOf(listAll(t, srv, bucket)); !slices.Equal(left, want) {
			t.Errorf("left %v, want the protected set alone %v", left, want)
		}
	})
}

// On a store without DeleteObjects (501, as Google Cloud Storage's XML API
// answers: one DELETE a key), a key refused (403 for its DELETE) fails its
// own set alone, as a per-key error of DeleteObjects does: not the whole
// prune, nor the other DELETEs in flight.
func TestPruneSingleDeletesRefusedKey(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		now := time.Now().UTC()
		protected := "artifacts/" + fakeID("protected", 40) + "/"
		for _, name := range []string{"protected", "b", "c"} {
			c := fakeID(name, 40)
			putSet(t, srv, bucket, "artifacts/"+c+"/", map[string]string{"a.zip": name},
				&manifest.Record{Kind: manifest.KindArtifacts, Commit: c, Created: now.Add(-200 * 24 * time.Hour)}, nil)
		}
		proxy := s3test.NewProxy(t, srv.Endpoint)
		proxy.SetPlan(func(n int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
				return s3test.NotImpl
			}
			return s3test.Pass
		})
		proxy.DeleteKeyError = func(key string) string {
			if key == protected+manifest.Name {
				return "AccessDenied"
			}
			return ""
		}
		dir := t.TempDir()
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		env["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"] = "0"
		env["RESULT_DOTENV_FILE"] = filepath.Join(dir, "prune.env")
		r := runAt(t, now, env, "prune")
		if r.code != ExitS3 || !strings.Contains(r.stderr, "AccessDenied") {
			t.Fatalf("prune through a store without DeleteObjects refusing a record: %v, want exit %d naming the refusal", r, ExitS3)
		}
		want := []string{protected + manifest.Name, protected + "a.zip"}
		if left := keysOf(listAll(t, srv, bucket)); !slices.Equal(left, want) {
			t.Errorf("left %v, want the protected set alone %v", left, want)
		}
		dotenv, _ := os.ReadFile(env["RESULT_DOTENV_FILE"])
		if !strings.HasPrefix(string(dotenv), "PRUNE_SETS=2\n") {
			t.Errorf("dotenv:\n%s\nwant the two other sets deleted", dotenv)
		}
	})
}

// A role without s3:AbortMultipartUpload has every abort refused: the
// error names the first few and counts the rest, not a line each.
func TestPruneRefusedAbortsCapped(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		for i := range 5 {
			k := "artifacts/" + fakeID(fmt.Sprint("m", i), 40) + "/big.zip"
			if _, err := srv.Client().CreateMultipartUpload(context.Background(), &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &k}); err != nil {
				t.Fatal(err)
			}
		}
		proxy := s3test.NewProxy(t, srv.Endpoint)
		var aborts atomic.Int64
		proxy.SetPlan(func(n int64, r *http.Request) s3test.Fault {
			if r.Method == http.MethodDelete && r.URL.Query().Has("uploadId") {
				aborts.Add(1)
				return s3test.Forbidden
			}
			return s3test.Pass
		})
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		r := runAt(t, time.Now().Add(25*time.Hour), env, "prune")
		if r.code != ExitS3 {
			t.Fatalf("prune through a store refusing every abort: %v, want exit %d", r, ExitS3)
		}
		if n := aborts.Load(); n != 5 {
			t.Errorf("%d aborts sent, want 5: each upload refused alone", n)
		}
		if n := strings.Count(r.stderr, "abort multipart upload of"); n != 3 || !strings.Contains(r.stderr, "2 more") {
			t.Errorf("stderr names %d refused aborts, want the first 3 and a count of 2 more:\n%s", n, r.stderr)
		}
		if n := srv.PendingUploads(t, bucket); n != 5 {
			t.Errorf("%d multipart uploads left, want 5", n)
		}
	})
}

// mergeEnv is base with over's settings on top.
func mergeEnv(base, over map[string]string) map[string]string {
	for k, v := range over {
		if _, ok := base[k]; !ok {
			base[k] = v
		}
	}
	return base
}

// Prune running while pipelines check, upload and download against the same
// bucket (a second pipeline uploads a commit of its own each round): each round seeds an old commit set (which deploys download) and
// an old, unused cache entry that this round's check hits (its salt makes
// the code hash), and runs prune beside them. No pipeline exits other than
// 0 or 6, a found set is always complete and downloads as the bytes it was
// made of, and every set still recorded at the end is byte-identical.
func TestPruneBesidePipelines(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setupWith(t, srv, bucket, map[string]string{"lambdas/fn1/index.py": "v1\n", "README.md": "docs\n"})
		env["CODE_HASH_FIND_FILTER"] = "lambdas/**"
		// A second pipeline builds and uploads its own commits beside prune.
		env2, d2 := setupWith(t, srv, bucket, map[string]string{"src/main.go": "package main\n"})
		var uploaded []string
		old := time.Now().UTC().Add(-200 * 24 * time.Hour)
		want := map[string]map[string]string{} // commit → its files, for every set made
		filesOf := func(tag string, n int) map[string]string {
			m := map[string]string{}
			for i := range n {
				m[fmt.Sprintf("f%02d.zip", i)] = fmt.Sprintf("%s-%d-%s", tag, i, strings.Repeat("x", 2000+i))
			}
			return m
		}
		for round := range 4 {
			salt := fmt.Sprintf("round-%d", round)
			head := commit(t, d.repo, map[string]string{"README.md": salt})
			cenv := maps.Clone(env)
			cenv["CODE_HASH_SALT"] = salt
			hr := run(t, cenv, "hash")
			hash := strings.TrimSpace(hr.stdout)
			if hr.code != ExitOK || len(hash) != 64 {
				t.Fatalf("hash: %v", hr)
			}
			cached := filesOf("cache"+salt, 40)
			putSet(t, srv, bucket, "cache/"+hash+"/", cached,
				&manifest.Record{Kind: manifest.KindCache, CodeHash: hash, Commit: fakeID(salt, 40), Created: old}, nil)
			deployed := fakeID("deployed"+salt, 40)
			want[deployed] = filesOf("deployed"+salt, 40)
			putSet(t, srv, bucket, "artifacts/"+deployed+"/", want[deployed],
				&manifest.Record{Kind: manifest.KindArtifacts, Commit: deployed, Created: old}, nil)

			// In even rounds the check's copies and the deploys' fetches,
			// after their first, wait until prune has finished: the cache
			// entry and the set vanish in the middle, every time. In odd
			// rounds everything runs as it comes.
			held := round%2 == 0
			pruneDone := make(chan struct{})
			// first (if any) is called as the first matching request passes.
			holdAfterFirst := func(match func(r *http.Request) bool, first func()) *s3test.Proxy {
				p := s3test.NewProxy(t, srv.Endpoint)
				var n atomic.Int64
				p.Hold = func(r *http.Request) {
					if !match(r) {
						return
					}
					if n.Add(1) > 1 {
						<-pruneDone
					} else if first != nil {
						first()
					}
				}
				return p
			}
			// In held rounds prune's deletes also wait until both deploys
			// have read the set's record and begun to fetch it: the set
			// vanishes during the download, not before its lookup (which
			// would find it unrecorded, or gone).
			var fetching sync.WaitGroup
			if held {
				fetching.Add(2)
			}
			var wg sync.WaitGroup
			var pruned, checked result
			var fetched []result
			var mu sync.Mutex
			pkg := freshPackages(t, cenv)
			if held {
				copies := holdAfterFirst(func(r *http.Request) bool { return r.Header.Get("X-Amz-Copy-Source") != "" }, nil)
				cenv["PACKAGE_ASSETS_ENDPOINT"] = copies.URL
			}
			wg.Go(func() {
				defer close(pruneDone)
				penv := srv.Env(bucket)
				penv["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
				penv["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"] = "0"
				if held {
					p := s3test.NewProxy(t, srv.Endpoint)
					p.Hold = func(r *http.Request) {
						if r.Method == http.MethodDelete || r.URL.Query().Has("delete") {
							fetching.Wait()
						}
					}
					penv["PACKAGE_ASSETS_ENDPOINT"] = p.URL
				}
				pruned = run(t, penv, "prune")
			})
			wg.Go(func() { checked = run(t, cenv, "check") })
			head2 := commit(t, d2.repo, map[string]string{"src/main.go": "package main // " + salt + "\n"})
			want[head2] = filesOf("second"+salt, 5)
			uploaded = append(uploaded, head2)
			wg.Go(func() {
				uenv := maps.Clone(env2)
				pkg2 := freshPackages(t, uenv)
				if r := run(t, uenv, "check"); r.code != ExitOK {
					t.Errorf("second pipeline's check beside prune: %v", r)
					return
				}
				writeFiles(t, pkg2, want[head2])
				if r := run(t, uenv, "upload"); r.code != ExitOK {
					t.Errorf("upload beside prune: %v", r)
				}
			})
			for range 2 {
				denv, dir := deployEnv(t, srv, bucket, deployed)
				var began sync.Once // prune waits for it: once, as the first fetch passes or the download ends
				if held {
					gets := holdAfterFirst(func(r *http.Request) bool {
						return r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, manifest.Name) && r.URL.Query().Get("list-type") == ""
					}, func() { began.Do(fetching.Done) })
					denv["PACKAGE_ASSETS_ENDPOINT"] = gets.URL
				}
				wg.Go(func() {
					r := run(t, denv, "download")
					if held {
						began.Do(fetching.Done)
					}
					mu.Lock()
					fetched = append(fetched, r)
					mu.Unlock()
					switch r.code {
					case ExitOK:
						sameFiles(t, dir, bytesOf(want[deployed]))
					case ExitNotFound:
					default:
						t.Errorf("download beside prune: %v", r)
					}
				})
			}
			wg.Wait()
			cenv["PACKAGE_ASSETS_ENDPOINT"] = srv.Endpoint
			if held {
				if exists(filepath.Join(pkg, ".found")) || !strings.Contains(checked.stderr, "cache miss") {
					t.Errorf("a check whose cache entry vanished during the copy: %v, want a miss", checked)
				}
				for _, r := range fetched {
					if r.code != ExitNotFound || !strings.Contains(r.stderr, "pruned") {
						t.Errorf("a download of a set pruned meanwhile: %v, want exit 6 saying it may have been pruned", r)
					}
				}
			}
			if pruned.code != ExitOK {
				t.Errorf("prune: %v", pruned)
			}
			if checked.code != ExitOK {
				t.Fatalf("check beside prune: %v", checked)
			}
			if exists(filepath.Join(pkg, ".found")) {
				// A hit: the copy is complete, and is the cache entry's bytes.
				want[head] = cached
				denv, dir := deployEnv(t, srv, bucket, head)
				if r := run(t, denv, "download"); r.code != ExitOK {
					t.Fatalf("download of a set check found: %v\ncheck: %v", r, checked)
				}
				sameFiles(t, dir, bytesOf(cached))
			} else {
				want[head] = filesOf("built"+salt, 3)
				writeFiles(t, pkg, want[head])
				if r := run(t, cenv, "upload"); r.code != ExitOK {
					t.Fatalf("upload beside prune: %v", r)
				}
			}
		}
		// Every set still recorded is whole and byte-identical, the second
		// pipeline's (young) among them.
		recorded := map[string]bool{}
		for _, o := range listAll(t, srv, bucket) {
			rel, ok := strings.CutSuffix(o.Key, "/"+manifest.Name)
			commit, isArt := strings.CutPrefix(rel, "artifacts/")
			if !ok || !isArt {
				continue
			}
			recorded[commit] = true
			denv, dir := deployEnv(t, srv, bucket, commit)
			if r := run(t, denv, "download"); r.code != ExitOK {
				t.Errorf("a recorded set does not download: %v", r)
				continue
			}
			sameFiles(t, dir, bytesOf(want[commit]))
		}
		for _, c := range uploaded {
			if !recorded[c] {
				t.Errorf("the set uploaded beside prune, %s, is gone", c)
			}
		}
	})
}

func bytesOf(files map[string]string) map[string][]byte {
	m := make(map[string][]byte, len(files))
	for k, v := range files {
		m[k] = []byte(v)
	}
	return m
}

// With a signing key, an unsigned record counts as none: its set goes as
// one without a record; the signed sets are judged by their age. Prune
// needs no key: without one, both records count.
func TestPruneSigned(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		key := []byte("a-signing-key-of-some-length")
		now := time.Now().UTC()
		files := map[string]string{"a.zip": "a"}
		signed, forged := fakeID("signed", 40), fakeID("forged", 40)
		putSet(t, srv, bucket, "artifacts/"+signed+"/", files, &manifest.Record{Kind: manifest.KindArtifacts, Commit: signed, Created: now.Add(-50 * 24 * time.Hour)}, key)
		putSet(t, srv, bucket, "artifacts/"+forged+"/", files, &manifest.Record{Kind: manifest.KindArtifacts, Commit: forged, Created: now.Add(-40 * 24 * time.Hour)}, nil)
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		later := now.Add(2 * 24 * time.Hour) // the objects are past the grace period

		if r := runAt(t, later, env, "prune"); r.code != ExitOK || !strings.Contains(r.stderr, "nothing to prune") {
			t.Fatalf("without the key both records count, and both sets are among the newest 10: %v", r)
		}
		if left := listAll(t, srv, bucket); len(left) != 4 {
			t.Fatalf("without the key both sets stay; left %v", keysOf(left))
		}
		env["PACKAGE_ASSETS_SIGNING_KEY"] = string(key)
		r := runAt(t, later, env, "prune")
		if r.code != ExitOK {
			t.Fatal(r)
		}
		left := keysOf(listAll(t, srv, bucket))
		if want := []string{"artifacts/" + signed + "/" + manifest.Name, "artifacts/" + signed + "/a.zip"}; !slices.Equal(left, want) {
			t.Errorf("left %v, want the signed set alone\n%v", left, r)
		}
		if strings.Contains(r.stderr+r.stdout, string(key)) {
			t.Errorf("the signing key was printed")
		}
	})
}

// On a versioned bucket prune's deletes are delete markers: every reader
// sees the set gone (download exits 6), and the bytes stay as noncurrent
// versions for a lifecycle rule to expire (docs/prune.md). A store without
// versioning (versitygw without a versioning directory) is skipped.
func TestPruneVersionedBucket(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		ctx := context.Background()
		bucket := srv.NewBucket(t)
		_, err := srv.Client().PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
		if err != nil {
			t.Skipf("%s: no versioning here: %v", srv.Name, err)
		}
		now := time.Now().UTC()
		old := fakeID("old", 40)
		putSet(t, srv, bucket, "artifacts/"+old+"/", map[string]string{"a.zip": "a", "b.zip": "b"},
			&manifest.Record{Kind: manifest.KindArtifacts, Commit: old, Created: now.Add(-200 * 24 * time.Hour)}, nil)
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		env["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"] = "0"
		if r := runAt(t, now, env, "prune"); r.code != ExitOK || !strings.Contains(r.stdout+r.stderr, "deleted 1 set") {
			t.Fatalf("prune: %v", r)
		}
		if left := listAll(t, srv, bucket); len(left) != 0 {
			t.Errorf("current objects left: %v", keysOf(left))
		}
		denv, _ := deployEnv(t, srv, bucket, old)
		if r := run(t, denv, "download"); r.code != ExitNotFound {
			t.Errorf("download of a pruned set in a versioned bucket: %v, want exit 6", r)
		}
		v, err := srv.Client().ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: &bucket})
		if err != nil {
			t.Fatal(err)
		}
		if len(v.DeleteMarkers) != 3 || len(v.Versions) != 3 {
			t.Errorf("%d delete markers and %d versions, want 3 of each (the record and two files)", len(v.DeleteMarkers), len(v.Versions))
		}
	})
}

// The outputs and the job summary: a dry run gives the plan's counts, the
// summary its table; apply gives what was deleted; the dotenv file the same.
// (The outputs' logic: one server.)
func TestPruneOutputs(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		now := time.Now().UTC()
		for i := range 3 {
			c := fakeID(fmt.Sprint("out", i), 40)
			putSet(t, srv, bucket, "artifacts/"+c+"/", map[string]string{"a.zip": "aaaa", "b.zip": "bb"},
				&manifest.Record{Kind: manifest.KindArtifacts, Commit: c, Created: now.Add(-time.Duration(100+i) * 24 * time.Hour)}, nil)
		}
		// A cache entry of one artifact, and its file list beside its record:
		// one file (the list counts in the size, as the record does).
		h := fakeID("outcache", 64)
		putSet(t, srv, bucket, "cache/"+h+"/", map[string]string{"c.zip": "ccc"},
			&manifest.Record{Kind: manifest.KindCache, CodeHash: h, Commit: fakeID("out0", 40), Created: now.Add(-100 * 24 * time.Hour)}, nil)
		putObject(t, srv, bucket, "cache/"+h+"/"+assets.ListName, []byte("list"))
		dir := t.TempDir()
		env := srv.Env(bucket)
		env["PACKAGE_ASSETS_PRUNE_KEEP_COMMITS"] = "1"
		env["GITHUB_ACTIONS"], env["GITHUB_OUTPUT"], env["GITHUB_STEP_SUMMARY"] = "true", filepath.Join(dir, "out"), filepath.Join(dir, "summary")
		env["RESULT_DOTENV_FILE"] = filepath.Join(dir, "prune.env")
		outputs := func(r result) map[string]string {
			t.Helper()
			if r.code != ExitOK {
				t.Fatal(r)
			}
			b, err := os.ReadFile(env["GITHUB_OUTPUT"])
			if err != nil {
				t.Fatal(err)
			}
			os.Remove(env["GITHUB_OUTPUT"])
			out, err := ghaction.ParseOutputFile(string(b))
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		out := outputs(runAt(t, now, env, "prune"))
		if out["prune-sets"] != "3" || out["prune-files"] != "5" || out["prune-bytes"] == "0" {
			t.Errorf("dry run outputs %v, want 3 sets, 5 files", out)
		}
		summary, _ := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
		if !strings.Contains(string(summary), "dry run, 3 sets") || !strings.Contains(string(summary), "| commit | – | 2 | 4 |") ||
			!strings.Contains(string(summary), "| cache | – | 1 | 1 |") {
			t.Errorf("summary:\n%s", summary)
		}
		env["PACKAGE_ASSETS_PRUNE_APPLY"] = "true"
		out = outputs(runAt(t, now, env, "prune"))
		if out["prune-sets"] != "3" || out["prune-files"] != "5" {
			t.Errorf("apply outputs %v, want 3 sets, 5 files deleted", out)
		}
		if len(out) != len(ghaction.PruneOutputNames) {
			t.Errorf("outputs %v: prune writes %v alone", out, ghaction.PruneOutputNames)
		}
		// Only prune's lines: GitLab would export a FOUND=false to later jobs.
		dotenv, _ := os.ReadFile(env["RESULT_DOTENV_FILE"])
		if !regexp.MustCompile(`^PRUNE_SETS=3\nPRUNE_FILES=5\nPRUNE_BYTES=[1-9][0-9]*\n$`).Match(dotenv) {
			t.Errorf("dotenv:\n%s", dotenv)
		}
		out = outputs(runAt(t, now, env, "prune"))
		if out["prune-sets"] != "0" || out["prune-bytes"] != "0" {
			t.Errorf("nothing left to prune: outputs %v", out)
		}
	})
}
