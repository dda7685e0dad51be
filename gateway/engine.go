package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/fhirgate/fhirgate/gateway/pipeline"
)

func init() {
	// Release mode: no route printing, no debug warnings on stderr. The
	// gateway's own access log and metrics take the place of gin's Logger.
	gin.SetMode(gin.ReleaseMode)
}

// engine is the gin engine of one table: requests that start on it finish
// on it, whatever a reload swaps in meanwhile.
type engine struct {
	table *pipeline.Table
	gin   *gin.Engine
}

// newEngine builds the HTTP side of a table: fhirgate's request steps as
// gin middleware, every route as a gin handler, and the base's answers for
// unknown paths and methods. The order of the steps is the order of the
// answers (spec erezept-abort §3 for the E-Rezept base):
//
//	begin         request id, trace context, recovery (panic → 500
//	              OperationOutcome); at the end a status written without a
//	              body becomes an OperationOutcome; access log, metrics, audit
//	limits        URL 414, headers 431, body 413 — before anything is read
//	selectBase    base by path prefix (404), per-client rate limit (429),
//	              GET [base]/metadata, the base's Authorization header
//	              check (400) — before gin's 404/405 can answer
//	middleware    what an embedding program adds (WithMiddleware)
//	route         authenticate, rate limit, authorize, negotiate, query,
//	              body, checks, operation, forward, map the answer
//	              (pipeline.Exchange.Serve)
//	NoRoute       the base's not_found answer
//	NoMethod      the base's method_not_allowed answer, with gin's Allow
//
// gin routes on the normalised path (see normalisePath): its redirects are
// off, and each path parameter is unescaped by the pipeline on its own.
func (g *Gateway) newEngine(t *pipeline.Table) (e *engine, err error) {
	r := gin.New()
	r.RedirectTrailingSlash = false // a trailing slash is stripped instead (FHIR clients do not follow a redirected POST)
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true // 405 with Allow rather than 404 for a known path
	r.UseRawPath = true             // route on the escaped path: %2F stays inside its segment
	r.UnescapePathValues = false    // gin would unescape '+' to a space
	r.RemoveExtraSlash = false
	r.ContextWithFallback = true // c.Done(), c.Value() are the request's

	// The route each method and pattern serves, so that an answer given
	// before the route's handler (a missing Authorization header) is
	// labelled with the route the request was for.
	routes := map[routeKey]*pipeline.Route{}
	for _, rt := range t.Routes() {
		routes[routeKey{rt.Method(), rt.Pattern()}] = rt
	}
	r.Use(g.begin(t), limits, selectBase(routes))
	r.Use(g.opts.middleware...)
	defer func() {
		// gin refuses conflicting patterns by panicking; the configuration
		// loader rules them out, this turns a miss into a rejected table.
		if p := recover(); p != nil {
			e, err = nil, fmt.Errorf("routes: %v", p)
		}
	}()
	for _, rt := range t.Routes() {
		r.Handle(rt.Method(), rt.Pattern(), serveRoute(rt))
	}
	r.NoRoute(notFound)
	r.NoMethod(methodNotAllowed)
	for _, extend := range g.opts.engine {
		extend(r)
	}
	return &engine{table: t, gin: r}, nil
}

// exchangeOf is the request's exchange, which begin put into the request's
// context (not into gin's Keys: that map is an allocation per request).
func exchangeOf(c *gin.Context) *pipeline.Exchange {
	return pipeline.FromContext(c.Request.Context())
}

// begin is the first middleware of every engine: the request's exchange,
// id and trace context; at the end, whatever happened — a panic becomes a
// 500 OperationOutcome, a status written without a body by another
// handler becomes an OperationOutcome with that status — then metrics, one
// access-log line and the audit record.
func (g *Gateway) begin(t *pipeline.Table) gin.HandlerFunc {
	return func(c *gin.Context) {
		x, r := g.proc.Begin(t, c.Writer, c.Request)
		c.Request = r
		var hw *holdWriter
		if u, ok := c.Writer.(interface{ Unwrap() http.ResponseWriter }); ok {
			hw, _ = u.Unwrap().(*holdWriter)
		}
		if hw != nil {
			hw.exchange = x
		}
		defer func() {
			unsent := hw == nil || !hw.flushed
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				x.Panicked(p, unsent)
			} else if !x.Answered() && c.Writer.Status() >= 400 && c.Writer.Size() <= 0 && unsent {
				x.AnswerBare(c.Writer.Status())
			}
			x.Finish(c.Writer.Status())
		}()
		c.Next()
	}
}

