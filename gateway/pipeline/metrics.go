package pipeline

import (
	"strconv"

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
	backendDuration    *prometheus.HistogramVec
	inflight           prometheus.Gauge
	breakerOpen        *prometheus.GaugeVec
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
			Name: "fhirgate_backend_requests_total", Help: "Backend calls by outcome: the status class (2xx…5xx), refused, timeout or error.",
		}, []string{"backend", "outcome"}),
		backendDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fhirgate_backend_request_duration_seconds", Help: "Backend call duration.", Buckets: latencyBuckets,
		}, []string{"backend"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fhirgate_inflight_requests", Help: "FHIR requests being served.",
		}),
		breakerOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fhirgate_circuit_breaker_open", Help: "1 while the backend's circuit breaker is open.",
		}, []string{"backend"}),
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
	m.Registry.MustRegister(m.requests, m.duration, m.validationFailures, m.backendRequests, m.backendDuration,
		m.inflight, m.breakerOpen, m.reloads, m.lastReload, m.lastReloadOK,
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

// KnownBackends pre-creates per-backend series so dashboards see zeros,
// and connects the breakers of a table about to serve to the gauge. A new
// table starts with closed breakers.
func (m *Metrics) KnownBackends(t *Table) {
	for name, c := range t.clients {
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
}

func statusClass(status int) string {
	return strconv.Itoa(status/100) + "xx"
}
