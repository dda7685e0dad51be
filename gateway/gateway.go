// Package gateway is the HTTP side of fhirgate: the server, the route table
// built from routes.yaml, the pipeline stages, the backend call and the
// mapping of its answer, OperationOutcome rendering, metrics and logs.
//
// The path of one request, each step in its own function:
//
//	ServeHTTP   request id, panic recovery, body limit, access log, metrics
//	dispatch    base by prefix → bearer header check (if the base wants it
//	            first) → route by method and path (404/405)
//	route.serve authenticate → rate limit → role → negotiate → required
//	            query → checks → forward (canonical call) → mapAnswer
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
	"go.opentelemetry.io/otel/trace"
)

// Gateway serves FHIR requests from the current Table.
type Gateway struct {
	table   atomic.Pointer[Table]
	metrics *Metrics
	log     *slog.Logger
	tracer  trace.Tracer // nil: propagate trace context without recording spans
	// sampleNew marks new traces sampled when spans are not recorded.
	sampleNew bool
	audit     *audit.Log
}

// New returns a Gateway serving t.
func New(t *Table, m *Metrics, log *slog.Logger) *Gateway {
	g := &Gateway{metrics: m, log: log, sampleNew: true}
	g.Swap(t)
	return g
}

// Swap makes t the table for requests that start from now on.
func (g *Gateway) Swap(t *Table) {
	g.metrics.knownBackends(t)
	g.table.Store(t)
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
func (g *Gateway) Table() *Table { return g.table.Load() }

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()
	r, span := g.startServerSpan(r)
	x := &exchange{w: sw, r: r, start: start, table: g.table.Load(), metrics: g.metrics, tracer: g.tracer}
	x.id = requestID(r.Header.Get("X-Request-Id"))
	sw.Header().Set("X-Request-Id", x.id)
	g.metrics.inflight.Inc()
	defer g.finish(x, sw, span)

	if e := checkRequestSize(r, &x.table.cfg.Server); e != nil {
		x.fail(e)
		return
	}
	max := x.table.cfg.Server.MaxBodyBytes
	if r.ContentLength > max {
		x.fail(outcome.New(http.StatusRequestEntityTooLarge, "too-costly",
			fmt.Sprintf("the request body exceeds the limit of %d bytes", max)).WithKind("limit"))
		return
	}
	r.Body = http.MaxBytesReader(sw, r.Body, max)
	g.dispatch(x)
}

func (g *Gateway) dispatch(x *exchange) {
	b, rest := x.table.findBase(x.r.URL.EscapedPath())
	if b == nil {
		x.fail(outcome.New(http.StatusNotFound, "not-found", "no FHIR endpoint at this path").WithKind("route"))
		return
	}
	x.base = b
	if b.clientLimiter != nil {
		if ok, wait := b.clientLimiter.Allow(clientKey(x.r), time.Now()); !ok {
			x.fail(withRetryAfter(outcome.New(http.StatusTooManyRequests, b.cfg.IssueCode(http.StatusTooManyRequests),
				"too many requests from this client; retry later").WithKind("client_rate_limit"), wait))
			return
		}
	}
	if b.capability != nil && (rest == "/metadata" || rest == "/metadata/") && (x.r.Method == http.MethodGet || x.r.Method == http.MethodHead) {
		x.serveCapability()
		return
	}
	if b.auth != nil {
		// The header check of the base's profile precedes routing, so a
		// request without a bearer token learns nothing about paths.
		if _, f := bearer(x); f == auth.MissingHeader || f == auth.MalformedHeader {
			x.fail(x.answerError(b.auth.failureAnswer(f), "auth"))
			return
		}
	}
	r, allowed := b.match(x.r.Method, rest, &x.params)
	if r == nil {
		if len(allowed) > 0 {
			e := x.answerError(b.cfg.MethodNotAllowed, "route")
			if e.Header == nil {
				e.Header = http.Header{}
			}
			e.Header.Set("Allow", strings.Join(allowed, ", "))
			x.fail(e)
			return
		}
		x.fail(x.answerError(b.cfg.NotFound, "route"))
		return
	}
	x.route = r
	if max := int64(r.cfg.MaxInflight); max > 0 {
		// Admission before any work: a route at capacity answers at once
		// instead of queueing requests that would time out anyway.
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

// finish recovers a panic into a 500 OperationOutcome, then records the
// request in metrics and in one access-log line.
func (g *Gateway) finish(x *exchange, sw *statusWriter, span trace.Span) {
	if p := recover(); p != nil {
		if p == http.ErrAbortHandler {
			panic(p)
		}
		g.log.Error("panic", "request_id", x.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		if !sw.wrote {
			x.fail(outcome.New(http.StatusInternalServerError, "exception", "internal error; the request id identifies it in the gateway's log").WithKind("internal"))
		}
	}
	g.metrics.inflight.Dec()
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
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

// statusWriter records the status written, for logs, metrics and to know
// whether a panic can still be answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
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
