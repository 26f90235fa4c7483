// Package version holds the build's version, stamped at link time:
//
//	go build -ldflags "-X github.com/nsmithuk/s3-asset-manager/internal/version.Version=v1.2.3"
package version

// Version is "dev" in builds that were not stamped.
var Version = "dev"
