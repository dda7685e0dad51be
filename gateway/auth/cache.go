package auth

import (
	"crypto/sha256"
	"sync"
	"time"
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
