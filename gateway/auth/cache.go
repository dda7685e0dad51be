package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// tokenCache remembers verified tokens until they expire, keyed by the
// SHA-256 of the token so that the cache never holds a credential. It is
// bounded: when full, expired entries go first, then arbitrary ones.
type tokenCache struct {
	mu      sync.RWMutex
	max     int
	entries map[[sha256.Size]byte]cacheEntry
}

type cacheEntry struct {
	p     *Principal
	until time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, entries: make(map[[sha256.Size]byte]cacheEntry, 64)}
}

func (c *tokenCache) get(k [sha256.Size]byte, now time.Time) (*Principal, bool) {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e.p, true
}

func (c *tokenCache) put(k [sha256.Size]byte, p *Principal, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for key, e := range c.entries {
			if !now.Before(e.until) {
				delete(c.entries, key)
			}
		}
		// Still full: drop a tenth, in map order (effectively random).
		for key := range c.entries {
			if len(c.entries) < c.max-c.max/10 {
				break
			}
			delete(c.entries, key)
		}
	}
	c.entries[k] = cacheEntry{p: p, until: until}
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// subjectLimiter is one token bucket per subject. Buckets idle for longer
// than it takes them to refill are dropped, so memory follows the active
// subjects only.
type subjectLimiter struct {
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

func newSubjectLimiter(requests int, per time.Duration, burst int) *subjectLimiter {
	lim := rate.Limit(float64(requests) / per.Seconds())
	idle := time.Duration(float64(burst)/float64(lim)*float64(time.Second)) + time.Minute
	return &subjectLimiter{limit: lim, burst: burst, idle: idle, buckets: map[string]*bucket{}}
}

func (l *subjectLimiter) allow(subject string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > l.idle {
		for s, b := range l.buckets {
			if now.Sub(b.seen) > l.idle {
				delete(l.buckets, s)
			}
		}
		l.sweep = now
	}
	b := l.buckets[subject]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[subject] = b
	}
	b.seen = now
	return b.lim.AllowN(now, 1)
}
