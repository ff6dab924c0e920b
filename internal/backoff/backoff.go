// Package backoff is rowsync's one retry delay: capped exponential growth
// with jitter, and a sleep that ends with its context. Every component that
// retries (sources reconnecting, the pipeline retrying a sink, the
// checkpoint saver, the invalidator's delayed pass, snapshot reads) uses
// it, so "capped backoff with jitter" means the same thing everywhere.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a capped exponential backoff with jitter: attempt n (counted
// from 1) waits a random time in [d/2, d], where d = min(Min·2^(n-1), Max).
// Jitter keeps many clients that failed together from retrying together.
// The zero value is not useful; see the constructors' defaults.
type Policy struct {
	// Min is the base delay of the first attempt.
	Min time.Duration
	// Max caps the delay.
	Max time.Duration
}

// Cap returns the delay before jitter for attempt: min(Min·2^(attempt-1), Max).
// Attempts below 1 count as 1.
func (p Policy) Cap(attempt int) time.Duration {
	if p.Min <= 0 {
		return max(p.Max, 0)
	}
	d := p.Max
	if n := max(attempt, 1) - 1; n < 62 {
		if x := p.Min << n; x>>n == p.Min && x > 0 && x < p.Max {
			d = x
		}
	}
	return d
}

// Delay returns a random delay for attempt in [Cap/2, Cap].
func (p Policy) Delay(attempt int) time.Duration {
	d := p.Cap(attempt)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Wait sleeps Delay(attempt); it returns false if ctx ended first.
func (p Policy) Wait(ctx context.Context, attempt int) bool {
	return Sleep(ctx, p.Delay(attempt))
}

// Sleep waits d; it returns false if ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
