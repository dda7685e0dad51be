package config

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/template"
	"github.com/fhirgate/fhirgate/validation"
	"github.com/fhirgate/fhirgate/validation/fhirpathlite"
	"github.com/fhirgate/fhirgate/validation/profile"
)

// Template sources, by where a template is used. The gateway supplies them:
//
//	path.<param>        a parameter of the route path
//	query.<name>        the first value of a query parameter
//	header.<Name>       a request header
//	claim.<name>        a claim of the verified token
//	role, subject       the caller's role and subject
//	request.id|base|method|content_type  request id, absolute base URL,
//	                    HTTP method, Content-Type of the request
//	resource.<FHIRPath> (routes with request) values the expression selects
//	                    in the request body; the FHIRPath subset of
//	                    validation/fhirpathlite (paths, where, exists, =, and …)
//	token.<param>.system|value|mode  the FHIR token in query parameter
//	                    <param>; mode is exact (system|value), any-system
//	                    (value), no-system (|value) or system-only (system|)
//	format              (406 text) the format asked for
//	missing             (missing_query text) the missing parameter
//	status              (responses) the backend's HTTP status
//	body.<path>         (responses) a field of the backend's JSON or XML body
//	response_header.<Name> (responses) a header of the backend's answer
var (
	requestSources  = []string{"path", "query", "header", "claim", "role", "subject", "request", "token", "search"}
	responseSources = append(append([]string{}, requestSources...), "status", "body", "response_header")
	requestKeys     = map[string]bool{"id": true, "base": true, "method": true, "content_type": true}
	tokenParts      = map[string]bool{"system": true, "value": true, "mode": true}
)

// IssueTypes are the OperationOutcome issue codes (R4 IssueType; STU3 lacks
// multiple-matches and deleted).
var IssueTypes = map[string]bool{
	"invalid": true, "structure": true, "required": true, "value": true, "invariant": true,
	"security": true, "login": true, "unknown": true, "expired": true, "forbidden": true,
	"suppressed": true, "processing": true, "not-supported": true, "duplicate": true,
	"multiple-matches": true, "not-found": true, "deleted": true, "too-long": true,
	"code-invalid": true, "extension": true, "too-costly": true, "business-rule": true,
	"conflict": true, "transient": true, "lock-error": true, "no-store": true,
	"exception": true, "timeout": true, "incomplete": true, "throttled": true, "informational": true,
}

// DefaultIssueCodes is the status → issue code table every base starts from.
var DefaultIssueCodes = map[int]string{
	400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported",
	406: "not-supported", 409: "conflict", 410: "deleted", 412: "conflict", 413: "too-costly",
	415: "not-supported", 422: "processing", 429: "throttled", 500: "exception",
	502: "exception", 503: "transient", 504: "timeout",
}

// Algorithms the gateway can verify. HMAC is absent on purpose: a gateway
// holding only public keys must never accept a token "signed" with one.
var knownAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
}

var interactions = map[string]bool{
	"operation": true, "create": true, "update": true, "conditional-update": true,
	"read": true, "search": true, "delete": true,
}

var checkFormats = map[string]bool{"prescription-id": true, "kvnr": true, "regex": true, "token": true, "token-match": true}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (l *loader) validate(c *Config) {
	l.stores = c.LimitStores
	l.valueMaps(c)
	l.maps = mapsFor(c, nil)
	for _, name := range sortedKeys(c.LimitStores) {
		l.limitStore("limit_stores."+name, c.LimitStores[name])
	}
	l.server(&c.Server)
	l.audit(&c.Audit)
	l.tracing(&c.Tracing)
	if c.Log.FlushInterval == nil { // absent: batched; 0 stays 0
		d := Duration(100 * time.Millisecond)
		c.Log.FlushInterval = &d
	}
	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		l.errorf("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	for _, name := range sortedKeys(c.Auth) {
		l.authProfile(c, name, c.Auth[name])
	}
	if len(c.Backends) == 0 {
		l.errorf("backends", "at least one backend is required")
	}
	for _, name := range sortedKeys(c.Backends) {
		l.backend("backends."+name, c.Backends[name])
	}
	if len(c.Bases) == 0 {
		l.errorf("bases", "at least one base is required")
	}
	basePaths := map[string]bool{}
	routeNames := map[string]string{}
	for i, b := range c.Bases {
		p := fmt.Sprintf("bases[%d]", i)
		if b == nil {
			l.errorf(p, "must not be empty")
			continue
		}
		l.base(c, p, b, basePaths, routeNames)
	}
}

func (l *loader) server(s *Server) {
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	if s.Listen == "" {
		s.Listen = ":8080"
	}
	if s.AdminListen == "" {
		s.AdminListen = "127.0.0.1:9090"
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 1 << 20
	} else if s.MaxBodyBytes < 0 {
		l.errorf("server.max_body_bytes", "must be positive")
	}
	if s.MaxHeaderBytes == 0 {
		s.MaxHeaderBytes = 64 << 10
	} else if s.MaxHeaderBytes < 0 {
		l.errorf("server.max_header_bytes", "must be positive")
	}
	if s.MaxURLBytes == 0 {
		s.MaxURLBytes = 8 << 10
	} else if s.MaxURLBytes < 0 {
		l.errorf("server.max_url_bytes", "must be positive")
	}
	def(&s.ReadHeaderTimeout, 5*time.Second)
	def(&s.ReadTimeout, 30*time.Second)
	def(&s.WriteTimeout, 60*time.Second)
	def(&s.IdleTimeout, 120*time.Second)
	def(&s.DrainDelay, 5*time.Second)
	def(&s.ShutdownGrace, 20*time.Second)
	if t := s.TLS; t != nil {
		if t.CertFile == "" || t.KeyFile == "" {
			l.errorf("server.tls", "cert_file and key_file are both required")
		}
		l.checkFile("server.tls.cert_file", &t.CertFile)
		l.checkFile("server.tls.key_file", &t.KeyFile)
		l.checkFile("server.tls.client_ca_file", &t.ClientCAFile)
		switch t.ClientAuth {
		case "":
			t.ClientAuth = "none"
			if t.ClientCAFile != "" {
				t.ClientAuth = "require"
			}
		case "none", "request", "require":
		default:
			l.errorf("server.tls.client_auth", "%q is not one of none, request, require", t.ClientAuth)
		}
	}
}

// file resolves a file name against the configuration's directory and checks
// that it can be read (true). An empty name is left alone.
func (l *loader) checkFile(path string, name *string) bool {
	if *name == "" {
		return false
	}
	if !filepath.IsAbs(*name) {
		*name = filepath.Join(filepath.Dir(l.file), *name)
	}
	l.files = append(l.files, filepath.Clean(*name))
	f, err := os.Open(*name)
	if err != nil {
		l.errorf(path, "cannot read file %s", *name)
		return false
	}
	f.Close()
	return true
}

