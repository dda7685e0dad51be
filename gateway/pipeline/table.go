package pipeline

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fhirgate/fhirgate/gateway/ratelimit"
	"github.com/fhirgate/fhirgate/gateway/ratelimit/redisstore"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/auth"
	"github.com/fhirgate/fhirgate/gateway/backend"
	"github.com/fhirgate/fhirgate/gateway/negotiate"
	"github.com/fhirgate/fhirgate/template"
	"github.com/fhirgate/fhirgate/validation"
)

// Table is everything a request needs from the configuration, compiled
// once: bases, routes with their stages, verifiers and backend clients. A
// Table is immutable once built, so a reload can swap it atomically while
// requests in flight finish on the one they started with.
type Table struct {
	cfg   *config.Config
	bases []*base
	// clients are the backend clients by backend name, shared by the
	// routes that call them.
	clients map[string]*backend.Client
	// stores are the shared limit stores by name.
	stores map[string]*redisstore.Store
	// unmatched are the series of answers given before a route is known
	// (Metrics.KnownSeries).
	unmatched *routeSeries
}

type base struct {
	cfg    *config.Base
	prefix string
	// auth, when set, checks the Authorization header before routing.
	auth   *authProfile
	routes []*Route
	// version is the base's FHIR version.
	version validation.Version
	// parser validates request bodies in the base's FHIR version.
	parser *validation.Parser
	// clientLimiter is the per-client rate limit, nil without one.
	clientLimiter ratelimit.Limiter
	// capability is the CapabilityStatement served at metadata, nil
	// when a route of the base serves that path itself.
	capability *capability
}

type authProfile struct {
	name     string
	cfg      *config.AuthProfile
	verifier *auth.Verifier
	// limiter is the per-subject rate limit, nil without one.
	limiter ratelimit.Limiter
}

type Route struct {
	cfg      *config.Route
	base     *base
	segments []segment
	// pattern is the route's gin pattern below the root, params the names
	// of its parameters by position (ginPattern).
	pattern  string
	params   []string
	auth     *authProfile
	roles    map[string]bool
	offer    negotiate.Offer
	format   negotiate.Format
	byRole   map[string]negotiate.Format
	checks   []check
	call     compiledCall
	rules    []*config.Rule
	client   *backend.Client
	stages   []stage
	matchers [][]matcher // per rule
	// series and backendSeries are the metric series the route's
	// requests and backend calls count into (Metrics.KnownSeries).
	series        *routeSeries
	backendSeries *backendSeries

	// request is the body spec (nil: the route takes no body);
	// formatFromRequest answers in the request's format by default.
	request           *requestBody
	formatFromRequest bool
	resourceExprs     resourcePaths

	// timeout is the backend call's total deadline; idempotent whether the
	// interaction may be repeated (read, search, update, delete), which
	// lets the client retry more than refused connections.
	timeout    time.Duration
	idempotent bool

	// resourceType is the type the route acts on (its first literal path
	// segment, or the request's resource); operation the name of an
	// operation route without $. Both for audit and CapabilityStatement.
	resourceType, operation string

	// inflight counts the route's requests being served (MaxInflight).
	inflight atomic.Int64
}

type segment struct {
	literal string
	param   string // set for {param} segments
}

type check struct {
	name  string
	value *template.Template
	valid func(string) bool
	fail  *config.Answer
	// token-match (valid unused): the identifier the token in value must
	// select.
	system, idValue *template.Template
	// roles, when set, are the only callers the check applies to.
	roles []string
}

type compiledCall struct {
	method  string
	path    *template.Template
	query   []named
	headers []named
	body    *config.Body
	fields  []named
}

type named struct {
	name string
	t    *template.Template
	list bool // a list field: t is one ${resource.…} reference
	// listKey is a list field's one reference's key, kept so that a
	// request does not list the template's references to find it.
	listKey string
}

type matcher struct {
	ref  template.Ref
	want config.Condition
}

