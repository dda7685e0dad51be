package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/fhirgate/fhirgate/gateway/pipeline"
)

// counted reads a counter or the count of a histogram of m's registry by
// metric name and label values (0 when the series does not exist).
func counted(t *testing.T, m *pipeline.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if want, ok := labels[l.GetName()]; ok && want != l.GetValue() {
					continue series
				}
			}
			return value(s)
		}
	}
	return 0
}

func value(s *dto.Metric) float64 {
	if c := s.GetCounter(); c != nil {
		return c.GetValue()
	}
	return float64(s.GetHistogram().GetSampleCount())
}

// The series a request counts into are resolved once per table; a table
// served by two gateways with registries of their own (tests do this)
// still counts each request into its own gateway's registry.
func TestRequestSeriesPerRegistry(t *testing.T) {
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }}
	be := httptest.NewServer(spy)
	defer be.Close()
	f := newFixture(t, be.URL, spy)
	other := pipeline.NewMetrics()
	g2, err := New(f.table, other, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	second := httptest.NewServer(g2)
	defer second.Close()

	send := func(base, path string) int {
		req, _ := http.NewRequest(http.MethodPost, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	status := send(f.gw.URL, "/fhir/Task/1/$op")
	send(f.gw.URL, "/fhir/Task/1/$op")
	send(second.URL, "/fhir/Task/1/$op")
	unmatched := send(second.URL, "/nowhere")

	code := strconv.Itoa
	for _, c := range []struct {
		m      *pipeline.Metrics
		name   string
		labels map[string]string
		want   float64
	}{
		{f.metrics, "fhirgate_requests_total", map[string]string{"route": "op", "code": code(status)}, 2},
		{other, "fhirgate_requests_total", map[string]string{"route": "op", "code": code(status)}, 1},
		{f.metrics, "fhirgate_request_duration_seconds", map[string]string{"route": "op"}, 2},
		{other, "fhirgate_request_duration_seconds", map[string]string{"route": "op"}, 1},
		{f.metrics, "fhirgate_backend_requests_total", map[string]string{"outcome": "2xx"}, 2},
		{other, "fhirgate_backend_requests_total", map[string]string{"outcome": "2xx"}, 1},
		{f.metrics, "fhirgate_backend_request_duration_seconds", nil, 2},
		{other, "fhirgate_backend_request_duration_seconds", nil, 1},
		{other, "fhirgate_requests_total", map[string]string{"route": "unmatched", "code": code(unmatched)}, 1},
		{f.metrics, "fhirgate_requests_total", map[string]string{"route": "unmatched", "code": code(unmatched)}, 0},
	} {
		owner := "first"
		if c.m == other {
			owner = "second"
		}
		if got := counted(t, c.m, c.name, c.labels); got != c.want {
			t.Errorf("%s registry, %s%v: %v, want %v", owner, c.name, c.labels, got, c.want)
		}
	}
}
