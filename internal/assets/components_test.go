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
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/manifest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// The components of the table tests, each with its code hash.
var monoCodes = []ComponentCode{
	{Name: "api", Hash: strings.Repeat("a1", 32), Files: 2},
	{Name: "fn1", Hash: strings.Repeat("f1", 32), Files: 3},
	{Name: "fn2", Hash: strings.Repeat("f2", 32), Files: 1},
}

// fakeMonoRepo is a checkout at commitA with components.
type fakeMonoRepo struct{ fakeRepo }

func (fakeMonoRepo) Components(context.Context) ([]ComponentCode, error) {
	return slices.Clone(monoCodes), nil
}

func (fakeMonoRepo) ComponentNames(context.Context) ([]string, error) {
	names := make([]string, len(monoCodes))
	for i, c := range monoCodes {
		names[i] = c.Name
	}
	return names, nil
}

func codeOf(name string) string {
	for _, c := range monoCodes {
		if c.Name == name {
			return c.Hash
		}
	}
	panic(name)
}

// newMonoRunner is a Runner over the fake store with components, for the
// one component named (all when "").
func newMonoRunner(t *testing.T, f *fakeStore, key, component string) (*Runner, *bytes.Buffer) {
	t.Helper()
	comps, err := codehash.ParseComponents("lambdas/*\napi: services/api/**")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{PackageDir: t.TempDir(), RepoPath: "repo", Concurrency: 4, Components: comps, Component: component}
	if key != "" {
		cfg.SigningKey = []byte(key)
	}
	var logs bytes.Buffer
	r := &Runner{
		Config: cfg, Store: f, Log: log.New(&logs, "", 0), Tool: "test",
		OpenRepo: func(string) (Repo, error) { return fakeMonoRepo{fakeRepo{commitA, hashX}}, nil },
	}
	return r, &logs
}

func componentPrefix(commit, name string) string { return "artifacts/" + commit + "/" + name + "/" }

// seedComponent stores a component's complete set under commit.
func seedComponent(f *fakeStore, commit, name string, key []byte) {
	rec := manifest.Record{Kind: manifest.KindArtifacts, Commit: commit, Component: name, CodeHash: codeOf(name)}
	f.seed(componentPrefix(commit, name), rec, map[string]string{name + ".zip": name}, key, nil)
}

// seedCache stores a component's complete cache entry.
func seedCache(f *fakeStore, name string, key []byte) {
	rec := manifest.Record{Kind: manifest.KindCache, Commit: commitB, Component: name, CodeHash: codeOf(name)}
	f.seed("cache/"+codeOf(name)+"/", rec, map[string]string{name + ".zip": name + " cached"}, key, nil)
}

