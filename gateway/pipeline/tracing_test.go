package pipeline

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// injectTrace writes what otel's TraceContext propagator writes.
func TestInjectTraceAgreesWithOtel(t *testing.T) {
	ts, _ := trace.ParseTraceState("vendor=a,other=b")
	cases := []trace.SpanContextConfig{
		{TraceID: trace.TraceID{1, 2, 3, 0xfe}, SpanID: trace.SpanID{9, 8, 0xab}, TraceFlags: trace.FlagsSampled},
		{TraceID: trace.TraceID{0xff, 0xee}, SpanID: trace.SpanID{1}, TraceFlags: 0},
		{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, TraceFlags: 0xff, TraceState: ts},
		{TraceID: trace.TraceID{}, SpanID: trace.SpanID{1}}, // invalid: nothing
	}
	for i, c := range cases {
		sc := trace.NewSpanContext(c)
		want := http.Header{}
		propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), propagation.HeaderCarrier(want))
		got := http.Header{}
		(&Exchange{}).injectTrace(got, sc)
		if got.Get("Traceparent") != want.Get("Traceparent") || got.Get("Tracestate") != want.Get("Tracestate") || len(got) != len(want) {
			t.Errorf("case %d: got %v, want %v", i, got, want)
		}
	}
	// The exchange's header values do not overwrite each other.
	x := &Exchange{}
	h := http.Header{}
	for _, k := range []string{"A", "B", "C", "D", "E", "F"} {
		h[k] = x.headerValue(k)
	}
	h.Add("A", "second")
	for _, k := range []string{"A", "B", "C", "D", "E", "F"} {
		if h.Get(k) != k {
			t.Errorf("header %s = %v", k, h[k])
		}
	}
	if len(h["A"]) != 2 || h["B"][0] != "B" {
		t.Errorf("Add wrote into a neighbour: %v", h)
	}
}
