// Command s3-asset-manager lets CI pipelines skip builds whose artifacts are
// already in S3. See README.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/nsmithuk/s3-asset-manager/internal/cli"
	"github.com/nsmithuk/s3-asset-manager/internal/roots"
)

func main() {
	// CA roots compiled in, for the scratch image that has no certificate files.
	roots.Install()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args, os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