// Build compiles a loaded configuration. ctx bounds background work started
// for it (JWKS refreshes); cancel it when the table is retired.
func Build(ctx context.Context, cfg *config.Config) (*Table, error) {
	t := &Table{cfg: cfg, stores: map[string]*redisstore.Store{}}
	built := time.Now()
	for name, sc := range cfg.LimitStores {
		st, err := redisstore.New(name, sc)
		if err != nil {
			t.Close()
			return nil, err
		}
		t.stores[name] = st
	}
	profiles := map[string]*authProfile{}
	for name, p := range cfg.Auth {
		v, err := auth.New(ctx, p)
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("auth profile %s: %w", name, err)
		}
		profiles[name] = &authProfile{name: name, cfg: p, verifier: v, limiter: t.limiter("auth:"+name, p.RateLimit)}
	}
	clients := map[string]*backend.Client{}
	for name, b := range cfg.Backends {
		c, err := backend.NewClient(name, b)
		if err != nil {
			return nil, err
		}
		c.Start(ctx)
		clients[name] = c
	}
	t.clients = clients
	for _, bc := range cfg.Bases {
		b := &base{cfg: bc, prefix: bc.Path, auth: profiles[bc.Auth]}
		b.clientLimiter = t.limiter("client:"+bc.Path, bc.ClientRateLimit)
		version, err := validation.ParseVersion(bc.FHIRVersion)
		if err != nil {
			return nil, err
		}
		b.version = version
		if b.parser, err = validation.NewParser(version); err != nil {
			return nil, err
		}
		for _, rc := range bc.Routes {
			r, err := buildRoute(b, rc, profiles, clients)
			if err != nil {
				return nil, fmt.Errorf("route %s: %w", rc.Name, err)
			}
			b.routes = append(b.routes, r)
		}
		if !b.servesMetadata() {
			if b.capability, err = capabilityStatement(b, version, built); err != nil {
				return nil, fmt.Errorf("base %s: CapabilityStatement: %w", bc.Path, err)
			}
		}
		t.bases = append(t.bases, b)
	}
	// Longest prefix first, so /a/b is not taken by /a.
	sort.SliceStable(t.bases, func(i, j int) bool { return len(t.bases[i].prefix) > len(t.bases[j].prefix) })
	return t, nil
}

// Routes returns every route of every base, for the HTTP layer to
// register.
func (t *Table) Routes() []*Route {
	var out []*Route
	for _, b := range t.bases {
		out = append(out, b.routes...)
	}
	return out
}

// Method is the route's HTTP method.
func (r *Route) Method() string { return r.cfg.Method }

// Pattern is the route's gin pattern, base prefix included (ginPattern).
func (r *Route) Pattern() string { return r.pattern }

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

// servesMetadata reports whether a route of the base answers GET
// [base]/metadata itself (then the gateway generates no statement).
func (b *base) servesMetadata() bool {
	for _, r := range b.routes {
		if r.cfg.Method == http.MethodGet && strings.Trim(r.cfg.Path, "/") == "metadata" {
			return true
		}
	}
	return false
}

func buildRoute(b *base, rc *config.Route, profiles map[string]*authProfile, clients map[string]*backend.Client) (*Route, error) {
	r := &Route{cfg: rc, base: b, client: clients[rc.Call.Backend], rules: rc.Responses, timeout: rc.Call.Timeout.D()}
	if r.timeout == 0 {
		r.timeout = r.client.Timeout()
	}
	switch rc.Interaction {
	case "read", "search", "update", "conditional-update", "delete":
		r.idempotent = true
	}
	r.pattern, r.params = ginPattern(b.prefix, rc.Path)
	for _, s := range strings.Split(strings.Trim(rc.Path, "/"), "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			r.segments = append(r.segments, segment{param: s[1 : len(s)-1]})
		} else {
			r.segments = append(r.segments, segment{literal: s})
		}
	}
	if rc.Auth != "" && rc.Auth != "none" {
		r.auth = profiles[rc.Auth]
	}
	if len(r.segments) > 0 && r.segments[0].param == "" && !strings.HasPrefix(r.segments[0].literal, "$") {
		r.resourceType = r.segments[0].literal
	} else if rc.Request != nil {
		r.resourceType = rc.Request.Resource
	}
	if last := r.segments[len(r.segments)-1].literal; rc.Interaction == "operation" && strings.HasPrefix(last, "$") {
		r.operation = last[1:]
	}
	if len(rc.Roles) > 0 {
		r.roles = map[string]bool{}
		for _, role := range rc.Roles {
			r.roles[role] = true
		}
	}
	for _, f := range rc.Format.Offer {
		switch negotiate.Parse(f) {
		case negotiate.JSON:
			r.offer.JSON = true
		case negotiate.XML:
			r.offer.XML = true
		}
	}
	r.format = negotiate.Parse(rc.Format.Default)
	if rc.Format.Default == "request" {
		r.format, r.formatFromRequest = negotiate.JSON, true
	}
	r.resourceExprs = resourcePaths{}
	if rq := rc.Request; rq != nil {
		r.request = &requestBody{cfg: rq, parser: b.parser, profiles: b.cfg.ProfileSet}
		for _, f := range rq.Formats {
			r.request.json = r.request.json || f == "json"
			r.request.xml = r.request.xml || f == "xml"
		}
		if rq.Profile != "" {
			r.request.as = []string{rq.Profile}
		}
	}
	r.byRole = map[string]negotiate.Format{}
	for role, f := range rc.Format.ByRole {
		r.byRole[role] = negotiate.Parse(f)
	}
	for _, ch := range rc.Checks {
		c := check{name: ch.Name, value: mustParse(b, ch.Value), fail: &ch.Fail, roles: ch.Roles}
		switch ch.Format {
		case "prescription-id":
			c.valid = validation.ValidPrescriptionID
		case "kvnr":
			c.valid = validation.ValidKVNR
		case "regex":
			re := regexp.MustCompile("^(?:" + ch.Pattern + ")$")
			c.valid = re.MatchString
		case "token":
			c.valid = func(v string) bool { _, ok := parseToken(v); return ok }
		case "token-match":
			c.system, c.idValue = mustParse(b, ch.Matches.System), mustParse(b, ch.Matches.Value)
		}
		r.checks = append(r.checks, c)
	}
	call := rc.Call
	r.call = compiledCall{method: call.Method, path: mustParse(b, call.Path), body: call.Body}
	r.call.query = compileNamed(b, call.Query, false)
	r.call.headers = compileNamed(b, call.Headers, true)
	if call.Body != nil {
		r.call.fields = compileNamed(b, call.Body.Fields, false)
	}
	// Every ${resource.…} the route uses is compiled here, once.
	r.eachTemplate(func(t *template.Template) {
		for _, ref := range t.Refs() {
			if ref.Source == "resource" {
				r.resourceExprs.add(ref.Key)
			}
		}
	})
	for _, rule := range rc.Responses {
		var ms []matcher
		for _, k := range slices.Sorted(maps.Keys(rule.When.Match)) {
			ms = append(ms, matcher{ref: template.ParseRef(k), want: rule.When.Match[k]})
		}
		r.matchers = append(r.matchers, ms)
	}
	r.stages = r.buildStages()
	return r, nil
}

