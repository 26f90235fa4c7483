package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nsmithuk/s3-asset-manager/internal/gittest"
	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// binDir holds the tool built once, with links named check, upload and download.
var binDir string

func TestMain(m *testing.M) {
	if cmd, ok := os.LookupEnv(memoryChildEnv); ok {
		memoryChild(cmd) // TestSetMemory's child process
		return
	}
	s3test.IsolateEnv()
	setsMemory = false
	code := func() int {
		dir, err := os.MkdirTemp("", "s3am-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		root, err := s3test.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "s3-asset-manager"), ".")
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build:", err)
			return 1
		}
		for _, n := range []string{"check", "upload", "download", "prune"} {
			if err := os.Link(filepath.Join(dir, "s3-asset-manager"), filepath.Join(dir, n)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		binDir = dir
		defer s3test.StopAll()
		return m.Run()
	}()
	os.Exit(code)
}

// jumpClock moves on at once by what is waited for, so that
// PACKAGE_ASSETS_WAIT's pauses take no real time (the pauses themselves are
// tested in internal/assets). Download waits with Now and After alone (the
// embedded Clock is nil).
type jumpClock struct {
	clockwork.Clock
	now time.Time
}

func (c *jumpClock) Now() time.Time { return c.now }

func (c *jumpClock) After(d time.Duration) <-chan time.Time {
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// result of one run of the tool.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// run calls the whole program in-process with env as its only settings,
// AWS credentials included (s3test.Server.Env): the process environment has
// none (s3test.IsolateEnv), so tests with different ones can run at once.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx := context.WithValue(context.Background(), clockKey{}, clockwork.Clock(&jumpClock{now: time.Now()}))
	code := Run(ctx, append([]string{"s3-asset-manager"}, args...), lookup, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// runBinary runs the built binary under the given name in dir, with env
// added to the process environment.
func runBinary(t *testing.T, dir, name string, env map[string]string) result {
	t.Helper()
	cmd := binaryCmd(env, name)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %s: %v", name, err)
		}
		code = ee.ExitCode()
	}
	return result{code, stdout.String(), stderr.String()}
}

// startBinary starts the built binary under the given name in the
// background, with env added to the process environment; its stderr goes to
// the buffer returned.
func startBinary(t *testing.T, env map[string]string, name string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := binaryCmd(env, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &stderr
}

// binaryCmd is the built binary under the given name, with env added to the
// process environment.
func binaryCmd(env map[string]string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	return cmd
}

// writeArtifacts writes files into dir (a build's package directory), each
// 0644.
func writeArtifacts(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkFound runs check and fails t, saying failure, unless it exits 0
// having found the set: .found in pkg.
func checkFound(t *testing.T, env map[string]string, pkg, failure string) result {
	t.Helper()
	r := run(t, env, "check")
	if r.code != ExitOK || !exists(filepath.Join(pkg, ".found")) {
		t.Fatalf("%s: %v", failure, r)
	}
	return r
}

// checkMiss runs check and fails t, saying failure, unless it exits 0
// without finding the set: no .found in pkg.
func checkMiss(t *testing.T, env map[string]string, pkg, failure string) result {
	t.Helper()
	r := run(t, env, "check")
	if r.code != ExitOK || exists(filepath.Join(pkg, ".found")) {
		t.Fatalf("%s: %v", failure, r)
	}
	return r
}

// The shared helpers, under the names these tests use.
var (
	git        = gittest.Git
	writeFiles = gittest.WriteFiles
)

// newRepo makes a git repository at dir with files committed (a small
// default tree when nil) and returns its HEAD.
func newRepo(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	if files == nil {
		files = map[string]string{"src/main.go": "package main\n", "README.md": "docs\n"}
	}
	return gittest.Init(t, dir, files)
}

// randomBytes is deterministic filler for test files.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

type storedObject struct {
	Key, ETag, LastModified string
	Size                    int64
}

// listAll returns every object in the bucket, sorted by key.
func listAll(t *testing.T, srv *s3test.Server, bucket string) []storedObject {
	t.Helper()
	var objs []storedObject
	p := s3.NewListObjectsV2Paginator(srv.Client(), &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			objs = append(objs, storedObject{aws.ToString(o.Key), aws.ToString(o.ETag), o.LastModified.String(), aws.ToInt64(o.Size)})
		}
	}
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
	return objs
}

func keysOf(objs []storedObject) []string {
	var k []string
	for _, o := range objs {
		k = append(k, o.Key)
	}
	return k
}

func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func sha256b64(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

// putObject stores an object directly, as another writer would.
func putObject(t *testing.T, srv *s3test.Server, bucket, key string, body []byte) {
	t.Helper()
	_, err := srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// deleteObject removes an object directly, as another writer would.
func deleteObject(t *testing.T, srv *s3test.Server, bucket, key string) {
	t.Helper()
	if _, err := srv.Client().DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: &bucket, Key: &key}); err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
}
