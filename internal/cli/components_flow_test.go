package cli

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nsmithuk/s3-asset-manager/internal/ghaction"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

const (
	monoShared     = "package-lock.json libs/**"
	monoComponents = "lambdas/*\napi: services/api/**"
)

var allComponents = []string{"api", "fn1", "fn2", "fn3"}

// monoSetup makes the monorepo and the settings with components on.
func monoSetup(t *testing.T, srv *s3test.Server, bucket string) (map[string]string, dirs) {
	t.Helper()
	env, d := setupWith(t, srv, bucket, monorepoFiles)
	env["CODE_HASH_FIND_FILTER"] = monoShared
	env["PACKAGE_COMPONENTS"] = monoComponents
	return env, d
}

// monoBuilt is monoSetup, then check → build every component → upload.
func monoBuilt(t *testing.T, srv *s3test.Server, bucket string) (map[string]string, dirs) {
	t.Helper()
	env, d := monoSetup(t, srv, bucket)
	if r := run(t, env, "check"); r.code != ExitOK {
		t.Fatal(r)
	}
	build(t, d.pkg, "v1", allComponents...)
	if r := run(t, env, "upload"); r.code != ExitOK {
		t.Fatalf("upload: %v", r)
	}
	return env, d
}

// toBuild reads the build list check left in the package directory.
func toBuild(t *testing.T, pkg string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pkg, ".components-to-build"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// build writes each component's artifact, as a build would.
func build(t *testing.T, pkg string, version string, names ...string) {
	t.Helper()
	for _, n := range names {
		writeFiles(t, pkg, map[string]string{n + "/" + n + ".zip": n + " " + version, n + "/" + n + ".txt": "notes of " + n})
	}
}

// commitRecord reads the commit's own record, nil if there is none.
func commitRecord(t *testing.T, srv *s3test.Server, bucket, commit string) *struct {
	Components []struct{ Name, CodeHash string }
	Files      []struct{ Name string }
} {
	t.Helper()
	for _, o := range listAll(t, srv, bucket) {
		if o.Key == "artifacts/"+commit+"/.s3-asset-manager.json" {
			_, b := srv.Get(t, bucket, o.Key)
			var rec struct {
				Components []struct{ Name, CodeHash string }
				Files      []struct{ Name string }
			}
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatal(err)
			}
			return &rec
		}
	}
	return nil
}

// wantCommitRecord checks that the commit's record lists every component
// and each component's two files.
func wantCommitRecord(t *testing.T, srv *s3test.Server, bucket, commit string) {
	t.Helper()
	rec := commitRecord(t, srv, bucket, commit)
	if rec == nil {
		t.Fatalf("no record for commit %s", commit)
	}
	var names, files []string
	for _, c := range rec.Components {
		names = append(names, c.Name)
		if len(c.CodeHash) != 64 {
			t.Errorf("component %s: code hash %q", c.Name, c.CodeHash)
		}
	}
	for _, f := range rec.Files {
		files = append(files, f.Name)
	}
	var want []string
	for _, n := range allComponents {
		want = append(want, n+"/"+n+".txt", n+"/"+n+".zip")
	}
	sort.Strings(files)
	if !slices.Equal(names, allComponents) || !slices.Equal(files, want) {
		t.Errorf("commit record: components %q files %q, want %q and %q", names, files, allComponents, want)
	}
}