func (l *loader) authProfile(c *Config, name string, p *AuthProfile) {
	path := "auth." + name
	if p == nil {
		l.errorf(path, "must not be empty")
		return
	}
	if name == "none" {
		l.errorf(path, `"none" is reserved: it switches authentication off on a route`)
	}
	if len(p.Algorithms) == 0 {
		p.Algorithms = []string{"RS256", "PS256", "ES256"}
	}
	for i, a := range p.Algorithms {
		if !knownAlgorithms[a] {
			l.errorf(fmt.Sprintf("%s.algorithms[%d]", path, i), "%q is not an allowed algorithm (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512)", a)
		}
	}
	k := &p.Keys
	n := 0
	for _, s := range []string{k.PEMFile, k.JWKSFile, k.JWKSURL} {
		if s != "" {
			n++
		}
	}
	if n != 1 {
		l.errorf(path+".keys", "exactly one of pem_file, jwks_file, jwks_url is required")
	}
	l.checkFile(path+".keys.pem_file", &k.PEMFile)
	l.checkFile(path+".keys.jwks_file", &k.JWKSFile)
	if k.JWKSURL != "" {
		if u, err := url.Parse(k.JWKSURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.errorf(path+".keys.jwks_url", "%q is not an http(s) URL", k.JWKSURL)
		}
	}
	if k.Refresh == 0 {
		k.Refresh = Duration(time.Hour)
	}
	if p.ClockSkew == 0 {
		p.ClockSkew = Duration(30 * time.Second)
	}
	if p.SubjectClaim == "" {
		p.SubjectClaim = "sub"
	}
	if p.Roles.Claim == "" {
		l.errorf(path+".roles.claim", "is required")
	}
	if len(p.Roles.Map) == 0 {
		l.errorf(path+".roles.map", "at least one claim value → role entry is required")
	}
	for v, role := range p.Roles.Map {
		if !paramName.MatchString(strings.ReplaceAll(role, "-", "_")) {
			l.errorf(path+".roles.map."+v, "role %q must be a simple name", role)
		}
	}
	l.rateLimit(path+".rate_limit", p.RateLimit)
	if p.CacheSize == 0 {
		p.CacheSize = 10000
	} else if p.CacheSize < -1 {
		l.errorf(path+".cache_size", "must be positive, 0 (default) or -1 (off)")
	}
	e := &p.Errors
	if e.UnauthorizedHeaders == nil {
		e.UnauthorizedHeaders = map[string]string{"WWW-Authenticate": "Bearer"}
	}
	for h, v := range e.UnauthorizedHeaders {
		l.headerLiteral(path+".errors.unauthorized_headers."+h, h, v)
	}
	unauth := func(a **Answer, text string) *Answer {
		d := &Answer{Status: 401, Text: text, Headers: e.UnauthorizedHeaders}
		return defaultAnswer(a, d)
	}
	ep := path + ".errors."
	// A header answer moved to 401 (some specifications want that) takes
	// the 401 headers too.
	headerAnswer := func(a **Answer, text string) *Answer {
		ans := defaultAnswer(a, &Answer{Status: 400, Text: text})
		if ans.Status == 401 && ans.Headers == nil {
			ans.Headers = e.UnauthorizedHeaders
		}
		return ans
	}
	l.answer(ep+"missing_header", headerAnswer(&e.MissingHeader, "Authorization header is missing"), requestSources, nil)
	l.answer(ep+"malformed_header", headerAnswer(&e.MalformedHeader, "invalid Authorization Bearer header field"), requestSources, nil)
	l.answer(ep+"invalid_format", unauth(&e.InvalidFormat, "JWT has invalid format"), requestSources, nil)
	l.answer(ep+"invalid_signature", unauth(&e.InvalidSignature, "JWT has invalid signature"), requestSources, nil)
	l.answer(ep+"expired", unauth(&e.Expired, "JWT expired"), requestSources, nil)
	l.answer(ep+"not_yet_valid", unauth(&e.NotYetValid, "JWT not yet valid"), requestSources, nil)
	l.answer(ep+"invalid_audience", unauth(&e.InvalidAudience, "JWT has invalid aud claim"), requestSources, nil)
	l.answer(ep+"invalid_issuer", unauth(&e.InvalidIssuer, "JWT has invalid iss claim"), requestSources, nil)
	l.answer(ep+"missing_claims", unauth(&e.MissingClaims, "JWT misses required claims"), requestSources, nil)
	l.answer(ep+"rate_limited", defaultAnswer(&e.RateLimited, &Answer{Status: 429, Text: "too many requests for this token subject"}), requestSources, nil)
	l.answer(ep+"forbidden_role", defaultAnswer(&e.ForbiddenRole, &Answer{Status: 403, Text: "endpoint is forbidden for this role"}), requestSources, nil)
}

// defaultAnswer fills the unset parts of *a from d and returns *a.
func defaultAnswer(a **Answer, d *Answer) *Answer {
	if *a == nil {
		c := *d
		*a = &c
		return *a
	}
	if (*a).Status == 0 {
		(*a).Status = d.Status
	}
	if (*a).Text == "" {
		(*a).Text = d.Text
	}
	if (*a).Headers == nil {
		(*a).Headers = d.Headers
	}
	return *a
}

func (l *loader) backend(path string, b *Backend) {
	if b == nil {
		l.errorf(path, "must not be empty")
		return
	}
	if len(b.URLs) == 0 {
		l.errorf(path+".urls", "at least one URL is required")
	}
	for i, s := range b.URLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			l.errorf(fmt.Sprintf("%s.urls[%d]", path, i), "%q must be an http(s) URL with host and optional path, no credentials, query or fragment", s)
			continue
		}
		b.URLs[i] = strings.TrimRight(s, "/")
	}
	if b.Timeout == 0 {
		b.Timeout = Duration(10 * time.Second)
	}
	if b.ConnectTimeout == 0 {
		b.ConnectTimeout = Duration(2 * time.Second)
	}
	if b.MaxIdleConnsPerHost == 0 {
		b.MaxIdleConnsPerHost = 128
	} else if b.MaxIdleConnsPerHost < 0 {
		l.errorf(path+".max_idle_conns_per_host", "must be positive")
	}
	if b.IdleTimeout == 0 {
		b.IdleTimeout = Duration(4 * time.Second)
	} else if b.IdleTimeout < 0 {
		l.errorf(path+".idle_timeout", "must be positive")
	}
	if b.MaxResponseBytes == 0 {
		b.MaxResponseBytes = 1 << 20
	} else if b.MaxResponseBytes < 0 {
		l.errorf(path+".max_response_bytes", "must be positive")
	}
	for h, v := range b.Headers {
		l.headerLiteral(path+".headers."+h, h, v)
	}
	l.resilience(path, b)
}

