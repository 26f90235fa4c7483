package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// The original README's Concourse flow, with a separate working directory
// per task and the defaults ./repo and ./packages: check → build → upload
// from a directory holding only packages/ → check again finds it.
func TestConcourseFlow(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env := srv.Env(bucket)

		checkTask := t.TempDir()
		head := newRepo(t, filepath.Join(checkTask, "repo"), nil)
		r := runBinary(t, checkTask, "check", env)
		if r.code != ExitOK {
			t.Fatalf("check: %v", r)
		}
		pkg := filepath.Join(checkTask, "packages")
		if got, _ := os.ReadFile(filepath.Join(pkg, ".commit-hash")); string(got) != head {
			t.Fatalf(".commit-hash = %q, want %q (no newline)", got, head)
		}
		if exists(filepath.Join(pkg, ".found")) {
			t.Fatal(".found written for a commit never uploaded")
		}
		if !strings.Contains(r.stderr, "not found") || !strings.Contains(r.stderr, "s3://"+bucket+"/artifacts/"+head+"/") {
			t.Errorf("check log does not say what it looked up:\n%s", r.stderr)
		}

		// The build task writes the artifacts into the packages output.
		fn1 := []byte("zip one")
		fn2 := randomBytes(40<<20, 1) // multipart
		writeFiles(t, pkg, map[string]string{"fn1.zip": string(fn1), "fn2.zip": string(fn2), "sub/ignored.zip": "no"})

		// The upload task sees only packages/.
		uploadTask := t.TempDir()
		if err := os.CopyFS(filepath.Join(uploadTask, "packages"), os.DirFS(pkg)); err != nil {
			t.Fatal(err)
		}
		r = runBinary(t, uploadTask, "upload", env)
		if r.code != ExitOK {
			t.Fatalf("upload: %v", r)
		}
		for _, want := range []string{"fn1.zip", "fn2.zip", "MiB/s", "result: uploaded 2 files"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("upload log lacks %q:\n%s", want, r.stderr)
			}
		}
		wantKeys := []string{
			"artifacts/" + head + "/.s3-asset-manager.json",
			"artifacts/" + head + "/fn1.zip",
			"artifacts/" + head + "/fn2.zip",
		}
		if got := keysOf(listAll(t, srv, bucket)); !reflect.DeepEqual(got, wantKeys) {
			t.Fatalf("keys = %q, want %q", got, wantKeys)
		}
		for name, body := range map[string][]byte{"fn1.zip": fn1, "fn2.zip": fn2} {
			out, got := srv.Get(t, bucket, "artifacts/"+head+"/"+name)
			if sha256hex(got) != sha256hex(body) {
				t.Errorf("%s: bytes differ", name)
			}
			wantMeta := map[string]string{"commit-hash": head, "package-hash": sha256b64(body)}
			if !reflect.DeepEqual(out.Metadata, wantMeta) {
				t.Errorf("%s metadata = %v, want %v", name, out.Metadata, wantMeta)
			}
			if ct := aws.ToString(out.ContentType); ct != "application/zip" {
				t.Errorf("%s content type = %q", name, ct)
			}
		}

		// A later pipeline run of the same commit: check finds it.
		again := t.TempDir()
		if err := os.CopyFS(filepath.Join(again, "repo"), os.DirFS(filepath.Join(checkTask, "repo"))); err != nil {
			t.Fatal(err)
		}
		r = runBinary(t, again, "check", env)
		if r.code != ExitOK || !exists(filepath.Join(again, "packages", ".found")) {
			t.Fatalf("second check did not find the upload: %v", r)
		}

		// upload with .found present writes nothing.
		before := listAll(t, srv, bucket)
		writeFiles(t, filepath.Join(again, "packages"), map[string]string{"fn3.zip": "new"})
		r = runBinary(t, again, "upload", env)
		if r.code != ExitOK {
			t.Fatalf("upload with .found: %v", r)
		}
		if after := listAll(t, srv, bucket); !reflect.DeepEqual(before, after) {
			t.Errorf("upload with .found changed the bucket:\nbefore %v\nafter  %v", before, after)
		}
	})
}

