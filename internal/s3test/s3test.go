// Package s3test starts real S3 servers (MinIO and versitygw) for tests, on
// free loopback ports with temporary directories, and stops them afterwards.
// The binaries come from scripts/s3-server, which builds them once into a
// cache outside the repository.
package s3test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials every test server is started with.
const (
	AccessKey = "s3am-test-key"
	SecretKey = "s3am-test-secret-0123456789"
	Region    = "us-east-1"
)

// Names of the servers, in the order tests run them.
var Names = []string{"minio", "versitygw"}

// Server is one running S3 server.
type Server struct {
	Name     string
	Endpoint string // http://127.0.0.1:port
	bin      string
	dir      string
	cmd      *exec.Cmd
	log      *bytes.Buffer
	out      *lockedWriter
	done     chan struct{}
}

// RepoRoot is the module's root directory (where go.mod is).
func RepoRoot() (string, error) {
	d, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		p := filepath.Dir(d)
		if p == d {
			return "", errors.New("go.mod not found above the working directory")
		}
		d = p
	}
}

// Binary returns the path of a server's binary, building it if needed.
func Binary(name string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(root, "scripts", "s3-server"), "path", name).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("scripts/s3-server path %s: %w\n%s", name, err, ee.Stderr)
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// Start runs the named server until Stop.
func Start(name string) (*Server, error) {
	bin, err := Binary(name)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken before the server binds it
		s, err := start(name, bin)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func start(name, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "s3am-"+name+"-")
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var cmd *exec.Cmd
	switch name {
	case "minio":
		cmd = exec.Command(bin, "server", "--quiet", "--address", addr, filepath.Join(dir, "data"))
		cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
			"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	case "versitygw":
		for _, d := range []string{"data", "iam"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return nil, err
			}
		}
		// The internal IAM lets tests create users with fewer rights than root.
		cmd = exec.Command(bin, "--port", addr, "--iam-dir", filepath.Join(dir, "iam"), "posix", filepath.Join(dir, "data"))
		cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	default:
		return nil, fmt.Errorf("unknown server %q", name)
	}
	s := &Server{Name: name, Endpoint: "http://" + addr, bin: bin, dir: dir, cmd: cmd, log: &bytes.Buffer{}, done: make(chan struct{})}
	s.out = &lockedWriter{w: s.log}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { cmd.Wait(); close(s.done) }()
	if err := s.waitReady(60 * time.Second); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%s did not start: %w\n%s", name, err, s.Log())
	}
	return s, nil
}

// waitReady polls until the server is ready or exits: versitygw once it
// answers HTTP (any status); MinIO once its cluster health check says so,
// since it answers 503 XMinioServerNotInitialized for a while after it
// starts listening (long enough to fail a test on a busy machine).
func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return errors.New("server exited")
		default:
		}
		url, ready := s.Endpoint+"/", func(int) bool { return true }
		if s.Name == "minio" {
			url, ready = s.Endpoint+"/minio/health/cluster", func(code int) bool { return code == http.StatusOK }
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if ready(resp.StatusCode) {
				return nil
			}
		}
		select {
		case <-s.done:
			return errors.New("server exited")
		case <-time.After(50 * time.Millisecond): // poll interval, not synchronisation
		}
	}
	return errors.New("no answer within " + limit.String())
}

// Log returns what the server printed.
func (s *Server) Log() string {
	s.out.mu.Lock()
	defer s.out.mu.Unlock()
	return s.log.String()
}

// Stop ends the server and removes its data.
func (s *Server) Stop() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

// Client is an SDK client for the server with the test credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		// Like the tool: no default CRC trailers, so this client works on any store.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// Get reads an object back with Client, failing the test if it cannot.
func (s *Server) Get(t testing.TB, bucket, key string) (*s3.GetObjectOutput, []byte) {
	t.Helper()
	out, err := s.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return out, b
}

// PendingUploads counts the multipart uploads started and neither
// completed nor aborted in bucket.
func (s *Server) PendingUploads(t testing.TB, bucket string) int {
	t.Helper()
	out, err := s.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: &bucket})
	if err != nil {
		t.Fatalf("list multipart uploads: %v", err)
	}
	return len(out.Uploads)
}

