// Package linebuf batches log lines into fewer writes. A gateway that
// writes its access log line by line makes one system call per request
// for it — a tenth of the CPU of a small request in the benchmark — where
// a buffer written every few milliseconds makes one per hundreds.
//
// Each Write is kept whole: lines from concurrent writers never
// interleave, and a line is never split across two writes of the
// underlying writer unless it alone exceeds the buffer.
package linebuf

import (
	"io"
	"sync"
	"time"
)

// Writer buffers whole writes for an underlying writer. The buffer is
// written when it would exceed its size, when the oldest buffered line has
// waited the flush interval, and on Flush and Close. A zero interval makes
// it write every line through at once, unbuffered.
type Writer struct {
	mu       sync.Mutex
	w        io.Writer
	buf      []byte
	size     int
	interval time.Duration
	timer    *time.Timer // armed while lines wait
	err      error       // the first write error, returned by later calls
	closed   bool
}

// New returns a Writer for w with a buffer of size bytes, written at the
// latest interval after its oldest line.
func New(w io.Writer, size int, interval time.Duration) *Writer {
	return &Writer{w: w, size: size, interval: interval}
}

// Write buffers p (or writes it through when the interval is zero or the
// Writer is closed). It reports the first error of an earlier write of the
// buffer, once.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.takeErr(); err != nil {
		return 0, err
	}
	if b.interval <= 0 || b.closed {
		return b.w.Write(p)
	}
	if len(b.buf)+len(p) > b.size {
		b.flushLocked()
		if len(p) > b.size {
			if err := b.takeErr(); err != nil {
				return 0, err
			}
			return b.w.Write(p)
		}
	}
	if b.buf == nil {
		b.buf = make([]byte, 0, b.size)
	}
	b.buf = append(b.buf, p...)
	if b.timer == nil {
		b.timer = time.AfterFunc(b.interval, func() { b.Flush() })
	}
	return len(p), nil
}

// Flush writes what is buffered.
func (b *Writer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	return b.takeErr()
}

// Close flushes and makes later writes go straight through (a line logged
// while the process exits is not lost). It does not close the underlying
// writer.
func (b *Writer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	b.closed = true
	return b.takeErr()
}

func (b *Writer) flushLocked() {
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil && b.err == nil {
		b.err = err
	}
	b.buf = b.buf[:0]
}

func (b *Writer) takeErr() error {
	err := b.err
	b.err = nil
	return err
}