// checkOutputs runs check as a GitHub step and returns its outputs.
func checkOutputs(t *testing.T, env map[string]string) (result, map[string]string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "output")
	if err := os.WriteFile(out, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": out}
	for k, v := range env {
		e[k] = v
	}
	r := run(t, e, "check")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	outputs, err := ghaction.ParseOutputFile(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return r, outputs
}

// The single-job flow: check → build what it lists → upload, then the next
// commits rebuild only the component whose sources changed, and a commit that
// restores earlier sources gets every component from the cache.
func TestComponentsSingleJob(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoSetup(t, srv, bucket)

		r, out := checkOutputs(t, env)
		if r.code != ExitOK || exists(filepath.Join(d.pkg, ".found")) {
			t.Fatalf("first check: %v", r)
		}
		if got := toBuild(t, d.pkg); !slices.Equal(got, allComponents) {
			t.Errorf("first check: to build %q, want all %q", got, allComponents)
		}
		if out["components-to-build"] != `["api","fn1","fn2","fn3"]` || out["found"] != "false" {
			t.Errorf("first check: outputs %q", out)
		}
		var states map[string]struct {
			Found, CacheHit, Build bool
			CodeHash               string
		}
		if err := json.Unmarshal([]byte(out["components"]), &states); err != nil || len(states) != 4 || !states["fn1"].Build || len(states["fn1"].CodeHash) != 64 {
			t.Errorf("first check: components output %q (%v)", out["components"], err)
		}

		// A component the build did not write is an error naming it; nothing is stored.
		build(t, d.pkg, "v1", "api", "fn1", "fn3")
		if r := run(t, env, "upload"); r.code != ExitPackage || !strings.Contains(r.stderr, "fn2") {
			t.Fatalf("upload without fn2/: want exit %d naming fn2: %v", ExitPackage, r)
		}
		if objs := listAll(t, srv, bucket); len(objs) != 0 {
			t.Errorf("the refused upload stored %q", keysOf(objs))
		}
		build(t, d.pkg, "v1", "fn2")
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatalf("upload: %v", r)
		}
		wantCommitRecord(t, srv, bucket, d.head)
		for _, n := range allComponents {
			_, body := srv.Get(t, bucket, "artifacts/"+d.head+"/"+n+"/"+n+".zip")
			if string(body) != n+" v1" {
				t.Errorf("%s: stored %q", n, body)
			}
		}

		// Found: every component complete, .found and each <name>/.found.
		pkg := freshPackages(t, env)
		r, out = checkOutputs(t, env)
		if r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) || len(toBuild(t, pkg)) != 0 || out["components-to-build"] != "[]" || out["found"] != "true" {
			t.Fatalf("check after upload: %v %q", r, out)
		}
		for _, n := range allComponents {
			if !exists(filepath.Join(pkg, n, ".found")) {
				t.Errorf("%s/.found missing", n)
			}
		}

		// One component's source changes: it alone is to build, the others
		// are copied from the cache; the commit's record waits for it.
		second := commit(t, d.repo, map[string]string{"lambdas/fn2/index.js": "exports.fn2 = 2\n"})
		pkg = freshPackages(t, env)
		r, out = checkOutputs(t, env)
		if got := toBuild(t, pkg); r.code != ExitOK || !slices.Equal(got, []string{"fn2"}) || out["cache-hit"] != "true" {
			t.Fatalf("fn2 changed: to build %q, want [fn2]: %v %q", got, r, out)
		}
		if exists(filepath.Join(pkg, ".found")) || exists(filepath.Join(pkg, "fn2", ".found")) || !exists(filepath.Join(pkg, "fn1", ".found")) {
			t.Errorf("markers wrong after a partial hit")
		}
		if commitRecord(t, srv, bucket, second) != nil {
			t.Errorf("the commit's record was written before fn2 was complete")
		}
		before := listAll(t, srv, bucket)
		build(t, pkg, "v2", "fn2")
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatalf("upload of fn2: %v", r)
		}
		wantCommitRecord(t, srv, bucket, second)
		// Only fn2 was uploaded: its two files, its record, its cache entry
		// (two files, the file list of its code hash and a record) and the
		// commit's record are new (fn2's pointer was there already).
		if n := len(listAll(t, srv, bucket)) - len(before); n != 8 {
			t.Errorf("upload of one component added %d objects, want 8", n)
		}
		_, body := srv.Get(t, bucket, "artifacts/"+second+"/fn1/fn1.zip")
		if string(body) != "fn1 v1" {
			t.Errorf("fn1 under the second commit: %q, want the cached v1", body)
		}

		// Restoring fn2's first sources: every component from the cache, and
		// check writes the commit's record itself.
		third := commit(t, d.repo, map[string]string{"lambdas/fn2/index.js": "exports.fn2 = 1\n"})
		pkg = freshPackages(t, env)
		r = run(t, env, "check")
		if r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) || len(toBuild(t, pkg)) != 0 {
			t.Fatalf("restored sources: %v", r)
		}
		wantCommitRecord(t, srv, bucket, third)
		_, body = srv.Get(t, bucket, "artifacts/"+third+"/fn2/fn2.zip")
		if string(body) != "fn2 v1" {
			t.Errorf("fn2 under the third commit: %q, want the first build", body)
		}
		// And the rebuilt fn2 is a hit for a commit that brings its sources back.
		fourth := commit(t, d.repo, map[string]string{"lambdas/fn2/index.js": "exports.fn2 = 2\n"})
		pkg = freshPackages(t, env)
		checkFound(t, env, pkg, "fn2's second sources again")
		_, body = srv.Get(t, bucket, "artifacts/"+fourth+"/fn2/fn2.zip")
		if string(body) != "fn2 v2" {
			t.Errorf("fn2 under the fourth commit: %q, want the rebuild", body)
		}
		// upload after a found check changes nothing.
		before = listAll(t, srv, bucket)
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		if after := listAll(t, srv, bucket); !reflect.DeepEqual(before, after) {
			t.Error("upload after a found check changed the bucket")
		}
	})
}

