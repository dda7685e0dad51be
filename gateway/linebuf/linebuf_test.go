package linebuf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder keeps every write of the underlying writer apart.
type recorder struct {
	mu     sync.Mutex
	writes []string
	fail   error
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return 0, r.fail
	}
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func TestWrites(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		interval time.Duration
		lines    []string
		flush    bool
		want     []string // the underlying writes, in order
	}{
		{"unbuffered: every line at once", 64, 0, []string{"a\n", "b\n"}, false, []string{"a\n", "b\n"}},
		{"buffered: nothing before the flush", 64, time.Hour, []string{"a\n", "b\n"}, false, nil},
		{"buffered: one write at the flush", 64, time.Hour, []string{"a\n", "b\n", "c\n"}, true, []string{"a\nb\nc\n"}},
		{"full buffer written before the line that does not fit", 5, time.Hour, []string{"ab\n", "cd\n", "e\n"}, true, []string{"ab\n", "cd\ne\n"}},
		{"a line larger than the buffer goes whole", 4, time.Hour, []string{"a\n", "0123456789\n", "b\n"}, true, []string{"a\n", "0123456789\n", "b\n"}},
		{"flush of an empty buffer writes nothing", 64, time.Hour, nil, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			w := New(rec, tt.size, tt.interval)
			for _, l := range tt.lines {
				if n, err := w.Write([]byte(l)); n != len(l) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", l, n, err)
				}
			}
			if tt.flush {
				if err := w.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			if got := rec.snapshot(); strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
				t.Errorf("writes %q, want %q", got, tt.want)
			}
		})
	}
}

// A buffered line is written by the timer once the interval has passed,
// without any further write or flush.
func TestIntervalFlush(t *testing.T) {
	rec := &recorder{}
	w := New(rec, 1<<10, 20*time.Millisecond)
	w.Write([]byte("late\n"))
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.snapshot()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the buffered line was never written")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := rec.snapshot(); len(got) != 1 || got[0] != "late\n" {
		t.Fatalf("writes %q", got)
	}
}

// Close writes what is buffered; lines after it go straight through.
func TestClose(t *testing.T) {
	rec := &recorder{}
	w := New(rec, 1<<10, time.Hour)
	w.Write([]byte("a\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("b\n"))
	if got := rec.snapshot(); strings.Join(got, "|") != "a\n|b\n" {
		t.Fatalf("writes %q", got)
	}
}

// A failed write of the buffer is reported by the next call, once.
func TestErrorReported(t *testing.T) {
	rec := &recorder{fail: errors.New("disk full")}
	w := New(rec, 1<<10, time.Hour)
	w.Write([]byte("a\n"))
	if err := w.Flush(); err == nil || err.Error() != "disk full" {
		t.Fatalf("Flush: %v", err)
	}
	w.Write([]byte("b\n"))
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	if err := w.Flush(); err != nil {
		t.Fatalf("second Flush: %v (the error was already reported)", err)
	}
}

// Lines of concurrent writers arrive whole, each once.
func TestConcurrentLinesStayWhole(t *testing.T) {
	rec := &recorder{}
	w := New(rec, 256, time.Millisecond)
	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				fmt.Fprintf(w, "writer %d line %04d ............................\n", g, i)
			}
		}()
	}
	wg.Wait()
	w.Close()
	var all bytes.Buffer
	for _, wr := range rec.snapshot() {
		if !strings.HasSuffix(wr, "\n") {
			t.Fatalf("a write ends inside a line: %q", wr)
		}
		all.WriteString(wr)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSuffix(all.String(), "\n"), "\n") {
		var g, i int
		if _, err := fmt.Sscanf(l, "writer %d line %d", &g, &i); err != nil || seen[l] {
			t.Fatalf("line %q broken or repeated", l)
		}
		seen[l] = true
	}
	if len(seen) != writers*lines {
		t.Fatalf("%d lines, want %d", len(seen), writers*lines)
	}
}

// The point of the package: many lines, few system calls (the file is
// /dev/null: the cost measured is the call, not a disk).
func BenchmarkLogLine(b *testing.B) {
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devNull.Close()
	line := []byte(`{"time":"2026-11-29T06:44:59Z","level":"INFO","msg":"request","route":"erp-abort","status":204,"ms":0.2}` + "\n")
	for _, interval := range []time.Duration{0, 100 * time.Millisecond} {
		b.Run(fmt.Sprintf("interval=%v", interval), func(b *testing.B) {
			w := New(devNull, 64<<10, interval)
			b.ReportAllocs()
			for b.Loop() {
				w.Write(line)
			}
			w.Close()
		})
	}
}

// A line too large for the buffer is written through, and its own write
// error is returned.
func TestLargeLineError(t *testing.T) {
	rec := &recorder{fail: errors.New("pipe closed")}
	w := New(rec, 4, time.Hour)
	if _, err := w.Write([]byte("0123456789\n")); err == nil || err.Error() != "pipe closed" {
		t.Fatalf("Write: %v", err)
	}
}
