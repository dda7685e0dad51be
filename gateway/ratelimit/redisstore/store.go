// Package redisstore keeps rate-limit state in Redis, so that every
// replica of the gateway draws on one budget per key: the brute-force
// limit per token subject and the per-client limit hold across replicas,
// reloads and restarts.
//
// Each decision is one round trip: a Lua script (GCRA, loaded when the
// store is first reached and again whenever it answers after being down,
// then called by its SHA with EVALSHA) reads and updates one key atomically on
// the server, with the server's clock, and sets the key's TTL to the time
// its bucket takes to refill — no key outlives its state. Keys are
// prefix + "rl:" + limiter + ":" + a SHA-256 of the key (subjects and
// addresses are not written to Redis in the clear).
//
// Failure is bounded and visible: every call has a deadline (timeout,
// default 5 ms). A call that fails or is late marks the store down; until
// a probe (PING every 250 ms, same deadline) succeeds, decisions are made
// without Redis — by the replica's own in-memory buckets (on_failure
// local) or by refusing (closed). Observers learn of every change.
package redisstore

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/ratelimit"
)

// probeInterval is how often a store that is down is asked whether it
// answers again.
const probeInterval = 250 * time.Millisecond

// quietLibrary silences go-redis's own log lines (unstructured text on
// stderr, beside the gateway's JSON log): a store's failures reach the
// log once per change of state through its Observer, with the reason.
var quietLibrary sync.Once

type discardLog struct{}

func (discardLog) Printf(context.Context, string, ...any) {}

// Store is one limit_stores entry.
type Store struct {
	name    string
	client  redis.UniversalClient
	prefix  string
	timeout time.Duration
	closed  bool // on_failure: closed

	up       atomic.Bool
	probing  atomic.Bool
	lastErr  atomic.Pointer[string]
	observer atomic.Pointer[Observer]
	done     chan struct{}
	stopOnce sync.Once
}

// Observer learns of a store's state: Changed on every transition (and
// once when it is set), Fallback for each decision made without the store.
type Observer struct {
	Changed  func(up bool, reason string)
	Fallback func()
}

// New connects to the store and asks it once (within a second) whether
// it answers; a store that does not is down from the start — the gateway
// still starts, deciding without it, and probes until it answers.
func New(name string, c *config.LimitStore) (*Store, error) {
	quietLibrary.Do(func() { redis.SetLogger(discardLog{}) })
	client, err := newClient(c)
	if err != nil {
		return nil, fmt.Errorf("limit_stores.%s: %w", name, err)
	}
	s := &Store{name: name, client: client, prefix: c.KeyPrefix, timeout: c.Timeout.D(),
		closed: c.OnFailure == "closed", done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.reach(ctx); err != nil {
		s.markDown(err)
	} else {
		s.up.Store(true)
	}
	return s, nil
}

// reach asks the store whether it answers and loads the limiter script
// into it. Loading here — not on the first decision — keeps every
// decision one round trip: EVALSHA on a server without the script costs a
// second (NOSCRIPT, then EVAL with the source), which a 5 ms deadline on
// a busy replica may not allow; a restarted server has lost its scripts.
// A server that answers but refuses SCRIPT LOAD (an ACL, a renamed
// command) is up all the same: its decisions take the second round trip.
func (s *Store) reach(ctx context.Context) error {
	if err := s.client.Ping(ctx).Err(); err != nil {
		return err
	}
	var refused redis.Error
	if err := gcra.Load(ctx, s.client).Err(); err != nil && !errors.As(err, &refused) {
		return err
	}
	return nil
}

func newClient(c *config.LimitStore) (redis.UniversalClient, error) {
	var password string
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, err
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	tlsConfig, err := c.TLS.Config()
	if err != nil {
		return nil, err
	}
	// The deadline of a call is the context's; the connection timeouts
	// bound what a context cannot (dialing a black hole).
	dial := max(c.Timeout.D()*20, 100*time.Millisecond)
	if c.URL != "" {
		u, _ := url.Parse(c.URL)
		opt, err := redis.ParseURL(c.URL)
		if err != nil {
			return nil, err
		}
		if u.Scheme == "rediss" && tlsConfig == nil {
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if tlsConfig != nil && tlsConfig.ServerName == "" {
			tlsConfig.ServerName = u.Hostname() // verified against the URL's host
		}
		if c.Username != "" {
			opt.Username = c.Username
		}
		opt.Password = password
		opt.TLSConfig = tlsConfig
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = dial, dial, dial
		opt.ContextTimeoutEnabled = true
		opt.MaxRetries = -1 // a retry would overrun the deadline; the fallback decides
		return redis.NewClient(opt), nil
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: c.Addresses, MasterName: c.SentinelMaster, Username: c.Username, Password: password,
		TLSConfig: tlsConfig, DialTimeout: dial, ReadTimeout: dial, WriteTimeout: dial,
		ContextTimeoutEnabled: true, MaxRetries: -1,
		// Addresses without a Sentinel master are Cluster nodes, even one.
		IsClusterMode: c.SentinelMaster == "",
	}), nil
}

// Name is the store's name in limit_stores.
func (s *Store) Name() string { return s.name }

// Up reports whether decisions are made by the store now.
func (s *Store) Up() bool { return s.up.Load() }

// Observe sets the store's observer and tells it the current state.
func (s *Store) Observe(o Observer) {
	s.observer.Store(&o)
	reason := ""
	if r := s.lastErr.Load(); r != nil && !s.up.Load() {
		reason = *r
	}
	if o.Changed != nil {
		o.Changed(s.up.Load(), reason)
	}
}

// Close stops probing and closes the connections.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.done) })
	return s.client.Close()
}

