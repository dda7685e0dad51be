// Package gateway is the HTTP side of fhirgate: the server, the route table
// built from routes.yaml, the pipeline stages, the backend call and the
// mapping of its answer, OperationOutcome rendering, metrics and logs.
//
// Each table is served by a gin engine of its own (engine.go lists the
// request's steps as gin middleware, in the order of the answers);
// ServeHTTP normalises the path and hands the request to the engine in
// use. A program embedding fhirgate adds gin middleware and handlers to
// every engine with WithMiddleware and WithEngine (embed.go).
package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/audit"
	"github.com/fhirgate/fhirgate/gateway/auth"
	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"
)

// Gateway serves FHIR requests from the current Table, each table through
// a gin engine of its own (engine.go).
type Gateway struct {
	engine  atomic.Pointer[engine]
	metrics *Metrics
	log     *slog.Logger
	tracer  trace.Tracer // nil: propagate trace context without recording spans
	// sampleNew marks new traces sampled when spans are not recorded.
	sampleNew bool
	audit     *audit.Log
	opts      options
}

// New returns a Gateway serving t, with what opts add to every engine.
func New(t *Table, m *Metrics, log *slog.Logger, opts ...Option) (*Gateway, error) {
	g := &Gateway{metrics: m, log: log, sampleNew: true}
	for _, o := range opts {
		o(&g.opts)
	}
	if err := g.Swap(t); err != nil {
		return nil, err
	}
	return g, nil
}

// Swap builds t's engine and makes it the one for requests that start
// from now on; requests in flight finish on theirs. An error (a route gin
// cannot hold) leaves the engine in use serving.
func (g *Gateway) Swap(t *Table) error {
	e, err := g.newEngine(t)
	if err != nil {
		return err
	}
	g.metrics.knownBackends(t)
	g.engine.Store(e)
	return nil
}

// SetTracerProvider makes tp the source of request and backend spans
// (before serving; see NewTracerProvider).
func (g *Gateway) SetTracerProvider(tp trace.TracerProvider) { g.tracer = tp.Tracer("fhirgate") }

// SetSampleNew says whether new traces are marked sampled when no spans
// are recorded (SampleRatio 1).
func (g *Gateway) SetSampleNew(sampled bool) { g.sampleNew = sampled }

// SetAudit makes l the audit trail (before serving); nil writes none.
func (g *Gateway) SetAudit(l *audit.Log) { g.audit = l }

// Table returns the table in use.
func (g *Gateway) Table() *Table { return g.engine.Load().table }

// Engine returns the gin engine in use (read-only: a reload replaces it;
// use WithMiddleware or WithEngine to change every engine).
func (g *Gateway) Engine() *gin.Engine { return g.engine.Load().gin }

// ServeHTTP implements http.Handler: the path is normalised for routing,
// the answer's status held until its body (holdWriter), and the request
// served by the engine in use.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	normalisePath(r.URL)
	hw := &holdWriter{ResponseWriter: w}
	g.engine.Load().gin.ServeHTTP(hw, r)
	hw.flush()
}

// begin is the first middleware of every engine: the request's exchange,
// id and trace context; at the end, whatever happened — a panic becomes a
// 500 OperationOutcome, a status written without a body by another handler
// becomes an OperationOutcome with that status — then metrics, one
// access-log line and the audit record.
func (g *Gateway) begin(t *Table) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		r, span := g.startServerSpan(c.Request)
		c.Request = r
		x := &exchange{w: c.Writer, r: r, start: start, table: t, metrics: g.metrics, tracer: g.tracer}
		x.id = requestID(r.Header.Get("X-Request-Id"))
		c.Writer.Header().Set("X-Request-Id", x.id)
		c.Set(exchangeKey, x)
		g.metrics.inflight.Inc()
		defer g.finish(c, x, span)
		c.Next()
	}
}

var (
	errNoEndpoint = outcome.New(http.StatusNotFound, "not-found", "no FHIR endpoint at this path").WithKind("route")
)

func errBodyTooLarge(max int64) *outcome.Error {
	return outcome.New(http.StatusRequestEntityTooLarge, "too-costly",
		fmt.Sprintf("the request body exceeds the limit of %d bytes", max)).WithKind("limit")
}