func TestCheckComponents(t *testing.T) {
	key := []byte(theKey)
	tests := []struct {
		name      string
		key       string
		component string
		seed      func(f *fakeStore)
		found     []string // complete under the commit afterwards, as check says
		hits      []string // of them, copied from the cache
		build     []string
		commitRec bool // the commit's record is there afterwards
	}{
		{name: "nothing stored", seed: func(*fakeStore) {}, build: []string{"api", "fn1", "fn2"}},
		{name: "one found, one in the cache, one missing", seed: func(f *fakeStore) {
			seedComponent(f, commitA, "api", nil)
			seedCache(f, "fn1", nil)
		}, found: []string{"api", "fn1"}, hits: []string{"fn1"}, build: []string{"fn2"}},
		{name: "all found: check writes the commit's record", seed: func(f *fakeStore) {
			for _, c := range monoCodes {
				seedComponent(f, commitA, c.Name, nil)
			}
		}, found: []string{"api", "fn1", "fn2"}, commitRec: true},
		{name: "all from the cache", seed: func(f *fakeStore) {
			for _, c := range monoCodes {
				seedCache(f, c.Name, nil)
			}
		}, found: []string{"api", "fn1", "fn2"}, hits: []string{"api", "fn1", "fn2"}, commitRec: true},
		{name: "a component's record under another component", seed: func(f *fakeStore) {
			seedComponent(f, commitA, "api", nil)
			seedComponent(f, commitA, "fn1", nil)
			rec, _ := f.get(componentPrefix(commitA, "fn1") + manifest.Name)
			f.put(componentPrefix(commitA, "fn2")+manifest.Name, rec.body, nil, "")
			f.put(componentPrefix(commitA, "fn2")+"fn1.zip", []byte("fn1"), nil, "")
		}, found: []string{"api", "fn1"}, build: []string{"fn2"}},
		{name: "unsigned component with a key: replaced by the cache", key: theKey, seed: func(f *fakeStore) {
			seedComponent(f, commitA, "api", key)
			seedComponent(f, commitA, "fn1", nil)
			seedCache(f, "fn1", key)
		}, found: []string{"api", "fn1"}, hits: []string{"fn1"}, build: []string{"fn2"}},
		{name: "a replaced object is a miss", seed: func(f *fakeStore) {
			seedComponent(f, commitA, "api", nil)
			f.put(componentPrefix(commitA, "api")+"api.zip", []byte("EVIL"), nil, "")
		}, build: []string{"api", "fn1", "fn2"}},
		{name: "a newer component record: not copied over", seed: func(f *fakeStore) {
			f.put(componentPrefix(commitA, "api")+manifest.Name, []byte(`{"format":"s3-asset-manager/completion/v2"}`), nil, "")
			seedCache(f, "api", nil)
			seedComponent(f, commitA, "fn1", nil)
			seedComponent(f, commitA, "fn2", nil)
		}, found: []string{"fn1", "fn2"}, build: []string{"api"}},
		{name: "one component alone, the others missing", component: "fn1", seed: func(f *fakeStore) {
			seedCache(f, "fn1", nil)
		}, found: []string{"fn1"}, hits: []string{"fn1"}},
		{name: "one component alone completes the commit", component: "fn1", seed: func(f *fakeStore) {
			seedComponent(f, commitA, "api", nil)
			seedComponent(f, commitA, "fn2", nil)
			seedCache(f, "fn1", nil)
		}, found: []string{"fn1"}, hits: []string{"fn1"}, commitRec: true},
		{name: "one component alone, to build", component: "fn2", seed: func(f *fakeStore) {
			seedComponent(f, commitA, "api", nil)
			seedComponent(f, commitA, "fn1", nil)
		}, build: []string{"fn2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.seed(f)
			r, logs := newMonoRunner(t, f, tt.key, tt.component)
			res, err := r.Check(context.Background())
			if err != nil {
				t.Fatalf("check: %v\n%s", err, logs)
			}
			var found, hits, build []string
			for _, s := range res.Components {
				if !s.Checked {
					continue
				}
				if s.Found {
					found = append(found, s.Name)
				}
				if s.CacheHit {
					hits = append(hits, s.Name)
				}
				if s.Build {
					build = append(build, s.Name)
					if s.Reason == "" {
						t.Errorf("%s is to build without a reason", s.Name)
					}
				}
				if s.CodeHash != codeOf(s.Name) {
					t.Errorf("%s: code hash %s", s.Name, s.CodeHash)
				}
			}
			if !slices.Equal(found, tt.found) || !slices.Equal(hits, tt.hits) || !slices.Equal(build, tt.build) {
				t.Errorf("found %q hits %q build %q, want %q %q %q\n%s", found, hits, build, tt.found, tt.hits, tt.build, logs)
			}
			if res.Found != (len(tt.build) == 0) || res.CacheHit != (len(tt.hits) > 0) {
				t.Errorf("found %t cache-hit %t", res.Found, res.CacheHit)
			}

			// The package directory says the same.
			dir := r.Config.PackageDir
			if got := readList(t, filepath.Join(dir, ToBuildFile)); !slices.Equal(got, tt.build) {
				t.Errorf("%s: %q, want %q", ToBuildFile, got, tt.build)
			}
			if exists(filepath.Join(dir, FoundFile)) != (len(tt.build) == 0) {
				t.Errorf("%s: present %t with %d to build", FoundFile, !(len(tt.build) == 0), len(tt.build))
			}
			for _, c := range monoCodes {
				if got, want := exists(filepath.Join(dir, c.Name, FoundFile)), slices.Contains(tt.found, c.Name); got != want {
					t.Errorf("%s/%s: %t, want %t", c.Name, FoundFile, got, want)
				}
			}
			// Every hit is a complete, trusted component set under the commit now.
			for _, n := range tt.hits {
				set, err := r.LookupSet(context.Background(), ComponentSet(commitA, n))
				if err != nil || set.State != SetComplete || set.Record.Component != n || set.Record.Source != "cache/"+codeOf(n)+"/" {
					t.Errorf("%s after its cache hit: %v %v %+v", n, set.State, err, set.Record)
				}
			}
			rec := f.record("artifacts/"+commitA+"/", r.Config.SigningKey)
			if (rec != nil) != tt.commitRec {
				t.Fatalf("commit record %v, want %t\n%s", rec, tt.commitRec, logs)
			}
			if rec != nil {
				var names []string
				for _, c := range rec.Components {
					names = append(names, c.Name)
					if c.CodeHash != codeOf(c.Name) {
						t.Errorf("commit record: %s's code hash %s", c.Name, c.CodeHash)
					}
				}
				if !slices.Equal(names, []string{"api", "fn1", "fn2"}) || len(rec.Files) != 3 || rec.Files[0].Name != "api/api.zip" {
					t.Errorf("commit record %+v", rec)
				}
				set, err := r.LookupSet(context.Background(), Artifacts(commitA))
				if err != nil || set.State != SetComplete {
					t.Errorf("the commit's record does not look up as complete: %v %v", set.State, set.Reason)
				}
			}
		})
	}
}

