package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

const signingKey = "the-real-signing-key-0123"

// copyPrefix copies every object under from to the same names under to, as
// a bucket writer without the signing key can.
func copyPrefix(t *testing.T, srv *s3test.Server, bucket, from, to string) {
	t.Helper()
	for _, o := range listAll(t, srv, bucket) {
		name, ok := strings.CutPrefix(o.Key, from)
		if !ok {
			continue
		}
		_, err := srv.Client().CopyObject(context.Background(), &s3.CopyObjectInput{
			Bucket: &bucket, Key: aws.String(to + name), CopySource: aws.String(bucket + "/" + o.Key),
		})
		if err != nil {
			t.Fatalf("copy %s: %v", o.Key, err)
		}
	}
}

// Item 1: a record counts only at its own place. A validly signed record
// copied, with its objects, to another commit's prefix, or a cache entry
// copied under artifacts/, is not found.
func TestMisplacedRecordIsNotFound(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for _, from := range []string{"artifacts", "cache"} {
			t.Run(from, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setupWith(t, srv, bucket, map[string]string{"lambdas/fn1/index.py": "v1\n", "README.md": "docs\n"})
				env["PACKAGE_ASSETS_SIGNING_KEY"] = signingKey
				env["CODE_HASH_FIND_FILTER"] = "lambdas/**"
				run(t, env, "check")
				codeHash, err := os.ReadFile(filepath.Join(d.pkg, ".code-hash"))
				if err != nil {
					t.Fatal(err)
				}
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatal(r)
				}
				// Another commit with other code, whose set a writer forges
				// from the signed one.
				next := commit(t, d.repo, map[string]string{"lambdas/fn1/index.py": "v2\n"})
				src := "artifacts/" + d.head + "/"
				if from == "cache" {
					src = "cache/" + string(codeHash) + "/"
				}
				copyPrefix(t, srv, bucket, src, "artifacts/"+next+"/")
				pkg := freshPackages(t, env)
				r := checkMiss(t, env, pkg, "a record copied from "+src+" was found")
				if !strings.Contains(r.stderr, "belongs to") {
					t.Errorf("the log does not say whose record it is:\n%s", r.stderr)
				}
			})
		}
	})
}

// Item 2: with a signing key, an object replaced after its record was
// written is a miss naming the file (also without a key: the listing is
// free); the upload after the miss stores the set again.
func TestReplacedObjectIsAMiss(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for _, key := range []string{signingKey, ""} {
			t.Run("key="+(map[bool]string{true: "set", false: "none"})[key != ""], func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				env["PACKAGE_ASSETS_SIGNING_KEY"] = key
				run(t, env, "check")
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "good build", "fn2.zip": "two"})
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatal(r)
				}
				putObject(t, srv, bucket, "artifacts/"+d.head+"/fn1.zip", []byte("evil build"))
				r := checkMiss(t, env, d.pkg, "a replaced object was found")
				if !strings.Contains(r.stderr, "fn1.zip was replaced") {
					t.Errorf("the log does not name the file:\n%s", r.stderr)
				}
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatalf("upload after the miss: %v", r)
				}
				if _, got := srv.Get(t, bucket, "artifacts/"+d.head+"/fn1.zip"); string(got) != "good build" {
					t.Errorf("after the upload fn1.zip holds %q", got)
				}
				checkFound(t, env, d.pkg, "the set stored again is not found")
			})
		}
	})
}

// Item 3: a commit whose record is unsigned (uploaded by a pull-request
// pipeline without the key) does not break the next signed check: the cache
// hit replaces the record, exit 0.
func TestUnsignedRecordIsReplacedByCacheHit(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d, _ := cacheSetup(t, srv, bucket, map[string]string{"fn1.zip": "main build"})
		// The main pipeline's entry is signed...
		env["PACKAGE_ASSETS_SIGNING_KEY"] = signingKey
		commit(t, d.repo, map[string]string{"lambdas/fn1/index.py": "v2\n"})
		pkg := freshPackages(t, env)
		run(t, env, "check")
		writeFiles(t, pkg, map[string]string{"fn1.zip": "signed build"})
		if r := run(t, env, "upload"); r.code != ExitOK || !strings.Contains(r.stderr, "cache filled") {
			t.Fatalf("signed upload: %v", r)
		}
		// ... a pull request with the same code is built by a pipeline
		// without the key (nor the cache).
		pr := commit(t, d.repo, map[string]string{"README.md": "pr docs\n"})
		prEnv := map[string]string{}
		for k, v := range env {
			prEnv[k] = v
		}
		delete(prEnv, "PACKAGE_ASSETS_SIGNING_KEY")
		delete(prEnv, "CODE_HASH_FIND_FILTER")
		pkg = freshPackages(t, prEnv)
		checkMiss(t, prEnv, pkg, "pull-request check")
		writeFiles(t, pkg, map[string]string{"fn1.zip": "pr build"})
		if r := run(t, prEnv, "upload"); r.code != ExitOK {
			t.Fatalf("unsigned upload: %v", r)
		}
		// The signed pipeline meets the unsigned record.
		pkg = freshPackages(t, env)
		r := run(t, env, "check")
		if r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) || !strings.Contains(r.stderr, "cache hit") {
			t.Fatalf("signed check over an unsigned record: %v", r)
		}
		if _, got := srv.Get(t, bucket, "artifacts/"+pr+"/fn1.zip"); string(got) != "signed build" {
			t.Errorf("fn1.zip holds %q after the cache hit", got)
		}
		pkg = freshPackages(t, env)
		if r := run(t, env, "check"); r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) || strings.Contains(r.stderr, "cache hit") {
			t.Fatalf("the replaced record is not found signed: %v", r)
		}
	})
}