// From a commit whose components are all stored, each kind of change gives
// exactly the right build list.
func TestComponentsBuildList(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoBuilt(t, srv, bucket)
		tests := []struct {
			name   string
			files  map[string]string
			env    map[string]string
			want   []string
			before []string // components listed before the change (default: all)
		}{
			{name: "nothing but docs", files: map[string]string{"docs/index.md": "more\n"}, want: nil},
			{name: "one component's source", files: map[string]string{"lambdas/fn3/index.js": "3\n"}, want: []string{"fn3"}},
			{name: "a named component's source", files: map[string]string{"services/api/main.go": "package main // 2\n"}, want: []string{"api"}},
			{name: "a shared source", files: map[string]string{"libs/util.js": "exports.util = 2\n"}, want: allComponents},
			{name: "a component's pattern", env: map[string]string{"PACKAGE_COMPONENTS": "lambdas/*\napi: services/api/** docs/**"}, want: []string{"api"}},
			{name: "a shared pattern", env: map[string]string{"CODE_HASH_FIND_FILTER": "package-lock.json"}, want: allComponents},
			{name: "a component directory added", files: map[string]string{"lambdas/fn4/index.js": "4\n"}, want: []string{"fn4"}},
			{name: "a named component added", env: map[string]string{"PACKAGE_COMPONENTS": monoComponents + "\ndocs: docs/**"}, want: []string{"docs"}},
			{name: "the salt", env: map[string]string{"CODE_HASH_SALT": "node24"}, want: allComponents},
		}
		base := d.head
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				git(t, d.repo, "reset", "-q", "--hard", base)
				files := map[string]string{"README.md": strings.Repeat("x", i+1)} // a new commit each time
				for k, v := range tt.files {
					files[k] = v
				}
				commit(t, d.repo, files)
				e := maps.Clone(env)
				maps.Copy(e, tt.env)
				pkg := freshPackages(t, e)
				r := run(t, e, "check")
				if r.code != ExitOK {
					t.Fatal(r)
				}
				if got := toBuild(t, pkg); !slices.Equal(got, tt.want) {
					t.Errorf("to build %q, want %q\n%s", got, tt.want, r.stderr)
				}
				if found := exists(filepath.Join(pkg, ".found")); found != (len(tt.want) == 0) {
					t.Errorf(".found %t with %d to build", found, len(tt.want))
				}
			})
		}
	})
}