func TestUploadComponents(t *testing.T) {
	tests := []struct {
		name      string
		component string
		uploadAs  string             // PACKAGE_COMPONENT at upload: "" check's, "-" none
		seed      func(f *fakeStore) // before check
		between   func(f *fakeStore) // between check and upload (another job)
		built     []string           // directories the build writes
		kind      Kind               // the failure, 0 for none
		uploaded  []string
		commitRec bool
	}{
		{name: "every component", seed: func(*fakeStore) {}, built: []string{"api", "fn1", "fn2"},
			uploaded: []string{"api", "fn1", "fn2"}, commitRec: true},
		{name: "the one missing", seed: func(f *fakeStore) {
			seedComponent(f, commitA, "api", nil)
			seedCache(f, "fn1", nil)
		}, built: []string{"fn2"}, uploaded: []string{"fn2"}, commitRec: true},
		{name: "a directory missing", seed: func(*fakeStore) {}, built: []string{"api", "fn2"}, kind: KindPackage},
		{name: "completed by another job meanwhile", seed: func(*fakeStore) {}, between: func(f *fakeStore) {
			seedComponent(f, commitA, "fn1", nil)
		}, built: []string{"api", "fn1", "fn2"}, uploaded: []string{"api", "fn2"}, commitRec: true},
		{name: "one job's component, the others missing", component: "fn1", seed: func(*fakeStore) {},
			built: []string{"fn1"}, uploaded: []string{"fn1"}},
		{name: "one job's component, the last", component: "fn1", seed: func(f *fakeStore) {
			seedComponent(f, commitA, "api", nil)
		}, between: func(f *fakeStore) {
			seedComponent(f, commitA, "fn2", nil)
		}, built: []string{"fn1"}, uploaded: []string{"fn1"}, commitRec: true},
		// Check looked up fn1 alone: nothing says whether fn2 is to build,
		// and "check found it" would be a lie (the found output).
		{name: "a component check did not look up", component: "fn1", uploadAs: "fn2", seed: func(*fakeStore) {},
			built: []string{"fn1", "fn2"}, kind: KindConfig},
		{name: "a component check did not look up, check's found", component: "fn1", uploadAs: "fn2", seed: func(f *fakeStore) {
			seedComponent(f, commitA, "fn1", nil)
		}, built: []string{"fn2"}, kind: KindConfig},
		{name: "every component after one job's check", component: "fn1", uploadAs: "-", seed: func(*fakeStore) {},
			built: []string{"fn1", "fn2"}, uploaded: []string{"fn1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.seed(f)
			r, logs := newMonoRunner(t, f, "", tt.component)
			if _, err := r.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tt.between != nil {
				tt.between(f)
			}
			switch tt.uploadAs {
			case "":
			case "-":
				r.Config.Component = ""
			default:
				r.Config.Component = tt.uploadAs
			}
			for _, n := range tt.built {
				writeFile(t, filepath.Join(r.Config.PackageDir, n, n+".zip"), "built "+n)
			}
			before := len(f.objs)
			res, err := r.Upload(context.Background())
			if tt.kind != 0 {
				var fl *Failure
				if !errors.As(err, &fl) || fl.Kind != tt.kind {
					t.Fatalf("upload: %v, want a failure of kind %d", err, tt.kind)
				}
				if res.Skipped == SkippedFound {
					t.Errorf("the refused upload says check found the set (the found output)")
				}
				if len(f.objs) != before {
					t.Errorf("the refused upload stored %d objects", len(f.objs)-before)
				}
				return
			}
			if err != nil {
				t.Fatalf("upload: %v\n%s", err, logs)
			}
			var uploaded []string
			for _, file := range res.Files {
				name, _, _ := strings.Cut(file.Name, "/")
				uploaded = append(uploaded, name)
			}
			if !slices.Equal(uploaded, tt.uploaded) {
				t.Errorf("uploaded %q, want %q\n%s", uploaded, tt.uploaded, logs)
			}
			for _, n := range tt.uploaded {
				o, ok := f.get(componentPrefix(commitA, n) + n + ".zip")
				if !ok || string(o.body) != "built "+n || o.meta[MetaCodeHash] != codeOf(n) || o.meta[MetaCommit] != commitA {
					t.Errorf("%s: stored %q %v", n, o.body, o.meta)
				}
				if rec := f.record("cache/"+codeOf(n)+"/", nil); rec == nil || rec.Component != n {
					t.Errorf("%s: cache entry %+v", n, rec)
				}
			}
			if rec := f.record("artifacts/"+commitA+"/", nil); (rec != nil) != tt.commitRec {
				t.Errorf("commit record %+v, want %t\n%s", rec, tt.commitRec, logs)
			}
		})
	}
}

// An upload of every component that fails at one (a file changed, S3
// failing) still fills the cache entries of those it completed: the re-run's
// check finds them complete under the commit and never fills them, so the
// next commit would rebuild them unchanged.
func TestUploadComponentsFailureFillsCompleted(t *testing.T) {
	f := newFake()
	r, logs := newMonoRunner(t, f, "", "")
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"api", "fn1", "fn2"} {
		writeFile(t, filepath.Join(r.Config.PackageDir, n, n+".zip"), "built "+n)
	}
	f.onUpload = func(req s3store.UploadRequest) {
		if strings.HasSuffix(req.Key, "/fn1/fn1.zip") {
			os.Remove(req.Path) // its upload fails
		}
	}
	if _, err := r.Upload(context.Background()); err == nil {
		t.Fatalf("upload succeeded without fn1's file\n%s", logs)
	}
	for _, n := range []string{"api", "fn1", "fn2"} {
		complete := f.record(componentPrefix(commitA, n), nil) != nil
		cached := f.record("cache/"+codeOf(n)+"/", nil) != nil
		if complete != cached || complete != (n == "api") { // stored in order: api, then fn1 fails
			t.Errorf("%s: complete %t, cache entry %t\n%s", n, complete, cached, logs)
		}
	}
}

