// Package pipeline is what a FHIR route does, independent of the HTTP
// framework in front of it: the table compiled from routes.yaml (bases,
// routes, verifiers, backend clients), the exchange of one request, the
// route's stages in the order of the answers (authenticate, rate limit,
// authorize, negotiate, required query, body, checks, operation), the
// canonical backend call, the mapping of its answer, OperationOutcome
// rendering, the CapabilityStatement, metrics, the access log and audit
// record, and trace spans.
//
// The HTTP layer (package gateway) runs an exchange's steps in order:
// Process.Begin, CheckLimits, SelectBase, then Serve, NotFound,
// MethodNotAllowed or NoEndpoint, and Finish.
package pipeline

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/gateway/audit"
	"github.com/fhirgate/fhirgate/gateway/auth"
	"github.com/fhirgate/fhirgate/gateway/backend"
	"github.com/fhirgate/fhirgate/gateway/negotiate"
	"github.com/fhirgate/fhirgate/gateway/outcome"
)

// stage is one step of a route's pipeline: it passes (nil) or stops the
// request with the error to answer.
type stage func(*Exchange) *outcome.Error

// buildStages lays out a route's pipeline once, in the order the answers
// must take precedence (spec erezept-abort §3): authenticate (400/401),
// rate limit (429), authorize the role (403), negotiate (406), required
// query parameters (400), the request body (415, 400, 422), gateway-owned
// checks, the OperationDefinition's parameters (400). The backend call
// follows.
func (r *Route) buildStages() []stage {
	var s []stage
	if r.auth != nil {
		s = append(s, r.authenticate, r.rateLimit, r.authorize)
	}
	s = append(s, r.negotiateFormat)
	if r.cfg.Interaction == "search" {
		s = append(s, r.checkSearch)
	}
	if len(r.cfg.RequiredQuery) > 0 {
		s = append(s, r.requireQuery)
	}
	if r.request != nil {
		s = append(s, r.readResource)
	}
	if len(r.checks) > 0 {
		s = append(s, r.runChecks)
	}
	if r.cfg.Operation != nil && r.cfg.Operation.Compiled != nil {
		s = append(s, r.checkOperation)
	}
	return s
}

// serve runs the pipeline and the backend call.
func (r *Route) serve(x *Exchange) {
	for _, st := range r.stages {
		if err := st(x); err != nil {
			x.fail(err)
			return
		}
	}
	r.forward(x)
}

func (p *authProfile) failureAnswer(f auth.Failure) *configAnswer {
	e := &p.cfg.Errors
	switch f {
	case auth.MissingHeader:
		return e.MissingHeader
	case auth.MalformedHeader:
		return e.MalformedHeader
	case auth.InvalidFormat:
		return e.InvalidFormat
	case auth.Expired:
		return e.Expired
	case auth.NotYetValid:
		return e.NotYetValid
	case auth.InvalidAudience:
		return e.InvalidAudience
	case auth.InvalidIssuer:
		return e.InvalidIssuer
	case auth.MissingClaims:
		return e.MissingClaims
	}
	return e.InvalidSignature
}

// bearer checks that the Authorization header is present and a Bearer
// header (one header, "Bearer <token>").
func bearer(x *Exchange) (string, auth.Failure) {
	vs, present := x.r.Header["Authorization"]
	if present && len(vs) != 1 {
		return "", auth.MalformedHeader
	}
	v := ""
	if present {
		v = vs[0]
	}
	return auth.BearerToken(v, present)
}

func (r *Route) authenticate(x *Exchange) *outcome.Error {
	tok, f := bearer(x)
	if f == auth.OK {
		x.principal, f = r.auth.verifier.Verify(tok)
	}
	if f != auth.OK {
		return x.answerError(r.auth.failureAnswer(f), "auth")
	}
	return nil
}

func (r *Route) rateLimit(x *Exchange) *outcome.Error {
	if r.auth.limiter == nil {
		return nil
	}
	d := r.auth.limiter.Take(x.r.Context(), x.principal.Subject)
	switch {
	case d.Unavailable:
		return errLimitStoreUnavailable
	case !d.Allowed:
		return withRetryAfter(x.answerError(r.auth.cfg.Errors.RateLimited, "rate_limit"), d.Wait)
	}
	return nil
}

// errLimitStoreUnavailable answers a limited request while its shared
// limit store does not answer and on_failure is closed.
var errLimitStoreUnavailable = withRetryAfter(outcome.New(http.StatusServiceUnavailable, "transient",
	"the rate-limit store is unavailable; retry later").WithKind("limit_store"), time.Second)

