// Package config holds the typed form of routes.yaml: the structs below are
// the whole configuration, and each field's comment states its default and
// what a bad value does. Load parses a file strictly (unknown keys, wrong
// types, unknown references and bad templates are errors naming file, line and
// field), fills in defaults and compiles every template once, so nothing is
// parsed per request.
package config

import (
	"fmt"
	"time"

	"github.com/fhirgate/fhirgate/template"
	"github.com/fhirgate/fhirgate/validation"
	"github.com/fhirgate/fhirgate/validation/profile"
	"gopkg.in/yaml.v3"
)

// Config is one routes.yaml.
type Config struct {
	// Server configures the listeners. Every field has a default.
	Server Server `yaml:"server"`
	// Log configures the structured log.
	Log Log `yaml:"log"`
	// Audit configures the audit trail: one record per FHIR interaction.
	Audit Audit `yaml:"audit"`
	// Tracing configures trace-context propagation and span export.
	Tracing Tracing `yaml:"tracing"`
	// Auth holds the named authentication profiles routes refer to.
	Auth map[string]*AuthProfile `yaml:"auth"`
	// Backends holds the named legacy systems routes call. At least one.
	Backends map[string]*Backend `yaml:"backends"`
	// Bases are the FHIR endpoints served, each under its own path prefix
	// with its own FHIR version. At least one.
	Bases []*Base `yaml:"bases"`
	// LimitStores holds the named shared stores that rate limits may keep
	// their state in (rate_limit.store), so that every replica draws on
	// one budget.
	LimitStores map[string]*LimitStore `yaml:"limit_stores"`
	// ValueMaps are named value translations for templates
	// (${ref -> name}): a table, or a FHIR ConceptMap from a base's
	// profiles.
	ValueMaps map[string]*ValueMap `yaml:"value_maps"`

	// File is the path the configuration was loaded from; relative file
	// names inside it are resolved against its directory.
	File string `yaml:"-"`
	// Files are the files and directories the configuration reads, as
	// resolved (keys, certificates, profiles and packages,
	// OperationDefinitions): what a reload must follow besides File. Files
	// the gateway writes (the audit trail) are not among them.
	Files []string `yaml:"-"`
}

// Server configures the client-facing and the admin listener.
type Server struct {
	// Listen is the FHIR listener address. Default ":8080".
	Listen string `yaml:"listen"`
	// AdminListen serves /metrics, /healthz and /readyz, kept off the FHIR
	// listener so that they are never exposed with it. Default "127.0.0.1:9090".
	AdminListen string `yaml:"admin_listen"`
	// MaxBodyBytes bounds a request body; more is answered 413. Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxHeaderBytes bounds the request header block: more is answered 431
	// with an OperationOutcome. Beyond twice this much Go's HTTP server
	// closes the connection with a bare 431 before the gateway sees the
	// request. Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxURLBytes bounds the request target (path and query); more is
	// answered 414. Default 8 KiB.
	MaxURLBytes int `yaml:"max_url_bytes"`
	// ReadHeaderTimeout bounds slow clients sending headers. Default 5s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request. Default 30s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// WriteTimeout bounds one request from the end of its headers to the
	// end of the answer. It must exceed every backend timeout. Default 60s.
	WriteTimeout Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// DrainDelay is how long /readyz answers 503 after SIGTERM before the
	// listener stops accepting: the time load balancers (Kubernetes
	// endpoints) need to stop sending new requests. Requests keep being
	// served meanwhile, without keep-alive. Default 5s.
	DrainDelay Duration `yaml:"drain_delay"`
	// ShutdownGrace is how long in-flight requests may finish once the
	// listener is closed. Default 20s. A pod's terminationGracePeriodSeconds
	// must exceed DrainDelay + ShutdownGrace.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	// TLS, when set, serves HTTPS on Listen.
	TLS *TLS `yaml:"tls"`
	// Pprof serves Go's profiler at /debug/pprof/ on the admin listener.
	// Default false: profiles expose internals, and the admin listener is
	// only as private as its address.
	Pprof bool `yaml:"pprof"`
}

// TLS configures HTTPS on the FHIR listener.
type TLS struct {
	// CertFile and KeyFile are PEM files. Both required.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, verifies client certificates against it.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is none, request or require. Default: require when
	// ClientCAFile is set, none otherwise.
	ClientAuth string `yaml:"client_auth"`
}

// Log configures the JSON log on standard output.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// FlushInterval batches log lines: they are written together at the
	// latest this long after the first of them (and at 64 KiB, and when
	// the gateway stops), one write instead of one per request. 0 writes
	// every line at once. Default 100ms. Process-wide, like audit.
	FlushInterval *Duration `yaml:"flush_interval"`
}