// The matrix flow: a job per component checks, builds and uploads its own,
// all at once; whichever finishes last writes the commit's record, and the
// two that may race to write it agree.
func TestComponentsMatrix(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoSetup(t, srv, bucket)
		// The planning job: the build list for the matrix.
		r, out := checkOutputs(t, env)
		if r.code != ExitOK || out["components-to-build"] != `["api","fn1","fn2","fn3"]` {
			t.Fatalf("plan: %v %q", r, out)
		}
		var matrix []string
		if err := json.Unmarshal([]byte(out["components-to-build"]), &matrix); err != nil {
			t.Fatal(err)
		}

		// One job each, all at once, each in its own workspace.
		var wg sync.WaitGroup
		results := make([]result, len(matrix))
		for i, name := range matrix {
			wg.Go(func() {
				e := map[string]string{}
				for k, v := range env {
					e[k] = v
				}
				e["PACKAGE_COMPONENT"] = name
				e["PACKAGE_DIRECTORY"] = filepath.Join(t.TempDir(), "packages")
				if r := runBinary(t, d.repo, "check", e); r.code != ExitOK || exists(filepath.Join(e["PACKAGE_DIRECTORY"], ".found")) {
					results[i] = r
					return
				}
				build(t, e["PACKAGE_DIRECTORY"], "v1", name)
				results[i] = runBinary(t, d.repo, "upload", e)
			})
		}
		wg.Wait()
		for i, r := range results {
			if r.code != ExitOK {
				t.Errorf("job %s: %v", matrix[i], r)
			}
		}
		wantCommitRecord(t, srv, bucket, d.head)

		// A job's check of a component another job completed finds it.
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		e["PACKAGE_COMPONENT"] = "fn2"
		pkg := freshPackages(t, e)
		r, out = checkOutputs(t, e)
		if r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) || out["found"] != "true" || out["components-to-build"] != "[]" {
			t.Errorf("fn2 alone after the matrix: %v %q", r, out)
		}
		var states map[string]any
		if err := json.Unmarshal([]byte(out["components"]), &states); err != nil || len(states) != 1 || states["fn2"] == nil {
			t.Errorf("components output of one job %q, want fn2's alone", out["components"])
		}
		e["PACKAGE_COMPONENT"] = "fn9"
		if r := run(t, e, "check"); r.code != ExitUsage || !strings.Contains(r.stderr, `"fn9" is not one of`) {
			t.Errorf("an unknown component: %v", r)
		}
	})
}

// Under a key prefix and with a signing key, a component's set written
// without the key (an untrusted pipeline's) is rebuilt, not used, and the
// next signed upload replaces it.
func TestComponentsSigned(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoSetup(t, srv, bucket)
		env["PACKAGE_ASSETS_KEY_PREFIX"] = "team-a"
		// An unsigned upload of everything (a pipeline without the key).
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Fatal(r)
		}
		build(t, d.pkg, "unsigned", allComponents...)
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		// The signed pipeline trusts none of it.
		env["PACKAGE_ASSETS_SIGNING_KEY"] = "the-signing-key-0123456789"
		pkg := freshPackages(t, env)
		r := run(t, env, "check")
		if got := toBuild(t, pkg); r.code != ExitOK || !slices.Equal(got, allComponents) {
			t.Fatalf("signed check over unsigned sets: to build %q: %v", got, r)
		}
		build(t, pkg, "signed", allComponents...)
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatalf("signed upload: %v", r)
		}
		_, body := srv.Get(t, bucket, "team-a/artifacts/"+d.head+"/fn1/fn1.zip")
		if string(body) != "fn1 signed" {
			t.Errorf("fn1: %q, want the signed build", body)
		}
		pkg = freshPackages(t, env)
		if r := run(t, env, "check"); r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) {
			t.Errorf("signed check after the signed upload: %v", r)
		}
		_, rec := srv.Get(t, bucket, "team-a/artifacts/"+d.head+"/.s3-asset-manager.json")
		if !strings.Contains(string(rec), `"signature": "hmac-sha256:`) || !strings.Contains(string(rec), `"components"`) {
			t.Errorf("the commit's record is not the signed record of components:\n%s", rec)
		}
	})
}

