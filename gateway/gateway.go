// Package gateway is fhirgate's HTTP layer: a gin engine per route table
// (engine.go lists the request's steps as gin middleware, in the order of
// the answers), the path normaliser in front of gin, the server's
// listeners and lifecycle (server.go), configuration reload (reload.go),
// and the options through which a program embedding fhirgate adds gin
// middleware and handlers to every engine (embed.go). What a route does —
// its stages, the backend call and the mapping of its answer — is
// gateway/pipeline.
package gateway

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"

	"github.com/fhirgate/fhirgate/gateway/audit"
	"github.com/fhirgate/fhirgate/gateway/pipeline"
)

// Gateway serves FHIR requests from the current table, each table through
// a gin engine of its own.
type Gateway struct {
	engine atomic.Pointer[engine]
	proc   pipeline.Process
	opts   options
	// draining: answers carry "Connection: close" (graceful shutdown).
	draining atomic.Bool
}

// New returns a Gateway serving t, with what opts add to every engine.
func New(t *pipeline.Table, m *pipeline.Metrics, log *slog.Logger, opts ...Option) (*Gateway, error) {
	g := &Gateway{proc: pipeline.Process{Metrics: m, Log: log, SampleNew: true}}
	for _, o := range opts {
		o(&g.opts)
	}
	if err := g.Swap(t); err != nil {
		return nil, err
	}
	return g, nil
}

// Swap builds t's engine and makes it the one for requests that start
// from now on; requests in flight finish on theirs. An error (a route gin
// cannot hold) leaves the engine in use serving.
func (g *Gateway) Swap(t *pipeline.Table) error {
	e, err := g.newEngine(t)
	if err != nil {
		return err
	}
	g.proc.Metrics.KnownSeries(t)
	g.proc.WatchStores(t)
	g.engine.Store(e)
	return nil
}

// SetTracerProvider makes tp the source of request and backend spans
// (before serving; see pipeline.NewTracerProvider).
func (g *Gateway) SetTracerProvider(tp trace.TracerProvider) { g.proc.Tracer = tp.Tracer("fhirgate") }

// SetSampleNew says whether new traces are marked sampled when no spans
// are recorded (SampleRatio 1).
func (g *Gateway) SetSampleNew(sampled bool) { g.proc.SampleNew = sampled }

// SetAudit makes l the audit trail (before serving); nil writes none.
func (g *Gateway) SetAudit(l *audit.Log) { g.proc.Audit = l }

// Table returns the table in use.
func (g *Gateway) Table() *pipeline.Table { return g.engine.Load().table }

// Engine returns the gin engine in use (read-only: a reload replaces it;
// use WithMiddleware or WithEngine to change every engine).
func (g *Gateway) Engine() *gin.Engine { return g.engine.Load().gin }

// ServeHTTP implements http.Handler: the path is normalised for routing,
// the answer's status held until its body (holdWriter), and the request
// served by the engine in use.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.draining.Load() {
		w.Header().Set("Connection", "close")
	}
	normalisePath(r.URL)
	hw := &holdWriter{ResponseWriter: w}
	g.engine.Load().gin.ServeHTTP(hw, r)
	hw.flush()
}
