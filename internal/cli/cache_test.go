package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

const lambdaFilter = "lambdas/** !lambdas/**/*.md"

// cacheSetup makes a repository with lambdas and docs, the tool's settings
// with the cache on, and runs the first check → build → upload.
func cacheSetup(t *testing.T, srv *s3test.Server, bucket string, artifacts map[string]string) (map[string]string, dirs, string) {
	t.Helper()
	env, d := setupWith(t, srv, bucket, map[string]string{
		"lambdas/fn1/index.py":  "def handler(): return 1\n",
		"lambdas/fn1/NOTES.md":  "notes\n",
		"lambdas/fn2/.config":   "dot-files count\n",
		"README.md":             "docs\n",
		".gitignore":            "node_modules/\n*.pyc\n",
		"infra/terraform/x.tf":  "resource\n",
		"lambdas/fn2/handler.x": "x\n",
	})
	env["CODE_HASH_FIND_FILTER"] = lambdaFilter
	checkMiss(t, env, d.pkg, "first check")
	codeHash, err := os.ReadFile(filepath.Join(d.pkg, ".code-hash"))
	if err != nil || len(codeHash) != 64 {
		t.Fatalf(".code-hash = %q, %v", codeHash, err)
	}
	writeFiles(t, d.pkg, artifacts)
	if r := run(t, env, "upload"); r.code != ExitOK || !strings.Contains(r.stderr, "cache filled") {
		t.Fatalf("upload: %v", r)
	}
	return env, d, string(codeHash)
}

// commit changes files in the repository and commits them; returns HEAD.
func commit(t *testing.T, repo string, files map[string]string, remove ...string) string {
	t.Helper()
	writeFiles(t, repo, files)
	for _, f := range remove {
		git(t, repo, "rm", "-q", f)
	}
	git(t, repo, "add", "-A")
	git(t, repo, "commit", "-q", "-m", "change")
	return git(t, repo, "rev-parse", "HEAD")
}

// freshPackages gives the next pipeline run an empty package directory.
func freshPackages(t *testing.T, env map[string]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "packages")
	env["PACKAGE_DIRECTORY"] = p
	return p
}

func TestCacheHitAcrossDocsOnlyCommit(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		artifacts := map[string]string{"fn1.zip": "function one", "fn 2+x.zip": string(randomBytes(3<<20, 7))}
		env, d, codeHash := cacheSetup(t, srv, bucket, artifacts)

		next := commit(t, d.repo, map[string]string{"README.md": "better docs\n", "lambdas/fn1/NOTES.md": "excluded by !\n", "infra/terraform/x.tf": "other\n"})
		pkg := freshPackages(t, env)
		r := checkFound(t, env, pkg, "docs-only commit missed the cache")
		if !strings.Contains(r.stderr, "cache hit") || !strings.Contains(r.stderr, "found in the cache") {
			t.Errorf("log does not say it came from the cache:\n%s", r.stderr)
		}
		if got, _ := os.ReadFile(filepath.Join(pkg, ".code-hash")); string(got) != codeHash {
			t.Errorf("code hash changed on a docs-only commit: %q → %q", codeHash, got)
		}
		for name, body := range artifacts {
			out, got := srv.Get(t, bucket, "artifacts/"+next+"/"+name)
			if sha256hex(got) != sha256hex([]byte(body)) {
				t.Errorf("%s: bytes differ after the cache copy", name)
			}
			want := map[string]string{"commit-hash": next, "package-hash": sha256b64([]byte(body)), "code-hash": codeHash}
			if !reflect.DeepEqual(out.Metadata, want) {
				t.Errorf("%s metadata = %v, want %v", name, out.Metadata, want)
			}
			if ct := *out.ContentType; ct != "application/zip" {
				t.Errorf("%s content type %q", name, ct)
			}
		}
		_, rec := srv.Get(t, bucket, "artifacts/"+next+"/.s3-asset-manager.json")
		var record struct{ Source string }
		if err := json.Unmarshal(rec, &record); err != nil || record.Source != "cache/"+codeHash+"/" {
			t.Errorf("record source = %q, %v", record.Source, err)
		}
		// upload after a cache hit does nothing.
		before := listAll(t, srv, bucket)
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		if after := listAll(t, srv, bucket); !reflect.DeepEqual(before, after) {
			t.Error("upload after a cache hit changed the bucket")
		}
	})
}

