package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/fhirgate/fhirgate/config"
)

// traceContext reads and writes W3C traceparent/tracestate headers.
var traceContext propagation.TraceContext

// NewTracerProvider returns the process's tracer provider. Every request
// gets a server span that continues the client's traceparent (or starts a
// trace, sampled at SampleRatio) and every backend call a client span whose
// traceparent goes to the backend, so the legacy system's logs can be
// correlated even when nothing is exported. Spans are exported over
// OTLP/HTTP only when OTLPEndpoint is set; Shutdown flushes them.
//
// Span attributes never carry query values, headers or resource content:
// only the route, its path pattern, statuses and the request id.
//
// Without OTLPEndpoint there is nothing to export and NewTracerProvider
// returns nil: the gateway then propagates without recording (see
// startServerSpan).
func NewTracerProvider(c config.Tracing) (*sdktrace.TracerProvider, error) {
	if c.OTLPEndpoint == "" {
		return nil, nil
	}
	opts := []sdktrace.TracerProviderOption{
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*c.SampleRatio))),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", c.ServiceName), attribute.String("service.version", Version))),
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(strings.TrimSuffix(c.OTLPEndpoint, "/")+"/v1/traces"),
		otlptracehttp.WithTimeout(5*time.Second))
	if err != nil {
		return nil, err
	}
	opts = append(opts, sdktrace.WithBatcher(exp))
	return sdktrace.NewTracerProvider(opts...), nil
}

// noSpan is what a request holds when spans are not exported.
var noSpan = noop.Span{}

// startServerSpan continues the client's trace context. Without an
// exporter (Process.Tracer nil) no span is recorded: the request only gets a
// span id of its own under the client's trace (or a new trace, sampled
// when SampleRatio is 1), which is all propagation needs — at a fraction
// of a recording span's cost, and kept in the exchange rather than in a
// context (a request without traceparent allocates nothing for it).
func (p *Process) startServerSpan(r *http.Request) (context.Context, trace.Span, trace.SpanContext) {
	if p.Tracer == nil {
		var parent trace.SpanContext
		if _, ok := r.Header["Traceparent"]; ok {
			parent = trace.SpanContextFromContext(traceContext.Extract(context.Background(), propagation.HeaderCarrier(r.Header)))
		}
		return r.Context(), noSpan, childSpanContext(parent, p.SampleNew)
	}
	ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := p.Tracer.Start(ctx, "fhirgate", trace.WithSpanKind(trace.SpanKindServer))
	return ctx, span, span.SpanContext()
}

// childSpanContext is a new span id under parent's trace, keeping its
// flags; without a valid parent, a new trace.
func childSpanContext(parent trace.SpanContext, sampled bool) trace.SpanContext {
	var ids [24]byte
	rand.Read(ids[:])
	cfg := trace.SpanContextConfig{TraceID: parent.TraceID(), TraceFlags: parent.TraceFlags(), TraceState: parent.TraceState(), Remote: false}
	copy(cfg.SpanID[:], ids[16:])
	if !parent.IsValid() {
		copy(cfg.TraceID[:], ids[:16])
		cfg.TraceFlags = 0
		if sampled {
			cfg.TraceFlags = trace.FlagsSampled
		}
	}
	return trace.NewSpanContext(cfg)
}

// endServerSpan names the span after the route and records the outcome.
func endServerSpan(span trace.Span, x *Exchange, routeName string, status int) {
	if span.IsRecording() {
		span.SetName(routeName)
		attrs := []attribute.KeyValue{
			attribute.String("http.request.method", x.r.Method),
			attribute.Int("http.response.status_code", status),
			attribute.String("fhirgate.request_id", x.id),
		}
		if x.route != nil {
			attrs = append(attrs, attribute.String("http.route", x.base.prefix+x.route.cfg.Path))
		}
		if x.kind != "" {
			attrs = append(attrs, attribute.String("fhirgate.failure", x.kind))
		}
		span.SetAttributes(attrs...)
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// startBackendSpan starts the client span of a backend call and writes its
// traceparent into the call's headers.
func (x *Exchange) startBackendSpan(ctx context.Context, backendName string, h http.Header) (context.Context, trace.Span) {
	if x.tracer == nil {
		x.injectTrace(h, childSpanContext(x.sc, false))
		return ctx, noSpan
	}
	ctx, span := x.tracer.Start(ctx, "backend "+backendName, trace.WithSpanKind(trace.SpanKindClient))
	x.injectTrace(h, span.SpanContext())
	return ctx, span
}

// injectTrace writes sc as W3C trace context headers, as otel's
// TraceContext propagator does (nothing for an invalid context; only the
// spec-defined flags, sampled and random; tracestate when there is one),
// into the exchange's header values. TestInjectTraceAgreesWithOtel holds
// it to the propagator.
func (x *Exchange) injectTrace(h http.Header, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	h["Traceparent"] = x.headerValue(traceparent(sc))
	if ts := sc.TraceState().String(); ts != "" {
		h["Tracestate"] = x.headerValue(ts)
	}
}

// traceparent is the header value of sc: version 00, trace id, span id,
// flags (sampled and random only).
func traceparent(sc trace.SpanContext) string {
	var b [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], []byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))})
	return string(b[:])
}

func endBackendSpan(span trace.Span, x *Exchange) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("fhirgate.backend.outcome", x.backendKind))
		if x.backendStatus != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", x.backendStatus))
		}
		if x.backendKind != "answer" {
			span.SetStatus(codes.Error, x.backendKind)
		}
	}
	span.End()
}