// withRetryAfter adds Retry-After (whole seconds, at least 1) unless the
// configured answer sets one itself.
func withRetryAfter(e *outcome.Error, wait time.Duration) *outcome.Error {
	if e.Header == nil {
		e.Header = http.Header{}
	}
	if e.Header.Get("Retry-After") == "" {
		e.Header.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	}
	return e
}

func (r *Route) authorize(x *Exchange) *outcome.Error {
	role := x.principal.Role
	if role == "" || (r.roles != nil && !r.roles[role]) {
		return x.answerError(r.auth.cfg.Errors.ForbiddenRole, "role")
	}
	return nil
}

func (r *Route) negotiateFormat(x *Exchange) *outcome.Error {
	x.negotiate()
	if x.format == negotiate.None {
		return x.answerError(r.cfg.Format.NotAcceptable, "format")
	}
	return nil
}

func (r *Route) requireQuery(x *Exchange) *outcome.Error {
	q := x.queryValues()
	for _, name := range r.cfg.RequiredQuery {
		if vs := q[name]; len(vs) == 0 || vs[0] == "" {
			x.missing = name
			return x.answerError(r.cfg.MissingQuery, "query")
		}
	}
	return nil
}

func (r *Route) runChecks(x *Exchange) *outcome.Error {
	for _, c := range r.checks {
		if len(c.roles) > 0 && (x.principal == nil || !slices.Contains(c.roles, x.principal.Role)) {
			continue
		}
		v, err := c.value.Render(x, nil)
		if err != nil {
			return x.renderFailure(err)
		}
		if c.system == nil {
			if !c.valid(v) {
				return x.answerError(c.fail, "check:"+c.name)
			}
			continue
		}
		// token-match: a token that selects the configured identifier.
		t, ok := parseToken(v)
		system, err1 := c.system.Render(x, nil)
		value, err2 := c.idValue.Render(x, nil)
		if err := errors.Join(err1, err2); err != nil {
			return x.renderFailure(err)
		}
		if !ok || !t.selects(system, value) {
			return x.answerError(c.fail, "check:"+c.name)
		}
	}
	return nil
}

// checkOperation checks the query parameters against the route's
// OperationDefinition; every problem is one issue.
func (r *Route) checkOperation(x *Exchange) *outcome.Error {
	op := r.cfg.Operation
	if issues := op.Compiled.CheckQuery(x.queryValues()); len(issues) > 0 {
		return x.issuesError(op.Invalid, "operation", issues)
	}
	return nil
}

// forward renders the canonical call, sends it and maps the answer.
func (r *Route) forward(x *Exchange) {
	if x.proc.Audit.Refusing() {
		// audit.on_failure: refuse — no action without its record.
		x.fail(errAuditUnavailable)
		return
	}
	req, err := r.render(x)
	if err != nil {
		x.fail(err)
		return
	}
	ctx, cancel := context.WithTimeout(x.r.Context(), r.timeout)
	defer cancel()
	ctx, span := x.startBackendSpan(ctx, r.client.Name, req.Header)
	start := time.Now()
	resp, callErr := r.client.Do(ctx, req, r.idempotent)
	x.backendTime = time.Since(start)
	defer endBackendSpan(span, x)
	var failure *backend.Failure
	if callErr != nil {
		errors.As(callErr, &failure)
		x.backendKind = failure.Kind
	} else {
		x.resp = resp
		x.backendStatus = resp.Status
		x.backendKind = "answer"
	}
	x.metrics.observeBackend(r, x)
	r.mapAnswer(x, failure)
}

var errAuditUnavailable = withRetryAfter(outcome.New(http.StatusServiceUnavailable, "transient",
	"the audit trail cannot be written; the request was not forwarded").WithKind(audit.FailureAuditUnavailable), 5*time.Second)

var errUnforwardable = outcome.New(http.StatusBadRequest, "invalid", "a request value contains characters that cannot be forwarded")

