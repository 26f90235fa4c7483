package assets

import (
	"context"
	"errors"
	"os"

	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
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
	// AfterCancel gives a context cancelled s3store.CancelGrace after ctx
	// is, on the store's clock: for work under way when the run is cancelled.
	AfterCancel(ctx context.Context) (context.Context, context.CancelFunc)
}

var _ Store = (*s3store.Store)(nil)

// store is the Store with every error attributed where it arises.
func (r *Runner) store() Store { return storeKinds{r.Store} }

// storeKinds attributes every error of the store where it arises: a local
// file that cannot be read or changed while it was sent, or a download's
// file that cannot be written or put in place, is the package directory's;
// everything else is S3's.
type storeKinds struct{ Store }

func storeKind(err error) error { return fail(KindS3, err) }

// fileKind is storeKind for a request that reads or writes a local file.
func fileKind(err error) error {
	if errors.Is(err, s3store.ErrChanged) || errors.Is(err, s3store.ErrLocalFile) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return fail(KindPackage, err)
	}
	return fail(KindS3, err)
}

func (s storeKinds) ReadSmall(ctx context.Context, key string, max int64) ([]byte, error) {
	b, err := s.Store.ReadSmall(ctx, key, max)
	return b, storeKind(err)
}

func (s storeKinds) UploadFile(ctx context.Context, req s3store.UploadRequest) (s3store.Uploaded, error) {
	u, err := s.Store.UploadFile(ctx, req)
	return u, fileKind(err)
}

func (s storeKinds) WriteRecord(ctx context.Context, key string, body []byte, exclusive bool) error {
	return storeKind(s.Store.WriteRecord(ctx, key, body, exclusive))
}

func (s storeKinds) Copy(ctx context.Context, r s3store.CopyRequest) (string, error) {
	etag, err := s.Store.Copy(ctx, r)
	return etag, storeKind(err)
}

func (s storeKinds) List(ctx context.Context, prefix string) ([]s3store.Object, error) {
	objs, err := s.Store.List(ctx, prefix)
	return objs, storeKind(err)
}

func (s storeKinds) Download(ctx context.Context, req s3store.DownloadRequest) (s3store.Downloaded, error) {
	d, err := s.Store.Download(ctx, req)
	return d, fileKind(err)
}
