//go:build unix

package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/nsmithuk/s3-asset-manager/internal/s3test"
)

// A cancelled job: the runner sends SIGINT to the step's entry process, the
// bash it runs the step's script with, and kills the process tree 10 s
// later. A bash waiting for a command passes no signal on, so the step
// execs the tool: it gets the signal itself, aborts its multipart uploads
// and writes no record (exit 130), rather than being killed mid-upload.
func TestNativeActionCancelled(t *testing.T) {
	t.Parallel()
	rel := newRelease(t, releaseTag)
	n := newNativeRunner(t, rel)
	srv := s3test.Get(t, "minio")
	bucket := srv.NewBucket(t)
	ws, _ := newWorkspace(t)
	with := func(mode, endpoint string) map[string]string {
		return map[string]string{"mode": mode, "bucket": bucket, "endpoint": endpoint, "package-directory": "dist"}
	}
	if r := n.run(t, ws, with("check", srv.Endpoint)); r.code != 0 {
		t.Fatalf("check: exit %d", r.code)
	}
	big := make([]byte, 40<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(ws, "dist", "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	proxy := s3test.NewProxy(t, srv.Endpoint)
	started := make(chan struct{})
	var once sync.Once
	proxy.SetPlan(func(_ int64, r *http.Request) s3test.Fault {
		if r.Method == http.MethodPut && r.URL.Query().Has("partNumber") {
			once.Do(func() { close(started) })
			return s3test.Stall // until the tool gives up the request
		}
		return s3test.Pass
	})
	n.runStep = func(t *testing.T, cmd *exec.Cmd) int {
		// Its own process group, so that a hang is cleaned up whole, as the
		// runner kills the process tree.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		for _, wait := range []<-chan struct{}{started, nil} {
			if wait == nil {
				if err := cmd.Process.Signal(os.Interrupt); err != nil { // the runner's cancel
					t.Fatal(err)
				}
				wait = make(chan struct{}) // the step's end alone
			}
			select {
			case <-wait:
			case err := <-done:
				var ee *exec.ExitError
				if err != nil && !strings.Contains(err.Error(), "exit status") {
					t.Fatal(err)
				}
				if ee, _ = err.(*exec.ExitError); ee != nil {
					return ee.ExitCode()
				}
				return 0
			case <-time.After(60 * time.Second): // a bound on a hang, not synchronisation
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
				t.Fatal("the step went on after SIGINT: the tool never got the signal")
			}
		}
		return -1
	}
	r := n.run(t, ws, with("upload", proxy.URL))
	if r.code != 130 {
		t.Errorf("cancelled upload: exit %d, want 130", r.code)
	}
	out, err := srv.Client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: &bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		if strings.HasSuffix(*o.Key, ".s3-asset-manager.json") {
			t.Errorf("record written by a cancelled upload: %s", *o.Key)
		}
	}
	if n := srv.PendingUploads(t, bucket); n != 0 {
		t.Errorf("%d multipart uploads left behind", n)
	}
}
