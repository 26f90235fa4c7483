// Package pool is the program's one bounded worker pool: the code hash's
// walk over the checkout, uploads, copies and downloads of a set's files,
// and a multipart transfer's parts all run their items through it.
package pool

import (
	"context"
	"sync"
	"sync/atomic"
)

// Run calls fn(ctx, i) for i in [0, n) on at most workers goroutines and
// returns the first error, after which no further item starts and the ones
// in flight see ctx cancelled. Cancelled from outside before every item ran,
// it returns ctx's error: items not run never pass for done.
func Run(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	return RunWith(ctx, workers, n, func() struct{} { return struct{}{} },
		func(ctx context.Context, _ struct{}, i int) error { return fn(ctx, i) })
}

// RunWith is Run with state of each worker's own (a read buffer), made once
// per worker by newState and handed to each of its items.
//
// The workers live for the whole run rather than one goroutine per item (an
// S3 request is a deep call chain, and each fresh goroutine grows its stack
// to fit it again: a sixth of the CPU of 10,000 small uploads went to
// copying stacks), and claim items from a shared counter in small runs, so
// that 200,000 files of a hash cost no channel operation each.
func RunWith[S any](ctx context.Context, workers, n int, newState func() S, fn func(ctx context.Context, s S, i int) error) error {
	if n <= 0 {
		return ctx.Err()
	}
	workers = min(max(1, workers), n)
	// Runs of up to 64 items when there are many per worker; one at a time
	// when few (a set of large files must spread over every worker).
	chunk := min(max(1, n/(workers*64)), 64)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		done     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range workers {
		wg.Go(func() {
			s := newState()
			for ctx.Err() == nil {
				start := int(next.Add(int64(chunk))) - chunk
				if start >= n {
					return
				}
				for i := start; i < min(start+chunk, n); i++ {
					if ctx.Err() != nil {
						return
					}
					if err := fn(ctx, s, i); err != nil {
						once.Do(func() { firstErr = err; cancel() })
						return
					}
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if done.Load() < int64(n) {
		return context.Cause(ctx) // cancelled from outside
	}
	return nil
}
