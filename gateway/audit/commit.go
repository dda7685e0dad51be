package audit

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// groupCommit writes records in batches without delaying any of them
// (group commit): a record that arrives while nothing is being written is
// written at once, in one write call; records that arrive during that
// write wait for it and are then written together, by one of them, in the
// next call. Under load one write carries the records of every request
// that finished meanwhile; alone, a record costs what it cost before.
//
// What "written" means: commit returns only after the write that carried
// the record returned — the record is in the kernel (with audit.sync, on
// stable storage) before the request's answer is released. No timer and no
// buffer outlives the request, so at exit, on SIGTERM (in-flight requests
// finish and write theirs while the server drains) and when the process
// crashes or is killed, no answered request's record is missing.
//
// When the output fails (a full disk, a lost volume), the unwritten bytes
// are retained in memory, in order, and written before anything else at
// the next batch or the next retry (every second); failing stays true
// until they are. A partial write retains the remainder only, so no line
// is written twice or torn. The retained bytes are bounded by
// maxRetained: beyond it droppable records are dropped and counted.
type groupCommit struct {
	write func([]byte) (int, error)

	mu        sync.Mutex
	cond      sync.Cond
	gathering []byte // the records of the next batch
	spare     []byte // a written batch's buffer, reused
	next      uint64 // number of the batch being gathered
	done      uint64 // number of the last batch written (or retained)
	writing   bool
	retained  []byte
	retrying  bool
	closed    bool
	// retryEvery is how often retained records are retried when no
	// request comes to carry them: a second.
	retryEvery time.Duration

	failing                                atomic.Bool
	records, batches, writeErrors, dropped atomic.Uint64
	retainedBytes                          atomic.Int64
}

// maxRetained bounds the memory kept for records that could not be
// written: about 40,000 flat records.
var maxRetained = 16 << 20

// Stats are the trail's counters since start.
type Stats struct {
	Records       uint64 // records committed (written or retained)
	Batches       uint64 // write calls that carried records
	WriteErrors   uint64 // write calls that failed
	Dropped       uint64 // records dropped because the retained memory was full
	RetainedBytes int64  // bytes waiting to be written
	Failing       bool   // records are waiting because the output failed
}

func (g *groupCommit) init(write func([]byte) (int, error)) {
	g.write = write
	g.cond.L = &g.mu
	g.next = 1
	g.retryEvery = time.Second
}

func (g *groupCommit) stats() Stats {
	return Stats{Records: g.records.Load(), Batches: g.batches.Load(), WriteErrors: g.writeErrors.Load(),
		Dropped: g.dropped.Load(), RetainedBytes: g.retainedBytes.Load(), Failing: g.failing.Load()}
}

// commit writes line (one record and its newline) as part of a batch and
// returns when that batch's write returned. line is copied; the caller may
// reuse it. A droppable record is dropped instead when the output is
// failing and maxRetained bytes are already waiting.
func (g *groupCommit) commit(line []byte, droppable bool) {
	g.mu.Lock()
	if droppable && g.failing.Load() && len(g.retained)+len(g.gathering) >= maxRetained {
		g.mu.Unlock()
		g.dropped.Add(1)
		return
	}
	g.gathering = append(g.gathering, line...)
	g.records.Add(1)
	mine := g.next
	for g.done < mine {
		if g.writing {
			g.cond.Wait()
			continue
		}
		g.lead()
	}
	g.mu.Unlock()
}

// lead writes the retained bytes and then the gathered batch; g.mu is held
// on entry and on return, and released during the writes.
func (g *groupCommit) lead() {
	batch, n := g.gathering, g.next
	g.gathering, g.spare = g.spare[:0], nil
	g.next++
	g.writing = true
	retained := g.retained
	g.retained = nil
	g.mu.Unlock()

	var err error
	if len(retained) > 0 {
		var w int
		w, err = g.write(retained)
		g.batches.Add(1)
		retained = retained[w:]
		if err != nil {
			retained = append(retained, batch...)
		}
	}
	if err == nil && len(batch) > 0 {
		var w int
		w, err = g.write(batch)
		g.batches.Add(1)
		if err != nil {
			retained = append(retained, batch[w:]...)
		}
	}

	g.mu.Lock()
	if len(retained) > 0 {
		// Copied into a buffer of its own: batch goes back for reuse.
		g.retained = append([]byte(nil), retained...)
	}
	g.retainedBytes.Store(int64(len(g.retained)))
	wasFailing := g.failing.Load()
	g.failing.Store(err != nil || len(g.retained) > 0)
	if err != nil {
		g.writeErrors.Add(1)
		if !wasFailing {
			fmt.Fprintf(os.Stderr, "audit: write failed, records retained and retried: %v\n", err)
		}
		if !g.retrying && !g.closed {
			g.retrying = true
			go g.retry()
		}
	} else if wasFailing {
		fmt.Fprintf(os.Stderr, "audit: output writable again, retained records written\n")
	}
	g.spare = batch[:0]
	g.writing = false
	g.done = n
	g.cond.Broadcast()
}

// retry writes the retained bytes every retryEvery until they are
// written, so that a quiet gateway recovers without a request.
func (g *groupCommit) retry() {
	for {
		time.Sleep(g.retryEvery)
		g.mu.Lock()
		if g.closed || !g.failing.Load() {
			g.retrying = false
			g.mu.Unlock()
			return
		}
		if !g.writing {
			g.lead()
		}
		g.mu.Unlock()
	}
}

// close makes a last attempt and returns the bytes that still could not
// be written. Commits after close are written as before (a late request
// of a drained server still gets its record).
func (g *groupCommit) close() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for g.writing {
		g.cond.Wait()
	}
	if len(g.retained) > 0 || len(g.gathering) > 0 {
		g.lead()
	}
	return g.retained
}
