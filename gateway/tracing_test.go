package gateway

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/pipeline"
)

// collector is a real OTLP/HTTP endpoint on loopback that keeps the spans
// it receives.
type collector struct {
	mu    sync.Mutex
	spans map[string]string // span name → trace id (hex)
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans[s.Name] = hex.EncodeToString(s.TraceId)
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(nil)
}

// TestTraceContextReachesBackendAndCollector: the backend receives the
// client's trace id with the gateway's own span as parent, and the request
// id; with an OTLP endpoint both spans are exported under that trace.
func TestTraceContextReachesBackendAndCollector(t *testing.T) {
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }}
	be := httptest.NewServer(spy)
	defer be.Close()
	col := &collector{spans: map[string]string{}}
	cs := httptest.NewServer(col)
	defer cs.Close()
	f := newFixture(t, be.URL, spy)
	one := 1.0
	tp, err := pipeline.NewTracerProvider(config.Tracing{OTLPEndpoint: cs.URL, SampleRatio: &one, ServiceName: "fhirgate"})
	if err != nil {
		t.Fatal(err)
	}
	f.gw.Config.Handler.(*Gateway).SetTracerProvider(tp)

	const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodPost, f.gw.URL+"/fhir/Task/1/$op", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
	req.Header.Set("X-Request-Id", "req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got, _ := spy.last()
	tp0 := strings.Split(got.Header.Get("traceparent"), "-")
	if len(tp0) != 4 || tp0[1] != traceID || tp0[2] == parent || tp0[3] != "01" {
		t.Errorf("backend traceparent %q: want trace %s, a new parent, sampled", got.Header.Get("traceparent"), traceID)
	}
	if got.Header.Get("X-Request-Id") != "req-42" || resp.Header.Get("X-Request-Id") != "req-42" {
		t.Errorf("request id: backend %q, answer %q", got.Header.Get("X-Request-Id"), resp.Header.Get("X-Request-Id"))
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if col.spans["op"] != traceID || col.spans["backend legacy"] != traceID {
		t.Errorf("exported spans %v, want op and backend legacy in trace %s", col.spans, traceID)
	}

	// Without a traceparent a trace is started: the backend still gets one.
	req, _ = http.NewRequest(http.MethodPost, f.gw.URL+"/fhir/Task/1/$op", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, _ := spy.last(); len(got.Header.Get("traceparent")) != 55 {
		t.Errorf("no traceparent for a new trace: %q", got.Header.Get("traceparent"))
	}
}

// TestTraceContextWithoutExporter: with nothing to export the gateway
// records no span but still continues the trace with a span id of its own.
func TestTraceContextWithoutExporter(t *testing.T) {
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }}
	be := httptest.NewServer(spy)
	defer be.Close()
	f := newFixture(t, be.URL, spy)
	cases := []struct{ in, trace, flags string }{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "4bf92f3577b34da6a3ce929d0e0e4736", "01"},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "4bf92f3577b34da6a3ce929d0e0e4736", "00"},
		{"", "", "01"},        // a new trace, sampled (sample_ratio 1)
		{"garbage", "", "01"}, // an unreadable traceparent starts a new trace
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, f.gw.URL+"/fhir/Task/1/$op", nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		if c.in != "" {
			req.Header.Set("traceparent", c.in)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got, _ := spy.last()
		p := strings.Split(got.Header.Get("traceparent"), "-")
		if len(p) != 4 || len(p[1]) != 32 || len(p[2]) != 16 || p[2] == "00f067aa0ba902b7" || p[3] != c.flags || (c.trace != "" && p[1] != c.trace) {
			t.Errorf("in %q: backend got %q", c.in, got.Header.Get("traceparent"))
		}
	}
}