// Audit configures the audit trail. It is process-wide: a reload keeps the
// settings the gateway started with.
type Audit struct {
	// Output is stderr, stdout, none or a file path (opened for append).
	// Default stderr: a stream of its own, apart from the access log on
	// stdout.
	Output string `yaml:"output"`
	// Format is json (one flat record per line) or fhir (one FHIR R4
	// AuditEvent in JSON per line). Default json.
	Format string `yaml:"format"`
	// PseudonymKeyFile keys the HMAC-SHA256 that turns an actor id (the
	// token subject) into a pseudonym. Without it a random key is drawn at
	// start: pseudonyms then link records of one process run only.
	PseudonymKeyFile string `yaml:"pseudonym_key_file"`
	// Sync, when true, has every batch of records reach stable storage
	// (fdatasync) before the answers it describes are sent: records then
	// survive a power loss, not only a crash of the gateway. Files only.
	// Default false.
	Sync bool `yaml:"sync"`
	// OnFailure says what the gateway does while records cannot be written
	// (full disk, lost volume): refuse (default) answers every request that
	// would reach a backend 503 before calling it, and /readyz turns 503,
	// so that no action goes unrecorded; continue forwards requests and
	// keeps their records in memory up to a bound, beyond which records
	// are dropped and counted. Records are retried with every batch and
	// every second until they are written.
	OnFailure string `yaml:"on_failure"`
}

// Tracing configures W3C trace context. The gateway always continues an
// incoming traceparent (or starts a trace) and sends its own span to the
// backend as traceparent; spans are exported only with OTLPEndpoint. It is
// process-wide: a reload keeps the settings the gateway started with.
type Tracing struct {
	// OTLPEndpoint, when set, is an OTLP/HTTP collector base URL (e.g.
	// http://otel-collector:4318); spans are sent to its /v1/traces.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of new traces recorded; a request with a
	// traceparent follows its sampled flag. Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute. Default fhirgate.
	ServiceName string `yaml:"service_name"`
}

// AuthProfile verifies bearer JWTs and maps their claims to a role.
type AuthProfile struct {
	// Issuer, when set, must equal the token's iss claim.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must contain one of the token's aud values.
	Audience []string `yaml:"audience"`
	// Algorithms is the allowlist of signing algorithms; any other alg in a
	// token header (none, HS256 …) is refused before a key is looked at.
	// Allowed values: RS256, RS384, RS512, PS256, PS384, PS512, ES256,
	// ES384, ES512. Default [RS256, PS256, ES256].
	Algorithms []string `yaml:"algorithms"`
	// Keys is where the verification keys come from. Required.
	Keys Keys `yaml:"keys"`
	// ClockSkew is the leeway applied to exp, nbf and iat. Default 30s.
	ClockSkew Duration `yaml:"clock_skew"`
	// RequiredClaims must be present and non-empty. exp is always required.
	RequiredClaims []string `yaml:"required_claims"`
	// SubjectClaim identifies the caller for rate limiting and audit.
	// Default "sub".
	SubjectClaim string `yaml:"subject_claim"`
	// Roles maps a claim's value to a role name. Required.
	Roles RoleMapping `yaml:"roles"`
	// RateLimit, when set, limits requests per subject (429).
	RateLimit *RateLimit `yaml:"rate_limit"`
	// CacheSize bounds the cache of verified tokens (keyed by a SHA-256 of
	// the token, kept until the token expires). 0 takes the default 10000;
	// -1 disables the cache.
	CacheSize int `yaml:"cache_size"`
	// Errors overrides the answers of the authentication checks.
	Errors AuthErrors `yaml:"errors"`
}

// Keys names exactly one source of verification keys.
type Keys struct {
	// PEMFile is a PEM file with one or more public keys or certificates.
	PEMFile string `yaml:"pem_file"`
	// JWKSFile is a JSON Web Key Set file.
	JWKSFile string `yaml:"jwks_file"`
	// JWKSURL is fetched at start and refreshed every Refresh; an unknown
	// kid triggers an early refresh (at most once every 5 minutes). A
	// failing first fetch does not stop the gateway: tokens are refused
	// (401) until keys arrive.
	JWKSURL string `yaml:"jwks_url"`
	// Refresh is the JWKS URL refresh interval. Default 1h.
	Refresh Duration `yaml:"refresh"`
}

// RoleMapping maps the value of one claim to a role.
type RoleMapping struct {
	// Claim holds the value looked up in Map, e.g. professionOID. Required.
	Claim string `yaml:"claim"`
	// Map is claim value → role name. A value not in Map is answered with
	// AuthErrors.ForbiddenRole (403).
	Map map[string]string `yaml:"map"`
}

