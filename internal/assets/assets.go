// Package assets is the orchestrator: check, upload and download, over three
// concerns it reaches through small interfaces: the git checkout (which
// commit), the code hash (which build), and the S3 store (look up, copy,
// upload, download).
package assets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// Marker files in the package directory, as the original tool wrote them.
const (
	FoundFile    = ".found"
	CommitFile   = ".commit-hash"
	CodeHashFile = ".code-hash"
)

// Metadata keys on every stored object (x-amz-meta-...).
const (
	MetaCommit      = "commit-hash"
	MetaPackageHash = "package-hash"
	MetaCodeHash    = "code-hash"
)

// Store is what the orchestrator needs of S3.
type Store interface {
	URL(key string) string
	ReadSmall(ctx context.Context, key string, max int64) ([]byte, error)
	UploadFile(ctx context.Context, req s3store.UploadRequest) (s3store.Uploaded, error)
	WriteRecord(ctx context.Context, key string, body []byte, exclusive bool) error
	Copy(ctx context.Context, r s3store.CopyRequest) (etag string, err error)
	// List returns the objects under prefix at any depth, every page of them.
	List(ctx context.Context, prefix string) ([]s3store.Object, error)
	Download(ctx context.Context, req s3store.DownloadRequest) (s3store.Downloaded, error)
}

var _ Store = (*s3store.Store)(nil)

// Repo is what the orchestrator needs of the git checkout.
type Repo interface {
	Head() (string, error)
	// CodeHash hashes the files CODE_HASH_FIND_FILTER selects, and lists
	// what went in (to explain a miss).
	CodeHash(ctx context.Context) (*codehash.List, error)
	// Components hashes every component of PACKAGE_COMPONENTS, in one pass
	// over the checkout; sorted by name.
	Components(ctx context.Context) ([]ComponentCode, error)
}

// ErrNoCommitHash: upload ran without a check before it.
var ErrNoCommitHash = errors.New("no " + CommitFile + " in the package directory: run check first (in the same package directory)")

// Runner runs check, upload and download.
type Runner struct {
	Config   *config.Config
	Store    Store
	OpenRepo func(path string) (Repo, error)
	Log      *log.Logger
	// Tool names the writer in completion records ("s3-asset-manager v1.2.3").
	Tool string
	// ProgressTo receives upload progress (nil: none); Terminal draws a bar
	// there instead of writing a line every few seconds.
	ProgressTo io.Writer
	Terminal   bool
	// clock stands in for the real one while download waits (tests); nil
	// is the real one.
	clock waitClock
}

func (r *Runner) logf(format string, args ...any) { r.Log.Printf(format, args...) }

func (r *Runner) pkgPath(name string) string { return filepath.Join(r.Config.PackageDir, name) }

func writeMarker(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// readMarker returns a marker file's trimmed content; os.ErrNotExist if absent.
func readMarker(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func removeIfExists(path string) (bool, error) {
	err := os.Remove(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return false, err
}

// store is the Store with every error attributed where it arises.
func (r *Runner) store() Store { return storeKinds{r.Store} }