func TestCacheMisses(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		tests := []struct {
			name   string
			change func(t *testing.T, repo string)
			hit    bool
		}{
			{"rename", func(t *testing.T, repo string) {
				git(t, repo, "mv", "lambdas/fn1/index.py", "lambdas/fn1/main.py")
			}, false},
			{"edit", func(t *testing.T, repo string) {
				writeFiles(t, repo, map[string]string{"lambdas/fn1/index.py": "def handler(): return 2\n"})
			}, false},
			{"mode change", func(t *testing.T, repo string) {
				os.Chmod(filepath.Join(repo, "lambdas/fn1/index.py"), 0o755)
			}, false},
			{"dot-file edit", func(t *testing.T, repo string) {
				writeFiles(t, repo, map[string]string{"lambdas/fn2/.config": "changed\n"})
			}, false},
			{"ignored junk", func(t *testing.T, repo string) {
				writeFiles(t, repo, map[string]string{"lambdas/fn1/node_modules/dep/x.js": "junk", "lambdas/fn1/index.pyc": "bytecode"})
			}, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one"})
				tt.change(t, d.repo)
				git(t, d.repo, "add", "-A")
				git(t, d.repo, "commit", "-q", "--allow-empty", "-m", tt.name)
				pkg := freshPackages(t, env)
				r := run(t, env, "check")
				if r.code != ExitOK {
					t.Fatal(r)
				}
				if got := exists(filepath.Join(pkg, ".found")); got != tt.hit {
					t.Fatalf("found = %v, want %v:\n%s", got, tt.hit, r.stderr)
				}
			})
		}
	})
}

// A cache entry without its completion record is an interrupted fill: a miss.
func TestPartialCacheEntryIsAMiss(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d, codeHash := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one", "fn2.zip": "two"})
		key := "cache/" + codeHash + "/.s3-asset-manager.json"
		if _, err := srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
			t.Fatal(err)
		}
		commit(t, d.repo, map[string]string{"README.md": "v2\n"})
		pkg := freshPackages(t, env)
		r := checkMiss(t, env, pkg, "partial cache entry was used")
		if !strings.Contains(r.stderr, "interrupted cache fill") {
			t.Errorf("log does not explain the miss:\n%s", r.stderr)
		}
	})
}

// A cache object replaced or deleted after its record was written is not
// copied: the listing read with the record shows it, the check is a miss
// that names the file, and the commit gets no record. The upload after the
// miss repairs the entry, so the next commit hits it again.
func TestChangedCacheObjectIsAMiss(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		for _, tc := range []struct {
			name   string
			change func(client *s3.Client, bucket, key string) error
		}{
			{"replaced", func(c *s3.Client, bucket, key string) error {
				_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: strings.NewReader("not two")})
				return err
			}},
			{"deleted", func(c *s3.Client, bucket, key string) error {
				_, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &key})
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d, codeHash := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "one", "fn2.zip": "two"})
				if err := tc.change(srv.Client(), bucket, "cache/"+codeHash+"/fn2.zip"); err != nil {
					t.Fatal(err)
				}
				next := commit(t, d.repo, map[string]string{"README.md": "v2\n"})
				pkg := freshPackages(t, env)
				r := checkMiss(t, env, pkg, "a "+tc.name+" cache object was used")
				if !strings.Contains(r.stderr, "cache miss") || !strings.Contains(r.stderr, "fn2.zip was "+tc.name) {
					t.Errorf("log does not explain the miss:\n%s", r.stderr)
				}
				for _, o := range listAll(t, srv, bucket) {
					if o.Key == "artifacts/"+next+"/.s3-asset-manager.json" {
						t.Error("the commit got a completion record from a changed cache entry")
					}
				}
				writeFiles(t, pkg, map[string]string{"fn1.zip": "one", "fn2.zip": "two"})
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatalf("the upload after the miss: %v", r)
				}
				commit(t, d.repo, map[string]string{"README.md": "v3\n"})
				pkg = freshPackages(t, env)
				if r := run(t, env, "check"); r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) || !strings.Contains(r.stderr, "cache hit") {
					t.Fatalf("the repaired cache entry is not used: %v", r)
				}
			})
		}
	})
}

// A set of more than 1,000 objects (the original tool saw only the first
// listing page) is copied whole: copies follow the record, not a listing.
func TestCacheWithMoreThan1000Objects(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		files := map[string]string{}
		for i := range 1005 {
			files[fmt.Sprintf("f%04d.zip", i)] = fmt.Sprint(i)
		}
		env, d, _ := cacheSetup(t, srv, bucket, files)
		next := commit(t, d.repo, map[string]string{"README.md": "v2\n"})
		pkg := freshPackages(t, env)
		checkFound(t, env, pkg, "check")
		n := 0
		for _, o := range listAll(t, srv, bucket) {
			if strings.HasPrefix(o.Key, "artifacts/"+next+"/") && !strings.HasSuffix(o.Key, ".json") {
				n++
			}
		}
		if n != 1005 {
			t.Errorf("copied %d objects, want 1005", n)
		}
	})
}

func TestReadOnlyCache(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setup(t, srv, bucket)
		env["CODE_HASH_FIND_FILTER"] = "src/**"
		env["CODE_HASH_CACHE_READ_ONLY"] = "true"
		run(t, env, "check")
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
		r := run(t, env, "upload")
		if r.code != ExitOK || !strings.Contains(r.stderr, "read-only") {
			t.Fatal(r)
		}
		for _, o := range listAll(t, srv, bucket) {
			if strings.HasPrefix(o.Key, "cache/") {
				t.Errorf("read-only upload wrote %s", o.Key)
			}
		}
	})
}

