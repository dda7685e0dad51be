package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/gin-gonic/gin"
)

func init() {
	// Release mode: no route printing, no debug warnings on stderr. The
	// gateway's own access log and metrics take the place of gin's Logger.
	gin.SetMode(gin.ReleaseMode)
}

// engine is the gin engine of one table: requests that start on it finish
// on it, whatever a reload swaps in meanwhile.
type engine struct {
	table *Table
	gin   *gin.Engine
}

// newEngine builds the HTTP side of a table: fhirgate's request steps as
// gin middleware, every route as a gin handler, and the base's answers for
// unknown paths and methods. The order of the steps is the order of the
// answers (spec erezept-abort §3 for the E-Rezept base):
//
//	begin         request id, trace context, recovery (panic → 500
//	              OperationOutcome); at the end access log, metrics, audit
//	limits        URL 414, headers 431, body 413 — before anything is read
//	selectBase    base by path prefix (404), per-client rate limit (429),
//	              GET [base]/metadata, the base's Authorization header
//	              check (400) — before gin's 404/405 can answer
//	middleware    what an embedding program adds (WithMiddleware)
//	route         authenticate, rate limit, authorize, negotiate, query,
//	              body, checks, operation, forward, map the answer
//	NoRoute       the base's not_found answer
//	NoMethod      the base's method_not_allowed answer, with gin's Allow
//
// gin routes on the normalised path (see normalisePath): its redirects are
// off, and each path parameter is unescaped on its own.
func (g *Gateway) newEngine(t *Table) (e *engine, err error) {
	r := gin.New()
	r.RedirectTrailingSlash = false // a trailing slash is stripped instead (FHIR clients do not follow a redirected POST)
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true // 405 with Allow rather than 404 for a known path
	r.UseRawPath = true             // route on the escaped path: %2F stays inside its segment
	r.UnescapePathValues = false    // gin would unescape '+' to a space; pathValue unescapes a segment as a path
	r.RemoveExtraSlash = false
	r.ContextWithFallback = true // c.Done(), c.Value() are the request's: backend calls end with the client

	r.Use(g.begin(t), limits, selectBase)
	r.Use(g.opts.middleware...)
	defer func() {
		// gin refuses conflicting patterns by panicking; the configuration
		// loader rules them out, this turns a miss into a rejected table.
		if p := recover(); p != nil {
			e, err = nil, fmt.Errorf("routes: %v", p)
		}
	}()
	for _, b := range t.bases {
		for _, rt := range b.routes {
			r.Handle(rt.cfg.Method, rt.pattern, serveRoute(rt))
		}
	}
	r.NoRoute(notFound)
	r.NoMethod(methodNotAllowed)
	for _, extend := range g.opts.engine {
		extend(r)
	}
	return &engine{table: t, gin: r}, nil
}

// exchangeKey holds the request's exchange in the gin context.
const exchangeKey = "fhirgate.exchange"

func exchangeOf(c *gin.Context) *exchange {
	x, _ := c.Get(exchangeKey)
	return x.(*exchange)
}

// stop answers e and ends the chain.
func stop(c *gin.Context, x *exchange, e *outcome.Error) {
	x.fail(e)
	c.Abort()
}

// limits answers a request target or header block over the configured
// limits (414, 431) and a declared body over the limit (413); a body
// without a length is cut at the limit while it is read.
func limits(c *gin.Context) {
	x := exchangeOf(c)
	sc := &x.table.cfg.Server
	if e := checkRequestSize(x.r, sc); e != nil {
		stop(c, x, e)
		return
	}
	if x.r.ContentLength > sc.MaxBodyBytes {
		stop(c, x, errBodyTooLarge(sc.MaxBodyBytes))
		return
	}
	x.r.Body = http.MaxBytesReader(c.Writer, x.r.Body, sc.MaxBodyBytes)
}

// selectBase finds the FHIR base by path prefix and runs what precedes
// routing: the per-client rate limit, the CapabilityStatement, and the
// header check of the base's auth profile — so that a request without a
// bearer token learns nothing about paths (400 before 404/405). A path
// outside every base is passed on only to a handler an embedding program
// registered (WithEngine); otherwise it is a 404.
func selectBase(c *gin.Context) {
	x := exchangeOf(c)
	b, rest := x.table.findBase(routingPath(x.r.URL))
	if b == nil {
		if c.FullPath() != "" {
			return // an embedding program's own handler
		}
		stop(c, x, errNoEndpoint)
		return
	}
	x.base = b
	if answered := x.beforeRouting(rest); answered {
		c.Abort()
	}
}

// serveRoute is the handler of one route: its path parameters, admission
// (max_inflight), then the route's stages and the backend call.
func serveRoute(r *route) gin.HandlerFunc {
	return func(c *gin.Context) {
		x := exchangeOf(c)
		if x.base != r.base {
			// A route of another base shadowed by a longer prefix.
			x.fail(x.answerError(x.base.cfg.NotFound, "route"))
			return
		}
		for i, name := range r.params {
			if i < len(c.Params) {
				v, ok := pathValue(c.Params[i].Value)
				if !ok {
					x.fail(x.answerError(x.base.cfg.NotFound, "route"))
					return
				}
				x.params.add(name, v)
			}
		}
		x.admit(r)
	}
}

// notFound answers a path under a base that no route serves.
func notFound(c *gin.Context) {
	x := exchangeOf(c)
	x.fail(x.answerError(x.base.cfg.NotFound, "route"))
}

// methodNotAllowed answers a known path with another method; gin has set
// Allow to the methods that path has.
func methodNotAllowed(c *gin.Context) {
	x := exchangeOf(c)
	e := x.answerError(x.base.cfg.MethodNotAllowed, "route")
	if e.Header == nil {
		e.Header = http.Header{}
	}
	e.Header.Set("Allow", c.Writer.Header().Get("Allow"))
	x.fail(e)
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

// pathValue unescapes one routed path segment.
func pathValue(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	v, err := url.PathUnescape(s)
	return v, err == nil
}

// ginPattern turns a base prefix and a route path ("/Task/{id}/$abort")
// into a gin pattern: literal segments in their escaped form (the form
// normalisePath gives requests), parameters by position (":p0", …) so that
// routes naming the same position differently do not conflict in gin's
// tree. It returns the parameter names in order.
func ginPattern(prefix, path string) (pattern string, params []string) {
	var b strings.Builder
	for _, s := range strings.Split(strings.Trim(prefix, "/"), "/") {
		if s != "" {
			b.WriteString("/" + url.PathEscape(s))
		}
	}
	for _, s := range strings.Split(strings.Trim(path, "/"), "/") {
		if s == "" {
			continue
		}
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			b.WriteString("/:p" + strconv.Itoa(len(params)))
			params = append(params, s[1:len(s)-1])
			continue
		}
		b.WriteString("/" + url.PathEscape(s))
	}
	if b.Len() == 0 {
		return "/", params
	}
	return b.String(), params
}

// holdWriter keeps the status of an answer until its first body byte or
// the end of the request, so that a status written without a body — gin's
// AbortWithStatus, a binding error, an embedding program's handler — can
// still become an OperationOutcome (begin's end), never a bare answer.
type holdWriter struct {
	http.ResponseWriter
	status  int
	flushed bool
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