// mustParse compiles a template config.Load has already checked, with the
// base's value maps.
func mustParse(b *base, s string) *template.Template {
	t, err := template.ParseWith(s, template.Options{Maps: b.cfg.Maps})
	if err != nil {
		panic(fmt.Sprintf("template passed config validation but does not compile: %v", err))
	}
	return t
}

func compileNamed(b *base, m map[string]string, header bool) []named {
	var out []named
	for _, k := range slices.Sorted(maps.Keys(m)) {
		name, list := strings.CutSuffix(k, "[]")
		if header {
			name, list = http.CanonicalHeaderKey(k), false
		}
		n := named{name: name, t: mustParse(b, m[k]), list: list}
		if list {
			n.listKey = n.t.Refs()[0].Key
		}
		out = append(out, n)
	}
	return out
}

// eachTemplate calls fn for every template of the route that may be
// rendered with a request body present.
func (r *Route) eachTemplate(fn func(*template.Template)) {
	for _, c := range r.checks {
		fn(c.value)
		if c.system != nil {
			fn(c.system)
			fn(c.idValue)
		}
		r.eachAnswerTemplate(c.fail, fn)
	}
	fn(r.call.path)
	for _, group := range [][]named{r.call.query, r.call.headers, r.call.fields} {
		for _, n := range group {
			fn(n.t)
		}
	}
	for _, rule := range r.rules {
		r.eachAnswerTemplate(&rule.Answer, fn)
	}
}

func (r *Route) eachAnswerTemplate(a *config.Answer, fn func(*template.Template)) {
	if a.TextT != nil {
		fn(a.TextT)
	}
	if a.ExpressionT != nil {
		fn(a.ExpressionT)
	}
	for _, h := range a.HeaderT {
		fn(h.T)
	}
}

// findBase returns the base serving path and the path below it.
func (t *Table) findBase(path string) (*base, string) {
	for _, b := range t.bases {
		if path == b.prefix {
			return b, "/"
		}
		if strings.HasPrefix(path, b.prefix) && path[len(b.prefix)] == '/' {
			return b, path[len(b.prefix):]
		}
	}
	return nil, path
}

// params holds path parameters without allocating for up to four.
type params struct {
	n  int
	kv [4][2]string
}

func (p *params) add(k, v string) {
	if p.n < len(p.kv) {
		p.kv[p.n] = [2]string{k, v}
		p.n++
	}
}

func (p *params) get(k string) (string, bool) {
	for i := 0; i < p.n; i++ {
		if p.kv[i][0] == k {
			return p.kv[i][1], true
		}
	}
	return "", false
}

// Close releases what the table holds open: its backend clients' idle
// connections and its limit stores' connections.
func (t *Table) Close() {
	for _, c := range t.clients {
		c.Close()
	}
	for _, s := range t.stores {
		s.Close()
	}
}

// limiter builds a rate limit (nil without one) in its store; id names it
// in a shared store, where replicas with the same id share buckets.
func (t *Table) limiter(id string, rl *config.RateLimit) ratelimit.Limiter {
	switch {
	case rl == nil:
		return nil
	case rl.Store == "" || rl.Store == "memory":
		return ratelimit.New(rl.Requests, rl.Per.D(), rl.Burst)
	}
	return t.stores[rl.Store].Limiter(id, rl.Requests, rl.Per.D(), rl.Burst)
}

// Stores returns the table's shared limit stores by name.
func (t *Table) Stores() map[string]*redisstore.Store { return t.stores }