// An upload of every component cancelled (SIGINT, SIGTERM: exit 130) while
// one uploads still fills the cache entries of those it completed before,
// as a failure does: the re-run's check finds them complete under the
// commit and its upload skips them, so they would never be filled.
func TestUploadComponentsCancelledFillsCompleted(t *testing.T) {
	f := newFake()
	r, logs := newMonoRunner(t, f, "", "")
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"api", "fn1", "fn2"} {
		writeFile(t, filepath.Join(r.Config.PackageDir, n, n+".zip"), "built "+n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.onUpload = func(req s3store.UploadRequest) {
		if strings.HasSuffix(req.Key, "/fn1/fn1.zip") {
			cancel() // interrupted while fn1 uploads
		}
	}
	if _, err := r.Upload(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("upload: %v, want cancelled\n%s", err, logs)
	}
	f.onUpload = nil
	for _, n := range []string{"api", "fn1", "fn2"} {
		complete := f.record(componentPrefix(commitA, n), nil) != nil
		cached := f.record("cache/"+codeOf(n)+"/", nil) != nil
		if complete != cached || complete != (n == "api") {
			t.Errorf("after the cancelled upload, %s: complete %t, cache entry %t\n%s", n, complete, cached, logs)
		}
	}
	// The re-run stores the rest: every component complete, and cached.
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Upload(context.Background()); err != nil {
		t.Fatalf("re-run's upload: %v\n%s", err, logs)
	}
	for _, n := range []string{"api", "fn1", "fn2"} {
		if f.record(componentPrefix(commitA, n), nil) == nil || f.record("cache/"+codeOf(n)+"/", nil) == nil {
			t.Errorf("after the re-run, %s is not both complete and cached\n%s", n, logs)
		}
	}
}

// Each component's cache entry is filled before its record is written:
// killed at any point (kill -9), a component complete under the commit has
// its entry (the re-run's check finds it and its upload skips it: nothing
// would fill it after).
func TestUploadComponentsFillCacheBeforeRecord(t *testing.T) {
	f := newFake()
	r, logs := newMonoRunner(t, f, "", "")
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"api", "fn1", "fn2"} {
		writeFile(t, filepath.Join(r.Config.PackageDir, n, n+".zip"), "built "+n)
	}
	var written atomic.Int32
	f.onWriteRecord = func(key string) {
		for _, n := range []string{"api", "fn1", "fn2"} {
			if key == componentPrefix(commitA, n)+manifest.Name {
				written.Add(1)
				if f.record("cache/"+codeOf(n)+"/", nil) == nil {
					t.Errorf("%s's record is written before its cache entry: killed now, it is complete and not cached", n)
				}
			}
		}
	}
	if _, err := r.Upload(context.Background()); err != nil || written.Load() != 3 {
		t.Fatalf("upload: %d records written, %v\n%s", written.Load(), err, logs)
	}
}

// Every component whose build left nothing to upload is named at once,
// each with what its path holds, before anything is sent.
func TestUploadComponentsNothingBuilt(t *testing.T) {
	f := newFake()
	r, _ := newMonoRunner(t, f, "", "")
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := r.Config.PackageDir
	writeFile(t, filepath.Join(dir, "api", ".hidden"), "not uploaded") // api: nothing to upload
	writeFile(t, filepath.Join(dir, "fn1"), "a file where fn1's directory goes")
	before := len(f.objs) // fn2: no directory
	_, err := r.Upload(context.Background())
	var fl *Failure
	if !errors.As(err, &fl) || fl.Kind != KindPackage || !errors.Is(err, ErrNoFiles) {
		t.Fatalf("upload: %v, want %v, of the package directory", err, ErrNoFiles)
	}
	for _, want := range []string{"api (", "fn1 (" + filepath.Join(dir, "fn1") + " is not a directory)", "fn2 ("} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if len(f.objs) != before {
		t.Errorf("the refused upload stored %d objects", len(f.objs)-before)
	}
}

// Components each complete, whose files together are more than the
// commit's record holds: the check finds every one, with a warning that the
// commit's record is not written, rather than failing (exit 5) every time.
func TestCommitRecordTooLarge(t *testing.T) {
	t.Parallel()
	f := newFake()
	for _, n := range []string{"api", "fn1"} {
		files := map[string]string{}
		for i := range 40_000 { // a record of some 9 MiB each
			files[fmt.Sprintf("%045d.zip", i)] = ""
		}
		rec := manifest.Record{Kind: manifest.KindArtifacts, Commit: commitA, Component: n, CodeHash: codeOf(n)}
		f.seed(componentPrefix(commitA, n), rec, files, nil, nil)
	}
	seedComponent(f, commitA, "fn2", nil)
	r, logs := newMonoRunner(t, f, "", "")
	res, err := r.Check(context.Background())
	if err != nil || !res.Found {
		t.Fatalf("check: found %t, %v", res.Found, err)
	}
	if _, ok := f.get("artifacts/" + commitA + "/" + manifest.Name); ok {
		t.Error("a commit record was written")
	}
	if !strings.Contains(logs.String(), "warning: ") {
		t.Errorf("no warning:\n%s", logs)
	}
}

// A regular file where a found component's directory goes (a whole set's
// artifact of the same name, left in a reused package directory): check
// fails naming the component and the path, and leaves no marker.
func TestCheckComponentPathIsAFile(t *testing.T) {
	f := newFake()
	for _, n := range []string{"api", "fn1", "fn2"} {
		seedComponent(f, commitA, n, nil)
	}
	r, _ := newMonoRunner(t, f, "", "")
	dir := r.Config.PackageDir
	writeFile(t, filepath.Join(dir, "fn1"), "an artifact of an earlier build")
	_, err := r.Check(context.Background())
	var fl *Failure
	if !errors.As(err, &fl) || fl.Kind != KindPackage || !strings.Contains(err.Error(), "component fn1: "+filepath.Join(dir, "fn1")+" is not a directory") {
		t.Fatalf("check: %v, want a failure of the package directory naming fn1", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("the failed check left %d entries in the package directory, want the file alone", len(ents))
	}
}

// A second upload of components already stored (a re-run of the upload
// step) says so, as a second upload of a whole set does; and a component
// stored is no longer one to build, with no reason to be.
func TestUploadComponentsTwice(t *testing.T) {
	f := newFake()
	r, logs := newMonoRunner(t, f, "", "")
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"api", "fn1", "fn2"} {
		writeFile(t, filepath.Join(r.Config.PackageDir, n, n+".zip"), "built "+n)
	}
	for i, want := range []string{"", SkippedComplete} {
		logs.Reset()
		res, err := r.Upload(context.Background())
		if err != nil {
			t.Fatalf("upload %d: %v\n%s", i+1, err, logs)
		}
		if res.Skipped != want || len(res.Files) != 3 { // uploaded, or already stored
			t.Errorf("upload %d: skipped %q with %d files, want %q", i+1, res.Skipped, len(res.Files), want)
		}
		// Only what was sent is said to be uploaded (a whole set's second
		// upload says nothing of the kind either).
		if sent := strings.Contains(logs.String(), "result: uploaded 3 files"); sent != (want == "") {
			t.Errorf("upload %d: says it uploaded the files: %t, want %t\n%s", i+1, sent, want == "", logs)
		}
		for _, s := range res.Components {
			if !s.Found || s.Build || s.Reason != "" {
				t.Errorf("upload %d: %+v, want found with no reason to build", i+1, s)
			}
		}
	}
}