// RateLimit is a token bucket per subject (auth profile) or per client
// (base).
type RateLimit struct {
	// Requests per Per are allowed on average. Requests is required.
	Requests int `yaml:"requests"`
	// Per is the window of Requests. Default 1s.
	Per Duration `yaml:"per"`
	// Burst is the bucket size. Default Requests.
	Burst int `yaml:"burst"`
	// Store is where the buckets live: memory (default) in this process —
	// each replica has its own and a restart forgets them —, or the name
	// of a limit_stores entry shared by every replica.
	Store string `yaml:"store"`
}

// ValueMap translates values in templates: ${role -> legacy_roles} sends
// the translation of the role. Exactly one of Map and ConceptMap.
type ValueMap struct {
	// Map is value → translation.
	Map map[string]string `yaml:"map"`
	// ConceptMap is the canonical URL (or name) of a ConceptMap in the
	// profiles of the base whose routes use the map (STU3 or R4: group
	// element code → target code; group.unmapped provided or fixed).
	ConceptMap string `yaml:"concept_map"`
	// Unmapped answers a request whose value the map does not translate.
	// Default: 422 processing "the value of <source> has no translation in
	// value map <name>" (the value itself is never written: it may be a
	// credential). In an answer's templates an untranslatable backend
	// value is a 502 instead: the backend answered outside the contract.
	Unmapped *Answer `yaml:"unmapped"`
}

// LimitStore is a Redis server (or Sentinel group, or Cluster) holding
// rate-limit state for every replica. Exactly one of URL and Addresses.
type LimitStore struct {
	// URL is a single server: redis://[user@]host:port[/db] or rediss://
	// (TLS). A password in the URL is refused: use PasswordFile.
	URL string `yaml:"url"`
	// Addresses (host:port) are Cluster nodes, or Sentinels when
	// SentinelMaster is set.
	Addresses []string `yaml:"addresses"`
	// SentinelMaster is the master name the Sentinels at Addresses watch.
	SentinelMaster string `yaml:"sentinel_master"`
	// Username is the ACL user; empty: the default user.
	Username string `yaml:"username"`
	// PasswordFile holds the password (trailing newline ignored).
	PasswordFile string `yaml:"password_file"`
	// TLS, when set, connects with TLS (implied by rediss://).
	TLS *ClientTLS `yaml:"tls"`
	// KeyPrefix namespaces every key, so deployments can share a server.
	// Default "fhirgate:".
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout is the deadline of one limiter call. Default 5ms: a
	// slower store costs each request this much at most before the
	// fallback decides.
	Timeout Duration `yaml:"timeout"`
	// OnFailure is what decides while the store does not answer: local
	// (default) — this replica's in-memory buckets, so the limit holds
	// per replica —, or closed — 503 for every limited request, so no
	// request is admitted unchecked.
	OnFailure string `yaml:"on_failure"`
}

// AuthErrors are the answers of the authentication checks, in check order.
// Each may override status, code, text and headers; the defaults are given.
// 401 answers get UnauthorizedHeaders unless they set headers themselves.
type AuthErrors struct {
	// MissingHeader: no Authorization header. 400 "Authorization header is missing".
	MissingHeader *Answer `yaml:"missing_header"`
	// MalformedHeader: not "Bearer <token>". 400 "invalid Authorization Bearer header field".
	MalformedHeader *Answer `yaml:"malformed_header"`
	// InvalidFormat: not a JWT. 401 "JWT has invalid format".
	InvalidFormat *Answer `yaml:"invalid_format"`
	// InvalidSignature: bad signature, unknown key, algorithm not allowed.
	// 401 "JWT has invalid signature".
	InvalidSignature *Answer `yaml:"invalid_signature"`
	// Expired: exp in the past. 401 "JWT expired".
	Expired *Answer `yaml:"expired"`
	// NotYetValid: nbf or iat in the future. 401 "JWT not yet valid".
	NotYetValid *Answer `yaml:"not_yet_valid"`
	// InvalidAudience: 401 "JWT has invalid aud claim".
	InvalidAudience *Answer `yaml:"invalid_audience"`
	// InvalidIssuer: 401 "JWT has invalid iss claim".
	InvalidIssuer *Answer `yaml:"invalid_issuer"`
	// MissingClaims: a required claim absent. 401 "JWT misses required claims".
	MissingClaims *Answer `yaml:"missing_claims"`
	// RateLimited: 429 "too many requests for this token subject".
	RateLimited *Answer `yaml:"rate_limited"`
	// ForbiddenRole: role claim unmapped or role not allowed on the route.
	// 403 "endpoint is forbidden for this role".
	ForbiddenRole *Answer `yaml:"forbidden_role"`
	// UnauthorizedHeaders are added to every 401 answer.
	// Default {WWW-Authenticate: Bearer}.
	UnauthorizedHeaders map[string]string `yaml:"unauthorized_headers"`
}