// beforeRouting runs the base's steps that precede routing (rest is the
// path below the base) and reports whether it answered.
func (x *exchange) beforeRouting(rest string) bool {
	b := x.base
	if b.clientLimiter != nil {
		if ok, wait := b.clientLimiter.Allow(clientKey(x.r), time.Now()); !ok {
			x.fail(withRetryAfter(outcome.New(http.StatusTooManyRequests, b.cfg.IssueCode(http.StatusTooManyRequests),
				"too many requests from this client; retry later").WithKind("client_rate_limit"), wait))
			return true
		}
	}
	if b.capability != nil && rest == "/metadata" && (x.r.Method == http.MethodGet || x.r.Method == http.MethodHead) {
		x.serveCapability()
		return true
	}
	if b.auth != nil {
		// The header check of the base's profile precedes routing, so a
		// request without a bearer token learns nothing about paths.
		if _, f := bearer(x); f == auth.MissingHeader || f == auth.MalformedHeader {
			x.fail(x.answerError(b.auth.failureAnswer(f), "auth"))
			return true
		}
	}
	return false
}

// admit serves route r unless it is at capacity (max_inflight): a route
// at capacity answers at once instead of queueing requests that would
// time out anyway.
func (x *exchange) admit(r *route) {
	x.route = r
	if max := int64(r.cfg.MaxInflight); max > 0 {
		if r.inflight.Add(1) > max {
			r.inflight.Add(-1)
			x.fail(x.answerError(r.cfg.Overloaded, "overloaded"))
			return
		}
		defer r.inflight.Add(-1)
	}
	r.serve(x)
}

// checkRequestSize answers a request target or header block over the
// configured limits (414, 431) before any other work.
func checkRequestSize(r *http.Request, sc *config.Server) *outcome.Error {
	if len(r.RequestURI) > sc.MaxURLBytes {
		return outcome.New(http.StatusRequestURITooLong, "too-costly", fmt.Sprintf("the request URL exceeds the limit of %d bytes", sc.MaxURLBytes)).WithKind("limit")
	}
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4 // ": " and CRLF
		}
	}
	if n > sc.MaxHeaderBytes {
		return outcome.New(http.StatusRequestHeaderFieldsTooLarge, "too-costly", fmt.Sprintf("the request headers exceed the limit of %d bytes", sc.MaxHeaderBytes)).WithKind("limit")
	}
	return nil
}

// clientKey identifies the client for the per-client rate limit: its
// verified certificate when it presented one, its IP address otherwise.
func clientKey(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		sum := sha256.Sum256(r.TLS.VerifiedChains[0][0].Raw)
		return "cert:" + hex.EncodeToString(sum[:16])
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return "ip:" + r.RemoteAddr
	}
	return "ip:" + host
}

// finish recovers a panic into a 500 OperationOutcome and turns a status
// another handler wrote without a body into one, then records the request
// in metrics, one access-log line and the audit trail.
func (g *Gateway) finish(c *gin.Context, x *exchange, span trace.Span) {
	var hw *holdWriter
	if u, ok := c.Writer.(interface{ Unwrap() http.ResponseWriter }); ok {
		hw, _ = u.Unwrap().(*holdWriter)
	}
	if p := recover(); p != nil {
		if p == http.ErrAbortHandler {
			panic(p)
		}
		g.log.Error("panic", "request_id", x.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		if hw == nil || !hw.flushed {
			x.fail(outcome.New(http.StatusInternalServerError, "exception", "internal error; the request id identifies it in the gateway's log").WithKind("internal"))
		}
	} else if x.status == 0 && c.Writer.Status() >= 400 && c.Writer.Size() <= 0 && (hw == nil || !hw.flushed) {
		x.fail(bareAnswer(c.Writer.Status()))
	}
	g.metrics.inflight.Dec()
	status := c.Writer.Status()
	elapsed := time.Since(x.start)
	routeName := "unmatched"
	if x.route != nil {
		routeName = x.route.cfg.Name
	}
	g.metrics.requests.WithLabelValues(routeName, strconv.Itoa(status)).Inc()
	g.metrics.duration.WithLabelValues(routeName).Observe(elapsed.Seconds())
	if kind, ok := validationKind(x.kind); ok {
		g.metrics.validationFailures.WithLabelValues(routeName, kind).Inc()
	}
	g.accessLog(x, routeName, status, elapsed)
	if g.audit != nil && x.base != nil {
		g.audit.Write(x.auditRecord(status, span))
	}
	endServerSpan(span, x, routeName, status)
}

// bareAnswer is the OperationOutcome for a status that a handler outside
// the pipeline (gin's binding, an embedding program's middleware) wrote
// without a body.
func bareAnswer(status int) *outcome.Error {
	code := "processing"
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		code = "security"
	case status == http.StatusNotFound:
		code = "not-found"
	case status == http.StatusRequestEntityTooLarge:
		code = "too-costly"
	case status == http.StatusTooManyRequests:
		code = "throttled"
	case status == http.StatusBadRequest:
		code = "invalid"
	case status >= 500:
		code = "exception"
	}
	text := http.StatusText(status)
	if text == "" {
		text = "status " + strconv.Itoa(status)
	}
	return outcome.New(status, code, text).WithKind("http")
}

