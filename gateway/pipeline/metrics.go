package pipeline

import (
	"sort"
	"strconv"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/audit"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the gateway's Prometheus series (names in DESIGN.md):
// prefix fhirgate_, base units, no per-request labels such as ids.
type Metrics struct {
	Registry           *prometheus.Registry
	requests           *prometheus.CounterVec
	duration           *prometheus.HistogramVec
	validationFailures *prometheus.CounterVec
	backendRequests    *prometheus.CounterVec
	backendRefusals    *prometheus.CounterVec
	backendDuration    *prometheus.HistogramVec
	inflight           prometheus.Gauge
	breakerOpen        *prometheus.GaugeVec
	storeUp            *prometheus.GaugeVec
	invalidResources   *prometheus.CounterVec
	storeFallbacks     *prometheus.CounterVec
	reloads            *prometheus.CounterVec
	lastReload         prometheus.Gauge
	lastReloadOK       prometheus.Gauge
}

// Buckets from 0.5 ms: the gateway's own share of a request is sub-millisecond.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics registers every series on a new registry, with the Go and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgate_requests_total", Help: "FHIR requests answered, by route and HTTP status.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fhirgate_request_duration_seconds", Help: "Time from request to answer, by route.", Buckets: latencyBuckets,
		}, []string{"route"}),
		validationFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgate_validation_failures_total", Help: "Requests refused by the gateway's own checks, by route and kind.",
		}, []string{"route", "kind"}),
		backendRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgate_backend_requests_total", Help: "Backend calls made, by outcome: the status class (2xx…5xx), refused (connection refused), timeout or error. Calls the circuit breaker refused are fhirgate_backend_refusals_total.",
		}, []string{"backend", "outcome"}),
		// A call the circuit breaker refused was not made: it is counted
		// here, not as a backend request, and has no duration.
		backendRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgate_backend_refusals_total", Help: "Backend calls not made because the backend's circuit breaker was open.",
		}, []string{"backend"}),
		backendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fhirgate_backend_request_duration_seconds", Help: "Backend call duration.", Buckets: latencyBuckets,
		}, []string{"backend"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fhirgate_inflight_requests", Help: "FHIR requests being served.",
		}),
		breakerOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fhirgate_circuit_breaker_open", Help: "1 while the backend's circuit breaker is open.",
		}, []string{"backend"}),
		invalidResources: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgate_invalid_resources_total", Help: "Resources the gateway built from a backend's answer that failed validation (answered 502, never sent), by route.",
		}, []string{"route"}),
		storeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fhirgate_limit_store_up", Help: "1 while the shared limit store decides rate limits, 0 while it does not answer and on_failure decides (local buckets or 503).",
		}, []string{"store"}),
		storeFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgate_limit_store_fallbacks_total", Help: "Rate-limit decisions made without the shared limit store (it was down, failed or late).",
		}, []string{"store"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fhirgate_config_reloads_total", Help: "Configuration loads by result (success, failure).",
		}, []string{"result"}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fhirgate_config_last_reload_success_timestamp_seconds", Help: "When the configuration in use was loaded.",
		}),
		// The alert on failing reloads needs the state, not the count: a
		// rejected file followed by a fixed one is healthy again.
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fhirgate_config_last_reload_successful", Help: "1 when the last configuration load succeeded, 0 when it was rejected.",
		}),
	}
	m.Registry.MustRegister(m.requests, m.duration, m.validationFailures, m.backendRequests, m.backendRefusals, m.backendDuration,
		m.inflight, m.breakerOpen, m.storeUp, m.storeFallbacks, m.invalidResources, m.reloads, m.lastReload, m.lastReloadOK,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"success", "failure"} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// ConfigLoaded records a load attempt.
func (m *Metrics) ConfigLoaded(ok bool, unixSeconds float64) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReload.Set(unixSeconds)
		m.lastReloadOK.Set(1)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastReloadOK.Set(0)
}