func (l *loader) rateLimit(path string, rl *RateLimit) {
	if rl == nil {
		return
	}
	if rl.Requests <= 0 {
		l.errorf(path+".requests", "must be positive")
	}
	if rl.Per == 0 {
		rl.Per = Duration(time.Second)
	}
	if rl.Burst == 0 {
		rl.Burst = rl.Requests
	} else if rl.Burst < 0 {
		l.errorf(path+".burst", "must be positive")
	}
	switch rl.Store {
	case "":
		rl.Store = "memory"
	case "memory":
	default:
		if l.stores[rl.Store] == nil {
			l.errorf(path+".store", "%q is neither memory nor a name in limit_stores (%s)", rl.Store, strings.Join(sortedKeys(l.stores), ", "))
		}
	}
}

func (l *loader) limitStore(path string, s *LimitStore) {
	if s == nil {
		l.errorf(path, "must not be empty")
		return
	}
	if s.URL != "" && len(s.Addresses) > 0 {
		l.errorf(path, "set url or addresses, not both")
	}
	switch {
	case s.URL != "":
		u, err := url.Parse(s.URL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			l.errorf(path+".url", "must be redis://host:port[/db] or rediss://…")
		} else if _, set := u.User.Password(); set {
			l.errorf(path+".url", "must not hold a password (it would be logged and shown); use password_file")
		}
	case len(s.Addresses) > 0:
		for i, a := range s.Addresses {
			if _, _, err := net.SplitHostPort(a); err != nil {
				l.errorf(fmt.Sprintf("%s.addresses[%d]", path, i), "must be host:port")
			}
		}
	default:
		l.errorf(path, "needs url or addresses")
	}
	if s.SentinelMaster != "" && len(s.Addresses) == 0 {
		l.errorf(path+".sentinel_master", "needs the Sentinels' addresses")
	}
	l.checkFile(path+".password_file", &s.PasswordFile)
	if t := s.TLS; t != nil {
		l.checkFile(path+".tls.ca_file", &t.CAFile)
		l.checkFile(path+".tls.cert_file", &t.CertFile)
		l.checkFile(path+".tls.key_file", &t.KeyFile)
		if (t.CertFile == "") != (t.KeyFile == "") {
			l.errorf(path+".tls", "cert_file and key_file go together")
		}
	}
	if s.KeyPrefix == "" {
		s.KeyPrefix = "fhirgate:"
	}
	switch {
	case s.Timeout == 0:
		s.Timeout = Duration(5 * time.Millisecond)
	case s.Timeout < 0 || s.Timeout.D() > time.Second:
		l.errorf(path+".timeout", "must be between 0 and 1s (each limited request may wait this long)")
	}
	l.oneOf(path+".on_failure", &s.OnFailure, "local", "closed")
}

// ApplyBackendDefaults checks a backend built in code (tests, embedding)
// and fills in its defaults, as Load does for one read from a file.
func ApplyBackendDefaults(b *Backend) error {
	l := &loader{}
	l.backend("backend", b)
	if len(l.errs) > 0 {
		return l.errs
	}
	return nil
}

// resilience fills in the backend's retry, health-check, ejection and
// breaker defaults and checks the TLS files.
func (l *loader) resilience(path string, b *Backend) {
	if b.TryTimeout == 0 || b.TryTimeout > b.Timeout {
		b.TryTimeout = b.Timeout
	}
	r := &b.Retry
	switch {
	case r.Attempts == 0:
		r.Attempts = 2
	case r.Attempts < 0 || r.Attempts > 10:
		l.errorf(path+".retry.attempts", "must be between 1 and 10")
	}
	if r.Backoff == 0 {
		r.Backoff = Duration(25 * time.Millisecond)
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = Duration(250 * time.Millisecond)
	}
	ratio, floor := 0.2, 5.0
	if r.BudgetRatio == nil {
		r.BudgetRatio = &ratio
	} else if *r.BudgetRatio < 0 || *r.BudgetRatio > 1 {
		l.errorf(path+".retry.budget_ratio", "must be between 0 and 1")
	}
	if r.BudgetMinPerSecond == nil {
		r.BudgetMinPerSecond = &floor
	} else if *r.BudgetMinPerSecond < 0 {
		l.errorf(path+".retry.budget_min_per_second", "must not be negative")
	}
	if h := b.HealthCheck; h != nil {
		if !strings.HasPrefix(h.Path, "/") {
			l.errorf(path+".health_check.path", "is required and must start with /")
		}
		if h.Interval == 0 {
			h.Interval = Duration(5 * time.Second)
		}
		if h.Timeout == 0 {
			h.Timeout = Duration(time.Second)
		}
		if h.UnhealthyThreshold == 0 {
			h.UnhealthyThreshold = 2
		}
		if h.HealthyThreshold == 0 {
			h.HealthyThreshold = 2
		}
		if h.UnhealthyThreshold < 0 || h.HealthyThreshold < 0 {
			l.errorf(path+".health_check", "thresholds must be positive")
		}
	}
	e := &b.Ejection
	if e.ConsecutiveFailures == 0 {
		e.ConsecutiveFailures = 5
	} else if e.ConsecutiveFailures < -1 {
		l.errorf(path+".ejection.consecutive_failures", "must be positive, or -1 (off)")
	}
	if e.Duration == 0 {
		e.Duration = Duration(5 * time.Second)
	}
	cb := &b.CircuitBreaker
	if cb.ConsecutiveFailures == 0 {
		cb.ConsecutiveFailures = 10
	} else if cb.ConsecutiveFailures < -1 {
		l.errorf(path+".circuit_breaker.consecutive_failures", "must be positive, or -1 (off)")
	}
	half := 0.5
	if cb.FailureRatio == nil {
		cb.FailureRatio = &half
	} else if *cb.FailureRatio <= 0 || *cb.FailureRatio > 1 {
		l.errorf(path+".circuit_breaker.failure_ratio", "must be above 0 and at most 1")
	}
	if cb.MinCalls == 0 {
		cb.MinCalls = 20
	}
	if cb.Window == 0 {
		cb.Window = Duration(10 * time.Second)
	}
	if cb.OpenFor == 0 {
		cb.OpenFor = Duration(10 * time.Second)
	}
	if cb.HalfOpenCalls == 0 {
		cb.HalfOpenCalls = 1
	}
	if t := b.TLS; t != nil {
		l.checkFile(path+".tls.ca_file", &t.CAFile)
		if (t.CertFile == "") != (t.KeyFile == "") {
			l.errorf(path+".tls", "cert_file and key_file go together")
		}
		l.checkFile(path+".tls.cert_file", &t.CertFile)
		l.checkFile(path+".tls.key_file", &t.KeyFile)
	}
}

