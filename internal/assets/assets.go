// Package assets is the orchestrator: check, upload and download, over three
// concerns it reaches through small interfaces: the git checkout (which
// commit), the code hash (which build), and the S3 store (look up, copy,
// upload, download).
package assets

import (
	"context"
	"errors"
	"io"
	"log"

	"github.com/jonboulle/clockwork"

	"github.com/nsmithuk/s3-asset-manager/internal/codehash"
	"github.com/nsmithuk/s3-asset-manager/internal/config"
	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// Metadata keys on every stored object (x-amz-meta-...).
const (
	MetaCommit      = "commit-hash"
	MetaPackageHash = s3store.MetaPackageHash
	MetaCodeHash    = "code-hash"
)

// Repo is what the orchestrator needs of the git checkout.
type Repo interface {
	Head() (string, error)
	// CodeHash hashes the files CODE_HASH_FIND_FILTER selects, and lists
	// what went in (to explain a miss).
	CodeHash(ctx context.Context) (*codehash.List, error)
	// Components hashes every component of PACKAGE_COMPONENTS, in one pass
	// over the checkout; sorted by name.
	Components(ctx context.Context) ([]ComponentCode, error)
	// ComponentNames names the components of PACKAGE_COMPONENTS for the
	// commit's tracked tree, sorted, without hashing; nil when the names
	// alone cannot tell (Components then reports why).
	ComponentNames(ctx context.Context) ([]string, error)
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
	// Clock is the time download waits by and prune judges ages by; nil is
	// the real one (tests move a fake one instead of waiting).
	Clock clockwork.Clock
	work  *workspace
	// handOver, when set, replaces owner.LikeParent for what the
	// workspace makes (the tests: a chown refused).
	handOver func(path string) error
}

func (r *Runner) clock() clockwork.Clock {
	if r.Clock == nil {
		return clockwork.NewRealClock()
	}
	return r.Clock
}

func (r *Runner) logf(format string, args ...any) { r.Log.Printf(format, args...) }
