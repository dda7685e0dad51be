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
)

// Client calls the instances of one backend in turn.
type Client struct {
	Name     string
	bases    []*url.URL
	next     atomic.Uint64
	http     *http.Client
	headers  http.Header
	maxBytes int64
	timeout  time.Duration
}

// NewClient builds the client of one configured backend. Its transport keeps
// MaxIdleConnsPerHost connections warm (Go's default of 2 serialises load).
func NewClient(name string, b *config.Backend) (*Client, error) {
	c := &Client{Name: name, headers: http.Header{}, maxBytes: b.MaxResponseBytes, timeout: b.Timeout.D()}
	for _, s := range b.URLs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", name, err)
		}
		c.bases = append(c.bases, u)
	}
	for k, v := range b.Headers {
		c.headers.Set(k, v)
	}
	dialer := &net.Dialer{Timeout: b.ConnectTimeout.D(), KeepAlive: 30 * time.Second}
	c.http = &http.Client{
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConns:          b.MaxIdleConnsPerHost * len(b.URLs),
			MaxIdleConnsPerHost:   b.MaxIdleConnsPerHost,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   b.ConnectTimeout.D(),
			ExpectContinueTimeout: time.Second,
			ForceAttemptHTTP2:     false,
			DisableCompression:    true,
		},
		// A legacy backend's redirect is an answer to map, not to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Timeout is the total deadline of one call.
func (c *Client) Timeout() time.Duration { return c.timeout }

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
	// host), timeout (the deadline passed) or error (anything else,
	// including an answer too large or cut short).
	Kind string
	Err  error
}

func (f *Failure) Error() string { return "backend call " + f.Kind + ": " + f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// Do sends the request to the next instance and reads the answer. The error
// is always a *Failure.
func (c *Client) Do(ctx context.Context, r *Request) (*Response, error) {
	base := c.bases[int(c.next.Add(1)-1)%len(c.bases)]
	u := base.Scheme + "://" + base.Host + base.EscapedPath() + r.Path
	if len(r.Query) > 0 {
		u += "?" + r.Query.Encode()
	}
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u, body)
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
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, classify(ctx, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return nil, classify(ctx, err)
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
// retired table's clients are closed once its requests are done.
func (c *Client) Close() { c.http.CloseIdleConnections() }
