package pipeline

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/audit"
	"github.com/fhirgate/fhirgate/gateway/auth"
	"github.com/fhirgate/fhirgate/gateway/logline"
	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/gateway/ratelimit/redisstore"
)

// Process is what outlives a table and is shared by the tables of one
// process: metrics, the access log, the tracer and the audit trail.
type Process struct {
	Metrics *Metrics
	Log     *slog.Logger
	// Tracer records spans; nil propagates trace context without
	// recording (SampleNew: new traces are marked sampled).
	Tracer    trace.Tracer
	SampleNew bool
	// Audit is the audit trail; nil writes none.
	Audit *audit.Log
}

// The request's steps, in the order the HTTP layer runs them (see
// gateway/engine.go): Begin, CheckLimits, SelectBase, then Serve,
// NotFound, MethodNotAllowed or NoEndpoint, and Finish.

// Begin starts an exchange for one request on table t: its id (the
// client's X-Request-Id when it is a plain token), its trace context and
// the in-flight gauge. The returned request carries both the trace context
// and the exchange (FromContext). Its answers are written to w.
func (p *Process) Begin(t *Table, w http.ResponseWriter, r *http.Request) (*Exchange, *http.Request) {
	start := time.Now()
	ctx, span, sc := p.startServerSpan(r)
	x := &Exchange{w: w, start: start, table: t, metrics: p.Metrics, tracer: p.Tracer, proc: p, span: span, sc: sc}
	r = r.WithContext(context.WithValue(ctx, exchangeKey{}, x))
	x.r = r
	x.id = requestID(r.Header.Get("X-Request-Id"))
	w.Header()["X-Request-Id"] = x.headerValue(x.id)
	p.Metrics.inflight.Inc()
	return x, r
}

// exchangeKey is the context key of the request's exchange.
type exchangeKey struct{}

// FromContext returns the exchange Begin put into a request's context (or
// a context derived from it), nil for any other.
func FromContext(ctx context.Context) *Exchange {
	x, _ := ctx.Value(exchangeKey{}).(*Exchange)
	return x
}

// Answered reports whether the pipeline has written an answer.
func (x *Exchange) Answered() bool { return x.status != 0 }

