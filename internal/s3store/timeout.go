package s3store

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
)

// attemptTimeout bounds each attempt of a request, not the whole operation:
// a stalled connection (a store that stops answering mid-body) fails that
// attempt, and the retryer makes another on a new connection.
func attemptTimeout(d time.Duration) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("s3am.AttemptTimeout",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					actx, cancel := context.WithCancel(ctx)
					timer := time.AfterFunc(d, cancel)
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
						g.Body = &stopOnClose{ReadCloser: g.Body, stop: stop}
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
	return fmt.Sprintf("no progress within %s (PACKAGE_ASSETS_REQUEST_TIMEOUT): %s", e.after, e.msg)
}

// RetryableError tells the SDK's retryer to try again.
func (e *stalledError) RetryableError() bool { return true }

// stopOnClose releases an attempt's timer and context when a GetObject body
// is closed.
type stopOnClose struct {
	io.ReadCloser
	stop func()
}

func (b *stopOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.stop()
	return err
}
