package backend

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/sony/gobreaker/v2"
)

// instance is one base URL of a backend with its health: healthy is the
// active check's verdict, ejectedUntil the passive one's.
type instance struct {
	base         *url.URL
	healthy      atomic.Bool
	ejectedUntil atomic.Int64 // unix nanoseconds
	failures     atomic.Int32 // consecutive failed calls
	ejections    atomic.Int32 // consecutive ejections, for the doubling
	probeStreak  int          // active check: consecutive results of one kind (owned by its goroutine)
}

func (i *instance) available(now int64) bool {
	return i.healthy.Load() && i.ejectedUntil.Load() <= now
}

// observe records one attempt for passive ejection: ConsecutiveFailures
// failures in a row eject the instance for Duration, doubled for each
// ejection in a row (at most 2^10 times); a success resets both.
func (i *instance) observe(e config.Ejection, failed bool) {
	if !failed {
		i.failures.Store(0)
		i.ejections.Store(0)
		return
	}
	if e.ConsecutiveFailures <= 0 {
		return
	}
	if n := i.failures.Add(1); int(n) >= e.ConsecutiveFailures {
		i.failures.Store(0)
		k := min(i.ejections.Add(1)-1, 10)
		i.ejectedUntil.Store(time.Now().Add(e.Duration.D() << k).UnixNano())
	}
}

// pick returns the next available instance in round robin, avoiding
// previous (the one that just failed) when another is available. When
// none is available every instance is used: sending to a possibly bad
// instance beats refusing every request (Envoy's panic mode).
func (c *Client) pick(previous *instance) *instance {
	n := len(c.instances)
	if n == 1 {
		return c.instances[0]
	}
	now := time.Now().UnixNano()
	start := int(c.next.Add(1) - 1)
	var fallback *instance
	for k := 0; k < n; k++ {
		inst := c.instances[(start+k)%n]
		if !inst.available(now) {
			continue
		}
		if inst != previous {
			return inst
		}
		fallback = inst
	}
	if fallback != nil {
		return fallback
	}
	return c.instances[start%n]
}

// Start runs the active health checks until ctx ends (the table's
// lifetime). Without a configured check it does nothing.
func (c *Client) Start(ctx context.Context) {
	if c.health == nil {
		return
	}
	for _, inst := range c.instances {
		go c.probeLoop(ctx, inst)
	}
}

func (c *Client) probeLoop(ctx context.Context, inst *instance) {
	h := c.health
	t := time.NewTicker(h.Interval.D())
	defer t.Stop()
	for {
		ok := c.probe(ctx, inst)
		switch {
		case ok == inst.healthy.Load():
			inst.probeStreak = 0
		default:
			inst.probeStreak++
			if (ok && inst.probeStreak >= h.HealthyThreshold) || (!ok && inst.probeStreak >= h.UnhealthyThreshold) {
				inst.healthy.Store(ok)
				inst.probeStreak = 0
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Client) probe(ctx context.Context, inst *instance) bool {
	pctx, cancel := context.WithTimeout(ctx, c.health.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, inst.base.String()+c.health.Path, nil)
	if err != nil {
		return false
	}
	resp, err := c.http.RoundTrip(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// Healthy reports the instances' availability, in configuration order
// (for tests and diagnostics).
func (c *Client) Healthy() []bool {
	now := time.Now().UnixNano()
	out := make([]bool, len(c.instances))
	for i, inst := range c.instances {
		out[i] = inst.available(now)
	}
	return out
}

// retryBudget allows retries up to ratio × calls plus minPerSecond per
// second: a token bucket filled by calls and by time, emptied by retries,
// holding at most one second's worth of the floor plus ten calls' worth.
type retryBudget struct {
	mu           sync.Mutex
	tokens       float64
	last         time.Time
	ratio, floor float64
	capacity     float64
}

func newRetryBudget(r config.Retry) *retryBudget {
	b := &retryBudget{last: time.Now()}
	if r.BudgetRatio != nil {
		b.ratio = *r.BudgetRatio
	}
	if r.BudgetMinPerSecond != nil {
		b.floor = *r.BudgetMinPerSecond
	}
	b.capacity = b.floor + 10*b.ratio + 1
	b.tokens = b.floor
	return b
}

func (b *retryBudget) refill(now time.Time) {
	b.tokens = min(b.capacity, b.tokens+now.Sub(b.last).Seconds()*b.floor)
	b.last = now
}

// deposit records a call.
func (b *retryBudget) deposit() {
	b.mu.Lock()
	b.refill(time.Now())
	b.tokens = min(b.capacity, b.tokens+b.ratio)
	b.mu.Unlock()
}

// withdraw takes one retry from the budget, or reports that none is left.
func (b *retryBudget) withdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// backoff is the wait before attempt+1: full jitter, a random duration up
// to Backoff·2^(attempt-1), capped at MaxBackoff, so that clients that
// failed together do not retry together.
func backoff(r config.Retry, attempt int) time.Duration {
	ceiling := r.Backoff.D() << min(attempt-1, 16)
	if max := r.MaxBackoff.D(); ceiling > max || ceiling <= 0 {
		ceiling = max
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

// sleep waits d unless ctx ends first (then false).
func sleep(ctx context.Context, d time.Duration) bool {
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

// newBreaker opens after ConsecutiveFailures failed calls in a row, or when
// FailureRatio of at least MinCalls calls in Window failed; it stays open
// OpenFor, then lets HalfOpenCalls through and closes when they succeed.
// A call fails when it got no answer or a 5xx; a 4xx is the backend
// working. A deadline of the client's own making (context canceled) does
// not count.
func newBreaker(c *Client, cb config.CircuitBreaker) *gobreaker.CircuitBreaker[*Response] {
	st := gobreaker.Settings{
		Name:        c.Name,
		MaxRequests: uint32(max(cb.HalfOpenCalls, 1)),
		Interval:    cb.Window.D(),
		Timeout:     cb.OpenFor.D(),
		ReadyToTrip: func(n gobreaker.Counts) bool {
			if cb.ConsecutiveFailures < 0 {
				return false
			}
			if cb.ConsecutiveFailures > 0 && int(n.ConsecutiveFailures) >= cb.ConsecutiveFailures {
				return true
			}
			return cb.FailureRatio != nil && cb.MinCalls > 0 && int(n.Requests) >= cb.MinCalls &&
				float64(n.TotalFailures) >= *cb.FailureRatio*float64(n.Requests)
		},
		OnStateChange: func(_ string, _, to gobreaker.State) {
			if f := c.OnBreakerChange; f != nil {
				f(to == gobreaker.StateOpen)
			}
		},
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	}
	return gobreaker.NewCircuitBreaker[*Response](st)
}
