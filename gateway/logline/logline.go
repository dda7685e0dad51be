// Package logline writes the gateway's per-request log line without
// slog's generic machinery, byte for byte as slog.JSONHandler writes it.
//
// The access log is one line per request. Through slog.Logger.LogAttrs a
// line costs a call stack capture, a Record whose attributes spill to the
// heap beyond five, an interface dispatch per attribute and json.Marshal
// per float — together 6–7 % of a small request's CPU in the benchmark. A Line appends the same bytes directly. It has two sinks:
// when the logger's handler is this package's Handler (fhirgate serve
// installs one), the finished line goes to the handler's writer in one
// Write; for any other handler (tests, a logger with attributes or groups
// added) the same fields are handed to slog as attributes. TestLineAgrees
// and FuzzLineAgrees hold the bytes of the first to slog.JSONHandler's.
package logline

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/validation/jsontree"
)

// Handler is slog.JSONHandler writing to w; the Lines of a logger with
// this handler are written to w directly. Loggers derived with WithAttrs or WithGroup get the
// JSONHandler's own (their lines carry more than a Line knows of), so
// Lines on them take the attribute sink.
type Handler struct {
	*slog.JSONHandler
	w     io.Writer
	plain bool // no option that changes what a line holds
}

// New returns a Handler writing JSON lines to w with opts, as
// slog.NewJSONHandler(w, opts) would. ReplaceAttr and AddSource change
// what a line holds, so with either set Lines use the attribute sink.
// Lines are written to w directly, outside the JSONHandler's lock: w must
// keep concurrent Writes whole (linebuf.Writer and os.File do).
func New(w io.Writer, opts *slog.HandlerOptions) *Handler {
	plain := opts == nil || (opts.ReplaceAttr == nil && !opts.AddSource)
	return &Handler{JSONHandler: slog.NewJSONHandler(w, opts), w: w, plain: plain}
}

// Line is one log line being built; Start begins it, Emit ends it. A Line
// is not safe for concurrent use and must not be used after Emit.
type Line struct {
	log   *slog.Logger
	h     *Handler // nil: the attribute sink
	level slog.Level
	msg   string
	buf   []byte
	attrs []slog.Attr
}

var lines = sync.Pool{New: func() any { return &Line{buf: make([]byte, 0, 512)} }}

// direct tells whether lines of log can be written by hand: its handler
// is a Handler without options that change a line.
func direct(log *slog.Logger) *Handler {
	if h, ok := log.Handler().(*Handler); ok && h.plain {
		return h
	}
	return nil
}

// Start begins a line of level with message msg for log, stamped now. It
// returns nil when log does not write level, so that callers build
// nothing for a line nobody writes; every method of Line accepts nil.
func Start(ctx context.Context, log *slog.Logger, level slog.Level, msg string) *Line {
	if !log.Enabled(ctx, level) {
		return nil
	}
	l := lines.Get().(*Line)
	l.log, l.level, l.msg = log, level, msg
	l.h = direct(log)
	if l.h == nil {
		return l
	}
	b := append(l.buf[:0], `{"time":`...)
	b = appendTime(b, time.Now())
	b = append(b, `,"level":`...)
	b = appendString(b, level.String())
	b = append(b, `,"msg":`...)
	b = appendString(b, msg)
	l.buf = b
	return l
}

// key appends ,"key": to the line.
func (l *Line) key(k string) {
	l.buf = append(l.buf, ',')
	l.buf = appendString(l.buf, k)
	l.buf = append(l.buf, ':')
}

// Str adds a string field.
func (l *Line) Str(k, v string) {
	if l == nil {
		return
	}
	if l.h == nil {
		l.attrs = append(l.attrs, slog.String(k, v))
		return
	}
	l.key(k)
	l.buf = appendString(l.buf, v)
}

// Int adds an integer field.
func (l *Line) Int(k string, v int) {
	if l == nil {
		return
	}
	if l.h == nil {
		l.attrs = append(l.attrs, slog.Int(k, v))
		return
	}
	l.key(k)
	l.buf = strconv.AppendInt(l.buf, int64(v), 10)
}

// Float adds a float field, written as encoding/json writes a float64
// (slog's JSON handler defers to it).
func (l *Line) Float(k string, v float64) {
	if l == nil {
		return
	}
	if l.h == nil {
		l.attrs = append(l.attrs, slog.Float64(k, v))
		return
	}
	l.key(k)
	l.buf = appendFloat(l.buf, v)
}

// Emit writes the line and returns the Line to its pool. Write errors are
// dropped as slog drops them: a log line never fails a request.
func (l *Line) Emit(ctx context.Context) {
	if l == nil {
		return
	}
	if l.h == nil {
		l.log.LogAttrs(ctx, l.level, l.msg, l.attrs...)
	} else {
		l.buf = append(l.buf, '}', '\n')
		l.h.w.Write(l.buf)
	}
	l.log, l.h = nil, nil
	clear(l.attrs)
	l.attrs = l.attrs[:0]
	if cap(l.buf) <= 4<<10 {
		lines.Put(l)
	}
}

// appendTime writes t as slog.JSONHandler does: RFC 3339 with
// nanoseconds, quoted.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendFloat writes f as encoding/json does: 'f' notation for
// 1e-6 ≤ |f| < 1e21 and zero, which is every duration in milliseconds;
// anything else (and NaN or ±Inf, which slog reports as an error text)
// through encoding/json itself.
func appendFloat(b []byte, f float64) []byte {
	if a := math.Abs(f); a == 0 || (a >= 1e-6 && a < 1e21) {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	out, err := json.Marshal(f)
	if err != nil {
		return appendString(b, "!ERROR:"+err.Error())
	}
	return append(b, out...)
}

// appendString writes s quoted as slog's JSON handler does: encoding/json
// without HTML escaping, but \b and \f as \u0008 and \u000c.
func appendString(b []byte, s string) []byte { return jsontree.AppendStringAs(b, s, false, false) }