// A commit's record of components is checked file by file even by a check
// without PACKAGE_COMPONENTS: with one component file replaced, the commit
// is not found (the lookup lists the commit's prefix at any depth).
func TestCommitOfComponentsChecksFiles(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoBuilt(t, srv, bucket)
		wantCommitRecord(t, srv, bucket, d.head)
		plain := maps.Clone(env)
		delete(plain, "PACKAGE_COMPONENTS")
		checkFound(t, plain, d.pkg, "the complete commit is not found")
		putObject(t, srv, bucket, "artifacts/"+d.head+"/fn1/fn1.zip", []byte("EVIL"))
		r := checkMiss(t, plain, d.pkg, "found with a component file replaced")
		if !strings.Contains(r.stderr, "fn1/fn1.zip was replaced") {
			t.Errorf("the miss does not name the file:\n%s", r.stderr)
		}
	})
}

// A check with another component list on a commit already complete leaves
// the commit's record as it is and says so: a download of the whole commit
// gets the same set whichever configuration ran last. The new
// configuration's components are each complete under their own prefix.
func TestCommitRecordKeptForAnotherComponentList(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoBuilt(t, srv, bucket)
		recKey := "artifacts/" + d.head + "/.s3-asset-manager.json"
		_, before := srv.Get(t, bucket, recKey)
		wholeDownload := func(t *testing.T) []string {
			t.Helper()
			denv, dir := deployEnv(t, srv, bucket, d.head)
			if r := run(t, denv, "download"); r.code != ExitOK {
				t.Fatalf("download of the whole commit: %v", r)
			}
			var got []string
			filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
				if err == nil && !e.IsDir() {
					rel, _ := filepath.Rel(dir, p)
					got = append(got, filepath.ToSlash(rel))
				}
				return nil
			})
			sort.Strings(got)
			return got
		}
		want := wholeDownload(t)

		for _, tc := range []struct {
			name, components string
			build            []string
		}{
			{"one more component", monoComponents + "\ndocs: docs/**", []string{"docs"}},
			{"one fewer", "lambdas/*", nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				env["PACKAGE_COMPONENTS"] = tc.components
				pkg := freshPackages(t, env)
				r := run(t, env, "check")
				if r.code != ExitOK || !slices.Equal(toBuild(t, pkg), tc.build) {
					t.Fatalf("check: to build %q, want %q\n%v", toBuild(t, pkg), tc.build, r)
				}
				if len(tc.build) > 0 {
					build(t, pkg, "v1", tc.build...)
					if r = run(t, env, "upload"); r.code != ExitOK {
						t.Fatalf("upload: %v", r)
					}
				}
				if !strings.Contains(r.stderr, "the commit's record is complete with other components") {
					t.Errorf("the log does not say the record is kept:\n%s", r.stderr)
				}
				if _, after := srv.Get(t, bucket, recKey); string(after) != string(before) {
					t.Errorf("the commit's record was rewritten:\n%s\nwas:\n%s", after, before)
				}
				if got := wholeDownload(t); !slices.Equal(got, want) {
					t.Errorf("the whole commit downloads as %q, want %q", got, want)
				}
				for _, n := range tc.build {
					denv, dir := deployEnv(t, srv, bucket, d.head)
					denv["PACKAGE_COMPONENT"] = n
					if r := run(t, denv, "download"); r.code != ExitOK || !exists(filepath.Join(dir, n, n+".zip")) {
						t.Errorf("download of %s alone: %v", n, r)
					}
				}
			})
		}
	})
}