// markDown records a failed call and starts the probe (once).
func (s *Store) markDown(err error) {
	reason := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		reason = fmt.Sprintf("no answer within %s", s.timeout)
	}
	s.lastErr.Store(&reason)
	if s.up.CompareAndSwap(true, false) {
		if o := s.observer.Load(); o != nil && o.Changed != nil {
			o.Changed(false, reason)
		}
	}
	if s.probing.CompareAndSwap(false, true) {
		go s.probe()
	}
}

// probe reaches the store (PING, then the script) until it answers within
// the deadline.
func (s *Store) probe() {
	defer s.probing.Store(false)
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		err := s.reach(ctx)
		cancel()
		if err == nil {
			if s.up.CompareAndSwap(false, true) {
				if o := s.observer.Load(); o != nil && o.Changed != nil {
					o.Changed(true, "")
				}
			}
			return
		}
	}
}

// gcra admits a request when the key's theoretical arrival time (TAT),
// advanced by one emission interval, is no more than burst intervals
// ahead of now — the token bucket of golang.org/x/time/rate with the
// same rate and burst. Times are microseconds of the server's clock
// (TIME), so replicas' clocks do not matter. Returns {1, 0} admitted or
// {0, µs until the key may send again}. The key expires when its bucket
// is full again.
var gcra = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next = tat + interval
local wait = next - burst * interval - now
if wait > 0 then
  return {0, wait}
end
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000) + 1)
return {1, 0}
`)

// Shared is a rate limit whose buckets live in the store.
type Shared struct {
	store    *Store
	id       string
	interval int64 // µs between requests at the sustained rate
	burst    int
	local    *ratelimit.Keyed
}

// Limiter returns the limit requests per per with bursts of burst, named
// id in the store's keys (e.g. auth:erp-idp): limits with the same id in
// every replica share their buckets. local decides while the store is
// down (on_failure local).
func (s *Store) Limiter(id string, requests int, per time.Duration, burst int) *Shared {
	return &Shared{store: s, id: id, interval: max(1, per.Microseconds()/int64(requests)), burst: burst,
		local: ratelimit.New(requests, per, burst)}
}

// Take implements ratelimit.Limiter: one round trip to the store, or the
// fallback while it is down or when this call fails or is late.
func (l *Shared) Take(ctx context.Context, key string) ratelimit.Decision {
	s := l.store
	if !s.up.Load() {
		return l.fallback(key)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	res, err := gcra.Run(ctx, s.client, []string{l.redisKey(key)}, l.interval, l.burst).Int64Slice()
	cancel()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("limiter script answered %v", res)
	}
	if err != nil {
		s.markDown(err)
		return l.fallback(key)
	}
	if res[0] == 1 {
		return ratelimit.Decision{Allowed: true}
	}
	return ratelimit.Decision{Wait: time.Duration(res[1]) * time.Microsecond}
}

func (l *Shared) fallback(key string) ratelimit.Decision {
	if o := l.store.observer.Load(); o != nil && o.Fallback != nil {
		o.Fallback()
	}
	if l.store.closed {
		return ratelimit.Decision{Unavailable: true, Wait: probeInterval}
	}
	return l.local.Take(context.Background(), key)
}

func (l *Shared) redisKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return l.store.prefix + "rl:" + l.id + ":" + hex.EncodeToString(sum[:16])
}
