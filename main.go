// Command s3-asset-manager lets CI pipelines skip builds whose artifacts are
// already in S3. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/nsmithuk/s3-asset-manager/internal/cli"
	"github.com/nsmithuk/s3-asset-manager/internal/roots"
)

func main() {
	// CA roots compiled in, for the scratch image that has no certificate files.
	roots.Install()
	// The code hash allocates a lot of short-lived index entries and file
	// infos: a higher GC target cuts its CPU by a tenth. The soft limit keeps
	// the heap of very large repositories in check. Either can be overridden
	// with GOGC / GOMEMLIMIT as usual.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(512 << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args, os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