// A check that finds a commit of components complete makes only the
// lookup's requests (the commit's record read and its listing; with
// PACKAGE_COMPONENT that component's too) and hashes nothing: each
// component's code hash is the one recorded, even with a source edited in
// the working tree since (the commit fixes the tree, as without components).
func TestComponentsFoundInOneRoundTrip(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoBuilt(t, srv, bucket)
		recorded := map[string]string{}
		for _, c := range commitRecord(t, srv, bucket, d.head).Components {
			recorded[c.Name] = c.CodeHash
		}
		writeFiles(t, d.repo, map[string]string{"lambdas/fn1/index.js": "exports.fn1 = 2\n"})
		for _, tc := range []struct {
			component string
			requests  int64
		}{{"", 2}, {"fn1", 4}} {
			e := maps.Clone(env)
			if tc.component != "" {
				e["PACKAGE_COMPONENT"] = tc.component
			}
			pkg := freshPackages(t, e)
			proxy := s3test.NewProxy(t, srv.Endpoint)
			var requests atomic.Int64
			proxy.SetPlan(func(int64, *http.Request) s3test.Fault { requests.Add(1); return s3test.Pass })
			e["PACKAGE_ASSETS_ENDPOINT"] = proxy.URL
			r, out := checkOutputs(t, e)
			if r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) || out["found"] != "true" {
				t.Fatalf("component %q: not found: %v %q", tc.component, r, out)
			}
			if n := requests.Load(); n != tc.requests {
				t.Errorf("component %q: %d requests, want %d", tc.component, n, tc.requests)
			}
			var states map[string]struct {
				Found    bool
				CodeHash string
			}
			if err := json.Unmarshal([]byte(out["components"]), &states); err != nil {
				t.Fatal(err)
			}
			for n, s := range states {
				if !s.Found || s.CodeHash != recorded[n] {
					t.Errorf("component %q: %s found %t code hash %s, recorded %s", tc.component, n, s.Found, s.CodeHash, recorded[n])
				}
			}
			if tc.component != "" && (len(states) != 1 || out["code-hash"] != recorded[tc.component]) {
				t.Errorf("component %q: outputs %q", tc.component, out)
			}
		}
	})
}

// A build that links each component's directory to where it builds
// (packages/fn1 -> ../dist/fn1), in a package directory kept between runs:
// the .found an earlier check wrote through the link must not survive the
// next check, or the build of a changed component is skipped and its upload
// leaves it out.
func TestComponentDirectoryLinkStaleFound(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := monoBuilt(t, srv, bucket)
		dist := filepath.Join(t.TempDir(), "dist")
		pkg := freshPackages(t, env)
		if err := os.MkdirAll(pkg, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, n := range allComponents {
			writeFiles(t, dist, map[string]string{n + "/" + n + ".zip": n + " old"})
			if err := os.Symlink(filepath.Join(dist, n), filepath.Join(pkg, n)); err != nil {
				t.Fatal(err)
			}
		}
		// A docs-only commit: every component found, each <name>/.found
		// written through its link.
		commit(t, d.repo, map[string]string{"README.md": "more docs\n"})
		checkFound(t, env, pkg, "docs-only commit")
		if !exists(filepath.Join(dist, "fn1", ".found")) {
			t.Fatal("fn1/.found not written through the link")
		}
		// fn1 changes: its .found must go.
		next := commit(t, d.repo, map[string]string{"lambdas/fn1/index.js": "exports.fn1 = 2\n"})
		if r := run(t, env, "check"); r.code != ExitOK || !slices.Equal(toBuild(t, pkg), []string{"fn1"}) {
			t.Fatalf("check after fn1 changed: %v", r)
		}
		if exists(filepath.Join(pkg, "fn1", ".found")) {
			t.Fatal("fn1/.found of the earlier check survived: the build would be skipped")
		}
		writeFiles(t, dist, map[string]string{"fn1/fn1.zip": "fn1 v2", "fn1/fn1.txt": "notes of fn1"})
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatalf("upload: %v", r)
		}
		wantCommitRecord(t, srv, bucket, next)
		if _, body := srv.Get(t, bucket, "artifacts/"+next+"/fn1/fn1.zip"); string(body) != "fn1 v2" {
			t.Errorf("fn1 stored %q, want the rebuild", body)
		}
	})
}
