package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// output is an audit output under test control: it records every write
// call, can be held (a slow disk) and can fail (a full disk), optionally
// after writing part of the batch.
type output struct {
	mu      sync.Mutex
	data    bytes.Buffer
	calls   int
	hold    chan struct{} // when set, each write waits for a receive
	failing bool          // writes fail with ENOSPC …
	partial int           // … after writing this many bytes
	inWrite atomic.Int32
}

func (o *output) Write(b []byte) (int, error) {
	o.inWrite.Add(1)
	defer o.inWrite.Add(-1)
	o.mu.Lock()
	hold := o.hold
	o.mu.Unlock()
	if hold != nil {
		<-hold
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls++
	if o.failing {
		n := min(o.partial, len(b))
		o.data.Write(b[:n])
		return n, &pathError{syscall.ENOSPC}
	}
	return o.data.Write(b)
}

type pathError struct{ err error }

func (e *pathError) Error() string { return "write audit.log: " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

func (o *output) set(f func(o *output)) {
	o.mu.Lock()
	f(o)
	o.mu.Unlock()
}

func (o *output) lines(t *testing.T) []string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.data.String()
	if s != "" && !strings.HasSuffix(s, "\n") {
		t.Fatalf("output ends inside a line: %q", s[max(0, len(s)-40):])
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func record(i int, failure string) *Record {
	return &Record{Time: time.Unix(1700000000, 0), RequestID: fmt.Sprintf("req-%06d", i), Base: "/erp", Status: 204, Failure: failure}
}

// requestIDs checks that every line is one whole JSON record and returns
// how often each request id occurs.
func requestIDs(t *testing.T, lines []string) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for _, l := range lines {
		var r struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("torn or foreign line %q: %v", l, err)
		}
		seen[r.RequestID]++
	}
	return seen
}

// Concurrent records share write calls, each is written once and whole,
// and a Write returns only after the write that carried its record.
func TestGroupCommit(t *testing.T) {
	out := &output{}
	l := New(out, false, []byte("0123456789abcdef"))
	const writers, each = 32, 100
	var wg sync.WaitGroup
	var early atomic.Int32
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				n := g*each + i
				l.Write(record(n, ""))
				out.mu.Lock()
				written := bytes.Contains(out.data.Bytes(), fmt.Appendf(nil, `"req-%06d"`, n))
				out.mu.Unlock()
				if !written {
					early.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := early.Load(); n > 0 {
		t.Errorf("%d Write calls returned before their record was written", n)
	}
	seen := requestIDs(t, out.lines(t))
	if len(seen) != writers*each {
		t.Fatalf("%d distinct records written, want %d", len(seen), writers*each)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s written %d times", id, n)
		}
	}
	st := l.Stats()
	if st.Records != writers*each || st.Batches != uint64(out.calls) || st.Failing || st.RetainedBytes != 0 {
		t.Errorf("stats %+v, %d write calls", st, out.calls)
	}
	t.Logf("%d records in %d write calls", st.Records, out.calls)
}

// While one write is under way (a slow disk), the records that arrive
// wait and then go out together in one write.
func TestRecordsArrivingDuringAWriteShareTheNext(t *testing.T) {
	out := &output{hold: make(chan struct{})}
	l := New(out, false, []byte("0123456789abcdef"))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); l.Write(record(0, "")) }()
	for out.inWrite.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	const waiting = 20
	for i := 1; i <= waiting; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); l.Write(record(i, "")) }()
	}
	for l.Stats().Records != waiting+1 {
		time.Sleep(time.Millisecond)
	}
	hold := out.hold
	out.set(func(o *output) { o.hold = nil })
	hold <- struct{}{}
	wg.Wait()
	if out.calls != 2 {
		t.Errorf("%d write calls for one record and %d that arrived during its write, want 2", out.calls, waiting)
	}
	if got := len(requestIDs(t, out.lines(t))); got != waiting+1 {
		t.Errorf("%d records written, want %d", got, waiting+1)
	}
}

// A full disk: the unwritten bytes (after a partial write) are retained,
// the log refuses, nothing is torn or doubled; when the disk has room
// again the retry alone (no request) writes them, in order.
func TestFullDiskRetainsAndRecovers(t *testing.T) {
	out := &output{}
	l := New(out, false, []byte("0123456789abcdef"))
	l.group.retryEvery = 20 * time.Millisecond
	l.Write(record(0, ""))
	out.set(func(o *output) { o.failing, o.partial = true, 37 })
	for i := 1; i <= 50; i++ {
		l.Write(record(i, ""))
	}
	if !l.Refusing() || !l.Stats().Failing || l.Stats().RetainedBytes == 0 || l.Stats().WriteErrors == 0 {
		t.Fatalf("after failed writes: refusing %v, stats %+v", l.Refusing(), l.Stats())
	}
	out.set(func(o *output) { o.failing = false })
	deadline := time.Now().Add(5 * time.Second)
	for l.Refusing() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if l.Refusing() || l.Stats().RetainedBytes != 0 {
		t.Fatalf("still refusing after the disk has room: %+v", l.Stats())
	}
	lines := out.lines(t)
	seen := requestIDs(t, lines)
	for i := 0; i <= 50; i++ {
		if id := fmt.Sprintf("req-%06d", i); seen[id] != 1 {
			t.Errorf("%s written %d times", id, seen[id])
		}
	}
	for i, line := range lines {
		if !strings.Contains(line, fmt.Sprintf(`"req-%06d"`, i)) {
			t.Fatalf("line %d out of order: %s", i, line)
		}
	}
}

// When the retained memory is full, only records of requests that were
// refused for the failing trail (they describe no action) are dropped
// under on_failure refuse; under continue any record is.
func TestRetainedMemoryBound(t *testing.T) {
	defer func(n int) { maxRetained = n }(maxRetained)
	maxRetained = 4 << 10
	for _, refuse := range []bool{true, false} {
		out := &output{failing: true}
		l := New(out, false, []byte("0123456789abcdef"))
		l.refuse = refuse
		for i := range 100 {
			l.Write(record(i, ""))
		}
		for i := 100; i < 200; i++ {
			l.Write(record(i, FailureAuditUnavailable))
		}
		st := l.Stats()
		if refuse && (st.Dropped != 100 || st.RetainedBytes < 100*100) {
			t.Errorf("refuse: %+v; want the 100 action records kept, the 100 refusals dropped", st)
		}
		if !refuse && (st.Dropped == 0 || st.RetainedBytes > int64(maxRetained)+512) {
			t.Errorf("continue: %+v; want records dropped at the bound of %d bytes", st, maxRetained)
		}
		l.group.close()
	}
}

func TestCloseWritesWhatWasRetained(t *testing.T) {
	out := &output{}
	l := New(out, false, []byte("0123456789abcdef"))
	out.set(func(o *output) { o.failing = true })
	l.Write(record(1, ""))
	out.set(func(o *output) { o.failing = false })
	if left := l.group.close(); len(left) != 0 {
		t.Fatalf("%d bytes left after close", len(left))
	}
	if seen := requestIDs(t, out.lines(t)); seen["req-000001"] != 1 {
		t.Errorf("record not written at close: %v", seen)
	}
	if !errors.Is(&pathError{syscall.ENOSPC}, syscall.ENOSPC) {
		t.Fatal("test output's error must unwrap to ENOSPC")
	}
}
