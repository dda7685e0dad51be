package gateway

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fhirgate/fhirgate/gateway/logline"
	"github.com/fhirgate/fhirgate/gateway/pipeline"
)

// discardWriter is a ResponseWriter that keeps nothing, reused across
// iterations so that only the gateway's own allocations count.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkHTTPLayer is what every request pays before and after its
// route's own work: path normalisation, the engine, request id and trace
// context, limits, base selection, the Authorization header check, the
// OperationOutcome of its 400, metrics and the access log (to
// io.Discard) — an E-Rezept $abort without a token, no backend.
func BenchmarkHTTPLayer(b *testing.B) {
	cfg := defaultTable(&testing.T{})
	g, err := New(cfg, pipeline.NewMetrics(), slog.New(logline.New(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("POST", "/erp/Task/160.000.033.491.280.78/$abort?ac=777", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		r := *req
		u := *req.URL
		r.URL = &u
		g.ServeHTTP(w, &r)
	}
}