// awscli, a second client, reads back what the tool stored.
func TestSecondClientReadsBack(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatal("awscli not installed (scripts/test installs it)")
	}
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, dirs := setup(t, srv, bucket)
		names := map[string]string{
			"with space.zip":   "a",
			"plus+sign.zip":    "b",
			"percent%41.zip":   "c",
			"ünïcødé-名前.zip":   "d",
			`quote'and"dq.zip`: "e",
			"no-extension":     "f",
		}
		if r := run(t, env, "check"); r.code != ExitOK {
			t.Fatal(r)
		}
		writeFiles(t, dirs.pkg, names)
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		// awscli takes about a second to start: one run reads every file
		// back (listing and fetching the odd names), one reads metadata.
		prefix := "artifacts/" + dirs.head + "/"
		dst := t.TempDir()
		cmd := awsCLI(srv, "s3", "cp", "--recursive", "--only-show-errors", "s3://"+bucket+"/"+prefix, dst)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("aws s3 cp --recursive %q: %v\n%s", prefix, err, out)
		}
		for name, body := range names {
			got, err := os.ReadFile(filepath.Join(dst, name))
			if err != nil || string(got) != body {
				t.Errorf("%q: aws read %q (%v), want %q", name, got, err, body)
			}
		}
		// Nothing else but the record, under no other name.
		entries, _ := os.ReadDir(dst)
		for _, e := range entries {
			if _, ok := names[e.Name()]; !ok && e.Name() != ".s3-asset-manager.json" {
				t.Errorf("aws fetched %q", e.Name())
			}
		}
		// The package-hash of the name that needs the most encoding.
		const name = "ünïcødé-名前.zip"
		cmd = awsCLI(srv, "s3api", "head-object", "--bucket", bucket, "--key", prefix+name,
			"--query", "Metadata.\"package-hash\"", "--output", "text")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("aws s3api head-object %q: %v", name, err)
		}
		if strings.TrimSpace(string(out)) != sha256b64([]byte(names[name])) {
			t.Errorf("%q: package-hash %q", name, out)
		}
	})
}

// awsCLI is an awscli command for the server, with the test credentials
// (the process environment has none).
func awsCLI(srv *s3test.Server, args ...string) *exec.Cmd {
	cmd := exec.Command("aws", append([]string{"--endpoint-url", srv.Endpoint}, args...)...)
	cmd.Env = os.Environ()
	for k, v := range srv.Env("") {
		if strings.HasPrefix(k, "AWS_") {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	return cmd
}

type dirs struct {
	repo, pkg, head string
}

// setup makes a repository and a package directory and returns the settings
// that point the tool at them and at the server's bucket.
func setup(t *testing.T, srv *s3test.Server, bucket string) (map[string]string, dirs) {
	return setupWith(t, srv, bucket, nil)
}

// setupWith is setup with files committed in the repository.
func setupWith(t *testing.T, srv *s3test.Server, bucket string, files map[string]string) (map[string]string, dirs) {
	t.Helper()
	base := t.TempDir()
	d := dirs{repo: filepath.Join(base, "repo"), pkg: filepath.Join(base, "packages")}
	d.head = newRepo(t, d.repo, files)
	env := srv.Env(bucket)
	env["GIT_REPO_PATH"] = d.repo
	env["PACKAGE_DIRECTORY"] = d.pkg
	return env, d
}

func TestStaleMarkersRemoved(t *testing.T) {
	t.Parallel()
	s3test.One(t, func(t *testing.T, srv *s3test.Server) {
		env, d := setup(t, srv, srv.NewBucket(t))
		writeFiles(t, d.pkg, map[string]string{".found": "", ".code-hash": "stale"})
		r := run(t, env, "check")
		if r.code != ExitOK {
			t.Fatal(r)
		}
		if exists(filepath.Join(d.pkg, ".found")) || exists(filepath.Join(d.pkg, ".code-hash")) {
			t.Errorf("stale markers survived check:\n%s", r.stderr)
		}
	})
}

// Objects without a completion record (an upload killed part way, or the
// original tool's layout) are not found, unless the user opts in.
func TestUnrecordedObjects(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setup(t, srv, bucket)
		putObject(t, srv, bucket, "artifacts/"+d.head+"/fn1.zip", []byte("half an upload"))
		r := checkMiss(t, env, d.pkg, "partial upload reported found")
		if !strings.Contains(r.stderr, "no completion record") {
			t.Errorf("log does not explain the miss:\n%s", r.stderr)
		}
		env["PACKAGE_ASSETS_ACCEPT_LEGACY"] = "true"
		r = checkFound(t, env, d.pkg, "legacy layout not accepted with the opt-in")
	})
}

