package backend

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/test/testpki"
)

// counting is a real loopback backend that counts the calls it gets.
type counting struct {
	calls  atomic.Int32
	answer func(w http.ResponseWriter, r *http.Request)
	srv    *httptest.Server
}

func newCounting(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *counting {
	c := &counting{answer: answer}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			c.calls.Add(1)
		}
		c.answer(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func ok(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"ok":true}`)) }

// hangUp answers nothing until the caller goes away (the body is read
// first: only then does the server notice a closed connection).
func hangUp(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(5 * time.Second):
	}
}

func closedURL(t *testing.T) string {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// backendConfig is a backend as config.Load would leave it, with edit
// applied before the defaults are filled in.
func backendConfig(t *testing.T, urls []string, edit func(b *config.Backend)) *config.Backend {
	t.Helper()
	b := &config.Backend{URLs: urls, Timeout: config.Duration(2 * time.Second), ConnectTimeout: config.Duration(time.Second),
		MaxIdleConnsPerHost: 8, MaxResponseBytes: 1 << 20}
	if edit != nil {
		edit(b)
	}
	if err := config.ApplyBackendDefaults(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func call(t *testing.T, c *Client, idempotent bool, timeout time.Duration) (*Response, *Failure, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	resp, err := c.Do(ctx, &Request{Method: http.MethodPost, Path: "/x", Body: []byte("{}")}, idempotent)
	var f *Failure
	if err != nil && !errors.As(err, &f) {
		t.Fatalf("error %T is not a *Failure", err)
	}
	return resp, f, time.Since(start)
}

func newClient(t *testing.T, b *config.Backend) *Client {
	t.Helper()
	c, err := NewClient("legacy", b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestRetryPolicy: what is sent again, by failure and interaction.
func TestRetryPolicy(t *testing.T) {
	hang := hangUp
	status := func(code int) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
	}
	cases := []struct {
		name       string
		answer     func(w http.ResponseWriter, r *http.Request)
		idempotent bool
		calls      int32 // attempts that reached the backend
		status     int
		kind       string
	}{
		{"2xx is final", ok, false, 1, 200, ""},
		{"4xx is final", status(409), true, 1, 409, ""},
		{"503 of a create is not repeated", status(503), false, 1, 503, ""},
		{"503 of a conditional update is", status(503), true, 3, 503, ""},
		{"500 is final even when idempotent", status(500), true, 1, 500, ""},
		{"a try that timed out is not repeated for a create", hang, false, 1, 0, "timeout"},
		{"a try that timed out is repeated for an update", hang, true, 3, 0, "timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			be := newCounting(t, c.answer)
			cl := newClient(t, backendConfig(t, []string{be.srv.URL}, func(b *config.Backend) {
				b.TryTimeout = config.Duration(100 * time.Millisecond)
				b.Retry.Attempts = 3
				b.CircuitBreaker.ConsecutiveFailures = -1
			}))
			resp, f, _ := call(t, cl, c.idempotent, 2*time.Second)
			if got := be.calls.Load(); got != c.calls {
				t.Errorf("%d attempts reached the backend, want %d", got, c.calls)
			}
			switch {
			case c.kind != "" && (f == nil || f.Kind != c.kind):
				t.Errorf("failure %v, want %s", f, c.kind)
			case c.kind == "" && (resp == nil || resp.Status != c.status):
				t.Errorf("answer %+v %v, want %d", resp, f, c.status)
			}
		})
	}
}

// TestRefusedIsRetriedOnAnotherInstance: a refused connection never
// reached the backend, so even a create goes to the next instance.
func TestRefusedIsRetriedOnAnotherInstance(t *testing.T) {
	be := newCounting(t, ok)
	cl := newClient(t, backendConfig(t, []string{closedURL(t), be.srv.URL}, func(b *config.Backend) {
		b.Ejection.ConsecutiveFailures = -1
	}))
	for i := 0; i < 20; i++ {
		if resp, f, _ := call(t, cl, false, time.Second); f != nil || resp.Status != 200 {
			t.Fatalf("call %d: %v", i, f)
		}
	}
	if be.calls.Load() != 20 {
		t.Errorf("%d calls reached the live instance, want 20", be.calls.Load())
	}
}

// TestRetryBudget: with no budget, nothing is retried.
func TestRetryBudget(t *testing.T) {
	be := newCounting(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	zero := 0.0
	cl := newClient(t, backendConfig(t, []string{be.srv.URL}, func(b *config.Backend) {
		b.Retry = config.Retry{Attempts: 5, BudgetRatio: &zero, BudgetMinPerSecond: &zero}
		b.CircuitBreaker.ConsecutiveFailures = -1
	}))
	for i := 0; i < 10; i++ {
		call(t, cl, true, time.Second)
	}
	if got := be.calls.Load(); got != 10 {
		t.Errorf("%d attempts for 10 calls with an empty budget", got)
	}
	// A ratio of 0.5 with no floor allows about one retry per two calls.
	half := 0.5
	be.calls.Store(0)
	cl = newClient(t, backendConfig(t, []string{be.srv.URL}, func(b *config.Backend) {
		b.Retry = config.Retry{Attempts: 5, BudgetRatio: &half, BudgetMinPerSecond: &zero}
		b.CircuitBreaker.ConsecutiveFailures = -1
	}))
	for i := 0; i < 100; i++ {
		call(t, cl, true, time.Second)
	}
	if got := be.calls.Load(); got < 140 || got > 160 {
		t.Errorf("%d attempts for 100 calls with a 0.5 budget, want about 150", got)
	}
}

// TestDeadlineCoversRetries: retries and backoff never outlast the call's
// total deadline.
func TestDeadlineCoversRetries(t *testing.T) {
	be := newCounting(t, hangUp)
	cl := newClient(t, backendConfig(t, []string{be.srv.URL}, func(b *config.Backend) {
		b.TryTimeout = config.Duration(150 * time.Millisecond)
		b.Retry.Attempts = 10
	}))
	_, f, took := call(t, cl, true, 400*time.Millisecond)
	if f == nil || f.Kind != "timeout" || took > 500*time.Millisecond {
		t.Errorf("%v after %v", f, took)
	}
}

// TestPassiveEjection: an instance failing every call is taken out of
// rotation; the other one carries the traffic.
func TestPassiveEjection(t *testing.T) {
	bad := newCounting(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	good := newCounting(t, ok)
	cl := newClient(t, backendConfig(t, []string{bad.srv.URL, good.srv.URL}, func(b *config.Backend) {
		b.Ejection = config.Ejection{ConsecutiveFailures: 3, Duration: config.Duration(time.Minute)}
		b.CircuitBreaker.ConsecutiveFailures = -1
	}))
	for i := 0; i < 40; i++ {
		call(t, cl, false, time.Second)
	}
	if got := bad.calls.Load(); got != 3 {
		t.Errorf("the failing instance got %d calls, want 3 (then ejected)", got)
	}
	if h := cl.Healthy(); h[0] || !h[1] {
		t.Errorf("availability %v", h)
	}
}

// TestActiveHealthCheck: an instance whose health endpoint fails is taken
// out after the threshold and brought back once it passes again.
func TestActiveHealthCheck(t *testing.T) {
	var sick atomic.Bool
	sick.Store(true)
	a := newCounting(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" && sick.Load() {
			w.WriteHeader(503)
			return
		}
		ok(w, r)
	})
	b := newCounting(t, ok)
	cl := newClient(t, backendConfig(t, []string{a.srv.URL, b.srv.URL}, func(b *config.Backend) {
		b.HealthCheck = &config.HealthCheck{Path: "/health", Interval: config.Duration(20 * time.Millisecond)}
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl.Start(ctx)
	waitUntil(t, "instance a unhealthy", func() bool { return !cl.Healthy()[0] })
	a.calls.Store(0)
	for i := 0; i < 10; i++ {
		call(t, cl, false, time.Second)
	}
	if a.calls.Load() != 0 {
		t.Errorf("the unhealthy instance got %d calls", a.calls.Load())
	}
	sick.Store(false)
	waitUntil(t, "instance a healthy again", func() bool { return cl.Healthy()[0] })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCircuitBreaker: consecutive failures open it (no call is sent while
// open), after OpenFor one probe goes through and closes it again.
func TestCircuitBreaker(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	be := newCounting(t, func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			w.WriteHeader(502)
			return
		}
		ok(w, r)
	})
	var changes []bool
	cl := newClient(t, backendConfig(t, []string{be.srv.URL}, func(b *config.Backend) {
		b.CircuitBreaker = config.CircuitBreaker{ConsecutiveFailures: 4, OpenFor: config.Duration(200 * time.Millisecond)}
		b.Ejection.ConsecutiveFailures = -1
	}))
	cl.OnBreakerChange = func(open bool) { changes = append(changes, open) }
	for i := 0; i < 4; i++ {
		if resp, f, _ := call(t, cl, false, time.Second); f != nil || resp.Status != 502 {
			t.Fatalf("call %d: %+v %v", i, resp, f)
		}
	}
	before := be.calls.Load()
	if _, f, _ := call(t, cl, false, time.Second); f == nil || f.Kind != "open" {
		t.Fatalf("after 4 failures: %v, want open", f)
	}
	if be.calls.Load() != before {
		t.Error("a call went out while the breaker was open")
	}
	failing.Store(false)
	time.Sleep(250 * time.Millisecond)
	if resp, f, _ := call(t, cl, false, time.Second); f != nil || resp.Status != 200 {
		t.Fatalf("half-open probe: %v", f)
	}
	if len(changes) < 2 || !changes[0] || changes[len(changes)-1] {
		t.Errorf("breaker changes %v, want open … then closed", changes)
	}
}

// TestMutualTLS: the backend requires a client certificate from its CA;
// the configured one is presented, and without it the call fails.
func TestMutualTLS(t *testing.T) {
	ca := testpki.NewCA(t, "test CA")
	server, client := ca.Server("legacy.test"), ca.Client("fhirgate")
	var clientCN atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clientCN.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		ok(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{server.TLS}, ClientCAs: ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()

	withCert := newClient(t, backendConfig(t, []string{srv.URL}, func(b *config.Backend) {
		b.TLS = &config.ClientTLS{CAFile: ca.File, CertFile: client.CertFile, KeyFile: client.KeyFile, ServerName: "legacy.test"}
	}))
	if resp, f, _ := call(t, withCert, false, time.Second); f != nil || resp.Status != 200 || clientCN.Load() != "fhirgate" {
		t.Errorf("mTLS call: %+v %v, client %v", resp, f, clientCN.Load())
	}
	without := newClient(t, backendConfig(t, []string{srv.URL}, func(b *config.Backend) {
		b.TLS = &config.ClientTLS{CAFile: ca.File, ServerName: "legacy.test"}
		b.Retry.Attempts = 1
	}))
	if _, f, _ := call(t, without, false, time.Second); f == nil {
		t.Error("a call without client certificate succeeded")
	}
	untrusted := newClient(t, backendConfig(t, []string{srv.URL}, func(b *config.Backend) { b.Retry.Attempts = 1 }))
	if _, f, _ := call(t, untrusted, false, time.Second); f == nil {
		t.Error("a backend with a certificate from an unknown CA was trusted")
	}
}

// keepAliveBackend is a legacy server with a short keep-alive, made
// deterministic: a request arriving on a connection idle longer than
// keepAlive is read and the connection closed without an answer — the
// server's close crossing the gateway's reuse on the wire, which loses a
// call that may have reached it. received counts requests read, answered
// those answered.
type keepAliveBackend struct {
	addr               string
	keepAlive          time.Duration
	received, answered atomic.Int32
}

func startKeepAliveBackend(t *testing.T, keepAlive time.Duration) *keepAliveBackend {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	b := &keepAliveBackend{addr: "http://" + l.Addr().String(), keepAlive: keepAlive}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go b.serve(conn)
		}
	}()
	return b
}

func (b *keepAliveBackend) serve(conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	var last time.Time
	for {
		req, err := http.ReadRequest(r)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		b.received.Add(1)
		if !last.IsZero() && time.Since(last) > b.keepAlive {
			return // closed as the call arrived: not answered
		}
		b.answered.Add(1)
		io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}")
		last = time.Now()
	}
}

// TestIdleTimeoutBelowBackendKeepAlive: against a backend whose
// keep-alive (150 ms) is shorter than the pauses between calls (200 ms),
// a gateway that keeps idle connections longer loses every call on a
// reused connection (502, never resent: the call may have reached the
// backend), and one whose idle_timeout is below the backend's loses none.
func TestIdleTimeoutBelowBackendKeepAlive(t *testing.T) {
	run := func(idle time.Duration) (lost, calls int, b *keepAliveBackend) {
		b = startKeepAliveBackend(t, 150*time.Millisecond)
		c := newClient(t, backendConfig(t, []string{b.addr}, func(cfg *config.Backend) {
			cfg.IdleTimeout = config.Duration(idle)
			cfg.CircuitBreaker.ConsecutiveFailures = -1
		}))
		calls = 12
		for i := 0; i < calls; i++ {
			if i > 0 {
				time.Sleep(200 * time.Millisecond)
			}
			if _, f, _ := call(t, c, false, 2*time.Second); f != nil {
				lost++
			}
		}
		if got := int(b.answered.Load()); got != calls-lost {
			t.Errorf("idle %v: backend answered %d calls, the client saw %d succeed", idle, got, calls-lost)
		}
		if got := int(b.received.Load()); got != calls {
			t.Errorf("idle %v: backend received %d requests for %d calls: a call that may have reached it was resent", idle, got, calls)
		}
		return lost, calls, b
	}
	// Each lost call ends its connection, so the next one is made on a
	// new connection and served: every second call is lost.
	if lost, calls, _ := run(90 * time.Second); lost != calls/2 {
		t.Errorf("idle timeout 90s: %d of %d calls lost, want every call on a reused connection (%d)", lost, calls, calls/2)
	}
	if lost, calls, _ := run(100 * time.Millisecond); lost != 0 {
		t.Errorf("idle_timeout 100ms, below the backend's 150ms keep-alive: %d of %d calls lost", lost, calls)
	}
}