// Backend is one legacy system.
type Backend struct {
	// URLs are base URLs (scheme, host, optional path prefix) of the
	// backend's instances, used in turn. At least one.
	URLs []string `yaml:"urls"`
	// Timeout is the total deadline of one call, connect included; when
	// it passes the client is answered 504. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// ConnectTimeout bounds connection setup. Default 2s.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// MaxIdleConnsPerHost keeps connections warm; Go's default of 2 halves
	// throughput under load. Default 128.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host"`
	// IdleTimeout closes a connection idle this long. Set it below the
	// backend's own keep-alive timeout: a server that closes an idle
	// connection as the gateway reuses it loses the call in flight, and a
	// call that may have reached the backend is never resent unless it is
	// idempotent (one the transport proves was not written at all is).
	// Default 4s, below Apache httpd's default KeepAliveTimeout (5 s), the
	// shortest common default; raise it for backends that keep
	// connections longer.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// Headers are added to every call (static values; templates are
	// per route in Call.Headers).
	Headers map[string]string `yaml:"headers"`
	// MaxResponseBytes bounds the backend answer read. Default 1 MiB.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// TryTimeout bounds one attempt; a retry gets a fresh one, always
	// within the call's total deadline (Timeout, or the route's
	// call.timeout). Default: the total deadline.
	TryTimeout Duration `yaml:"try_timeout"`
	// Retry is when a failed attempt is sent again.
	Retry Retry `yaml:"retry"`
	// HealthCheck, when set, probes every instance; failing instances get
	// no calls until they pass again.
	HealthCheck *HealthCheck `yaml:"health_check"`
	// Ejection takes an instance out of rotation after consecutive
	// failures of real calls (passive health checking).
	Ejection Ejection `yaml:"ejection"`
	// CircuitBreaker stops calling a failing backend altogether; its
	// routes answer 503 with Retry-After while it is open.
	CircuitBreaker CircuitBreaker `yaml:"circuit_breaker"`
	// TLS configures HTTPS to the backend: the CA to verify it and a
	// client certificate (mTLS).
	TLS *ClientTLS `yaml:"tls"`
}

// Retry sends a failed attempt again — only when that cannot do harm: a
// connection that was refused (nothing was sent), or, for idempotent
// interactions (read, search, update, conditional-update, delete), an
// attempt that timed out, broke, or was answered 502, 503 or 504. A
// create or an operation that may have reached the backend is never sent
// twice.
type Retry struct {
	// Attempts is the most attempts per call, the first included.
	// Default 2; 1 disables retries.
	Attempts int `yaml:"attempts"`
	// Backoff is the base of the jittered exponential backoff (full
	// jitter: a random wait up to Backoff·2^(n-1), at most MaxBackoff).
	// Default 25ms.
	Backoff Duration `yaml:"backoff"`
	// MaxBackoff caps one wait. Default 250ms.
	MaxBackoff Duration `yaml:"max_backoff"`
	// BudgetRatio bounds retries to this share of calls, so that retries
	// cannot multiply the load on a backend that is struggling. Default 0.2.
	BudgetRatio *float64 `yaml:"budget_ratio"`
	// BudgetMinPerSecond retries are always allowed, for low traffic.
	// Default 5.
	BudgetMinPerSecond *float64 `yaml:"budget_min_per_second"`
}

// HealthCheck probes each instance with GET Path; a 2xx is healthy.
type HealthCheck struct {
	// Path of the probe, e.g. /health. Required.
	Path string `yaml:"path"`
	// Interval between probes of one instance. Default 5s.
	Interval Duration `yaml:"interval"`
	// Timeout of one probe. Default 1s.
	Timeout Duration `yaml:"timeout"`
	// UnhealthyThreshold consecutive failed probes take an instance out.
	// Default 2.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// HealthyThreshold consecutive passed probes bring it back. Default 2.
	HealthyThreshold int `yaml:"healthy_threshold"`
}

// Ejection is passive health checking on real calls.
type Ejection struct {
	// ConsecutiveFailures (refused, timeout, broken, 5xx) eject an
	// instance. Default 5; -1 disables ejection.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// Duration of the first ejection; each further one in a row doubles
	// it, up to ten times. Default 5s.
	Duration Duration `yaml:"duration"`
}

// CircuitBreaker is per backend (all its instances).
type CircuitBreaker struct {
	// ConsecutiveFailures of calls (after retries) open the breaker.
	// Default 10; -1 disables the breaker.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// FailureRatio over Window opens it too, once MinCalls calls were
	// made in the window. Default 0.5.
	FailureRatio *float64 `yaml:"failure_ratio"`
	// MinCalls in Window before FailureRatio applies. Default 20.
	MinCalls int `yaml:"min_calls"`
	// Window over which calls are counted while closed. Default 10s.
	Window Duration `yaml:"window"`
	// OpenFor is how long it stays open before letting probe calls
	// through (half-open); it is also the Retry-After of the 503. Default 10s.
	OpenFor Duration `yaml:"open_for"`
	// HalfOpenCalls are let through while half-open; all must succeed to
	// close it. Default 1.
	HalfOpenCalls int `yaml:"half_open_calls"`
}