func TestSecondUploadIsHarmless(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setup(t, srv, bucket)
		run(t, env, "check")
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one"})
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		before := listAll(t, srv, bucket)
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "rebuilt differently"})
		r := run(t, env, "upload")
		if r.code != ExitOK || !strings.Contains(r.stderr, "already complete") {
			t.Fatalf("second upload: %v", r)
		}
		if after := listAll(t, srv, bucket); !reflect.DeepEqual(before, after) {
			t.Errorf("second upload changed the set:\nbefore %v\nafter  %v", before, after)
		}
	})
}

func TestKeyPrefixAndCodeHashMetadata(t *testing.T) {
	t.Parallel()
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		bucket := srv.NewBucket(t)
		env, d := setup(t, srv, bucket)
		env["PACKAGE_ASSETS_KEY_PREFIX"] = "team-a"
		run(t, env, "check")
		// upload takes .code-hash when present; a trailing newline is fine.
		writeFiles(t, d.pkg, map[string]string{"fn1.zip": "one", ".code-hash": "abc123\n", ".commit-hash": d.head + "\n"})
		if r := run(t, env, "upload"); r.code != ExitOK {
			t.Fatal(r)
		}
		out, _ := srv.Get(t, bucket, "team-a/artifacts/"+d.head+"/fn1.zip")
		if out.Metadata["code-hash"] != "abc123" || out.Metadata["commit-hash"] != d.head {
			t.Errorf("metadata = %v", out.Metadata)
		}
		checkFound(t, env, d.pkg, "check with prefix")
	})
}

