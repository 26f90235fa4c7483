package s3store

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	"github.com/jonboulle/clockwork"
)

// attemptTimeout bounds each attempt of a request, not the whole operation:
// a stalled connection (a store that stops answering mid-body) fails that
// attempt, and the retryer makes another on a new connection.
//
// A GetObject body is read after the operation returns, under the same
// context: the timeout covers the whole attempt, the time a download's
// request waits mid-body for a buffer of the pool included. A body read
// that ends because the timeout fired says so (*timedOutError), so that it
// is not taken for a cancellation: the download resumes it from the byte
// it reached, as any body cut short.
func attemptTimeout(d time.Duration, clock clockwork.Clock) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("s3am.AttemptTimeout",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					actx, cancel := context.WithCancel(ctx)
					var fired atomic.Bool
					timer := clock.AfterFunc(d, func() { fired.Store(true); cancel() })
					stop := func() { timer.Stop(); cancel() }
					out, md, err := next.HandleFinalize(actx, in)
					if err != nil {
						timedOut := actx.Err() != nil && ctx.Err() == nil
						stop()
						if timedOut {
							return out, md, &stalledError{after: d, msg: err.Error()}
						}
						return out, md, err
					}
					if g, ok := out.Result.(*s3.GetObjectOutput); ok && g.Body != nil {
						// The body is read after the operation returns, under
						// this context (and bounded by it): stop when it is closed.
						g.Body = &stopOnClose{ReadCloser: g.Body, stop: stop, fired: &fired, after: d, parent: ctx}
					} else {
						stop() // or thousands of requests leave a timer each
					}
					return out, md, err
				}), "Retry", middleware.After)
		})
	}
}

// stalledError is an attempt that ran out of time. It does not wrap the
// cancellation it came from: the SDK never retries a cancelled request, and
// this one must be retried.
type stalledError struct {
	after time.Duration
	msg   string
}

func (e *stalledError) Error() string {
	return fmt.Sprintf("the request timed out after %s (PACKAGE_ASSETS_REQUEST_TIMEOUT): %s", e.after, e.msg)
}

// RetryableError tells the SDK's retryer to try again.
func (e *stalledError) RetryableError() bool { return true }

// stopOnClose releases an attempt's timer and context when a GetObject body
// is closed, and names the timeout when a read fails because it fired.
type stopOnClose struct {
	io.ReadCloser
	stop   func()
	fired  *atomic.Bool
	after  time.Duration
	parent context.Context // cancelled too: a cancellation, not a timeout
}

// timedOutError is a body read ended by the attempt's timeout.
type timedOutError struct{ after time.Duration }

func (e *timedOutError) Error() string {
	return fmt.Sprintf("the request timed out after %s (PACKAGE_ASSETS_REQUEST_TIMEOUT, one attempt, waits for buffer space included)", e.after)
}

func (b *stopOnClose) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.fired.Load() && b.parent.Err() == nil {
		err = &timedOutError{b.after}
	}
	return n, err
}

func (b *stopOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.stop()
	return err
}