// Two jobs finishing at once both write the commit's record: the second is
// refused (If-None-Match), reads the first back, finds it matches, succeeds.
func TestUploadComponentsRace(t *testing.T) {
	f := newFake()
	seedComponent(f, commitA, "api", nil)
	seedComponent(f, commitA, "fn2", nil)
	r, logs := newMonoRunner(t, f, "", "fn1")
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(r.Config.PackageDir, "fn1", "fn1.zip"), "built fn1")
	commitKey := "artifacts/" + commitA + "/" + manifest.Name
	raced := false
	var hook func(f *fakeStore, key string)
	hook = func(f *fakeStore, key string) {
		if key != commitKey {
			f.mu.Lock()
			f.beforeRecord = hook // not yet: wait for the commit's record
			f.mu.Unlock()
			return
		}
		raced = true
		// The other job got there first, with the same record.
		other, _ := newMonoRunner(t, f, "", "fn1")
		other.Config.PackageDir = r.Config.PackageDir
		states := []ComponentState{{Name: "api"}, {Name: "fn1"}, {Name: "fn2"}}
		if err := other.completeCommit(context.Background(), commitA, states, make([]Set, 3), Set{}); err != nil {
			t.Errorf("the other job: %v", err)
		}
	}
	f.beforeRecord = hook
	if _, err := r.Upload(context.Background()); err != nil {
		t.Fatalf("upload: %v\n%s", err, logs)
	}
	if !raced || f.writes[commitKey] != 1 {
		t.Errorf("raced %t, the commit's record written %d times, want once\n%s", raced, f.writes[commitKey], logs)
	}
	if !strings.Contains(logs.String(), "completed by another writer") {
		t.Errorf("the losing writer did not read the winner back:\n%s", logs)
	}
}