// ClientTLS configures TLS (and mTLS) from the gateway to a server it
// calls: a backend, a limit store.
type ClientTLS struct {
	// CAFile verifies the server's certificate. Default: the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the gateway's client certificate (mTLS);
	// both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name verified in the server's certificate.
	ServerName string `yaml:"server_name"`
}

// Base is one FHIR endpoint.
type Base struct {
	// Path is the URL prefix, e.g. /erp. Required, unique.
	Path string `yaml:"path"`
	// FHIRVersion is R4 or STU3. Required.
	FHIRVersion string `yaml:"fhir_version"`
	// Auth, when set, names a profile whose Authorization header check
	// (present, "Bearer …") runs for every request to this base before
	// routing, so that it wins over 404/405. Routes default to it.
	Auth string `yaml:"auth"`
	// DefaultFormat (json, xml, or request: the format of the request's
	// Content-Type, json when it names none) is used for answers given
	// before a route is known, and is the routes' default. Default json.
	DefaultFormat string `yaml:"default_format"`
	// OutcomeProfile, when set, is written as meta.profile of every
	// OperationOutcome of this base.
	OutcomeProfile string `yaml:"outcome_profile"`
	// PublicURL is the absolute URL clients reach this base at, used for
	// ${request.base} (e.g. in Location headers). Default: scheme and
	// Host of the request, followed by Path.
	PublicURL string `yaml:"public_url"`
	// Profiles are StructureDefinition sources for request bodies of this
	// base: directories of JSON/XML conformance resources or FHIR package
	// files (.tgz). Loaded once with the configuration.
	Profiles []string `yaml:"profiles"`
	// ProfileSet is the loaded Profiles, set by Load.
	ProfileSet *profile.Set `yaml:"-"`
	// Maps resolves the value maps the base's templates use (value_maps
	// and the ConceptMaps of its profiles), set by Load.
	Maps func(name string) (template.Mapper, error) `yaml:"-"`
	// IssueCodes maps an HTTP status to the OperationOutcome issue code
	// used when an answer names none. Merged over the defaults: 400
	// invalid, 401 login, 403 forbidden, 404 not-found, 405 not-supported,
	// 406 not-supported, 409 conflict, 410 deleted, 412 conflict, 413
	// too-costly, 415 not-supported, 422 processing, 429 throttled, 502
	// exception, 503 transient, 504 timeout; any other: exception.
	IssueCodes map[int]string `yaml:"issue_codes"`
	// NotFound answers a path no route has. 404 "no matching handler found.".
	NotFound *Answer `yaml:"not_found"`
	// MethodNotAllowed answers a known path with another method (Allow
	// header set). 405 "no matching handler found.".
	MethodNotAllowed *Answer `yaml:"method_not_allowed"`
	// ClientRateLimit, when set, limits requests per client before
	// anything else is done: per verified client certificate on a TLS
	// listener with client authentication, per IP address otherwise.
	// Over the limit: 429 with Retry-After. (Per token subject: the auth
	// profile's rate_limit.)
	ClientRateLimit *RateLimit `yaml:"client_rate_limit"`
	// Routes served under Path. At least one.
	Routes []*Route `yaml:"routes"`
}

