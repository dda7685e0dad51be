package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/audit"
	"github.com/fhirgate/fhirgate/gateway/pipeline"
)

// Server runs the FHIR listener and the admin listener (/metrics, /healthz,
// /readyz) of one configuration.
type Server struct {
	Gateway *Gateway
	Metrics *pipeline.Metrics
	// WatchDebounce, when positive, reloads the configuration when it or
	// a file it reads changes and has then been quiet this long (see
	// watchConfig). Zero: reload on Reload calls (SIGHUP) only.
	WatchDebounce time.Duration

	cfg    *config.Config // as started: listeners, timeouts, file name
	log    *slog.Logger
	ready  atomic.Bool
	fhir   *http.Server
	admin  *http.Server
	ctx    context.Context // parent of every table's background work
	cancel context.CancelFunc

	reloadMu sync.Mutex // one reload at a time; guards the fields below
	// liveConfig is the configuration in use, watching what a reload
	// follows, watcher the file watch (nil without one).
	liveConfig *config.Config
	watching   *watchSet
	watcher    *fsnotify.Watcher
	live       liveTable
	tracing    *sdktrace.TracerProvider
	audit      *audit.Log
}

// NewServer loads nothing: cfg is an already loaded configuration; opts add
// an embedding program's gin middleware and handlers to every engine.
func NewServer(cfg *config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	m := pipeline.NewMetrics()
	ctx, cancel := context.WithCancel(context.Background())
	t, err := pipeline.Build(ctx, cfg)
	if err != nil {
		cancel()
		m.ConfigLoaded(false, 0)
		return nil, err
	}
	m.ConfigLoaded(true, float64(time.Now().Unix()))
	s := &Server{Metrics: m, cfg: cfg, liveConfig: cfg, log: log, ctx: ctx, cancel: cancel, live: liveTable{table: t, cancel: func() {}}}
	if s.Gateway, err = New(t, m, log, opts...); err != nil {
		cancel()
		t.Close()
		return nil, err
	}
	if s.tracing, err = pipeline.NewTracerProvider(cfg.Tracing); err != nil {
		cancel()
		return nil, fmt.Errorf("tracing: %w", err)
	}
	if s.tracing != nil {
		s.Gateway.SetTracerProvider(s.tracing)
	}
	s.Gateway.SetSampleNew(*cfg.Tracing.SampleRatio >= 1)
	if s.audit, err = audit.Open(cfg.Audit); err != nil {
		cancel()
		return nil, err
	}
	s.Gateway.SetAudit(s.audit)
	s.Metrics.WatchAudit(s.audit)
	sc := cfg.Server
	s.fhir = &http.Server{
		Addr:              sc.Listen,
		Handler:           s.Gateway,
		ReadHeaderTimeout: sc.ReadHeaderTimeout.D(),
		ReadTimeout:       sc.ReadTimeout.D(),
		WriteTimeout:      sc.WriteTimeout.D(),
		IdleTimeout:       sc.IdleTimeout.D(),
		// Twice the configured limit, so that the gateway itself answers
		// headers over the limit with a 431 OperationOutcome.
		MaxHeaderBytes: 2 * sc.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if sc.TLS != nil {
		tc, err := serverTLS(sc.TLS)
		if err != nil {
			cancel()
			return nil, err
		}
		s.fhir.TLSConfig = tc
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if s.audit.Refusing() {
			// Traffic belongs on replicas that can record it.
			http.Error(w, "not ready: the audit trail cannot be written", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	if sc.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	s.admin = &http.Server{Addr: sc.AdminListen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s, nil
}

// Handler is the FHIR listener's handler, for a program that serves it
// on a listener of its own instead of calling Run (reloads still swap the
// engine behind it).
func (s *Server) Handler() http.Handler { return s.Gateway }

func serverTLS(t *config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("server.tls.client_ca_file: no certificate found")
		}
		tc.ClientCAs = pool
	}
	switch t.ClientAuth {
	case "request":
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	case "require":
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// Run serves until ctx is done, then shuts down gracefully: /readyz turns
// 503 at once and the listener keeps serving, without keep-alive, for the
// drain delay (load balancers stop sending meanwhile); then it stops
// accepting and in-flight requests get the shutdown grace period. Run
// returns nil when every request finished in time.
func (s *Server) Run(ctx context.Context) error {
	fl, err := net.Listen("tcp", s.fhir.Addr)
	if err != nil {
		return err
	}
	al, err := net.Listen("tcp", s.admin.Addr)
	if err != nil {
		fl.Close()
		return err
	}
	errc := make(chan error, 2)
	go func() {
		var err error
		if s.fhir.TLSConfig != nil {
			err = s.fhir.ServeTLS(fl, "", "")
		} else {
			err = s.fhir.Serve(fl)
		}
		errc <- err
	}()
	go func() { errc <- s.admin.Serve(al) }()
	if s.WatchDebounce > 0 {
		if err := s.watchConfig(s.ctx, s.WatchDebounce); err != nil {
			s.log.Warn("configuration file not watched; SIGHUP reloads it", "error", err.Error())
		}
	}
	s.ready.Store(true)
	s.log.Info("listening", "fhir", fl.Addr().String(), "admin", al.Addr().String(), "config", s.cfg.File)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			s.cancel()
			return err
		}
	}
	s.ready.Store(false)
	// Each connection closes after its next answer; idle ones stay open
	// until Shutdown. (SetKeepAlivesEnabled(false) would close the idle
	// ones now, while the load balancer may still send on them: a POST
	// written onto a connection closed under it gets no answer and is not
	// retried by clients.)
	s.Gateway.draining.Store(true)
	drain, grace := s.cfg.Server.DrainDelay.D(), s.cfg.Server.ShutdownGrace.D()
	s.log.Info("draining", "drain_delay", drain.String())
	time.Sleep(drain)
	s.log.Info("shutting down", "grace", grace.String())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	s.fhir.SetKeepAlivesEnabled(false)
	err = s.fhir.Shutdown(sctx)
	s.admin.Shutdown(sctx)
	s.cancel()
	// Spans of the last requests are flushed; a collector that is gone
	// costs at most its export timeout.
	fctx, fcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer fcancel()
	if s.tracing != nil {
		s.tracing.Shutdown(fctx)
	}
	s.audit.Close()
	return err
}
