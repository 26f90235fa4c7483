package s3store

import (
	"context"
	"errors"
	"sync"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// limiter bounds the requests in flight, and adapts the bound to a store
// that throttles, as TCP adapts its window to a congested link: a 503 (S3's
// SlowDown) halves it, down to one; every bound's worth of requests answered
// without one raises it by one, up to the configured concurrency. So a high
// concurrency is safe on a store that throttles: the requests it would refuse
// wait here instead of being sent, refused and retried.
//
// Only one halving per round of requests: the throttled answers to requests
// sent before a cut say nothing about the bound after it.
type limiter struct {
	mu       sync.Mutex
	limit    int // requests allowed in flight now
	max      int // the configured concurrency
	inFlight int
	acks     int // answers without throttling since the bound last grew
	epoch    int // bumped by every cut; a slot remembers the epoch it was taken in
	waiting  []chan int
}

func newLimiter(n int) *limiter {
	n = max(n, 1)
	return &limiter{limit: n, max: n}
}

// acquire waits for a slot and returns the epoch it was taken in, for release.
func (l *limiter) acquire(ctx context.Context) (int, error) {
	l.mu.Lock()
	if l.inFlight < l.limit && len(l.waiting) == 0 {
		l.inFlight++
		e := l.epoch
		l.mu.Unlock()
		return e, nil
	}
	ch := make(chan int, 1)
	l.waiting = append(l.waiting, ch)
	l.mu.Unlock()
	select {
	case e := <-ch:
		return e, nil
	case <-ctx.Done():
		l.mu.Lock()
		for i, w := range l.waiting {
			if w == ch {
				l.waiting = append(l.waiting[:i], l.waiting[i+1:]...)
				l.mu.Unlock()
				return 0, ctx.Err()
			}
		}
		l.mu.Unlock()
		// Granted as ctx ended: give the slot back.
		l.release(<-ch, false)
		return 0, ctx.Err()
	}
}

// release gives a slot back; throttled says the store refused the request
// for load.
func (l *limiter) release(epoch int, throttled bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	switch {
	case throttled && epoch == l.epoch:
		l.limit = max(1, l.limit/2)
		l.acks = 0
		l.epoch++
	case !throttled:
		if l.acks++; l.acks >= l.limit && l.limit < l.max {
			l.limit++
			l.acks = 0
		}
	}
	for len(l.waiting) > 0 && l.inFlight < l.limit {
		l.inFlight++
		l.waiting[0] <- l.epoch
		l.waiting = l.waiting[1:]
	}
}

// current is the bound now, for logs and tests.
func (l *limiter) current() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limit
}

// withLimiter makes every attempt of every request take a slot of l, after
// the retryer's backoff and before the attempt's timeout starts: an attempt
// waiting for a slot is not stalled, and a request waiting to be retried
// holds none.
func withLimiter(l *limiter) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("s3am.Limit",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					epoch, err := l.acquire(ctx)
					if err != nil {
						return middleware.FinalizeOutput{}, middleware.Metadata{}, err
					}
					out, md, err := next.HandleFinalize(ctx, in)
					l.release(epoch, throttled(err))
					return out, md, err
				}), "Retry", middleware.After)
		})
	}
}

// throttled: the store refused a request for load. S3 answers 503 SlowDown;
// other stores 503 with codes of their own (MinIO: SlowDownWrite, ...).
func throttled(err error) bool {
	if err == nil {
		return false
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == 503 {
		return true
	}
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "SlowDown"
}