// Route is one FHIR interaction turned into one backend call.
type Route struct {
	// Name labels metrics and logs. Required, unique in the file.
	Name string `yaml:"name"`
	// Interaction is the FHIR interaction: operation, create, update,
	// conditional-update, read, search, delete. Required.
	Interaction string `yaml:"interaction"`
	// Method is the HTTP method. Required.
	Method string `yaml:"method"`
	// Path is relative to the base: literal segments and {name}
	// parameters, e.g. /Task/{id}/$abort. A trailing slash in a request is
	// accepted.
	Path string `yaml:"path"`
	// SearchParams, on a search route, are the search parameters it
	// supports: name → type (token, string, date, reference, number, uri,
	// quantity, composite). They reach the backend through the call's
	// templates (${query.status}, ${token.identifier.value}); the
	// CapabilityStatement lists them. Any other parameter (besides _format,
	// _count, _summary) is ignored and left out of the self link, or, with
	// the request header Prefer: handling=strict, refused (400).
	SearchParams map[string]string `yaml:"search_params"`
	// InvalidSearch answers a declared parameter whose value is not of
	// its type (date: an optional prefix eq, ne, gt, lt, ge, le, sa, eb,
	// ap and a FHIR date, dateTime or instant; number: an optional
	// prefix and a decimal; token: not empty). 400
	// "invalid value for search parameter '${search.param}'" at
	// expression ${search.param}.
	InvalidSearch *Answer `yaml:"invalid_search"`
	// Paging, on a search route, pages through the matches: the page's
	// size and start reach the backend as ${search.count} and
	// ${search.offset}, and the searchset carries first, prev, next and
	// last links. Without it, _count only cuts the entries the backend
	// gave.
	Paging *Paging `yaml:"paging"`
	// Sort, on a search route, accepts _sort and hands it to the backend
	// as ${search.sort}.
	Sort *Sort `yaml:"sort"`
	// RequiredQuery names query parameters that must be present.
	RequiredQuery []string `yaml:"required_query"`
	// MissingQuery answers a request lacking one. 400
	// "missing required query parameter '${missing}'".
	MissingQuery *Answer `yaml:"missing_query"`
	// Auth names the profile; default the base's. "none" disables
	// authentication for the route.
	Auth string `yaml:"auth"`
	// Roles allowed; empty allows every role the profile maps.
	Roles []string `yaml:"roles"`
	// Format configures response content negotiation.
	Format Format `yaml:"format"`
	// Request, when set, is the FHIR resource the request body must carry;
	// it is validated after the required query parameters and before the
	// checks, which may use ${resource.…}.
	Request *Request `yaml:"request"`
	// Checks are gateway-owned checks run in order after negotiation.
	Checks []*Check `yaml:"checks"`
	// Operation, when set, checks the query parameters of an operation
	// call against its OperationDefinition, after the checks.
	Operation *Operation `yaml:"operation"`
	// MaxInflight bounds the requests the route serves at once; more are
	// answered Overloaded at once, before any work. 0: unbounded.
	MaxInflight int `yaml:"max_inflight"`
	// Overloaded answers a request over MaxInflight. 503 "the gateway is
	// at capacity for this route; retry later" with Retry-After: 1.
	Overloaded *Answer `yaml:"overloaded"`
	// Call is the canonical backend call. Required.
	Call *Call `yaml:"call"`
	// Responses map the backend's answer; the first matching rule wins.
	// An answer no rule matches becomes 502. A 2xx answer is only allowed
	// on a rule that requires a 2xx backend status.
	Responses []*Rule `yaml:"responses"`
}

// Paging is how a search route pages. _count and the offset parameter
// are whole numbers; anything else is a 400 whose text says what is wrong
// with which parameter ("invalid numeric format in _count", "trailing
// characters are not permitted in a numerical argument: _count", "_count
// can not be negative", "_count value out of range", "_count zero is not
// supported" — a count of matches is _summary=count).
type Paging struct {
	// DefaultCount is the page size when the request names none. Required.
	DefaultCount int `yaml:"default_count"`
	// MaxCount cuts larger _count values (silently, as FHIR allows a
	// server to). Default DefaultCount.
	MaxCount int `yaml:"max_count"`
	// Offset is the query parameter of the page's zero-based start, e.g.
	// __offset (E-Rezept). Default _offset.
	Offset string `yaml:"offset"`
}

// Sort is how a search route sorts.
type Sort struct {
	// Keys maps each _sort key the route accepts (a search parameter
	// name) to the backend's name for it. Keys not listed are ignored and
	// left out of the links.
	Keys map[string]string `yaml:"keys"`
	// Default is the _sort used when the request gives none (e.g.
	// authored-on); it is not written into the links.
	Default string `yaml:"default"`
}

// Request describes the FHIR resource of a request body.
type Request struct {
	// Resource is the resourceType the body must have. Required.
	Resource string `yaml:"resource"`
	// Profile is the canonical URL of a profile (from the base's profiles)
	// the body is validated against, besides the profiles it declares.
	Profile string `yaml:"profile"`
	// Formats the body may come in: json, xml. Default [json, xml]. The
	// Content-Type must be a FHIR JSON or XML media type or alias
	// (application/fhir+json, application/json, application/json+fhir,
	// application/fhir+xml, application/xml, application/xml+fhir,
	// text/xml), parameters such as charset allowed.
	Formats []string `yaml:"formats"`
	// UnsupportedMedia answers another or a missing Content-Type. 415
	// "unsupported Content-Type '${request.content_type}': send
	// application/fhir+json or application/fhir+xml".
	UnsupportedMedia *Answer `yaml:"unsupported_media"`
	// Invalid answers a body that does not parse, is not the Resource or
	// violates the base specification: the status (default 400) with every
	// issue found; a Text, when set, comes first.
	Invalid *Answer `yaml:"invalid"`
	// ProfileViolation answers a valid resource that violates Profile or a
	// profile it declares: the status (default 422) with every issue; a
	// Text, when set, comes first.
	ProfileViolation *Answer `yaml:"profile_violation"`
}