// render builds the backend request from the route's templates. Path values
// are escaped as one segment each; header values with control characters
// refuse the request.
func (r *Route) render(x *Exchange) (*backend.Request, *outcome.Error) {
	c := &r.call
	path, err := c.path.Render(x, escapePathSegment)
	if err != nil {
		return nil, x.renderFailure(err)
	}
	req := &backend.Request{Method: c.method, Path: path, Header: http.Header{}}
	req.Header["X-Request-Id"] = x.headerValue(x.id)
	if len(c.query) > 0 {
		req.Query = url.Values{}
		for _, q := range c.query {
			if q.list {
				// Every value of the request's parameter, in order (a
				// date range is two: ge… and le…).
				for _, v := range x.queryValues()[q.listKey] {
					if v != "" {
						req.Query.Add(q.name, v)
					}
				}
				continue
			}
			v, err := q.t.Render(x, nil)
			if err != nil {
				return nil, x.renderFailure(err)
			}
			if v != "" {
				req.Query.Set(q.name, v)
			}
		}
	}
	for _, h := range c.headers {
		v, err := h.t.Render(x, escapeHeaderValue)
		if err != nil {
			return nil, x.renderFailure(err)
		}
		if v != "" {
			req.Header.Set(h.name, v)
		}
	}
	if c.body != nil {
		fields := make([]backend.Field, 0, len(c.fields))
		for _, f := range c.fields {
			if f.list {
				vs := x.resourceValues(f.listKey)
				if len(vs) > 0 || c.body.KeepEmpty {
					fields = append(fields, backend.Field{Name: f.name, IsList: true, Values: vs})
				}
				continue
			}
			v, err := f.t.Render(x, nil)
			if err != nil {
				return nil, x.renderFailure(err)
			}
			if v != "" || c.body.KeepEmpty {
				fields = append(fields, backend.Field{Name: f.name, Value: v})
			}
		}
		req.Body, req.ContentType = backend.EncodeBody(c.body.Encoding, c.body.Root, fields)
	}
	return req, nil
}

// escapePathSegment makes a value one path segment: '/' and everything
// else outside the unreserved set is percent-encoded, and the dot segments
// "." and ".." are encoded too so that no value walks up the backend's path.
func escapePathSegment(v string) (string, error) {
	switch v {
	case ".":
		return "%2E", nil
	case "..":
		return "%2E%2E", nil
	}
	return url.PathEscape(v), nil
}

var errControlChar = errors.New("control character")

// escapeHeaderValue refuses CR, LF, NUL and other control characters, which
// could split or smuggle headers.
func escapeHeaderValue(v string) (string, error) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return "", errControlChar
		}
	}
	return v, nil
}

// Default answers for calls that produced no mapped answer. No path leads
// from a failed or unmapped call to a 2xx.
func (x *Exchange) unmapped(failure *backend.Failure) *outcome.Error {
	code := func(status int) string { return x.base.cfg.IssueCode(status) }
	if failure == nil {
		return outcome.New(http.StatusBadGateway, code(502), "the backend's answer could not be mapped").WithKind("backend_unmapped")
	}
	switch failure.Kind {
	case "open":
		e := outcome.New(http.StatusServiceUnavailable, code(503), "the backend is temporarily unavailable; retry later").WithKind("backend_open")
		e.Header = http.Header{"Retry-After": {strconv.Itoa(int(x.route.client.RetryAfter().Seconds() + 0.999))}}
		return e
	case "timeout":
		return outcome.New(http.StatusGatewayTimeout, code(504), "the backend did not answer in time").WithKind("backend_timeout")
	case "refused":
		return outcome.New(http.StatusBadGateway, code(502), "the backend is not reachable").WithKind("backend_refused")
	}
	return outcome.New(http.StatusBadGateway, code(502), "the backend call failed").WithKind("backend_error")
}

// mapAnswer applies the first matching response rule.
func (r *Route) mapAnswer(x *Exchange, failure *backend.Failure) {
	for i, rule := range r.rules {
		w := &rule.When
		if failure != nil {
			if w.Transport == failure.Kind {
				x.fail(x.answerError(&rule.Answer, "backend_"+failure.Kind))
				return
			}
			continue
		}
		if w.Transport != "" || (!w.Status.Empty() && !w.Status.Has(x.resp.Status)) || !matches(x, r.matchers[i]) {
			continue
		}
		switch {
		case rule.Answer.ResourceT != nil:
			x.answerResource(&rule.Answer)
		case rule.Answer.Status/100 == 2:
			x.succeed(&rule.Answer)
		default:
			x.fail(x.answerError(&rule.Answer, "backend_refusal"))
		}
		return
	}
	x.fail(x.unmapped(failure))
}

// matches applies a rule's field conditions (config.Condition): all
// must hold.
func matches(x *Exchange, ms []matcher) bool {
	for _, m := range ms {
		v, present := x.Value(m.ref)
		if !m.want.Holds(v, present) {
			return false
		}
	}
	return true
}

// trimmed is used for the log: the first line of a text, bounded.
func trimmed(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