// Bad input: a clear message, a documented exit code, nothing written.
func TestBadInput(t *testing.T) {
	t.Parallel()
	// What the store answers (a missing bucket, a refused signature) runs on
	// both servers; the rest is the tool's own and runs on the first.
	storeAnswers := map[string]bool{"bucket does not exist": true, "wrong credentials": true}
	s3test.Each(t, func(t *testing.T, srv *s3test.Server) {
		tests := []struct {
			name    string
			prepare func(t *testing.T, env map[string]string, d dirs)
			cmd     string
			code    int
			want    string
		}{
			{"missing bucket setting", func(t *testing.T, env map[string]string, d dirs) { delete(env, "PACKAGE_ASSETS_BUCKET") },
				"check", ExitUsage, "PACKAGE_ASSETS_BUCKET: required"},
			{"bucket does not exist", func(t *testing.T, env map[string]string, d dirs) {
				env["PACKAGE_ASSETS_BUCKET"] = "no-such-bucket-s3am"
			},
				"check", ExitS3, "bucket does not exist"},
			{"unreachable endpoint", func(t *testing.T, env map[string]string, d dirs) {
				env["PACKAGE_ASSETS_ENDPOINT"] = "http://127.0.0.1:1"
				env["AWS_MAX_ATTEMPTS"] = "1"
			}, "check", ExitS3, "unreachable"},
			{"wrong credentials", func(t *testing.T, env map[string]string, d dirs) {
				env["AWS_SECRET_ACCESS_KEY"] = "wrong-secret-0000000000"
			},
				"check", ExitS3, "credentials"},
			{"repository path missing", func(t *testing.T, env map[string]string, d dirs) {
				env["GIT_REPO_PATH"] = filepath.Join(d.repo, "nope")
			},
				"check", ExitGit, "does not exist"},
			{"not a repository", func(t *testing.T, env map[string]string, d dirs) { env["GIT_REPO_PATH"] = t.TempDir() },
				"check", ExitGit, "not a git repository"},
			// The error names the setting, whose default (./repo) a run
			// in the checkout's root does not find.
			{"not a repository, named as the setting", func(t *testing.T, env map[string]string, d dirs) {
				env["GIT_REPO_PATH"] = "./no-such-checkout"
			}, "check", ExitGit, "GIT_REPO_PATH ./no-such-checkout: not a git repository"},
			{"malformed pattern", func(t *testing.T, env map[string]string, d dirs) { env["CODE_HASH_FIND_FILTER"] = "src/[x" },
				"check", ExitUsage, "CODE_HASH_FIND_FILTER"},
			{"filter matches no file", func(t *testing.T, env map[string]string, d dirs) { env["CODE_HASH_FIND_FILTER"] = "srcc/**" },
				"check", ExitUsage, `pattern srcc/**`},
			{"a selected file needs a custom filter driver", func(t *testing.T, env map[string]string, d dirs) {
				commit(t, d.repo, map[string]string{".gitattributes": "*.enc filter=git-crypt\n", "src/key.enc": "secret"})
				env["CODE_HASH_FIND_FILTER"] = "src/**"
			}, "check", ExitUsage, "src/key.enc: unsupported gitattribute filter=git-crypt"},
			{"upload without .commit-hash", func(t *testing.T, env map[string]string, d dirs) {
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "x"})
			}, "upload", ExitPackage, "run check first"},
			{"malformed .commit-hash", func(t *testing.T, env map[string]string, d dirs) {
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "x", ".commit-hash": "main"})
			}, "upload", ExitPackage, "not a 40 or 64 hex commit id"},
			{"malformed .code-hash", func(t *testing.T, env map[string]string, d dirs) {
				writeFiles(t, d.pkg, map[string]string{"fn1.zip": "x", ".commit-hash": d.head, ".code-hash": "not a hash!"})
			}, "upload", ExitPackage, "not a code hash"},
			// Markers are checked even when .found makes upload do nothing:
			// they become step outputs.
			{"forged .commit-hash with .found", func(t *testing.T, env map[string]string, d dirs) {
				writeFiles(t, d.pkg, map[string]string{".found": "", ".commit-hash": d.head + "\nfound=false"})
			}, "upload", ExitPackage, "not a 40 or 64 hex commit id"},
			{"forged .code-hash with .found", func(t *testing.T, env map[string]string, d dirs) {
				writeFiles(t, d.pkg, map[string]string{".found": "", ".commit-hash": d.head, ".code-hash": "\x1b]0;x\a"})
			}, "upload", ExitPackage, "not a code hash"},
			{"empty package directory", func(t *testing.T, env map[string]string, d dirs) {
				writeFiles(t, d.pkg, map[string]string{".commit-hash": d.head, ".hidden": "x", "sub/file": "x"})
			}, "upload", ExitPackage, "no files to upload"},
			{"dangling symlink", func(t *testing.T, env map[string]string, d dirs) {
				writeFiles(t, d.pkg, map[string]string{".commit-hash": d.head, "fn1.zip": "x"})
				if err := os.Symlink("/nonexistent", filepath.Join(d.pkg, "fn2.zip")); err != nil {
					t.Fatal(err)
				}
			}, "upload", ExitPackage, "symlink to nothing"},
			{"unreadable package file", func(t *testing.T, env map[string]string, d dirs) {
				if os.Geteuid() == 0 {
					// root reads anything: make it a directory-like failure instead, a FIFO.
					writeFiles(t, d.pkg, map[string]string{".commit-hash": d.head})
					if err := mkfifo(filepath.Join(d.pkg, "fn1.zip")); err != nil {
						t.Fatal(err)
					}
					return
				}
				writeFiles(t, d.pkg, map[string]string{".commit-hash": d.head, "fn1.zip": "x"})
				os.Chmod(filepath.Join(d.pkg, "fn1.zip"), 0)
			}, "upload", ExitPackage, "fn1.zip"},
			{"unknown command", nil, "deploy", ExitUsage, `unknown command "deploy"`},
		}
		for _, tt := range tests {
			if srv.Name != s3test.Names[0] && !storeAnswers[tt.name] {
				continue
			}
			t.Run(tt.name, func(t *testing.T) {
				bucket := srv.NewBucket(t)
				env, d := setup(t, srv, bucket)
				if tt.prepare != nil {
					tt.prepare(t, env, d)
				}
				r := run(t, env, tt.cmd)
				if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
					t.Fatalf("want exit %d and %q, got %v", tt.code, tt.want, r)
				}
				if objs := listAll(t, srv, bucket); len(objs) > 0 {
					t.Errorf("wrote to the bucket: %v", keysOf(objs))
				}
				if tt.cmd == "check" && exists(filepath.Join(d.pkg, ".found")) {
					t.Error(".found written")
				}
				if strings.Contains(r.stderr+r.stdout, s3test.SecretKey) {
					t.Error("secret printed")
				}
			})
		}
	})
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"--version"}} {
		r := run(t, map[string]string{}, args...)
		if r.code != ExitOK || !strings.Contains(r.stdout, "s3-asset-manager") {
			t.Errorf("%v: %v", args, r)
		}
	}
	r := run(t, map[string]string{}, "--bogus")
	if r.code != ExitUsage {
		t.Errorf("--bogus: %v", r)
	}
}