// accessLog writes one JSON line per request. It logs no header and no
// query value except _format: credentials travel in both (Authorization,
// X-AccessCode, ?ac, ?secret), and an allowlist cannot forget one.
func (g *Gateway) accessLog(x *exchange, routeName string, status int, elapsed time.Duration) {
	if !g.log.Enabled(x.r.Context(), slog.LevelInfo) {
		return // nothing built for a line nobody writes
	}
	attrs := []slog.Attr{
		slog.String("request_id", x.id),
		slog.String("method", x.r.Method),
		slog.String("path", x.r.URL.Path),
		slog.String("route", routeName),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
	}
	if q := redactedQuery(x); q != "" {
		attrs = append(attrs, slog.String("query", q))
	}
	if role := x.role(); role != "" {
		attrs = append(attrs, slog.String("role", role))
	}
	if x.backendKind != "" {
		attrs = append(attrs, slog.String("backend", x.backendKind), slog.Float64("backend_ms", float64(x.backendTime.Microseconds())/1000))
		if x.backendStatus != 0 {
			attrs = append(attrs, slog.Int("backend_status", x.backendStatus))
		}
	}
	if x.kind != "" {
		attrs = append(attrs, slog.String("failure", x.kind), slog.String("issue", x.text))
	}
	g.log.LogAttrs(x.r.Context(), slog.LevelInfo, "request", attrs...)
}

// validationKind tells the failures of the request's own content — a
// missing query parameter, an unsupported media type, a body that breaks
// the base specification or a profile, operation parameters, a route
// check (by its name) — from refusals of the caller or the backend.
func validationKind(kind string) (string, bool) {
	switch kind {
	case "query", "media_type", "body", "profile", "operation":
		return kind, true
	}
	if name, ok := strings.CutPrefix(kind, "check:"); ok {
		return name, true
	}
	return "", false
}

func redactedQuery(x *exchange) string {
	if x.r.URL.RawQuery == "" {
		return ""
	}
	q := x.queryValues()
	keys := make([]string, 0, len(q))
	for k, vs := range q {
		if k == "_format" && len(vs) > 0 {
			keys = append(keys, k+"="+vs[0])
		} else {
			keys = append(keys, k+"=REDACTED")
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, "&")
}

// requestID keeps a client's X-Request-Id when it is a plain token of at
// most 128 characters (so it cannot forge log lines) and makes one otherwise.
func requestID(in string) string {
	if in != "" && len(in) <= 128 {
		ok := true
		for i := 0; i < len(in); i++ {
			c := in[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
				ok = false
				break
			}
		}
		if ok {
			return in
		}
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observeBackend records one backend call.
func (m *Metrics) observeBackend(name string, x *exchange) {
	outcome := x.backendKind
	if outcome == "answer" {
		outcome = statusClass(x.backendStatus)
	}
	m.backendRequests.WithLabelValues(name, outcome).Inc()
	m.backendDuration.WithLabelValues(name).Observe(x.backendTime.Seconds())
}