func readList(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A shell loop that uploads each component as soon as it is built keeps
// what was built when a later build fails: the re-run's check lists only the
// components still missing.
func TestComponentsRerunAfterFailedBuild(t *testing.T) {
	f := newFake()
	r, logs := newMonoRunner(t, f, "", "")
	if _, err := r.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	// fn1 builds and is uploaded; api's build then fails, the job stops.
	writeFile(t, filepath.Join(r.Config.PackageDir, "fn1", "fn1.zip"), "built fn1")
	r.Config.Component = "fn1"
	if _, err := r.Upload(context.Background()); err != nil {
		t.Fatalf("upload of fn1: %v\n%s", err, logs)
	}
	// The re-run, in a fresh workspace.
	r.Config.Component, r.Config.PackageDir = "", t.TempDir()
	res, err := r.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := readList(t, filepath.Join(r.Config.PackageDir, ToBuildFile)); !slices.Equal(got, []string{"api", "fn2"}) || res.Found {
		t.Errorf("the re-run builds %q, want [api fn2]\n%s", got, logs)
	}
}

// seedCommitOfComponents stores every component's set under commitA and the
// commit's record of them, naming each file "<component>/<file>".
func seedCommitOfComponents(f *fakeStore, key []byte) {
	rec := manifest.Record{Format: manifest.Format, Kind: manifest.KindArtifacts, Commit: commitA,
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for _, c := range monoCodes {
		seedComponent(f, commitA, c.Name, key)
		o, _ := f.get(componentPrefix(commitA, c.Name) + c.Name + ".zip")
		sum := sha256.Sum256(o.body)
		rec.Components = append(rec.Components, manifest.ComponentRef{Name: c.Name, CodeHash: c.Hash})
		rec.Files = append(rec.Files, manifest.File{Name: c.Name + "/" + c.Name + ".zip", Size: int64(len(o.body)), SHA256: hex.EncodeToString(sum[:]), ETag: o.etag})
	}
	body, err := manifest.Encode(rec, key)
	if err != nil {
		panic(err)
	}
	f.put("artifacts/"+commitA+"/"+manifest.Name, body, nil, "application/json")
}

// A commit's record of components counts only while every component file it
// names is stored as recorded, for any reader (a check without
// PACKAGE_COMPONENTS included): it is not a way around the listing.
func TestLookupCommitOfComponents(t *testing.T) {
	tests := []struct {
		name   string
		spoil  func(f *fakeStore)
		want   SetState
		reason string
	}{
		{"complete", func(*fakeStore) {}, SetComplete, "3 files"},
		{"a component file replaced", func(f *fakeStore) {
			f.put(componentPrefix(commitA, "fn1")+"fn1.zip", []byte("EVIL"), nil, "")
		}, SetDiffers, "fn1/fn1.zip was replaced"},
		{"a component file deleted", func(f *fakeStore) { f.del(componentPrefix(commitA, "api") + "api.zip") }, SetDiffers, "api/api.zip was deleted"},
	}
	for _, tt := range tests {
		for _, key := range []string{"", theKey} {
			t.Run(tt.name+map[string]string{"": ", unsigned", theKey: ", signed"}[key], func(t *testing.T) {
				f := newFake()
				var k []byte
				if key != "" {
					k = []byte(key)
				}
				seedCommitOfComponents(f, k)
				tt.spoil(f)
				r, _ := newRunner(t, f, key, false, false)
				set, err := r.LookupSet(context.Background(), Artifacts(commitA))
				if err != nil {
					t.Fatal(err)
				}
				if set.State != tt.want || !strings.Contains(set.Reason, tt.reason) {
					t.Errorf("state %v (%s), want %v naming %q", set.State, set.Reason, tt.want, tt.reason)
				}
				// A check without PACKAGE_COMPONENTS follows the lookup.
				res, err := r.Check(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if res.Found != (tt.want == SetComplete) {
					t.Errorf("check found %v, want %v", res.Found, tt.want == SetComplete)
				}
			})
		}
	}
}

// A complete commit record of other components (a configuration with
// another component list ran first) is left as it is, with a warning: a
// download of the whole commit gets the same set whichever configuration ran
// last. One that is not complete is written for this configuration.
func TestCommitRecordOfOtherComponents(t *testing.T) {
	commitRecord := func(f *fakeStore, names ...string) {
		files := map[string]string{}
		var refs []manifest.ComponentRef
		for _, n := range names {
			files[n+"/"+n+".zip"] = n
			refs = append(refs, manifest.ComponentRef{Name: n, CodeHash: strings.Repeat("0", 64)})
		}
		f.seed("artifacts/"+commitA+"/", manifest.Record{Kind: manifest.KindArtifacts, Commit: commitA, Components: refs}, files, nil, nil)
	}
	all := []string{"api", "fn1", "fn2"}
	tests := []struct {
		name   string
		seed   func(f *fakeStore)
		kept   bool // the record seeded is left as it is
		warned bool
		says   string // in the warning
	}{
		{name: "fewer components", seed: func(f *fakeStore) { commitRecord(f, "api", "fn1") }, kept: true, warned: true},
		{name: "more components", seed: func(f *fakeStore) {
			commitRecord(f, "api", "fn1", "fn2", "web") // web: a component of the other configuration
		}, kept: true, warned: true},
		{name: "other components, the record not complete", seed: func(f *fakeStore) {
			commitRecord(f, "api", "fn1", "web")
			f.del("artifacts/" + commitA + "/web/web.zip") // the other configuration's component, deleted since
		}},
		{name: "none yet", seed: func(*fakeStore) {}},
		// Stored before PACKAGE_COMPONENTS was set, for the same commit.
		{name: "a whole set, without components", seed: func(f *fakeStore) {
			f.seed("artifacts/"+commitA+"/", manifest.Record{Kind: manifest.KindArtifacts, Commit: commitA},
				map[string]string{"app.zip": "app"}, nil, nil)
		}, kept: true, warned: true, says: "complete without components (1 file), not with this configuration's (api, fn1, fn2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			for _, n := range all {
				seedComponent(f, commitA, n, nil)
			}
			tt.seed(f)
			before, _ := f.get("artifacts/" + commitA + "/" + manifest.Name)
			r, logs := newMonoRunner(t, f, "", "")
			res, err := r.Check(context.Background())
			if err != nil || !res.Found {
				t.Fatalf("check: found %t, %v\n%s", res.Found, err, logs)
			}
			after, _ := f.get("artifacts/" + commitA + "/" + manifest.Name)
			if kept := bytes.Equal(before.body, after.body); kept != tt.kept {
				t.Errorf("record left as it was: %t, want %t\n%s", kept, tt.kept, logs)
			}
			if warned := strings.Contains(logs.String(), "warning: s3://fake/artifacts/"+commitA+"/: the commit's record is complete "); warned != tt.warned {
				t.Errorf("warned %t, want %t\n%s", warned, tt.warned, logs)
			}
			if !strings.Contains(logs.String(), tt.says) {
				t.Errorf("the warning does not say %q:\n%s", tt.says, logs)
			}
			set, err := r.LookupSet(context.Background(), Artifacts(commitA))
			if err != nil || set.State != SetComplete {
				t.Fatalf("the commit's record afterwards: %v %v", set.State, err)
			}
			if !tt.kept && !slices.Equal(componentNames(set.Record.Components), all) {
				t.Errorf("the record written names %q, want %q", componentNames(set.Record.Components), all)
			}
		})
	}
}

// namedRepo is fakeMonoRepo whose ComponentNames answers names, counting
// the calls of Components (the hash).
type namedRepo struct {
	fakeMonoRepo
	names  []string
	hashed *atomic.Int32
}

func (r namedRepo) Components(ctx context.Context) ([]ComponentCode, error) {
	r.hashed.Add(1)
	return r.fakeMonoRepo.Components(ctx)
}

func (r namedRepo) ComponentNames(context.Context) ([]string, error) { return r.names, nil }

// A check that finds the commit complete with this configuration's
// components (its record names exactly them) hashes nothing and makes only
// the lookup's requests (the commit's, and PACKAGE_COMPONENT's): each
// component's code hash is the record's, and the package directory and the
// result say what the hashing path says of the same bucket. Any other
// record is for the hashing path (see TestCommitRecordOfOtherComponents too).
func TestCheckFoundInCommitRecord(t *testing.T) {
	all := []string{"api", "fn1", "fn2"}
	for _, tt := range []struct {
		name      string
		component string
		names     []string // ComponentNames' answer
		reads     []string // what a found check reads and lists, under the commit; nil: hashed
		spoil     func(f *fakeStore)
	}{
		{name: "every component", names: all, reads: []string{""}},
		{name: "one component", component: "fn1", names: all, reads: []string{"", "fn1/"}},
		{name: "names not told", names: nil},
		{name: "a component more", names: []string{"api", "docs", "fn1", "fn2"}},
		{name: "a component less", names: []string{"api", "fn1"}},
		{name: "a component file replaced", names: all, spoil: func(f *fakeStore) {
			f.put(componentPrefix(commitA, "fn2")+"fn2.zip", []byte("EVIL"), nil, "")
		}},
		{name: "one component whose record is gone", component: "fn1", names: all, spoil: func(f *fakeStore) {
			f.del(componentPrefix(commitA, "fn1") + manifest.Name)
		}},
		// Prune deletes a component's record before its files: the commit's
		// record still lists every file, stored as recorded.
		{name: "a component's record gone, whole commit", names: all, spoil: func(f *fakeStore) {
			f.del(componentPrefix(commitA, "fn1") + manifest.Name)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The same bucket twice: through the hashing path (names not
			// told), and with tt's names.
			var dirs [2]string
			var results [2]CheckResult
			for k, names := range [][]string{nil, tt.names} {
				f := newFake()
				seedCommitOfComponents(f, nil)
				if tt.spoil != nil {
					tt.spoil(f)
				}
				r, logs := newMonoRunner(t, f, "", tt.component)
				var hashed atomic.Int32
				r.OpenRepo = func(string) (Repo, error) {
					return namedRepo{fakeMonoRepo{fakeRepo{commitA, hashX}}, names, &hashed}, nil
				}
				res, err := r.Check(context.Background())
				if err != nil {
					t.Fatalf("check: %v\n%s", err, logs)
				}
				dirs[k], results[k] = r.Config.PackageDir, res
				if k == 0 {
					continue
				}
				if n := hashed.Load(); n != map[bool]int32{true: 0, false: 1}[tt.reads != nil] {
					t.Errorf("hashed %d times\n%s", n, logs)
				}
				if tt.reads == nil {
					continue
				}
				var want []string
				for _, c := range tt.reads {
					want = append(want, "artifacts/"+commitA+"/"+c)
				}
				var reads []string
				for _, k := range f.reads {
					reads = append(reads, strings.TrimSuffix(k, manifest.Name))
				}
				slices.Sort(reads)
				lists := slices.Sorted(slices.Values(f.lists))
				if !slices.Equal(reads, want) || !slices.Equal(lists, want) {
					t.Errorf("reads %q lists %q, want one of each of %q\n%s", reads, lists, want, logs)
				}
				if !res.Found || len(f.writes) != 0 {
					t.Errorf("found %t, records written %v\n%s", res.Found, f.writes, logs)
				}
			}
			if !reflect.DeepEqual(results[0], results[1]) {
				t.Errorf("result %+v\nwant (hashing path) %+v", results[1], results[0])
			}
			for _, name := range []string{ComponentsFile, ToBuildFile, FoundFile, "api/" + FoundFile, "fn1/" + FoundFile, "fn2/" + FoundFile} {
				a, aerr := os.ReadFile(filepath.Join(dirs[0], name))
				b, berr := os.ReadFile(filepath.Join(dirs[1], name))
				if !bytes.Equal(a, b) || (aerr == nil) != (berr == nil) {
					t.Errorf("%s: %q (%v), hashing path %q (%v)", name, b, berr, a, aerr)
				}
			}
		})
	}
}

// A component with nothing stored under the commit (its listing, made
// before the hash, shows none) is missing without a lookup of its own: no
// read of its record, no listing of its prefix. One that has objects there
// is looked up as before.
func TestComponentsLookedUpOnlyWhereStored(t *testing.T) {
	f := newFake()
	seedComponent(f, commitA, "api", nil)
	seedCache(f, "fn1", nil)
	r, logs := newMonoRunner(t, f, "", "")
	res, err := r.Check(context.Background())
	if err != nil {
		t.Fatalf("check: %v\n%s", err, logs)
	}
	var found, build []string
	for _, s := range res.Components {
		if s.Found {
			found = append(found, s.Name)
		}
		if s.Build {
			build = append(build, s.Name)
		}
	}
	if !slices.Equal(found, []string{"api", "fn1"}) || !slices.Equal(build, []string{"fn2"}) {
		t.Fatalf("found %q, to build %q\n%s", found, build, logs)
	}
	var looked []string
	for _, k := range append(slices.Clone(f.reads), f.lists...) {
		for _, c := range monoCodes {
			if strings.HasPrefix(k, componentPrefix(commitA, c.Name)) && !slices.Contains(looked, c.Name) {
				looked = append(looked, c.Name)
			}
		}
	}
	if !slices.Equal(looked, []string{"api"}) {
		t.Errorf("component sets looked up: %q, want only api's (stored)\nreads %q\nlists %q", looked, f.reads, f.lists)
	}
	if !strings.Contains(logs.String(), "component fn2: not found: nothing under s3://fake/"+componentPrefix(commitA, "fn2")) {
		t.Errorf("fn2's log:\n%s", logs)
	}
}

// listedMonoRepo is fakeMonoRepo whose components come with their file
// lists, as a real checkout's do, so their misses are explained.
type listedMonoRepo struct{ fakeMonoRepo }

func (listedMonoRepo) Components(context.Context) ([]ComponentCode, error) {
	codes := slices.Clone(monoCodes)
	for i, c := range codes {
		codes[i].List = fileList(c.Hash, []string{"**", c.Name + "/**"}, c.Name+"/a")
	}
	return codes, nil
}

// The components' misses are explained from one listing of their pointers:
// a component with none is "nothing in the cache yet" without a GET (but
// the first miss, which reads its own beside the listing), one with a
// pointer reads it.
func TestComponentPointersListedOnce(t *testing.T) {
	f := newFake()
	ptrKey := func(name string) string { return "cache/" + LatestDir + name + ".json" }
	f.put(ptrKey("fn1"), []byte(`{"format":"`+LatestFormat+`","entries":[]}`), nil, "application/json")
	r, logs := newMonoRunner(t, f, "", "")
	r.OpenRepo = func(string) (Repo, error) { return listedMonoRepo{fakeMonoRepo{fakeRepo{commitA, hashX}}}, nil }
	res, err := r.Check(context.Background())
	if err != nil {
		t.Fatalf("check: %v\n%s", err, logs)
	}
	reasons := map[string]string{}
	for _, s := range res.Components {
		reasons[s.Name] = s.Reason
	}
	want := map[string]string{"api": NothingCached, "fn2": NothingCached, "fn1": NoEarlierBuild}
	for name, w := range want {
		if got := reasons[name]; !strings.HasPrefix(got, w) {
			t.Errorf("%s: reason %q, want %q\n%s", name, got, w, logs)
		}
	}
	var reads, lists []string
	for _, k := range f.reads {
		if strings.HasPrefix(k, "cache/"+LatestDir) {
			reads = append(reads, k)
		}
	}
	for _, p := range f.lists {
		if strings.HasPrefix(p, "cache/"+LatestDir) {
			lists = append(lists, p)
		}
	}
	// The first miss reads its own pointer beside the listing; the others
	// only the one that exists.
	missing := 0
	for _, k := range reads {
		if k != ptrKey("fn1") {
			missing++
		}
	}
	if !slices.Contains(reads, ptrKey("fn1")) || missing > 1 || len(lists) != 1 {
		t.Errorf("pointers read %q, listed %q; want fn1's read, at most one missing pointer read (the first miss's), one listing", reads, lists)
	}
}

// Where every component has a pointer (the steady state), the first miss
// reads its pointer beside the listing, not after it: no round trip more
// than without the listing. The listing here waits for a pointer's read;
// had the read waited for the listing, neither would come.
func TestComponentPointerReadBesideListing(t *testing.T) {
	f := newFake()
	ptrKey := func(name string) string { return "cache/" + LatestDir + name + ".json" }
	for _, c := range monoCodes {
		f.put(ptrKey(c.Name), []byte(`{"format":"`+LatestFormat+`","entries":[]}`), nil, "application/json")
	}
	read := make(chan struct{})
	var once sync.Once
	f.onRead = func(key string) {
		if strings.HasPrefix(key, "cache/"+LatestDir) {
			once.Do(func() { close(read) })
		}
	}
	f.beforeList = func(prefix string) {
		if !strings.HasPrefix(prefix, "cache/"+LatestDir) {
			return
		}
		select {
		case <-read:
		case <-time.After(10 * time.Second): // a failure, not a wait: the read never comes
			t.Error("the pointers were listed before any was read: the first miss waited for the listing")
		}
	}
	r, logs := newMonoRunner(t, f, "", "")
	r.OpenRepo = func(string) (Repo, error) { return listedMonoRepo{fakeMonoRepo{fakeRepo{commitA, hashX}}}, nil }
	res, err := r.Check(context.Background())
	if err != nil {
		t.Fatalf("check: %v\n%s", err, logs)
	}
	for _, s := range res.Components {
		if !strings.HasPrefix(s.Reason, NoEarlierBuild) {
			t.Errorf("%s: reason %q, want %q\n%s", s.Name, s.Reason, NoEarlierBuild, logs)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var reads, lists int
	for _, k := range f.reads {
		if strings.HasPrefix(k, "cache/"+LatestDir) {
			reads++
		}
	}
	for _, p := range f.lists {
		if strings.HasPrefix(p, "cache/"+LatestDir) {
			lists++
		}
	}
	if reads != len(monoCodes) || lists != 1 {
		t.Errorf("%d pointers read, %d listings; want %d, 1", reads, lists, len(monoCodes))
	}
}

// A commit's set indexes its components by the first path segment under
// its prefix: present when anything is stored, true when the record is.
func TestSetComponents(t *testing.T) {
	obj := func(k string) s3store.Object { return s3store.Object{Key: k} }
	s := Set{Prefix: "artifacts/c/", tree: []s3store.Object{
		obj("artifacts/c/api/" + manifest.Name), obj("artifacts/c/api/a.zip"),
		obj("artifacts/c/fn1/a.zip"), obj("artifacts/c/fn1/sub/" + manifest.Name),
		obj("artifacts/c/loose.txt"),
	}}
	want := map[string]bool{"api": true, "fn1": false}
	if got := s.components(); !reflect.DeepEqual(got, want) {
		t.Errorf("components() = %v, want %v", got, want)
	}
}