func (l *loader) headerLiteral(path, name, value string) {
	if !validHeaderName(name) {
		l.errorf(path, "%q is not a valid header name", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		l.errorf(path, "header value must not contain CR, LF or NUL")
	}
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", c)) {
			return false
		}
	}
	return true
}

func (l *loader) base(c *Config, path string, b *Base, basePaths map[string]bool, routeNames map[string]string) {
	switch {
	case b.Path == "" || b.Path[0] != '/' || (len(b.Path) > 1 && strings.HasSuffix(b.Path, "/")):
		l.errorf(path+".path", "%q must start with / and not end with /", b.Path)
	case basePaths[b.Path]:
		l.errorf(path+".path", "%q is used by another base", b.Path)
	}
	for other := range basePaths {
		if b.Path != other && (strings.HasPrefix(b.Path+"/", other+"/") || strings.HasPrefix(other+"/", b.Path+"/")) {
			l.errorf(path+".path", "%q overlaps base %q", b.Path, other)
		}
	}
	basePaths[b.Path] = true
	switch b.FHIRVersion {
	case "R4", "STU3":
	case "":
		l.errorf(path+".fhir_version", "is required (R4 or STU3)")
	default:
		l.errorf(path+".fhir_version", "%q is not R4 or STU3", b.FHIRVersion)
	}
	if b.Auth != "" && c.Auth[b.Auth] == nil {
		l.errorf(path+".auth", "unknown auth profile %q (known: %s)", b.Auth, known(c.Auth))
	}
	l.rateLimit(path+".client_rate_limit", b.ClientRateLimit)
	switch b.DefaultFormat {
	case "":
		b.DefaultFormat = "json"
	case "json", "xml", "request":
	default:
		l.errorf(path+".default_format", "%q is not json, xml or request", b.DefaultFormat)
	}
	if b.PublicURL != "" {
		u, err := url.Parse(b.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.HasSuffix(b.PublicURL, "/") || u.RawQuery != "" || u.Fragment != "" {
			l.errorf(path+".public_url", "%q must be an absolute http(s) URL without a trailing slash, query or fragment", b.PublicURL)
		}
	}
	b.ProfileSet = profile.NewSet()
	for i := range b.Profiles {
		p := fmt.Sprintf("%s.profiles[%d]", path, i)
		l.checkFile(p, &b.Profiles[i])
		var pkg *profile.Package
		var err error
		if strings.HasSuffix(b.Profiles[i], ".tgz") {
			pkg, err = profile.LoadPackage(b.Profiles[i])
		} else {
			pkg, err = profile.LoadDir(b.Profiles[i])
		}
		if err != nil {
			l.errorf(p, "%v", err)
			continue
		}
		b.ProfileSet.AddPackage(pkg)
	}
	// The base's templates may use its profiles' ConceptMaps.
	b.Maps = mapsFor(c, b.ProfileSet)
	l.maps = b.Maps
	defer func() { l.maps = mapsFor(c, nil) }()
	codes := map[int]string{}
	for k, v := range DefaultIssueCodes {
		codes[k] = v
	}
	if b.FHIRVersion == "STU3" {
		codes[410] = "not-found"
	}
	for st, code := range b.IssueCodes {
		p := fmt.Sprintf("%s.issue_codes.%d", path, st)
		if st < 400 || st > 599 {
			l.errorf(p, "status %d is not an error status", st)
		}
		l.issueCode(p, b.FHIRVersion, code)
		codes[st] = code
	}
	b.IssueCodes = codes
	l.answer(path+".not_found", defaultAnswer(&b.NotFound, &Answer{Status: 404, Text: "no matching handler found."}), requestSources, nil)
	l.answer(path+".method_not_allowed", defaultAnswer(&b.MethodNotAllowed, &Answer{Status: 405, Text: "no matching handler found."}), requestSources, nil)
	if len(b.Routes) == 0 {
		l.errorf(path+".routes", "at least one route is required")
	}
	patterns := map[string]string{}
	for i, r := range b.Routes {
		rp := fmt.Sprintf("%s.routes[%d]", path, i)
		if r == nil {
			l.errorf(rp, "must not be empty")
			continue
		}
		l.route(c, b, rp, r, routeNames)
		key := r.Method + " " + normalisePattern(r.Path)
		if other, dup := patterns[key]; dup {
			l.errorf(rp+".path", "%s %s is already routed by %q", r.Method, r.Path, other)
		}
		patterns[key] = r.Name
	}
}

func (l *loader) issueCode(path, version, code string) {
	if !IssueTypes[code] || (version == "STU3" && (code == "multiple-matches" || code == "deleted")) {
		l.errorf(path, "%q is not a %s OperationOutcome issue code", code, version)
	}
}

// normalisePattern replaces parameter names so that /a/{x} and /a/{y} collide.
func normalisePattern(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// PathParams returns the parameter names of a route path, or an error.
func PathParams(p string) ([]string, error) {
	if p == "" || p[0] != '/' {
		return nil, fmt.Errorf("%q must start with /", p)
	}
	var names []string
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		switch {
		case s == "" && p != "/":
			return nil, fmt.Errorf("%q has an empty segment", p)
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			n := s[1 : len(s)-1]
			if !paramName.MatchString(n) {
				return nil, fmt.Errorf("%q: parameter {%s} must be a simple name", p, n)
			}
			for _, o := range names {
				if o == n {
					return nil, fmt.Errorf("%q: parameter {%s} appears twice", p, n)
				}
			}
			names = append(names, n)
		case strings.ContainsAny(s, "{}"):
			return nil, fmt.Errorf("%q: a parameter must fill a whole segment", p)
		case strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*"):
			// The router (gin) reads these as its own parameters.
			return nil, fmt.Errorf("%q: a literal segment must not start with %q", p, s[:1])
		}
	}
	return names, nil
}

func (l *loader) route(c *Config, b *Base, path string, r *Route, names map[string]string) {
	switch {
	case r.Name == "":
		l.errorf(path+".name", "is required")
	case names[r.Name] != "":
		l.errorf(path+".name", "%q is already the name of %s", r.Name, names[r.Name])
	default:
		names[r.Name] = path
	}
	if !interactions[r.Interaction] {
		l.errorf(path+".interaction", "%q is not one of %s", r.Interaction, strings.Join(sortedKeys(interactions), ", "))
	}
	switch r.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
	default:
		l.errorf(path+".method", "%q is not one of GET, POST, PUT, DELETE, PATCH", r.Method)
	}
	params, err := PathParams(r.Path)
	if err != nil {
		l.errorf(path+".path", "%v", err)
	}
	check := func(sources []string, extra ...string) func(template.Ref) error {
		if r.Request != nil {
			sources = append(append([]string{}, sources...), "resource")
		}
		return refChecker(params, append(append([]string{}, sources...), extra...))
	}
	if len(r.SearchParams) > 0 && r.Interaction != "search" {
		l.errorf(path+".search_params", "only a search route has search parameters")
	}
	for _, name := range sortedKeys(r.SearchParams) {
		switch r.SearchParams[name] {
		case "token", "string", "date", "reference", "number", "uri", "quantity", "composite":
		default:
			l.errorf(path+".search_params."+name, "%q is not a search parameter type", r.SearchParams[name])
		}
		if strings.HasPrefix(name, "_") {
			l.errorf(path+".search_params."+name, "a result parameter (_…) is not declared here")
		}
	}
	if r.Interaction != "search" && (r.Paging != nil || r.Sort != nil || r.InvalidSearch != nil) {
		l.errorf(path, "paging, sort and invalid_search belong to a search route")
	}
	if p := r.Paging; p != nil {
		if p.DefaultCount <= 0 {
			l.errorf(path+".paging.default_count", "must be 1 or more")
		}
		if p.MaxCount == 0 {
			p.MaxCount = p.DefaultCount
		}
		if p.MaxCount < p.DefaultCount {
			l.errorf(path+".paging.max_count", "must not be below default_count")
		}
		if p.Offset == "" {
			p.Offset = "_offset"
		}
		if r.SearchParams[p.Offset] != "" {
			l.errorf(path+".paging.offset", "%s is a search parameter of the route", p.Offset)
		}
	}
	if so := r.Sort; so != nil {
		if len(so.Keys) == 0 {
			l.errorf(path+".sort.keys", "at least one key is required")
		}
		for _, k := range sortedKeys(so.Keys) {
			if v := so.Keys[k]; v == "" || strings.HasPrefix(v, "-") || strings.Contains(v, ",") {
				l.errorf(path+".sort.keys."+k, "must name the backend's key (no comma, no leading -)")
			}
		}
		if d := strings.TrimPrefix(so.Default, "-"); d != "" && so.Keys[d] == "" {
			l.errorf(path+".sort.default", "%q is not among sort.keys", so.Default)
		}
	}
	if r.Interaction == "search" {
		l.answerWith(path+".invalid_search", defaultAnswer(&r.InvalidSearch, &Answer{Status: 400, Text: "invalid value for search parameter '${search.param}'", Expression: "${search.param}"}), check(requestSources))
	}
	for i, q := range r.RequiredQuery {
		if q == "" {
			l.errorf(fmt.Sprintf("%s.required_query[%d]", path, i), "must not be empty")
		}
	}
	if r.MaxInflight < 0 {
		l.errorf(path+".max_inflight", "must not be negative")
	}
	l.answer(path+".overloaded", defaultAnswer(&r.Overloaded, &Answer{Status: 503, Text: "the gateway is at capacity for this route; retry later", Headers: map[string]string{"Retry-After": "1"}}), requestSources, nil)
	l.answerWith(path+".missing_query", defaultAnswer(&r.MissingQuery, &Answer{Status: 400, Text: "missing required query parameter '${missing}'"}), check(requestSources, "missing"))
	if r.Auth == "" {
		r.Auth = b.Auth
	}
	var profile *AuthProfile
	switch r.Auth {
	case "", "none":
		if len(r.Roles) > 0 {
			l.errorf(path+".roles", "roles need an auth profile")
		}
	default:
		profile = c.Auth[r.Auth]
		if profile == nil {
			l.errorf(path+".auth", "unknown auth profile %q (known: %s)", r.Auth, known(c.Auth))
		}
	}
	roleKnown := func(p, role string) {
		if profile == nil {
			return
		}
		for _, v := range profile.Roles.Map {
			if v == role {
				return
			}
		}
		l.errorf(p, "role %q is not produced by auth profile %q", role, r.Auth)
	}
	for i, role := range r.Roles {
		roleKnown(fmt.Sprintf("%s.roles[%d]", path, i), role)
	}
	if r.Request != nil {
		l.request(path+".request", b, r.Request, check(requestSources))
	}
	f := &r.Format
	if f.Default == "" {
		f.Default = b.DefaultFormat
	}
	if f.Default != "request" {
		l.formatName(path+".format.default", f.Default)
	}
	for role, v := range f.ByRole {
		roleKnown(path+".format.by_role."+role, role)
		l.formatName(path+".format.by_role."+role, v)
	}
	if len(f.Offer) == 0 {
		f.Offer = []string{"json", "xml"}
	}
	for i, v := range f.Offer {
		l.formatName(fmt.Sprintf("%s.format.offer[%d]", path, i), v)
	}
	l.answerWith(path+".format.not_acceptable", defaultAnswer(&f.NotAcceptable, &Answer{Status: 406, Text: "Requested format '${format}' cannot be provided"}), check(requestSources, "format"))
	for i, ch := range r.Checks {
		l.check(fmt.Sprintf("%s.checks[%d]", path, i), i, ch, check(requestSources))
		if ch != nil {
			for j, role := range ch.Roles {
				roleKnown(fmt.Sprintf("%s.checks[%d].roles[%d]", path, i, j), role)
			}
		}
	}
	if op := r.Operation; op != nil {
		if op.Definition == "" {
			l.errorf(path+".operation.definition", "is required")
		} else if l.checkFile(path+".operation.definition", &op.Definition) {
			data, _ := os.ReadFile(op.Definition)
			od, err := validation.LoadOperationDefinition(data)
			if err != nil {
				l.errorf(path+".operation.definition", "%v", err)
			}
			op.Compiled = od
		}
		l.answerWith(path+".operation.invalid", defaultAnswer(&op.Invalid, &Answer{Status: 400}), check(requestSources))
	}
	if r.Call == nil {
		l.errorf(path+".call", "is required")
	} else {
		l.call(c, path+".call", r.Call, check(requestSources))
	}
	if len(r.Responses) == 0 {
		l.errorf(path+".responses", "at least one rule is required")
	}
	for i, rule := range r.Responses {
		rp := fmt.Sprintf("%s.responses[%d]", path, i)
		if rule == nil {
			l.errorf(rp, "must not be empty")
			continue
		}
		l.rule(rp, b, rule, check(responseSources))
	}
	// Answers with no code take the base's table.
	for _, a := range r.answers() {
		if a.Code == "" {
			a.Code = issueCodeFor(b.IssueCodes, a.Status)
		}
	}
}

