package logline

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

// field is one field of a test line.
type field struct {
	kind byte // 's', 'i', 'f'
	key  string
	s    string
	i    int
	f    float64
}

// both writes the same line through a Handler (the bytes a Line builds)
// and through slog.JSONHandler (the attribute sink), and returns both
// without their time fields, which are stamped apart.
func both(t testing.TB, msg string, fields []field) (direct, viaSlog string) {
	var a, b bytes.Buffer
	run := func(log *slog.Logger) {
		l := Start(context.Background(), log, slog.LevelInfo, msg)
		for _, f := range fields {
			switch f.kind {
			case 's':
				l.Str(f.key, f.s)
			case 'i':
				l.Int(f.key, f.i)
			case 'f':
				l.Float(f.key, f.f)
			}
		}
		l.Emit(context.Background())
	}
	run(slog.New(New(&a, nil)))
	run(slog.New(slog.NewJSONHandler(&b, nil)))
	return withoutTime(t, a.String()), withoutTime(t, b.String())
}

func withoutTime(t testing.TB, line string) string {
	const head = `{"time":"`
	if !strings.HasPrefix(line, head) {
		t.Fatalf("line without time first: %q", line)
	}
	end := strings.IndexByte(line[len(head):], '"')
	return line[len(head)+end+1:]
}

func TestLineAgrees(t *testing.T) {
	cases := []struct {
		name   string
		msg    string
		fields []field
	}{
		{"access line", "request", []field{
			{kind: 's', key: "request_id", s: "0af7651916cd43dd8448eb211c80319c"},
			{kind: 's', key: "method", s: "POST"},
			{kind: 's', key: "path", s: "/erp/Task/160.000.000.000.001.05/$abort"},
			{kind: 'i', key: "status", i: 204},
			{kind: 'f', key: "duration_ms", f: 1.234},
			{kind: 's', key: "query", s: "ac=REDACTED&_format=json"},
			{kind: 'f', key: "backend_ms", f: 0},
			{kind: 'i', key: "backend_status", i: -1},
		}},
		{"escapes", "quote \" and \\", []field{
			{kind: 's', key: "ctl", s: "a\nb\tc\r\x01\x1f"},
			{kind: 's', key: "html", s: "<a href='x'>&amp;</a>"},
			{kind: 's', key: "bad utf-8", s: "\xff\xfe ok ü \u2028\u2029"},
			{kind: 's', key: "", s: ""},
		}},
		{"floats", "m", []field{
			{kind: 'f', key: "small", f: 0.001},
			{kind: 'f', key: "tiny", f: 1e-7},
			{kind: 'f', key: "big", f: 1e21},
			{kind: 'f', key: "neg", f: -12.5},
			{kind: 'f', key: "long", f: 1234567.891},
		}},
		{"no fields", "stopped", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if a, b := both(t, c.msg, c.fields); a != b {
				t.Errorf("by hand:\n%s\nslog:\n%s", a, b)
			}
		})
	}
}

// The time field is slog's: RFC 3339 with nanoseconds, in the zone of the
// time given.
func TestTimeAgrees(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 30, 21, 34, 4, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 120000000, time.UTC),
		time.Date(2026, 6, 1, 0, 0, 0, 1, time.FixedZone("CEST", 2*3600)),
	} {
		var b bytes.Buffer
		slog.NewJSONHandler(&b, nil).Handle(context.Background(), slog.NewRecord(tm, slog.LevelInfo, "m", 0))
		want := strings.SplitN(b.String(), ",", 2)[0]
		if got := `{"time":` + string(appendTime(nil, tm)); got != want {
			t.Errorf("%v: %s, slog %s", tm, got, want)
		}
	}
}

// Lines go to slog's attributes when the handler is not a plain Handler:
// another handler, a logger with attributes, or ReplaceAttr.
func TestAttributeSink(t *testing.T) {
	var a bytes.Buffer
	h := New(&a, nil)
	replace := New(&a, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }})
	for name, log := range map[string]*slog.Logger{
		"with attrs":   slog.New(h).With("component", "x"),
		"replace attr": slog.New(replace),
		"text handler": slog.New(slog.NewTextHandler(&a, nil)),
	} {
		if l := Start(context.Background(), log, slog.LevelInfo, "m"); l == nil || l.h != nil {
			t.Errorf("%s: the line must take the attribute sink", name)
		} else {
			l.Emit(context.Background())
		}
	}
	a.Reset()
	l := Start(context.Background(), slog.New(h).With("component", "x"), slog.LevelInfo, "request")
	l.Str("k", "v")
	l.Emit(context.Background())
	if got := withoutTime(t, a.String()); got != `,"level":"INFO","msg":"request","component":"x","k":"v"}`+"\n" {
		t.Errorf("derived logger's line: %s", got)
	}
}

// Below the logger's level nothing is built or written.
func TestDisabled(t *testing.T) {
	var a bytes.Buffer
	log := slog.New(New(&a, &slog.HandlerOptions{Level: slog.LevelWarn}))
	l := Start(context.Background(), log, slog.LevelInfo, "request")
	if l != nil {
		t.Fatal("a line below the level must be nil")
	}
	l.Str("k", "v")
	l.Int("n", 1)
	l.Float("f", 1)
	l.Emit(context.Background())
	if a.Len() != 0 {
		t.Errorf("written: %q", a.String())
	}
}

func FuzzLineAgrees(f *testing.F) {
	f.Add("request", "path", "/Task/1", 201, 0.5)
	f.Add("m\u2028", "\x00", "\xff<>&\"\\", -7, 1e-9)
	f.Add("\b\f", "\x7f", "\u00e9\U0001F600", 0, 1e21)
	f.Fuzz(func(t *testing.T, msg, key, val string, n int, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			t.Skip("slog writes an error text for these; no duration is one")
		}
		fields := []field{{kind: 's', key: key, s: val}, {kind: 'i', key: key + "n", i: n}, {kind: 'f', key: "f", f: x}}
		if a, b := both(t, msg, fields); a != b {
			t.Errorf("by hand:\n%s\nslog:\n%s", a, b)
		}
	})
}

func BenchmarkAccessLine(b *testing.B) {
	log := slog.New(New(discard{}, nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l := Start(ctx, log, slog.LevelInfo, "request")
		l.Str("request_id", "0af7651916cd43dd8448eb211c80319c")
		l.Str("method", "POST")
		l.Str("path", "/erp/Task/160.000.000.000.001.05/$abort")
		l.Str("route", "erp-abort")
		l.Int("status", 204)
		l.Float("duration_ms", 1.234)
		l.Str("query", "ac=REDACTED")
		l.Str("role", "prescriber")
		l.Str("backend", "form")
		l.Float("backend_ms", 0.456)
		l.Int("backend_status", 200)
		l.Emit(ctx)
	}
}

func BenchmarkAccessLineSlog(b *testing.B) {
	log := slog.New(slog.NewJSONHandler(discard{}, nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("request_id", "0af7651916cd43dd8448eb211c80319c"),
			slog.String("method", "POST"),
			slog.String("path", "/erp/Task/160.000.000.000.001.05/$abort"),
			slog.String("route", "erp-abort"),
			slog.Int("status", 204),
			slog.Float64("duration_ms", 1.234),
			slog.String("query", "ac=REDACTED"),
			slog.String("role", "prescriber"),
			slog.String("backend", "form"),
			slog.Float64("backend_ms", 0.456),
			slog.Int("backend_status", 200))
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