// KnownSeries creates, at zero, every series a table can produce that
// the dashboard and the alert rules read, and connects the table's
// breakers to their gauge (a new table starts with closed breakers).
// rate() and increase() cannot see the step from "no series" to its first
// value: a series born on its first increment loses that increment (the
// first backend 5xx of an outage, the first 5xx of a route), and a ratio
// whose numerator has no series shows "No data" instead of 0.
//
// Created: per backend every call outcome and the refusal counter; per
// route every status it can answer (its configured answers and the
// gateway's own: limits, backend failures, internal error), its duration
// histogram and the validation kinds it can fail with; the answers given
// before a route is known ("unmatched"). Series of routes a reload
// removed stay until the process restarts.
//
// The series a request counts into are kept with its route (and with the
// table for "unmatched"), so that a request finds them without hashing
// label values and taking the vectors' locks.
func (m *Metrics) KnownSeries(t *Table) {
	backends := map[string]*backendSeries{}
	for name, c := range t.clients {
		bs := &backendSeries{owner: m, outcomes: map[string]prometheus.Counter{}}
		for _, o := range backendOutcomes {
			bs.outcomes[o] = m.backendRequests.WithLabelValues(name, o)
		}
		bs.refusals = m.backendRefusals.WithLabelValues(name)
		bs.duration = m.backendDuration.WithLabelValues(name)
		backends[name] = bs
		gauge := m.breakerOpen.WithLabelValues(name)
		gauge.Set(0)
		c.OnBreakerChange = func(open bool) {
			if open {
				gauge.Set(1)
			} else {
				gauge.Set(0)
			}
		}
	}
	unmatched := map[int]bool{}
	for _, s := range gatewayStatuses {
		unmatched[s] = true
	}
	for _, b := range t.bases {
		for _, a := range []*config.Answer{b.cfg.NotFound, b.cfg.MethodNotAllowed} {
			addStatus(unmatched, a)
		}
		if b.auth != nil {
			for _, a := range authAnswers(b.auth.cfg) {
				addStatus(unmatched, a)
			}
		}
		for _, r := range b.routes {
			name := r.cfg.Name
			rs := &routeSeries{owner: m, requests: map[int]prometheus.Counter{}}
			for _, code := range r.statuses() {
				rs.requests[code] = m.requests.WithLabelValues(name, strconv.Itoa(code))
			}
			rs.duration = m.duration.WithLabelValues(name)
			r.series = rs
			if r.client != nil {
				r.backendSeries = backends[r.client.Name]
			}
			for _, rule := range r.rules {
				if rule.Answer.ResourceT != nil {
					m.invalidResources.WithLabelValues(name)
				}
			}
			for _, kind := range r.validationKinds() {
				m.validationFailures.WithLabelValues(name, kind)
			}
		}
	}
	us := &routeSeries{owner: m, requests: map[int]prometheus.Counter{}}
	for code := range unmatched {
		us.requests[code] = m.requests.WithLabelValues("unmatched", strconv.Itoa(code))
	}
	us.duration = m.duration.WithLabelValues("unmatched")
	t.unmatched = us
}

// routeSeries are a route's request counters by status and its duration
// histogram, resolved once per table. owner is the Metrics they belong
// to: a table counted by another (tests build several gateways) takes
// the vectors.
type routeSeries struct {
	owner    *Metrics
	requests map[int]prometheus.Counter
	duration prometheus.Observer
}

// backendSeries are a backend's call counters by outcome, its refusal
// counter and its duration histogram.
type backendSeries struct {
	owner    *Metrics
	outcomes map[string]prometheus.Counter
	refusals prometheus.Counter
	duration prometheus.Observer
}

// countRequest counts an answered request of route name (series: its
// route's, or the table's unmatched ones; nil takes the vectors).
func (m *Metrics) countRequest(series *routeSeries, name string, status int, elapsed time.Duration) {
	if series == nil || series.owner != m {
		m.requests.WithLabelValues(name, strconv.Itoa(status)).Inc()
		m.duration.WithLabelValues(name).Observe(elapsed.Seconds())
		return
	}
	if c := series.requests[status]; c != nil {
		c.Inc()
	} else {
		m.requests.WithLabelValues(name, strconv.Itoa(status)).Inc()
	}
	series.duration.Observe(elapsed.Seconds())
}

// backendOutcomes are the outcome labels of a call that was made.
var backendOutcomes = []string{"2xx", "3xx", "4xx", "5xx", "refused", "timeout", "error"}