// answers lists every Answer of a route, for filling in issue codes.
func (r *Route) answers() []*Answer {
	out := []*Answer{r.MissingQuery, r.Format.NotAcceptable}
	if r.InvalidSearch != nil {
		out = append(out, r.InvalidSearch)
	}
	if r.Operation != nil {
		out = append(out, r.Operation.Invalid)
	}
	if r.Request != nil {
		out = append(out, r.Request.UnsupportedMedia, r.Request.Invalid, r.Request.ProfileViolation)
	}
	for _, ch := range r.Checks {
		if ch != nil {
			out = append(out, &ch.Fail)
		}
	}
	for _, rule := range r.Responses {
		if rule != nil {
			out = append(out, &rule.Answer)
		}
	}
	return out
}

// issueCodeFor returns the issue code of a status from a base's table.
func issueCodeFor(codes map[int]string, status int) string {
	if c, ok := codes[status]; ok {
		return c
	}
	if status >= 500 {
		return "exception"
	}
	return "processing"
}

// IssueCode returns the issue code this base uses for an HTTP status.
func (b *Base) IssueCode(status int) string { return issueCodeFor(b.IssueCodes, status) }

func (l *loader) formatName(path, v string) {
	if v != "json" && v != "xml" {
		l.errorf(path, "%q is not json or xml", v)
	}
}

