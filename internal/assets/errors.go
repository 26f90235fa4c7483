package assets

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nsmithuk/s3-asset-manager/internal/s3store"
)

// Kind says which concern a failure came from; the CLI maps it to an exit
// code, in one place. A kind is attached where the error arises: the store's
// errors are S3 (storeKinds), the workspace's are the package directory's,
// the checkout's are git's (or the settings', when a filter selects nothing).
type Kind int

const (
	KindConfig Kind = iota + 1 // a setting is wrong in a way only the data shows
	KindGit
	KindS3
	KindPackage
	KindNotFound // a set that was required is not there (download; check with fail-on-miss; hash --diff)
	// KindUsage: the command line is wrong (exit 2 as KindConfig, said as
	// it is rather than as a list of settings problems).
	KindUsage
)

// Failure is an error attributed to a concern.
type Failure struct {
	Kind Kind
	Err  error
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// fail attributes err to k, unless it is attributed already: where an error
// arises knows its concern best.
func fail(k Kind, err error) error {
	if err == nil || KindOf(err) != 0 {
		return err
	}
	return &Failure{Kind: k, Err: err}
}

// failIn is fail with what was being done as context ("code hash: ..."),
// added only to an error not attributed yet: a concern that attributed it
// has said what it was doing, and saying it again repeats it
// ("code hash: PACKAGE_COMPONENTS: code hash: ...").
func failIn(k Kind, doing string, err error) error {
	if err == nil || KindOf(err) != 0 {
		return err
	}
	return &Failure{Kind: k, Err: fmt.Errorf("%s: %w", doing, err)}
}

// failAs attributes err to k whatever it was attributed to: for a caller that
// knows what the error means here (an object gone during a download is a set
// not there, not a failure of S3).
func failAs(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Failure{Kind: k, Err: err}
}

// KindOf is the kind of the outermost attribution in err's chain; 0 for none.
func KindOf(err error) Kind {
	if f := (*Failure)(nil); errors.As(err, &f) {
		return f.Kind
	}
	return 0
}

// storeKinds attributes every error of the store where it arises: a local
// file that cannot be read or changed while it was sent is the package
// directory's; everything else is S3's.
type storeKinds struct{ Store }

func storeKind(err error) error { return fail(KindS3, err) }

// fileKind is storeKind for a request that reads or writes a local file.
func fileKind(err error) error {
	if errors.Is(err, s3store.ErrChanged) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
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
