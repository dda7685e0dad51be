// Package ratelimit is a token bucket per key (a token subject, a client
// certificate, an IP address). Buckets idle for longer than it takes them
// to refill are dropped, so memory follows the active keys only.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Keyed limits each key to Requests per Per on average, Burst at once.
type Keyed struct {
	mu      sync.Mutex
	limit   rate.Limit
	burst   int
	idle    time.Duration
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter of requests per per, with bursts of burst.
func New(requests int, per time.Duration, burst int) *Keyed {
	lim := rate.Limit(float64(requests) / per.Seconds())
	idle := time.Duration(float64(burst)/float64(lim)*float64(time.Second)) + time.Minute
	return &Keyed{limit: lim, burst: burst, idle: idle, buckets: map[string]*bucket{}}
}

// Allow takes one request from key's bucket. When it is empty, Allow
// reports false and how long until the next request would be allowed
// (for Retry-After).
func (l *Keyed) Allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > l.idle {
		for k, b := range l.buckets {
			if now.Sub(b.seen) > l.idle {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	r := b.lim.ReserveN(now, 1)
	wait := r.DelayFrom(now)
	r.CancelAt(now)
	return false, wait
}

// Len is the number of buckets held.
func (l *Keyed) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