func (l *loader) check(path string, i int, ch *Check, refs func(template.Ref) error) {
	if ch == nil {
		l.errorf(path, "must not be empty")
		return
	}
	if ch.Name == "" {
		ch.Name = fmt.Sprintf("check%d", i)
	}
	if ch.Value == "" {
		l.errorf(path+".value", "is required")
	} else if _, err := l.parse(ch.Value, refs); err != nil {
		l.errorf(path+".value", "%v", err)
	}
	if !checkFormats[ch.Format] {
		l.errorf(path+".format", "%q is not one of prescription-id, kvnr, regex, token, token-match", ch.Format)
	}
	switch {
	case ch.Format == "token-match" && (ch.Matches == nil || ch.Matches.System == "" && ch.Matches.Value == ""):
		l.errorf(path+".matches", "format token-match needs matches.system and/or matches.value")
	case ch.Format == "token-match":
		l.template(path+".matches.system", ch.Matches.System, refs)
		l.template(path+".matches.value", ch.Matches.Value, refs)
	case ch.Matches != nil:
		l.errorf(path+".matches", "only goes with format token-match")
	}
	if ch.Format == "regex" {
		if _, err := regexp.Compile("^(?:" + ch.Pattern + ")$"); err != nil || ch.Pattern == "" {
			l.errorf(path+".pattern", "a valid regular expression is required for format regex")
		}
	} else if ch.Pattern != "" {
		l.errorf(path+".pattern", "only goes with format regex")
	}
	if ch.Fail.Status < 400 || ch.Fail.Status > 599 {
		l.errorf(path+".fail.status", "an error status (400–599) is required")
	}
	l.answerWith(path+".fail", &ch.Fail, refs)
}

func (l *loader) call(c *Config, path string, call *Call, refs func(template.Ref) error) {
	if c.Backends[call.Backend] == nil {
		l.errorf(path+".backend", "unknown backend %q (known: %s)", call.Backend, known(c.Backends))
	}
	if call.Method == "" {
		call.Method = http.MethodPost
	}
	switch call.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch:
	default:
		l.errorf(path+".method", "%q is not one of GET, POST, PUT, DELETE, PATCH", call.Method)
	}
	if call.Path == "" || call.Path[0] != '/' {
		l.errorf(path+".path", "is required and must start with /")
	}
	l.template(path+".path", call.Path, refs)
	for k, v := range call.Query {
		if _, list := strings.CutSuffix(k, "[]"); list {
			t, err := l.parse(v, refs)
			if err == nil && (len(t.Refs()) != 1 || t.Refs()[0].Source != "query" || !singleRef(v)) {
				l.errorf(path+".query."+k, "a repeated query parameter is exactly one ${query.…} reference")
			}
		}
		l.template(path+".query."+k, v, refs)
	}
	for h, v := range call.Headers {
		l.headerLiteral(path+".headers."+h, h, v)
		l.template(path+".headers."+h, v, refs)
	}
	if bd := call.Body; bd != nil {
		switch bd.Encoding {
		case "":
			bd.Encoding = "json"
		case "json", "form", "xml":
		default:
			l.errorf(path+".body.encoding", "%q is not one of json, form, xml", bd.Encoding)
		}
		if bd.Root == "" {
			bd.Root = "request"
		}
		if !xmlName.MatchString(bd.Root) {
			l.errorf(path+".body.root", "%q is not an XML element name", bd.Root)
		}
		for k, v := range bd.Fields {
			if name, list := strings.CutSuffix(k, "[]"); list {
				t, err := l.parse(v, refs)
				if err == nil && (len(t.Refs()) != 1 || t.Refs()[0].Source != "resource" || !singleRef(v)) {
					l.errorf(path+".body.fields."+k, "a list field is exactly one ${resource.…} reference")
				}
				k = name
			}
			for _, part := range strings.Split(k, ".") {
				if bd.Encoding == "xml" && !xmlName.MatchString(part) || part == "" {
					l.errorf(path+".body.fields."+k, "%q is not a usable field name", k)
				}
			}
			l.template(path+".body.fields."+k, v, refs)
		}
	}
}

