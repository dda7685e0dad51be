package ratelimit

import (
	"context"
	"time"
)

// Limiter decides whether one more request of a key is admitted. The
// in-process Keyed is one; a shared store (gateway/ratelimit/redisstore)
// is another, with Keyed as its fallback.
type Limiter interface {
	Take(ctx context.Context, key string) Decision
}

// Decision is a limiter's answer for one request.
type Decision struct {
	// Allowed admits the request.
	Allowed bool
	// Wait is, when refused, how long until the key may send again
	// (Retry-After).
	Wait time.Duration
	// Unavailable: the shared store could not decide and its on_failure
	// is closed — the request is refused (503), not for its key's rate.
	Unavailable bool
}

// Take implements Limiter with the clock.
func (l *Keyed) Take(_ context.Context, key string) Decision {
	ok, wait := l.Allow(key, time.Now())
	return Decision{Allowed: ok, Wait: wait}
}
