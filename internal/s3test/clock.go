package s3test

import (
	"context"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
)

// AdvanceUntil moves clock on by step each time waiters timers wait on it,
// until done is closed: time passes only while the code under test waits on
// the clock (a stall watch beside a request's timeout, say), never before it
// has started to. It fails when ctx ends with fewer timers waiting (the
// watch never came) or when the clock has moved limit with done still open.
func AdvanceUntil(ctx context.Context, clock *clockwork.FakeClock, waiters int, done <-chan struct{}, step, limit time.Duration) error {
	var moved time.Duration
	for {
		wait, stop := context.WithCancel(ctx)
		watched := make(chan error, 1)
		go func() { watched <- clock.BlockUntilContext(wait, waiters) }()
		select {
		case <-done:
			stop()
			return nil
		case err := <-watched:
			stop()
			if err != nil {
				return fmt.Errorf("fewer than %d timers waiting on the clock: %w", waiters, err)
			}
		}
		if moved >= limit {
			return fmt.Errorf("still waiting after the clock moved %s", moved)
		}
		clock.Advance(step)
		moved += step
	}
}
