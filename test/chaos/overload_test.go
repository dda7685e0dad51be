package chaos

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/test/procs"
	"github.com/golang-jwt/jwt/v5"
)

// maxInflight is the E-Rezept route's admission limit in the overload
// test: a few requests per core, so that admitted requests do not queue.
const maxInflight = 2

// clientConns bounds the generator's connections.
const clientConns = 16

// pinSelf pins this process to cpu and returns the other CPU for the
// processes under test ("0" when the machine has two).
func pinSelf(t *testing.T, cpu string) string {
	t.Helper()
	if out, err := exec.Command("taskset", "-a", "-p", "-c", cpu, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
		t.Skipf("taskset: %v %s", err, out)
	}
	return "0"
}

// TestOverload drives the gateway at twice its measured saturation rate
// (open loop: requests are sent on schedule whether or not earlier ones
// were answered). It must stay up and under 256 MiB RSS; admitted requests
// keep p99 under 5 × the unloaded p99; the rest are refused at once with
// 429/503 OperationOutcomes. 5 s in `make test`, 30 s in `make chaos`.
func TestOverload(t *testing.T) {
	// The load generator (this process) on one core, the gateway and the
	// backend on the other, so that the generator's own work does not
	// count against the gateway.
	pinned := pinSelf(t, "1")
	// The generator's own garbage collection would show up as gateway
	// latency: give it room.
	defer debug.SetGCPercent(debug.SetGCPercent(1000))
	fachAddr := procs.FreeAddr(t)
	fp := procs.Start(t, "taskset", "-c", pinned, filepath.Join(env.BinDir, "legacysim"), "fachdienst", "--listen", fachAddr, "--idp-key", env.KeyFile)
	procs.WaitHTTP(t, "http://"+fachAddr+"/demo/jwks.json", fp)
	gw := startGatewayOn(t, pinned, fachAddr, gtkBlock(deadline, "http://127.0.0.1:1"),
		"      - name: erp-task-abort\n        interaction: operation\n", "      - name: erp-task-abort\n        interaction: operation\n        max_inflight: "+strconv.Itoa(maxInflight)+"\n",
		"log:\n  level: info", "log:\n  level: warn")
	now := time.Now()
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/",
		"sub": "overload", "professionOID": "1.2.276.0.76.4.54", "idNummer": "3-SMC-B-Testkarte-883110000116873",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).SignedString(env.Key)
	url := gw.url + "/erp/Task/160.000.000.000.999.67/$abort?ac=" + strings.Repeat("0", 64)
	// A bounded pool of keep-alive connections, as a client fleet behind
	// a load balancer would hold; latency counts from the moment a
	// request has its connection (time spent waiting for one is the
	// generator's queue, not the gateway's).
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: clientConns, MaxIdleConnsPerHost: clientConns}, Timeout: 10 * time.Second}
	send := func() (int, time.Duration, bool) {
		var onWire time.Time
		trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { onWire = time.Now() }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodPost, url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "application/fhir+json")
		r := do(client, req)
		if r.err != nil {
			return 0, 0, false
		}
		return r.status, time.Since(onWire), bytes.Contains(r.body, []byte(`"resourceType":"OperationOutcome"`))
	}

	// Unloaded: one request at a time.
	var unloaded []time.Duration
	for i := 0; i < 300; i++ {
		status, took, _ := send()
		if status != 404 {
			t.Fatalf("unloaded request: %d", status)
		}
		unloaded = append(unloaded, took)
	}
	p99Unloaded := percentile(unloaded, 0.99)

	// Saturation: closed loop, as many workers as the route admits.
	var done atomic.Int64
	stop := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < maxInflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				if status, _, _ := send(); status == 404 {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	saturation := float64(done.Load()) / 3

	// Overload: open loop at twice saturation.
	duration := 5 * time.Second
	if full {
		duration = 30 * time.Second
	}
	rate := 2 * saturation
	var (
		mu        sync.Mutex
		admitted  []time.Duration
		refused   = map[int]int{}
		failures  []string
		maxRSS    int64
		sampling  = make(chan struct{})
		samplerWG sync.WaitGroup
	)
	samplerWG.Add(1)
	go func() {
		defer samplerWG.Done()
		for {
			if rss := rssBytes(gw.proc.Cmd.Process.Pid); rss > atomic.LoadInt64(&maxRSS) {
				atomic.StoreInt64(&maxRSS, rss)
			}
			select {
			case <-sampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	interval := time.Duration(float64(time.Second) / rate)
	begin := time.Now()
	var sent int
	var reqWG sync.WaitGroup
	for next := begin; next.Before(begin.Add(duration)); next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		sent++
		reqWG.Add(1)
		go func() {
			defer reqWG.Done()
			status, took, fhir := send()
			mu.Lock()
			defer mu.Unlock()
			switch {
			case status == 404:
				admitted = append(admitted, took)
			case (status == 429 || status == 503) && fhir:
				refused[status]++
			default:
				if len(failures) < 10 {
					failures = append(failures, strconv.Itoa(status))
				}
			}
		}()
	}
	reqWG.Wait()
	close(sampling)
	samplerWG.Wait()
	elapsed := time.Since(begin)

	p99Admitted := percentile(admitted, 0.99)
	t.Logf("saturation %.0f req/s (closed loop, %d workers); unloaded p50 %v p99 %v", saturation, maxInflight, percentile(unloaded, 0.5), p99Unloaded)
	t.Logf("overload: %d sent in %v at %.0f req/s (offered %.0f); admitted %d (%.0f req/s) p50 %v p99 %v; refused %v; max RSS %.1f MiB",
		sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Seconds(), rate, len(admitted), float64(len(admitted))/elapsed.Seconds(),
		percentile(admitted, 0.5), p99Admitted, refused, float64(maxRSS)/(1<<20))
	if len(failures) > 0 {
		t.Errorf("answers neither admitted nor a 429/503 OperationOutcome: %v", failures)
	}
	if maxRSS == 0 || maxRSS > 256<<20 {
		t.Errorf("max RSS %d bytes", maxRSS)
	}
	// Admission keeps queueing out: the median admitted request is served
	// like an unloaded one. The tail (p99 ≤ 5 × unloaded) is the full
	// suite's criterion: on a shared 2-core machine the reduced run is too
	// short to judge it.
	if p50 := percentile(admitted, 0.5); p50 > 2*p99Unloaded {
		t.Errorf("admitted p50 %v exceeds 2 × unloaded p99 %v: requests queue despite admission control", p50, p99Unloaded)
	}
	t.Logf("admitted p99 / unloaded p99 = %.1f (criterion 5)", float64(p99Admitted)/float64(p99Unloaded))
	if full && p99Admitted > 5*p99Unloaded {
		t.Errorf("admitted p99 %v exceeds 5 × unloaded p99 %v", p99Admitted, p99Unloaded)
	}
	if refused[503] == 0 {
		t.Error("nothing was refused: the load did not exceed capacity")
	}
	if status, _, _ := send(); status != 404 {
		t.Errorf("after the overload: %d", status)
	}
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// rssBytes reads VmRSS of a process (Linux).
func rssBytes(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
