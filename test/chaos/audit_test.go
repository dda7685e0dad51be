package chaos

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/test/procs"
)

// startAuditedGateway runs the gateway with its audit trail written to
// output (audit.on_failure refuse, the default).
func startAuditedGateway(t *testing.T, g *gtk, output string) *gateway {
	return startGateway(t, "127.0.0.1:1", gtkBlock(deadline, g.url),
		"audit:\n  output: none", "audit:\n  output: "+output)
}

// auditedIDs reads the audit file: request id → records. Every line must
// be one whole JSON record.
func auditedIDs(t *testing.T, file string) map[string]int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec struct {
			RequestID string `json:"request_id"`
			Status    int    `json:"status"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit line is not a whole record: %q: %v", sc.Text(), err)
		}
		ids[rec.RequestID]++
	}
	return ids
}

// TestAuditDurability: every request that got an answer has its audit
// record, however the gateway ends — killed outright mid-load (a crash:
// SIGKILL), or stopped (SIGTERM) mid-load — and no record is torn or
// written twice. (That records arriving during a write share the next
// one is shown in gateway/audit; here the counts are logged.)
func TestAuditDurability(t *testing.T) {
	for _, end := range []struct {
		name string
		stop func(g *gateway)
	}{
		{"killed (SIGKILL)", func(g *gateway) { g.proc.Kill() }},
		{"stopped (SIGTERM)", func(g *gateway) {
			g.proc.Stopped = true
			g.proc.Cmd.Process.Signal(syscall.SIGTERM)
			<-g.proc.Done
		}},
	} {
		t.Run(end.name, func(t *testing.T) {
			gk := startGtK(t)
			file := filepath.Join(t.TempDir(), "audit.log")
			gw := startAuditedGateway(t, gk, file)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 5 * time.Second}

			var mu sync.Mutex
			answered := map[string]int{} // request id → status
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						_, r := notify(t, gw, client)
						if r.err != nil {
							continue // no answer: nothing was promised
						}
						mu.Lock()
						answered[r.header.Get("X-Request-Id")] = r.status
						mu.Unlock()
					}
				}()
			}
			// Load long enough for batches to form, then end it mid-load.
			time.Sleep(1500 * time.Millisecond)
			page := metricsPage(t, gw)
			end.stop(gw)
			close(stop)
			wg.Wait()

			records := auditedIDs(t, file)
			mu.Lock()
			defer mu.Unlock()
			if len(answered) < 100 {
				t.Fatalf("only %d answers before the end: not under load", len(answered))
			}
			missing := 0
			for id, status := range answered {
				if records[id] != 1 {
					missing++
					if missing <= 5 {
						t.Errorf("request %s answered %d has %d audit records, want 1", id, status, records[id])
					}
				}
			}
			for id, n := range records {
				if n != 1 {
					t.Errorf("request %s has %d audit records", id, n)
				}
			}
			recs, writes := sample(page, "fhirgate_audit_records_total"), sample(page, "fhirgate_audit_writes_total")
			t.Logf("%d answered, %d audit records; at the scrape %v records in %v writes", len(answered), len(records), recs, writes)
			if writes <= 0 || writes > recs {
				t.Errorf("audit writes %v for %v records", writes, recs)
			}
		})
	}
}

// TestAuditFullDisk: an audit output that refuses every write (/dev/full,
// ENOSPC) — no request reaches the backend (503 OperationOutcome with
// Retry-After), /readyz is 503, the metrics say so; requests that need no
// backend (the CapabilityStatement) are still served.
func TestAuditFullDisk(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full here")
	}
	gk := startGtK(t)
	gw := startAuditedGateway(t, gk, "/dev/full")
	client := &http.Client{}
	value, first := notify(t, gw, client) // its record cannot be written
	if first.status != http.StatusCreated {
		t.Fatalf("first notification: %d %s (the backend confirmed it; the answer must say so)", first.status, first.body)
	}
	if !gk.ids(t)[value] {
		t.Fatalf("first notification not at the GtK")
	}
	for i := range 5 {
		value, r := notify(t, gw, client)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" ||
			!strings.Contains(string(r.body), `"OperationOutcome"`) || !strings.Contains(string(r.body), "audit trail cannot be written") {
			t.Fatalf("notification %d with a full audit disk: %d %v %s", i, r.status, r.header, r.body)
		}
		if gk.ids(t)[value] {
			t.Fatalf("notification %d reached the GtK although its record could not be written", i)
		}
	}
	resp, err := http.Get(gw.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d with a failing audit trail, want 503", resp.StatusCode)
	}
	meta, err := http.Get(gw.url + "/twiin/metadata")
	if err != nil {
		t.Fatal(err)
	}
	meta.Body.Close()
	if meta.StatusCode != http.StatusOK {
		t.Errorf("/twiin/metadata %d, want 200 (no backend, no action)", meta.StatusCode)
	}
	page := metricsPage(t, gw)
	if sample(page, "fhirgate_audit_failing") != 1 || sample(page, "fhirgate_audit_write_errors_total") < 1 ||
		sample(page, "fhirgate_audit_retained_bytes") <= 0 {
		t.Errorf("audit metrics do not show the failure:\n%s", grepLines(page, "fhirgate_audit_"))
	}
	if !strings.Contains(gw.proc.Out.String(), "audit: write failed") {
		t.Errorf("no log line about the failing audit output:\n%s", gw.proc.Out.String())
	}
}

func metricsPage(t *testing.T, g *gateway) string { return procs.Scrape(t, g.admin) }

// sample is a sample's value in a /metrics page, -1 when absent.
func sample(page, name string) float64 {
	v, ok := procs.Sample(page, name)
	if !ok {
		return -1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return -1
	}
	return f
}

func grepLines(page, prefix string) string {
	var out []string
	for _, l := range strings.Split(page, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
