// Package backend performs the canonical call to a legacy system and reads
// its answer. The backend's scheme and host come only from configuration: a
// rendered path is appended to a configured base URL and the result is
// checked to still point there, so no client value can redirect a call.
package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/sony/gobreaker/v2"
)

// Client calls the instances of one backend: round robin over the
// healthy ones, each attempt bounded by the per-try timeout and the whole
// call by the caller's deadline, failed attempts retried only when that is
// safe (see Retry in config), and the whole backend behind a circuit
// breaker.
type Client struct {
	Name       string
	instances  []*instance
	next       atomic.Uint64
	http       *http.Transport
	headers    http.Header
	maxBytes   int64
	timeout    time.Duration
	tryTimeout time.Duration
	retry      config.Retry
	budget     *retryBudget
	ejection   config.Ejection
	health     *config.HealthCheck
	breaker    *gobreaker.CircuitBreaker[*Response]
	openFor    time.Duration

	// OnBreakerChange, when set before the first call, is told when the
	// breaker opens (true) and closes again (false).
	OnBreakerChange func(open bool)
}

// NewClient builds the client of one configured backend. Its transport keeps
// MaxIdleConnsPerHost connections warm (Go's default of 2 serialises load).
func NewClient(name string, b *config.Backend) (*Client, error) {
	c := &Client{Name: name, headers: http.Header{}, maxBytes: b.MaxResponseBytes, timeout: b.Timeout.D(),
		tryTimeout: b.TryTimeout.D(), retry: b.Retry, ejection: b.Ejection, health: b.HealthCheck, openFor: b.CircuitBreaker.OpenFor.D()}
	if c.tryTimeout == 0 || c.tryTimeout > c.timeout {
		c.tryTimeout = c.timeout
	}
	if c.retry.Attempts == 0 {
		c.retry.Attempts = 1
	}
	c.budget = newRetryBudget(c.retry)
	for _, s := range b.URLs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", name, err)
		}
		inst := &instance{base: u}
		inst.healthy.Store(true)
		c.instances = append(c.instances, inst)
	}
	for k, v := range b.Headers {
		c.headers.Set(k, v)
	}
	tlsConfig, err := b.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", name, err)
	}
	dialer := &net.Dialer{Timeout: b.ConnectTimeout.D(), KeepAlive: 30 * time.Second}
	// Calls go straight to the transport, not through an http.Client: a
	// legacy backend's redirect is an answer to map, not to follow, and
	// without redirects the client's work per call (a copy of the headers
	// for a redirect that never comes, deadline bookkeeping the call's
	// context already does) is cost without use.
	c.http = &http.Transport{
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsConfig,
		MaxIdleConns:          b.MaxIdleConnsPerHost * len(b.URLs),
		MaxIdleConnsPerHost:   b.MaxIdleConnsPerHost,
		IdleConnTimeout:       b.IdleTimeout.D(),
		TLSHandshakeTimeout:   b.ConnectTimeout.D(),
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
		DisableCompression:    true,
	}
	c.breaker = newBreaker(c, b.CircuitBreaker)
	return c, nil
}

// Timeout is the default total deadline of one call.
func (c *Client) Timeout() time.Duration { return c.timeout }

// RetryAfter is what a client is told to wait while the breaker is open.
func (c *Client) RetryAfter() time.Duration { return c.openFor }

// Request is a rendered canonical call.
type Request struct {
	Method string
	// Path is already escaped; it is appended to the base URL's path.
	Path        string
	Query       url.Values
	Header      http.Header
	Body        []byte
	ContentType string
}

// Response is the backend's answer, body read in full (bounded).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	fields fields
}

// Failure is a call that produced no answer.
type Failure struct {
	// Kind is refused (nothing was sent: connection refused or no such
	// host), timeout (the deadline passed), open (the circuit breaker is
	// open: nothing was sent) or error (anything else, including an
	// answer too large or cut short).
	Kind string
	Err  error
}