// Format configures response negotiation: _format wins over Accept, which
// wins over the default.
type Format struct {
	// Default is json, xml, or request (the format of the request body,
	// json when it has none). Default: the base's default_format.
	Default string `yaml:"default"`
	// ByRole overrides Default for callers with that role.
	ByRole map[string]string `yaml:"by_role"`
	// Offer is what the route can answer in. Default [json, xml].
	Offer []string `yaml:"offer"`
	// NotAcceptable answers a format that cannot be served. 406
	// "Requested format '${format}' cannot be provided".
	NotAcceptable *Answer `yaml:"not_acceptable"`
}

// Check is a gateway-owned check of one value.
type Check struct {
	// Name labels the check in metrics and logs. Default "check<i>".
	Name string `yaml:"name"`
	// Value is a template, e.g. ${path.id}.
	Value string `yaml:"value"`
	// Format is prescription-id, kvnr, regex, token (a FHIR token search
	// value: system|value, value, |value or system|, not empty on both
	// sides) or token-match (Value is a token that must select the
	// identifier given by Matches). Required.
	Format string `yaml:"format"`
	// Matches is the identifier a token-match token must select.
	Matches *IdentifierRef `yaml:"matches"`
	// Pattern is the regular expression for format regex (anchored).
	Pattern string `yaml:"pattern"`
	// Fail is the answer when the value does not conform. Status required.
	Fail Answer `yaml:"fail"`
	// Roles, when set, limits the check to callers with one of these
	// roles; others skip it.
	Roles []string `yaml:"roles"`
}

// Operation names the OperationDefinition of a route.
type Operation struct {
	// Definition is an OperationDefinition file (JSON). Required.
	Definition string `yaml:"definition"`
	// Invalid answers a call that breaks it — an unknown parameter (names
	// starting with _ belong to FHIR's HTTP layer and pass), one given too
	// often, a missing required one, a value not of its type: the status
	// (default 400) with one issue per problem; a Text, when set, comes
	// first.
	Invalid *Answer `yaml:"invalid"`
	// Compiled is the loaded definition, set by Load.
	Compiled *validation.OperationDefinition `yaml:"-"`
}

// IdentifierRef names an identifier by templates.
type IdentifierRef struct {
	// System template, e.g. ${resource.identifier.system}.
	System string `yaml:"system"`
	// Value template, e.g. ${resource.identifier.value}.
	Value string `yaml:"value"`
}

// Call is the canonical call, rendered from templates. Values substituted
// into Path are escaped as one path segment each; into Query as query
// values; header values containing control characters refuse the request
// (400). The host always comes from the backend's URLs.
type Call struct {
	// Backend names an entry of backends. Required.
	Backend string `yaml:"backend"`
	// Timeout is the call's total deadline, retries and backoff included;
	// when it passes the client is answered 504. Default: the backend's
	// timeout.
	Timeout Duration `yaml:"timeout"`
	// Method is the backend HTTP method. Default POST.
	Method string `yaml:"method"`
	// Path is appended to the backend URL. Required.
	Path string `yaml:"path"`
	// Query parameters; a parameter rendering empty is left out. A name
	// ending in [] is repeated for every value of the request's query
	// parameter its template names (exactly one ${query.…}): a date range
	// given as authored-on=ge…&authored-on=le… reaches the backend whole.
	Query map[string]string `yaml:"query"`
	// Headers; a header rendering empty is left out.
	Headers map[string]string `yaml:"headers"`
	// Body, when set, is sent with the call.
	Body *Body `yaml:"body"`
}

// Body is a flat request body rendered from templates.
type Body struct {
	// Encoding is json, form or xml. Default json.
	Encoding string `yaml:"encoding"`
	// Root is the XML root element. Default "request".
	Root string `yaml:"root"`
	// Fields are name → template, written in name order. Names may be
	// dotted (a.b) to nest JSON objects or XML elements. A name ending in
	// [] is a list: its template is one ${resource.…} reference, and every
	// value it selects is written (a JSON array, repeated form fields or
	// XML elements); an empty list is left out unless KeepEmpty.
	Fields map[string]string `yaml:"fields"`
	// KeepEmpty writes fields that render empty; by default they are
	// left out.
	KeepEmpty bool `yaml:"keep_empty"`
}

// Rule maps a backend answer to the client's answer.
type Rule struct {
	// When must hold for the rule to apply.
	When When `yaml:"when"`
	// Answer is the client's answer. Status required. A 204 has no body;
	// a 2xx other than 204 has no body unless the base's later features
	// add one; an error status gets an OperationOutcome with one issue.
	Answer Answer `yaml:"answer"`
}

// When matches a backend answer.
type When struct {
	// Status matches the backend status: a number (404), a class (4xx) or
	// a list of these. Empty matches any status.
	Status StatusSet `yaml:"status"`
	// Match maps a reference (body.error, role, header.X, …) to the
	// condition its value must meet (see Condition: typed equality, "*"
	// present, "" absent, any, regex, not, present_not). All must hold.
	Match map[string]Condition `yaml:"match"`
	// Transport matches a failed call instead of an answer: refused,
	// timeout or error. A rule with Transport never matches an answer.
	Transport string `yaml:"transport"`
}