// CreateUser adds a plain user (no rights on the root user's buckets) and
// reports whether this server can; only versitygw's admin CLI is at hand.
func (s *Server) CreateUser(t testing.TB, access, secret string) bool {
	t.Helper()
	if s.Name != "versitygw" {
		return false
	}
	out, err := exec.Command(s.bin, "admin", "--access", AccessKey, "--secret", SecretKey, "--endpoint-url", s.Endpoint,
		"create-user", "--access", access, "--secret", secret, "--role", "user").CombinedOutput()
	if err != nil {
		t.Fatalf("create user: %v\n%s", err, out)
	}
	return true
}

var bucketSeq atomic.Int64

// NewBucket creates a bucket with a unique name and returns the name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("s3am-%d-%d", os.Getpid()%100000, bucketSeq.Add(1))
	_, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &name})
	if err != nil {
		t.Fatalf("%s: create bucket %s: %v", s.Name, name, err)
	}
	return name
}

// Env returns the settings that point the tool at this server and bucket,
// with the test credentials: a run's AWS_* come from its own settings, not
// the process environment (see IsolateEnv), so that tests can run in parallel
// with different ones.
func (s *Server) Env(bucket string) map[string]string {
	return map[string]string{
		"PACKAGE_ASSETS_BUCKET":   bucket,
		"PACKAGE_ASSETS_ENDPOINT": s.Endpoint,
		"AWS_ACCESS_KEY_ID":       AccessKey,
		"AWS_SECRET_ACCESS_KEY":   SecretKey,
		"AWS_REGION":              Region,
	}
}

// SetEnv points the AWS SDK of this process at the test credentials and
// keeps it away from the machine's own AWS configuration. For TestMain of
// packages that build a store from the process environment.
func SetEnv() {
	IsolateEnv()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":     AccessKey,
		"AWS_SECRET_ACCESS_KEY": SecretKey,
		"AWS_REGION":            Region,
	} {
		os.Setenv(k, v)
	}
}

// IsolateEnv keeps the AWS SDK of this process (and of the programs it
// starts) away from the machine's own AWS configuration and credentials,
// without giving it any: each run passes its own (Env). For TestMain.
func IsolateEnv() {
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	} {
		os.Setenv(k, v)
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY",
		"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		os.Unsetenv(k)
	}
}

// shared is a server started once for the whole test binary.
type shared struct {
	once sync.Once
	s    *Server
	err  error
}

var (
	mu      sync.Mutex
	running = map[string]*shared{}
)

// Get returns the shared server of that name, starting it on first use
// (the two servers start at once when parallel tests ask for both).
// StopAll (from TestMain) stops them.
func Get(t testing.TB, name string) *Server {
	t.Helper()
	mu.Lock()
	sh := running[name]
	if sh == nil {
		sh = &shared{}
		running[name] = sh
	}
	mu.Unlock()
	sh.once.Do(func() { sh.s, sh.err = Start(name) })
	if sh.err != nil {
		t.Fatalf("start %s: %v", name, sh.err)
	}
	return sh.s
}

// StopAll stops every server Get started.
func StopAll() {
	mu.Lock()
	defer mu.Unlock()
	for n, sh := range running {
		sh.once.Do(func() {}) // wait for a start under way
		if sh.s != nil {
			sh.s.Stop()
		}
		delete(running, n)
	}
}

// Each runs f as a subtest once per server, the two in parallel: for what
// depends on how the store behaves (requests, keys, metadata, listings,
// conditional writes, errors it answers with).
func Each(t *testing.T, f func(t *testing.T, s *Server)) {
	for _, n := range Names {
		t.Run(n, func(t *testing.T) {
			t.Parallel()
			f(t, Get(t, n))
		})
	}
}

// One runs f on one server (the first of Names): for logic that goes
// through a real store without depending on which (what a miss explains,
// components, signatures, outputs, bad input), where Each would only double
// the time.
func One(t *testing.T, f func(t *testing.T, s *Server)) {
	f(t, Get(t, Names[0]))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