func (f *Failure) Error() string { return "backend call " + f.Kind + ": " + f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Do makes the call: attempts on the healthy instances in turn until one
// gives an answer that needs no retry, the attempts or the retry budget are
// used up, or ctx (the call's total deadline) ends. idempotent says whether
// the FHIR interaction may be repeated (it widens what is retried). The
// error is always a *Failure; an answer, even a 5xx, is a *Response.
func (c *Client) Do(ctx context.Context, r *Request, idempotent bool) (*Response, error) {
	resp, err := c.breaker.Execute(func() (*Response, error) { return c.attempts(ctx, r, idempotent) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, &Failure{Kind: "open", Err: errors.New("circuit breaker open")}
	}
	if errors.Is(err, errServerFailure) {
		return resp, nil
	}
	return resp, err
}

// errServerFailure marks a 5xx answer as a failure for the breaker while
// the answer itself still goes to the response mapping.
var errServerFailure = errors.New("backend answered 5xx")

func (c *Client) attempts(ctx context.Context, r *Request, idempotent bool) (*Response, error) {
	c.budget.deposit()
	var last *instance
	for attempt := 1; ; attempt++ {
		inst := c.pick(last)
		resp, failure := c.once(ctx, inst, r)
		inst.observe(c.ejection, failure != nil || resp.Status >= 500)
		// A refused connection loaded nobody: its retry is not taken from
		// the budget, which exists to keep retries from piling onto a
		// struggling backend.
		refused := failure != nil && failure.Kind == "refused"
		if !c.retryable(ctx, resp, failure, idempotent) || attempt >= c.retry.Attempts || (!refused && !c.budget.withdraw()) {
			if failure != nil {
				return nil, failure
			}
			if resp.Status >= 500 {
				return resp, errServerFailure
			}
			return resp, nil
		}
		last = inst
		if !sleep(ctx, backoff(c.retry, attempt)) {
			return nil, &Failure{Kind: "timeout", Err: errors.New("deadline exceeded")}
		}
	}
}

// retryable is the retry policy: a refused connection (nothing reached the
// backend) always; for idempotent interactions also a try that timed out or
// broke and a 502/503/504; never once the call's own deadline has passed.
func (c *Client) retryable(ctx context.Context, resp *Response, f *Failure, idempotent bool) bool {
	if ctx.Err() != nil {
		return false
	}
	if f != nil {
		return f.Kind == "refused" || (idempotent && (f.Kind == "timeout" || f.Kind == "error"))
	}
	switch resp.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return idempotent
	}
	return false
}

// once sends one attempt to inst within the per-try timeout.
func (c *Client) once(ctx context.Context, inst *instance, r *Request) (*Response, *Failure) {
	tctx := ctx
	if c.tryTimeout < c.timeout {
		// A try shorter than the call gets its own deadline; otherwise the
		// call's deadline (the caller's ctx) is the try's.
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, c.tryTimeout)
		defer cancel()
	}
	base := inst.base
	u := base.Scheme + "://" + base.Host + base.EscapedPath() + r.Path
	if len(r.Query) > 0 {
		u += "?" + r.Query.Encode()
	}
	// A *bytes.Reader body gives the request GetBody: Go's transport then
	// resends a call it proves it never wrote (its connection found dead
	// before the first byte) on a new connection. A call that may have
	// been written is not resent by the transport; attempts resends it
	// only under the retry policy (idempotent, or refused).
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(tctx, r.Method, u, body)
	if err != nil {
		return nil, &Failure{Kind: "error", Err: errors.New("the rendered call is not a valid request")}
	}
	// Defence in depth: whatever the templates produced, the call goes to
	// the configured scheme and host.
	if req.URL.Scheme != base.Scheme || req.URL.Host != base.Host {
		return nil, &Failure{Kind: "error", Err: errors.New("the rendered call left the configured backend")}
	}
	for k, vs := range c.headers {
		req.Header[k] = vs
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	resp, err := c.http.RoundTrip(req)
	if err != nil {
		return nil, classify(tctx, err)
	}
	defer resp.Body.Close()
	data, err := ReadSized(io.LimitReader(resp.Body, c.maxBytes+1), resp.ContentLength, c.maxBytes)
	if err != nil {
		return nil, classify(tctx, err)
	}
	if int64(len(data)) > c.maxBytes {
		return nil, &Failure{Kind: "error", Err: fmt.Errorf("answer larger than %d bytes", c.maxBytes)}
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// classify tells a refused connection (the request certainly did not reach
// the backend) from a timeout and from everything else.
func classify(ctx context.Context, err error) *Failure {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() == context.Canceled:
		// The client went away: not the backend's failure.
		return &Failure{Kind: "error", Err: context.Canceled}
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return &Failure{Kind: "timeout", Err: errors.New("deadline exceeded")}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &Failure{Kind: "refused", Err: errors.New("connection refused")}
	case errors.As(err, &dnsErr):
		return &Failure{Kind: "refused", Err: errors.New("backend host does not resolve")}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Failure{Kind: "timeout", Err: errors.New("timeout")}
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:] // drop the URL url.Error puts in front
	}
	return &Failure{Kind: "error", Err: errors.New(msg)}
}

// Close releases the client's idle connections. Calls in flight finish; a
// retired table's clients are closed once its requests are done. Health
// checks stop with the context given to Start.
func (c *Client) Close() { c.http.CloseIdleConnections() }
