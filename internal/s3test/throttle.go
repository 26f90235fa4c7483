package s3test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Throttle answers 503 SlowDown, as S3 throttles a busy prefix, to a request
// that would make more than MaxInFlight requests in flight at once, or that
// comes faster than Rate requests a second (a token bucket holding one
// second's worth). Zero turns either limit off.
type Throttle struct {
	MaxInFlight int
	Rate        float64

	inFlight  atomic.Int64
	peak      atomic.Int64
	passed    atomic.Int64
	throttled atomic.Int64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// Wrap puts the throttle in front of next.
func (t *Throttle) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := t.inFlight.Add(1)
		defer t.inFlight.Add(-1)
		for p := t.peak.Load(); n > p && !t.peak.CompareAndSwap(p, n); p = t.peak.Load() {
		}
		if (t.MaxInFlight > 0 && n > int64(t.MaxInFlight)) || !t.take() {
			t.throttled.Add(1)
			// The body is left unread: the server closes the connection after
			// answering, as a store refusing a large upload early may.
			s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return
		}
		t.passed.Add(1)
		next.ServeHTTP(w, r)
	})
}

// take spends a token of the rate limit, if there is one.
func (t *Throttle) take() bool {
	if t.Rate <= 0 {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.last.IsZero() {
		t.tokens = t.Rate
	} else {
		t.tokens = min(t.Rate, t.tokens+now.Sub(t.last).Seconds()*t.Rate)
	}
	t.last = now
	if t.tokens < 1 {
		return false
	}
	t.tokens--
	return true
}

// Passed is how many requests went through, Throttled how many were
// refused, Peak the most in flight at once (refused ones included).
func (t *Throttle) Passed() int64    { return t.passed.Load() }
func (t *Throttle) Throttled() int64 { return t.throttled.Load() }
func (t *Throttle) Peak() int64      { return t.peak.Load() }