// gatewayStatuses are the statuses the gateway answers by itself on any
// request: limits (413, 414, 431), the per-client rate limit (429), an
// unforwardable value (400), an internal error (500) and the backend
// failures (502, 503, 504).
var gatewayStatuses = []int{400, 413, 414, 429, 431, 500, 502, 503, 504}

func addStatus(set map[int]bool, a *config.Answer) {
	if a != nil && a.Status != 0 {
		set[a.Status] = true
	}
}

func authAnswers(p *config.AuthProfile) []*config.Answer {
	e := &p.Errors
	return []*config.Answer{e.MissingHeader, e.MalformedHeader, e.InvalidFormat, e.InvalidSignature, e.Expired,
		e.NotYetValid, e.InvalidAudience, e.InvalidIssuer, e.MissingClaims, e.RateLimited, e.ForbiddenRole}
}

// statuses are the statuses the route can answer, sorted.
func (r *Route) statuses() []int {
	set := map[int]bool{}
	for _, s := range gatewayStatuses {
		set[s] = true
	}
	for _, rule := range r.rules {
		addStatus(set, &rule.Answer)
	}
	for _, c := range r.checks {
		addStatus(set, c.fail)
	}
	if r.auth != nil {
		for _, a := range authAnswers(r.auth.cfg) {
			addStatus(set, a)
		}
	}
	addStatus(set, r.cfg.MissingQuery)
	addStatus(set, r.cfg.Format.NotAcceptable)
	addStatus(set, r.cfg.Overloaded)
	if op := r.cfg.Operation; op != nil {
		addStatus(set, op.Invalid)
	}
	if rq := r.cfg.Request; rq != nil {
		addStatus(set, rq.UnsupportedMedia)
		addStatus(set, rq.Invalid)
		addStatus(set, rq.ProfileViolation)
	}
	out := make([]int, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

// validationKinds are the kinds of fhirgate_validation_failures_total the
// route can count (validationKind).
func (r *Route) validationKinds() []string {
	var kinds []string
	if len(r.cfg.RequiredQuery) > 0 {
		kinds = append(kinds, "query")
	}
	if r.request != nil {
		kinds = append(kinds, "media_type", "body", "profile")
	}
	if r.cfg.Operation != nil && r.cfg.Operation.Compiled != nil {
		kinds = append(kinds, "operation")
	}
	for _, c := range r.checks {
		kinds = append(kinds, c.name)
	}
	return kinds
}

func statusClass(status int) string {
	return strconv.Itoa(status/100) + "xx"
}

// WatchAudit exposes the audit trail's counters (fhirgate_audit_*), read
// at each scrape; l nil (audit.output none) exposes them at zero. Called
// once per registry.
func (m *Metrics) WatchAudit(l *audit.Log) {
	for _, s := range []struct {
		name, help string
		gauge      bool
		value      func(audit.Stats) float64
	}{
		{"fhirgate_audit_records_total", "Audit records committed (written, or retained while the output fails).", false,
			func(s audit.Stats) float64 { return float64(s.Records) }},
		{"fhirgate_audit_writes_total", "Write calls to the audit output; each carries the records of the requests that finished meanwhile.", false,
			func(s audit.Stats) float64 { return float64(s.Batches) }},
		{"fhirgate_audit_write_errors_total", "Write calls to the audit output that failed.", false,
			func(s audit.Stats) float64 { return float64(s.WriteErrors) }},
		{"fhirgate_audit_dropped_records_total", "Audit records dropped because the memory for unwritten records was full.", false,
			func(s audit.Stats) float64 { return float64(s.Dropped) }},
		{"fhirgate_audit_retained_bytes", "Bytes of audit records waiting to be written.", true,
			func(s audit.Stats) float64 { return float64(s.RetainedBytes) }},
		{"fhirgate_audit_failing", "1 while audit records cannot be written (with audit.on_failure refuse, requests are not forwarded).", true,
			func(s audit.Stats) float64 {
				if s.Failing {
					return 1
				}
				return 0
			}},
	} {
		read := func() float64 { return s.value(l.Stats()) }
		if s.gauge {
			m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: s.name, Help: s.help}, read))
		} else {
			m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: s.name, Help: s.help}, read))
		}
	}
}