// singleRef reports whether s is one ${…} and nothing else.
func singleRef(s string) bool {
	return strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") && strings.Count(s, "${") == 1
}

var xmlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// oneOf checks a setting that takes one of a few words: empty becomes
// the first (the default), anything else not listed is an error
// ("must be a or b, not …").
func (l *loader) oneOf(path string, v *string, words ...string) {
	switch {
	case *v == "":
		*v = words[0]
	case !slices.Contains(words, *v):
		list := strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
		l.errorf(path, "must be %s, not %q", list, *v)
	}
}

// parse compiles a template with the value maps in scope (l.maps).
func (l *loader) parse(s string, refs func(template.Ref) error) (*template.Template, error) {
	return template.ParseWith(s, template.Options{Check: refs, Maps: l.maps})
}

// valueMaps checks value_maps: each a map or a ConceptMap reference.
func (l *loader) valueMaps(c *Config) {
	for _, name := range sortedKeys(c.ValueMaps) {
		path := "value_maps." + name
		vm := c.ValueMaps[name]
		switch {
		case vm == nil:
			l.errorf(path, "must not be empty")
			continue
		case (len(vm.Map) > 0) == (vm.ConceptMap != ""):
			l.errorf(path, "needs exactly one of map and concept_map")
		case strings.Contains(name, "/") || strings.Contains(name, "}"):
			l.errorf(path, "a value map name must not contain / or }")
		}
		if vm.Unmapped != nil {
			if vm.Unmapped.Status == 0 {
				vm.Unmapped.Status = 422
			}
			if vm.Unmapped.Status < 400 || vm.Unmapped.Status > 599 {
				l.errorf(path+".unmapped.status", "an unmapped value is answered with an error status (4xx, 5xx)")
			}
			l.answer(path+".unmapped", vm.Unmapped, requestSources, nil)
		}
	}
}

// mapsFor returns the value maps a base's templates may use: value_maps
// (a concept_map resolved in the base's profiles), then ConceptMaps of
// the base's profiles by canonical URL or name. set may be nil (outside a
// base: value_maps with map only).
func mapsFor(c *Config, set *profile.Set) func(string) (template.Mapper, error) {
	return func(name string) (template.Mapper, error) {
		if vm := c.ValueMaps[name]; vm != nil {
			if len(vm.Map) > 0 {
				return tableMap(vm.Map), nil
			}
			if set == nil {
				return nil, fmt.Errorf("value map %s is a ConceptMap, usable only in a base's routes", name)
			}
			if cm := set.ConceptMap(vm.ConceptMap); cm != nil {
				return cm, nil
			}
			return nil, fmt.Errorf("value map %s: ConceptMap %s is not in the base's profiles", name, vm.ConceptMap)
		}
		if set != nil {
			if cm := set.ConceptMap(name); cm != nil {
				return cm, nil
			}
		}
		return nil, fmt.Errorf("no value map %q in value_maps or ConceptMap of that URL or name in the base's profiles", name)
	}
}

// tableMap is a value_maps map.
type tableMap map[string]string

func (m tableMap) Map(v string) (string, bool) {
	t, ok := m[v]
	return t, ok
}

func (l *loader) template(path, s string, refs func(template.Ref) error) {
	if _, err := l.parse(s, refs); err != nil {
		l.errorf(path, "%v", err)
	}
}

func (l *loader) rule(path string, b *Base, rule *Rule, refs func(template.Ref) error) {
	w := &rule.When
	switch w.Transport {
	case "":
	case "refused", "timeout", "error":
		if !w.Status.Empty() || len(w.Match) > 0 {
			l.errorf(path+".when.transport", "a transport rule matches no status or fields")
		}
	default:
		l.errorf(path+".when.transport", "%q is not one of refused, timeout, error", w.Transport)
	}
	for k := range w.Match {
		if err := refs(template.ParseRef(k)); err != nil {
			l.errorf(path+".when.match."+k, "%v", err)
		}
	}
	a := &rule.Answer
	if a.Status < 200 || a.Status > 599 || (a.Status >= 300 && a.Status < 400) {
		l.errorf(path+".answer.status", "a status 2xx, 4xx or 5xx is required")
	}
	// Nothing is lost: a client is only told of success when the backend
	// confirmed it, so a 2xx answer needs a rule that only matches a 2xx.
	if a.Status/100 == 2 && !w.Status.OnlySuccess() {
		l.errorf(path+".answer.status", "a 2xx answer requires when.status to match only 2xx backend statuses")
	}
	if a.Bundle != nil {
		l.bundleAnswer(path+".answer", b, a, refs)
	}
	if a.Resource != nil {
		l.resourceAnswer(path+".answer", b, a, refs)
	}
	if a.Status/100 == 2 && (a.Text != "" || a.Expression != "") {
		l.errorf(path+".answer.text", "a 2xx answer carries no OperationOutcome text")
	}
	if a.Status >= 400 && a.Text == "" {
		l.errorf(path+".answer.text", "an error answer needs a text")
	}
	if a.Code != "" {
		l.issueCode(path+".answer.code", b.FHIRVersion, a.Code)
	}
	l.answerWith(path+".answer", a, refs)
}

// answer compiles an answer whose templates may use the given sources.
func (l *loader) answer(path string, a *Answer, sources []string, params []string) {
	l.answerWith(path, a, refChecker(params, sources))
}

// resourceAnswer compiles an answer's resource template: a 200 answer,
// a resourceType the base's FHIR version knows, templates over the
// answer's sources, a profile the base has loaded.
func (l *loader) resourceAnswer(path string, b *Base, a *Answer, refs func(template.Ref) error) {
	if a.Status != 200 {
		l.errorf(path+".status", "an answer with a resource is a 200")
	}
	rt, _ := a.Resource["resourceType"].(string)
	if v, err := validation.ParseVersion(b.FHIRVersion); err == nil && !validation.KnownResourceType(v, rt) {
		l.errorf(path+".resource.resourceType", "%q is not a %s resource type", rt, b.FHIRVersion)
	}
	t, err := template.CompileTree(a.Resource, template.Options{Check: refs, Maps: l.maps, When: treeConditions})
	if err != nil {
		l.errorf(path+".resource", "%v", err)
	}
	a.ResourceT = t
	if a.Profile != "" && (b.ProfileSet == nil || b.ProfileSet.Profile(a.Profile) == nil) {
		l.errorf(path+".profile", "%s is not among the profiles of base %s", a.Profile, b.Path)
	}
}

// bundleAnswer checks a Bundle answer and turns it into the resource
// template it stands for: {resourceType: Bundle, type, entry: [{$each:
// entries, $item: {fullUrl, resource, search}}]}; total and the self link
// are added when the answer is built.
func (l *loader) bundleAnswer(path string, b *Base, a *Answer, refs func(template.Ref) error) {
	bd := a.Bundle
	if a.Resource != nil {
		l.errorf(path+".bundle", "an answer has a resource or a bundle, not both")
		return
	}
	l.oneOf(path+".bundle.type", &bd.Type, "searchset", "collection")
	if r := template.ParseRef(bd.Entries); r.Source != "body" || r.Key == "" {
		l.errorf(path+".bundle.entries", "must name a repeated element of the answer (body.…), not %q", bd.Entries)
	}
	if bd.Resource == nil {
		l.errorf(path+".bundle.resource", "is required")
		return
	}
	item := map[string]any{"resource": bd.Resource}
	if bd.FullURL != "" {
		item["fullUrl"] = bd.FullURL
	}
	if bd.Type == "searchset" {
		item["search"] = map[string]any{"mode": "match"}
	}
	a.Resource = map[string]any{"resourceType": "Bundle", "type": bd.Type,
		"entry": []any{map[string]any{"$each": bd.Entries, "$item": item}}}
	if bd.Total != "" {
		if bd.Type != "searchset" {
			l.errorf(path+".bundle.total", "only a searchset has a total")
		}
		var err error
		if bd.TotalT, err = l.parse(bd.Total, refs); err != nil {
			l.errorf(path+".bundle.total", "%v", err)
		}
	}
}

func (l *loader) answerWith(path string, a *Answer, refs func(template.Ref) error) {
	if a.Status != 0 && (a.Status < 200 || a.Status > 599) {
		l.errorf(path+".status", "%d is not an HTTP status", a.Status)
	}
	if a.Code != "" && !IssueTypes[a.Code] {
		l.errorf(path+".code", "%q is not an OperationOutcome issue code", a.Code)
	}
	var err error
	if a.TextT, err = l.parse(a.Text, refs); err != nil {
		l.errorf(path+".text", "%v", err)
	}
	if a.ExpressionT, err = l.parse(a.Expression, refs); err != nil {
		l.errorf(path+".expression", "%v", err)
	}
	a.HeaderT = a.HeaderT[:0]
	for _, h := range sortedKeys(a.Headers) {
		l.headerLiteral(path+".headers."+h, h, a.Headers[h])
		t, err := l.parse(a.Headers[h], refs)
		if err != nil {
			l.errorf(path+".headers."+h, "%v", err)
			continue
		}
		a.HeaderT = append(a.HeaderT, NamedTemplate{Name: http.CanonicalHeaderKey(h), T: t})
	}
}

// refChecker accepts references to the given sources; path references must
// name a parameter of the route path.
func refChecker(params []string, sources []string) func(template.Ref) error {
	return func(r template.Ref) error {
		ok := false
		for _, s := range sources {
			if r.Source == s {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("unknown source %q here (usable: %s)", r.Source, strings.Join(sources, ", "))
		}
		switch r.Source {
		case "role", "subject", "status", "format", "missing":
			if r.Key != "" {
				return fmt.Errorf("%q takes no key", r.Source)
			}
		case "path":
			for _, p := range params {
				if p == r.Key {
					return nil
				}
			}
			return fmt.Errorf("the route path has no parameter {%s}", r.Key)
		case "request":
			if !requestKeys[r.Key] {
				return fmt.Errorf("request.%s is not one of request.id, request.base, request.method, request.content_type", r.Key)
			}
		case "token":
			i := strings.LastIndexByte(r.Key, '.')
			if i <= 0 || !tokenParts[r.Key[i+1:]] {
				return fmt.Errorf("token.%s is not token.<query parameter>.system|value|mode", r.Key)
			}
		case "resource":
			if _, ok := fhirpathlite.Compile(r.Key); !ok {
				return fmt.Errorf("resource.%s is outside the FHIRPath subset of validation/fhirpathlite", r.Key)
			}
		default:
			if r.Key == "" {
				return fmt.Errorf("%q needs a key, as in %s.name", r.Source, r.Source)
			}
		}
		return nil
	}
}

func known[V any](m map[string]V) string {
	if len(m) == 0 {
		return "none defined"
	}
	keys := sortedKeys(m)
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

var fhirFormats = map[string]bool{"json": true, "xml": true}

func (l *loader) request(path string, b *Base, rq *Request, refs func(template.Ref) error) {
	if rq.Resource == "" || !(rq.Resource[0] >= 'A' && rq.Resource[0] <= 'Z') {
		l.errorf(path+".resource", "a resource type such as Task is required")
	}
	if rq.Profile != "" && b.ProfileSet != nil && b.ProfileSet.Profile(rq.Profile) == nil {
		l.errorf(path+".profile", "%q is not among the profiles of this base (bases[].profiles)", rq.Profile)
	}
	if len(rq.Formats) == 0 {
		rq.Formats = []string{"json", "xml"}
	}
	for i, f := range rq.Formats {
		if !fhirFormats[f] {
			l.errorf(fmt.Sprintf("%s.formats[%d]", path, i), "%q is not json or xml", f)
		}
	}
	l.answerWith(path+".unsupported_media", defaultAnswer(&rq.UnsupportedMedia, &Answer{Status: 415,
		Text: "unsupported Content-Type '${request.content_type}': send application/fhir+json or application/fhir+xml"}), refs)
	l.answerWith(path+".invalid", defaultAnswer(&rq.Invalid, &Answer{Status: 400}), refs)
	l.answerWith(path+".profile_violation", defaultAnswer(&rq.ProfileViolation, &Answer{Status: 422}), refs)
	for _, a := range []*Answer{rq.UnsupportedMedia, rq.Invalid, rq.ProfileViolation} {
		if a.Status < 400 || a.Status > 599 {
			l.errorf(path, "request answers need an error status (400–599)")
		}
	}
}

func (l *loader) audit(a *Audit) {
	switch a.Output {
	case "":
		a.Output = "stderr"
	case "stderr", "stdout", "none":
	default:
		// A file: created when absent, so only its directory must exist.
		if !filepath.IsAbs(a.Output) {
			a.Output = filepath.Join(filepath.Dir(l.file), a.Output)
		}
		if st, err := os.Stat(filepath.Dir(a.Output)); err != nil || !st.IsDir() {
			l.errorf("audit.output", "directory of %s does not exist", a.Output)
		}
	}
	l.oneOf("audit.format", &a.Format, "json", "fhir")
	l.oneOf("audit.on_failure", &a.OnFailure, "refuse", "continue")
	if a.Sync && (a.Output == "stderr" || a.Output == "stdout" || a.Output == "none") {
		l.errorf("audit.sync", "needs a file output (output is %s)", a.Output)
	}
	l.checkFile("audit.pseudonym_key_file", &a.PseudonymKeyFile)
}

func (l *loader) tracing(t *Tracing) {
	if t.ServiceName == "" {
		t.ServiceName = "fhirgate"
	}
	if t.SampleRatio == nil {
		one := 1.0
		t.SampleRatio = &one
	} else if *t.SampleRatio < 0 || *t.SampleRatio > 1 {
		l.errorf("tracing.sample_ratio", "must be between 0 and 1")
	}
	if t.OTLPEndpoint != "" {
		u, err := url.Parse(t.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			l.errorf("tracing.otlp_endpoint", "must be an http or https URL")
		}
	}
}
