package assets

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// parallel calls fn(ctx, i) for i in [0, n) on at most workers goroutines and
// returns the first error, after which the rest are cancelled through ctx.
//
// The workers live for the whole run rather than one goroutine per item: an
// S3 request is a deep call chain, and each fresh goroutine grows its stack
// to fit it again (a sixth of the CPU of 10,000 small uploads went to
// copying stacks).
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	g, gctx := errgroup.WithContext(ctx)
	next := make(chan int)
	for range min(max(1, workers), n) {
		g.Go(func() error {
			for i := range next {
				if err := fn(gctx, i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	fed := 0
feed:
	for ; fed < n; fed++ {
		select {
		case next <- fed:
		case <-gctx.Done():
			break feed
		}
	}
	close(next)
	if err := g.Wait(); err != nil {
		return err
	}
	if fed < n {
		// Cancelled from outside before every item was handed out: the
		// items not run must not pass for done.
		return ctx.Err()
	}
	return nil
}
