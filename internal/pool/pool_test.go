package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct{ workers, n int }{{1, 0}, {1, 5}, {4, 3}, {4, 100}} {
		var (
			mu             sync.Mutex
			seen           = map[int]int{}
			active, maxAct atomic.Int64
		)
		err := Run(context.Background(), tc.workers, tc.n, func(_ context.Context, i int) error {
			a := active.Add(1)
			for m := maxAct.Load(); a > m && !maxAct.CompareAndSwap(m, a); m = maxAct.Load() {
			}
			defer active.Add(-1)
			mu.Lock()
			seen[i]++
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != tc.n {
			t.Errorf("%+v: %d items done, want %d", tc, len(seen), tc.n)
		}
		for i, c := range seen {
			if c != 1 || i < 0 || i >= tc.n {
				t.Errorf("%+v: item %d done %d times", tc, i, c)
			}
		}
		if maxAct.Load() > int64(tc.workers) {
			t.Errorf("%+v: %d at once", tc, maxAct.Load())
		}
	}
}

// The first error stops the feed and cancels the items in flight.
func TestRunStopsOnError(t *testing.T) {
	boom := errors.New("boom")
	var done atomic.Int64
	err := Run(context.Background(), 2, 1000, func(ctx context.Context, i int) error {
		if i == 3 {
			return boom
		}
		if ctx.Err() == nil {
			done.Add(1)
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if done.Load() >= 999 {
		t.Errorf("every item ran after the error")
	}
}

// Cancelled from outside part way, with no item failing: still an error,
// never a silent partial run.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var done atomic.Int64
	err := Run(ctx, 2, 1000, func(ctx context.Context, i int) error {
		if i == 5 {
			cancel()
		}
		done.Add(1)
		return nil
	})
	if done.Load() < 1000 && !errors.Is(err, context.Canceled) {
		t.Fatalf("%d of 1000 items run, err = %v", done.Load(), err)
	}
}

// Each worker's state is its own: items of one worker never run at once
// (the race detector sees any sharing), and no more states are made than
// workers.
func TestRunWithState(t *testing.T) {
	var made atomic.Int64
	type state struct{ items int }
	err := RunWith(context.Background(), 4, 10000, func() *state { made.Add(1); return &state{} },
		func(_ context.Context, s *state, i int) error { s.items++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if m := made.Load(); m < 1 || m > 4 {
		t.Errorf("%d states for 4 workers", m)
	}
}