// limits answers a request target or header block over the configured
// limits (414, 431) and a declared body over the limit (413); a body
// without a length is cut at the limit while it is read.
func limits(c *gin.Context) {
	if exchangeOf(c).CheckLimits() {
		c.Abort()
	}
}

// selectBase finds the FHIR base by path prefix and runs what precedes
// routing: the per-client rate limit, the CapabilityStatement, and the
// header check of the base's auth profile — so that a request without a
// bearer token learns nothing about paths (400 before 404/405). A path
// outside every base is passed on only to a handler an embedding program
// registered (WithEngine); otherwise it is a 404. routes maps a method
// and pattern to the route gin matched, for the labels of an early answer.
func selectBase(routes map[routeKey]*pipeline.Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		x := exchangeOf(c)
		var matched *pipeline.Route
		if p := c.FullPath(); p != "" {
			matched = routes[routeKey{c.Request.Method, p}]
		}
		found, answered := x.SelectBase(routingPath(c.Request.URL), matched)
		switch {
		case answered:
			c.Abort()
		case !found && c.FullPath() == "":
			x.NoEndpoint()
			c.Abort()
		}
	}
}

// routeKey is a route's method and gin pattern.
type routeKey struct{ method, pattern string }

// serveRoute is the handler of one route.
func serveRoute(r *pipeline.Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		exchangeOf(c).Serve(r, func(i int) string {
			if i < len(c.Params) {
				return c.Params[i].Value
			}
			return ""
		})
	}
}

// notFound answers a path under a base that no route serves.
func notFound(c *gin.Context) { exchangeOf(c).NotFound() }

// methodNotAllowed answers a known path with another method; gin has set
// Allow to the methods that path has.
func methodNotAllowed(c *gin.Context) {
	exchangeOf(c).MethodNotAllowed(c.Writer.Header().Get("Allow"))
}

// normalisePath gives gin the path to route on, in one form whatever the
// client's escaping: each segment unescaped and escaped again as a path
// segment (so %24abort and $abort are one, and %2F stays inside its
// segment), without one trailing slash. The form goes into URL.RawPath,
// which gin routes on (UseRawPath); URL.Path stays as the client sent it,
// for the access log. A path with nothing escaped and no trailing slash —
// nearly every request — is left alone.
func normalisePath(u *url.URL) {
	esc := u.EscapedPath()
	if strings.IndexByte(esc, '%') >= 0 {
		segs := strings.Split(esc, "/")
		for i, s := range segs {
			if strings.IndexByte(s, '%') < 0 {
				continue
			}
			if v, err := url.PathUnescape(s); err == nil {
				segs[i] = url.PathEscape(v)
			}
		}
		esc = strings.Join(segs, "/")
	}
	if len(esc) > 1 && esc[len(esc)-1] == '/' {
		esc = esc[:len(esc)-1]
	}
	if esc == u.Path {
		u.RawPath = ""
		return
	}
	u.RawPath = esc
}

// routingPath is the normalised path gin routed on.
func routingPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.Path
}

// holdWriter keeps the status of an answer until its first body byte or
// the end of the request, so that a status written without a body — gin's
// AbortWithStatus, a binding error, an embedding program's handler — can
// still become an OperationOutcome (begin's end), never a bare answer.
// When it releases the status, the exchange's audit record is written
// first: no byte of an answer leaves before its record is written.
type holdWriter struct {
	http.ResponseWriter
	status   int
	flushed  bool
	exchange *pipeline.Exchange // set by begin; nil outside the engine
}

func (w *holdWriter) WriteHeader(code int) {
	if w.flushed {
		return
	}
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code) // informational: passed on at once
		return
	}
	w.status = code
}

func (w *holdWriter) Write(b []byte) (int, error) {
	w.flush()
	return w.ResponseWriter.Write(b)
}

// flush sends the held status (200 if none was written).
func (w *holdWriter) flush() {
	if w.flushed {
		return
	}
	w.flushed = true
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.exchange != nil {
		w.exchange.RecordAudit(w.status)
	}
	w.ResponseWriter.WriteHeader(w.status)
}

// Flush implements http.Flusher for handlers that stream.
func (w *holdWriter) Flush() {
	w.flush()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *holdWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