// Item 9: an upload after a failed check cannot store the build under the
// previous run's commit: check removes .commit-hash before anything can fail.
func TestFailedCheckLeavesNoCommit(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setup(t, srv, bucket)
		run(t, env, "check") // the previous run's markers
		env["GIT_REPO_PATH"] = filepath.Join(d.repo, "nope")
		if r := run(t, env, "check"); r.code != ExitGit {
			t.Fatalf("check without a repository: %v", r)
		}
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "a build of who knows what"})
		if r := run(t, env, "upload"); r.code != ExitPackage || !strings.Contains(r.stderr, "run check first") {
			t.Fatalf("upload after a failed check: %v", r)
		}
		if objs := listAll(t, srv, bucket); len(objs) > 0 {
			t.Errorf("stored %v", keysOf(objs))
		}
	})
}

// Item 10: a record of a newer format (or with a field this version does
// not know) is a miss with a warning naming the format, not an error; the
// upload leaves the newer version's set alone.
func TestNewerRecordFormat(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for name, body := range map[string]string{
			"v2":            `{"format":"s3-asset-manager/completion/v2","sets":{}}`,
			"unknown field": "",
		} {
			t.Run(name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				key := "artifacts/" + d.head + "/.s3-asset-manager.json"
				run(t, env, "check")
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
				if body == "" {
					if r := run(t, env, "upload"); r.code != ExitOK {
						t.Fatal(r)
					}
					_, rec := srv.Get(t, bucket, key)
					body = string(bytes.Replace(rec, []byte(`"kind"`), []byte(`"variant": "arm64", "kind"`), 1))
				}
				putObject(t, srv, bucket, key, []byte(body))
				r := checkMiss(t, env, d.pkg, "want a miss")
				if !strings.Contains(r.stderr, "newer format") || !strings.Contains(r.stderr, map[string]string{"v2": "completion/v2", "unknown field": `"variant"`}[name]) {
					t.Errorf("the warning does not name the format:\n%s", r.stderr)
				}
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatalf("upload: %v", r)
				}
				if _, got := srv.Get(t, bucket, key); string(got) != body {
					t.Error("upload replaced the newer record")
				}
			})
		}
	})
}

// With a signing key, an unsigned record "of a newer format" (which this
// version cannot verify) does not wedge the commit: check misses, upload
// replaces it, and the next check finds the set. And a record whose ETag
// would forge a workflow command or break a copy's headers is untrusted:
// no line of the log starts with it, and upload replaces it.
func TestPlantedRecords(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		for name, tc := range map[string]struct {
			key   string
			plant func(rec []byte) []byte
		}{
			"newer format, key set": {signingKey, func([]byte) []byte { return []byte(`{"format":"s3-asset-manager/completion/v2","sets":{}}`) }},
			// Without a key: with one, the edit breaks the signature first.
			"hostile etag": {"", func(rec []byte) []byte {
				return bytes.Replace(rec, []byte(`"etag": "`), []byte(`"etag": "\n::error::forged`), 1)
			}},
		} {
			t.Run(name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				if tc.key != "" {
					env["PACKAGE_ASSETS_SIGNING_KEY"] = tc.key
				}
				key := "artifacts/" + d.head + "/.s3-asset-manager.json"
				run(t, env, "check")
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatal(r)
				}
				_, rec := srv.Get(t, bucket, key)
				planted := tc.plant(rec)
				putObject(t, srv, bucket, key, planted)
				r := checkMiss(t, env, d.pkg, "want a miss")
				for _, line := range strings.Split(r.stdout+"\n"+r.stderr, "\n") {
					if strings.HasPrefix(line, "::error::forged") {
						t.Errorf("a forged workflow command reached the log:\n%s", r.stderr)
					}
				}
				if r := run(t, env, "upload"); r.code != ExitOK {
					t.Fatalf("upload: %v", r)
				}
				if _, got := srv.Get(t, bucket, key); bytes.Equal(got, planted) {
					t.Fatal("upload left the planted record")
				}
				checkFound(t, env, d.pkg, "after the upload the set is not found")
			})
		}
	})
}
