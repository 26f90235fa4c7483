package assets

import (
	"errors"
	"fmt"
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