// With a signing key, sets written without it (or with another) are misses:
// a writer without the key cannot poison the cache.
func TestSignedRecords(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		// An attacker with write access but no key fills the cache.
		env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "poison"})
		commit(t, d.repo, map[string]string{"README.md": "v2\n"})
		env["PACKAGE_ASSETS_SIGNING_KEY"] = "the-real-signing-key-0123"
		pkg := freshPackages(t, env)
		r := checkMiss(t, env, pkg, "unsigned cache entry used")
		if !strings.Contains(r.stderr, "signature") {
			t.Errorf("log does not name the signature:\n%s", r.stderr)
		}
		// The trusted build uploads and re-fills the cache, signed.
		writeFiles(t, pkg, map[string]string{"fn1.zip": "good"})
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		commit(t, d.repo, map[string]string{"README.md": "v3\n"})
		pkg = freshPackages(t, env)
		if r := run(t, env, "check"); r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) || !strings.Contains(r.stderr, "cache hit") {
			t.Fatalf("signed cache entry not used: %v", r)
		}
		env["PACKAGE_ASSETS_SIGNING_KEY"] = "another-signing-key-45678"
		commit(t, d.repo, map[string]string{"README.md": "v4\n"})
		pkg = freshPackages(t, env)
		checkMiss(t, env, pkg, "entry signed with another key used")
	})
}

// TestPackageDirectoryInsideRepository: the README's GitHub layout (the
// repository is the workspace, packages/ inside it, not ignored) with a
// filter that reaches packages/. The markers check writes and the artifacts
// an earlier build left in a reused workspace are not source: a commit that
// changes no file hits the cache.
func TestPackageDirectoryInsideRepository(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		ws := t.TempDir()
		newRepo(t, ws, map[string]string{"src/main.py": "print(1)\n", "packages/.gitkeep": ""})
		env := srv.Env(bucket)
		env["GIT_REPO_PATH"] = ws
		env["PACKAGE_DIRECTORY"] = filepath.Join(ws, "packages")
		env["CODE_HASH_FIND_FILTER"] = "**"
		h := run(t, env, "hash")
		if h.code != ExitOK {
			t.Fatal(h)
		}
		clean := strings.TrimSpace(h.stdout)

		if r := run(t, env, "check"); r.code != ExitOK || exists(filepath.Join(ws, "packages/.found")) {
			t.Fatalf("first check: %v", r)
		}
		if got, _ := os.ReadFile(filepath.Join(ws, "packages/.code-hash")); string(got) != clean {
			t.Fatalf("check hashed its own markers: .code-hash %q, the clean workspace hashes to %q", got, clean)
		}
		writeFiles(t, ws, map[string]string{"packages/fn1.zip": "built"})
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}

		// The next pipeline run, in the same workspace: packages/ still holds
		// the last build and the markers.
		git(t, ws, "commit", "-q", "--allow-empty", "-m", "no change")
		if h := run(t, env, "hash"); strings.TrimSpace(h.stdout) != clean {
			t.Errorf("hash in the reused workspace: %v, want %s", h, clean)
		}
		r := run(t, env, "check")
		if r.code != ExitOK || !exists(filepath.Join(ws, "packages/.found")) || !strings.Contains(r.stderr, "cache hit") {
			t.Fatalf("a commit changing no file missed the cache: %v", r)
		}
	})
}

func TestHashCommand(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	newRepo(t, base, map[string]string{"lambdas/a.py": "a", "docs/x.md": "x"})
	env := map[string]string{"GIT_REPO_PATH": base, "CODE_HASH_FIND_FILTER": "lambdas/**"}
	r := run(t, env, "hash", "-v")
	if r.code != ExitOK {
		t.Fatal(r)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " lambdas/a.py") || len(lines[1]) != 64 {
		t.Errorf("hash -v output:\n%s", r.stdout)
	}
	env["CODE_HASH_FIND_FILTER"] = "lambda/**"
	if r := run(t, env, "hash"); r.code != ExitUsage || !strings.Contains(r.stderr, "lambda/**") {
		t.Errorf("typo in the filter: %v", r)
	}
	// A file whose stored content a filter program makes: exit 2, naming
	// the file and the way out.
	commit(t, base, map[string]string{".gitattributes": "*.enc filter=crypt\n", "lambdas/key.enc": "secret"})
	env["CODE_HASH_FIND_FILTER"] = "lambdas/**"
	if r := run(t, env, "hash"); r.code != ExitUsage || !strings.Contains(r.stderr, "lambdas/key.enc: unsupported gitattribute filter=crypt") {
		t.Errorf("custom filter driver: %v", r)
	}
	env["CODE_HASH_FIND_FILTER"] = "lambdas/** !**/*.enc"
	if r := run(t, env, "hash"); r.code != ExitOK {
		t.Errorf("custom filter driver left out: %v", r)
	}
}