// Panicked logs a recovered panic and, when nothing was sent yet
// (canAnswer), answers 500 with an OperationOutcome.
func (x *Exchange) Panicked(p any, canAnswer bool) {
	x.proc.Log.Error("panic", "request_id", x.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	if canAnswer {
		x.fail(outcome.New(http.StatusInternalServerError, "exception", "internal error; the request id identifies it in the gateway's log").WithKind("internal"))
	}
}

// AnswerBare answers a status another handler wrote without a body as an
// OperationOutcome with that status.
func (x *Exchange) AnswerBare(status int) { x.fail(bareAnswer(status)) }

// CheckLimits answers a request target or header block over the
// configured limits (414, 431) and a declared body over the limit (413),
// and cuts a body without a length at the limit while it is read. It
// reports whether it answered.
func (x *Exchange) CheckLimits() bool {
	sc := &x.table.cfg.Server
	if e := checkRequestSize(x.r, sc); e != nil {
		x.fail(e)
		return true
	}
	if x.r.ContentLength > sc.MaxBodyBytes {
		x.fail(errBodyTooLarge(sc.MaxBodyBytes))
		return true
	}
	x.r.Body = http.MaxBytesReader(x.w, x.r.Body, sc.MaxBodyBytes)
	return false
}

// SelectBase finds the FHIR base serving path (the routing form) and runs
// what precedes routing there: the per-client rate limit, the
// CapabilityStatement, the header check of the base's auth profile. found
// is false for a path outside every base (nothing answered); answered
// whether one of the steps answered. matched, when the router knows it
// already, is the route the request is for: an answer given here is
// counted and logged under its name.
func (x *Exchange) SelectBase(path string, matched *Route) (found, answered bool) {
	b, rest := x.table.findBase(path)
	if b == nil {
		return false, false
	}
	x.base = b
	if matched != nil && matched.base == b {
		x.matched = matched
	}
	return true, x.beforeRouting(rest)
}

// NoEndpoint answers a path outside every base.
func (x *Exchange) NoEndpoint() { x.fail(errNoEndpoint) }

// NotFound answers a path under the base that no route serves.
func (x *Exchange) NotFound() { x.fail(x.answerError(x.base.cfg.NotFound, "route")) }

// MethodNotAllowed answers a known path with another method; allow lists
// the methods the path has.
func (x *Exchange) MethodNotAllowed(allow string) {
	e := x.answerError(x.base.cfg.MethodNotAllowed, "route")
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set("Allow", allow)
	x.fail(e)
}

// Serve runs route r for the request: value(i) is the routed (escaped)
// value of its i-th path parameter. Then admission (max_inflight), the
// route's stages and the backend call.
func (x *Exchange) Serve(r *Route, value func(i int) string) {
	if x.base != r.base {
		// A route of another base shadowed by a longer prefix.
		x.NotFound()
		return
	}
	for i, name := range r.params {
		v, ok := pathValue(value(i))
		if !ok {
			x.NotFound()
			return
		}
		x.params.add(name, v)
	}
	x.admit(r)
}

// pathValue unescapes one routed path segment.
func pathValue(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	v, err := url.PathUnescape(s)
	return v, err == nil
}

// WatchStores connects t's shared limit stores to their series and the
// log: fhirgate_limit_store_up follows each store's state, every decision
// made without it counts in fhirgate_limit_store_fallbacks_total, and each
// change of state is logged once (warn when it stops answering, info when
// it answers again). A retired table's stores stop reporting when closed.
func (p *Process) WatchStores(t *Table) {
	for name, st := range t.Stores() {
		up := p.Metrics.storeUp.WithLabelValues(name)
		fallbacks := p.Metrics.storeFallbacks.WithLabelValues(name)
		var wasDown atomic.Bool
		st.Observe(redisstore.Observer{
			Changed: func(ok bool, reason string) {
				if ok {
					up.Set(1)
					if wasDown.Swap(false) {
						p.Log.Info("limit store answers again; limits are shared", "store", name)
					}
					return
				}
				up.Set(0)
				wasDown.Store(true)
				p.Log.Warn("limit store unavailable; deciding without it", "store", name, "reason", reason, "on_failure", t.cfg.LimitStores[name].OnFailure)
			},
			Fallback: fallbacks.Inc,
		})
	}
}

// RecordAudit writes the request's audit record, once, with the status
// sent: the HTTP layer calls it as the answer is released (before its
// first byte leaves), Finish for an answer that released none. It returns
// when the record is written (see audit.Log.Write).
func (x *Exchange) RecordAudit(status int) {
	if x.audited || x.proc.Audit == nil || x.base == nil {
		return
	}
	x.audited = true
	x.proc.Audit.Write(x.auditRecord(status))
}

// Finish records the answered request: status is what was sent. Metrics,
// one access-log line, the audit record, the span's end.
func (x *Exchange) Finish(status int) {
	p := x.proc
	p.Metrics.inflight.Dec()
	elapsed := time.Since(x.start)
	routeName := "unmatched"
	var series *routeSeries
	if x.table != nil {
		series = x.table.unmatched
	}
	if x.route != nil {
		routeName, series = x.route.cfg.Name, x.route.series
	} else if x.matched != nil {
		routeName, series = x.matched.cfg.Name, x.matched.series
	}
	p.Metrics.countRequest(series, routeName, status, elapsed)
	if kind, ok := validationKind(x.kind); ok {
		p.Metrics.validationFailures.WithLabelValues(routeName, kind).Inc()
	}
	p.accessLog(x, routeName, status, elapsed)
	x.RecordAudit(status)
	endServerSpan(x.span, x, routeName, status)
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
func (x *Exchange) beforeRouting(rest string) bool {
	b := x.base
	if b.clientLimiter != nil {
		d := b.clientLimiter.Take(x.r.Context(), clientKey(x.r))
		if d.Unavailable {
			x.fail(errLimitStoreUnavailable)
			return true
		}
		if !d.Allowed {
			x.fail(withRetryAfter(outcome.New(http.StatusTooManyRequests, b.cfg.IssueCode(http.StatusTooManyRequests),
				"too many requests from this client; retry later").WithKind("client_rate_limit"), d.Wait))
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
func (x *Exchange) admit(r *Route) {
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
func (p *Process) accessLog(x *Exchange, routeName string, status int, elapsed time.Duration) {
	ctx := x.r.Context()
	l := logline.Start(ctx, p.Log, slog.LevelInfo, "request")
	if l == nil {
		return // nothing built for a line nobody writes
	}
	l.Str("request_id", x.id)
	l.Str("method", x.r.Method)
	l.Str("path", x.r.URL.Path)
	l.Str("route", routeName)
	l.Int("status", status)
	l.Float("duration_ms", float64(elapsed.Microseconds())/1000)
	if q := redactedQuery(x); q != "" {
		l.Str("query", q)
	}
	if role := x.role(); role != "" {
		l.Str("role", role)
	}
	if x.backendKind != "" {
		l.Str("backend", x.backendKind)
		l.Float("backend_ms", float64(x.backendTime.Microseconds())/1000)
		if x.backendStatus != 0 {
			l.Int("backend_status", x.backendStatus)
		}
	}
	if x.kind != "" {
		l.Str("failure", x.kind)
		l.Str("issue", x.text)
	}
	l.Emit(ctx)
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

func redactedQuery(x *Exchange) string {
	if x.r.URL.RawQuery == "" {
		return ""
	}
	q := x.queryValues()
	var onStack [8]string
	names := onStack[:0]
	size := 0
	for k, vs := range q {
		names = append(names, k)
		size += len(k) + len("=REDACTED&")
		if k == "_format" && len(vs) > 0 {
			size += len(vs[0])
		}
	}
	// In the order of the "name=value" pairs, without building them.
	slices.SortFunc(names, func(a, b string) int {
		n := min(len(a), len(b))
		if c := strings.Compare(a[:n], b[:n]); c != 0 || len(a) == len(b) {
			return c
		}
		if len(a) < len(b) {
			return cmp.Compare('=', b[n])
		}
		return cmp.Compare(a[n], '=')
	})
	var b strings.Builder
	b.Grow(size)
	for i, k := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		if vs := q[k]; k == "_format" && len(vs) > 0 {
			b.WriteString(vs[0])
		} else {
			b.WriteString("REDACTED")
		}
	}
	return b.String()
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

// observeBackend records one backend call: a call made by its outcome
// and duration, a call the circuit breaker refused as a refusal only.
func (m *Metrics) observeBackend(r *Route, x *Exchange) {
	name := r.client.Name
	bs := r.backendSeries
	if bs != nil && bs.owner != m {
		bs = nil
	}
	if x.backendKind == "open" {
		if bs != nil {
			bs.refusals.Inc()
		} else {
			m.backendRefusals.WithLabelValues(name).Inc()
		}
		return
	}
	outcome := x.backendKind
	if outcome == "answer" {
		outcome = statusClass(x.backendStatus)
	}
	if bs == nil {
		m.backendRequests.WithLabelValues(name, outcome).Inc()
		m.backendDuration.WithLabelValues(name).Observe(x.backendTime.Seconds())
		return
	}
	if c := bs.outcomes[outcome]; c != nil {
		c.Inc()
	} else {
		m.backendRequests.WithLabelValues(name, outcome).Inc()
	}
	bs.duration.Observe(x.backendTime.Seconds())
}