// Answer is what the client is told.
type Answer struct {
	// Status is the HTTP status.
	Status int `yaml:"status"`
	// Code is the OperationOutcome issue code. Default: the base's
	// issue_codes entry for Status.
	Code string `yaml:"code"`
	// Text is the issue's details.text (a template).
	Text string `yaml:"text"`
	// Expression, when set, is the issue's FHIRPath location (a template).
	Expression string `yaml:"expression"`
	// Headers are added to the answer (templates; empty results left out).
	Headers map[string]string `yaml:"headers"`
	// Resource, on a 200 answer, is the FHIR resource the answer carries,
	// in FHIR JSON shape, every string a template (${body.…}, value maps):
	// an element whose value comes out empty is left out, and an object or
	// list left with nothing. The built resource is validated (base
	// specification and Profile) before it leaves; an invalid one is a 502.
	Resource map[string]any `yaml:"resource"`
	// Profile is the canonical URL of a profile in the base's profiles
	// the built resource (a Bundle's entry resources) must conform to.
	Profile string `yaml:"profile"`
	// Bundle, instead of Resource, answers a Bundle with one entry per
	// repeated element of the backend's answer.
	Bundle *BundleAnswer `yaml:"bundle"`

	// Compiled forms, set by Load.
	ResourceT   *template.Tree     `yaml:"-"`
	TextT       *template.Template `yaml:"-"`
	ExpressionT *template.Template `yaml:"-"`
	HeaderT     []NamedTemplate    `yaml:"-"`
}

// BundleAnswer is a Bundle built from a repeated element of a backend's
// answer: each element one entry, its resource built by Resource with the
// element as the source item (${item.id}).
type BundleAnswer struct {
	// Type is searchset (default: total, a self link, search.mode match
	// on every entry; _count and _summary=count apply) or collection.
	Type string `yaml:"type"`
	// Entries references the repeated element: body.tasks (a JSON
	// array), body.tasks.task (every <task> of <tasks> in XML).
	Entries string `yaml:"entries"`
	// FullURL is each entry's fullUrl (a template), e.g.
	// ${request.base}/Task/${item.id}.
	FullURL string `yaml:"full_url"`
	// Resource is each entry's resource, as Answer.Resource.
	Resource map[string]any `yaml:"resource"`
	// Total, for a searchset, is the number of all matches when the
	// backend says it (a template, e.g. ${body.total}); default the number
	// of entries the answer holds.
	Total string `yaml:"total"`

	// Compiled by Load.
	TotalT *template.Template `yaml:"-"`
}

// NamedTemplate is one compiled header or field.
type NamedTemplate struct {
	Name string
	T    *template.Template
}

// Duration is a time.Duration written as "5s", "250ms", "1h".
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("must be a duration such as 5s or 250ms")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration such as 5s or 250ms", n.Value)
	}
	*d = Duration(v)
	return nil
}

// StatusSet matches HTTP statuses: exact codes and classes (4 for 4xx).
type StatusSet struct {
	Codes   []int
	Classes []int
}

// Empty reports whether the set matches every status.
func (s StatusSet) Empty() bool { return len(s.Codes) == 0 && len(s.Classes) == 0 }

// Has reports whether status is in the set (an empty set has every status).
func (s StatusSet) Has(status int) bool {
	if s.Empty() {
		return false
	}
	for _, c := range s.Codes {
		if c == status {
			return true
		}
	}
	for _, c := range s.Classes {
		if status/100 == c {
			return true
		}
	}
	return false
}

// OnlySuccess reports whether the set is non-empty and holds only 2xx.
func (s StatusSet) OnlySuccess() bool {
	if s.Empty() {
		return false
	}
	for _, c := range s.Codes {
		if c/100 != 2 {
			return false
		}
	}
	for _, c := range s.Classes {
		if c != 2 {
			return false
		}
	}
	return true
}

// UnmarshalYAML reads 404, "4xx" or a list of these.
func (s *StatusSet) UnmarshalYAML(n *yaml.Node) error {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	for _, it := range items {
		if it.Kind != yaml.ScalarNode {
			return fmt.Errorf("must be a status (404), a class (4xx) or a list of these")
		}
		v := it.Value
		if len(v) == 3 && (v[1:] == "xx" || v[1:] == "XX") && v[0] >= '1' && v[0] <= '5' {
			s.Classes = append(s.Classes, int(v[0]-'0'))
			continue
		}
		var code int
		if _, err := fmt.Sscanf(v, "%d", &code); err != nil || code < 100 || code > 599 || fmt.Sprint(code) != v {
			return fmt.Errorf("%q is not a status (404) or a class (4xx)", v)
		}
		s.Codes = append(s.Codes, code)
	}
	return nil
}
