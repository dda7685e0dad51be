package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/test/procs"
	"github.com/golang-jwt/jwt/v5"
)

// fullStack is `make run`: both simulators and the gateway with the
// default routes.yaml (addresses replaced by free ones).
type fullStack struct {
	gw, admin, fach, gtk string // base URLs
	file                 string // the gateway's configuration file
	gwProc               *proc
}

// Edits applied to routes.yaml for load: a rate limit per subject far
// above what the test sends, so that only what is under test can fail.
var loadEdits = []string{"requests: 20\n      per: 1s\n      burst: 40", "requests: 1000000\n      per: 1s\n      burst: 1000000"}

func startFull(t *testing.T, gwArgs []string, edits ...string) *fullStack {
	t.Helper()
	gw, admin, fach, gtk := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	pairs := append([]string{"127.0.0.1:8080", gw, "127.0.0.1:9090", admin, "127.0.0.1:9101", fach, "127.0.0.1:9102", gtk}, edits...)
	s := &fullStack{gw: "http://" + gw, admin: "http://" + admin, fach: "http://" + fach, gtk: "http://" + gtk}
	s.file = writeRoutes(t, "../../routes.yaml", pairs...)
	fp := start(t, "legacysim", "fachdienst", "--listen", fach, "--idp-key", env.KeyFile)
	gp := start(t, "legacysim", "gtk", "--listen", gtk, "--idp-key", env.KeyFile)
	waitHTTP(t, s.fach+"/demo/jwks.json", fp)
	waitHTTP(t, s.gtk+"/demo/jwks.json", gp)
	s.gwProc = start(t, "fhirgate", append([]string{"serve", "--config", s.file}, gwArgs...)...)
	waitHTTP(t, s.admin+"/readyz", s.gwProc)
	t.Cleanup(func() {
		// A crash or (in a -race build: GOFLAGS=-race go test ./test/e2e)
		// a data race of the gateway is shown, not just its symptom.
		out := s.gwProc.Out.String()
		if i := strings.Index(out, "WARNING: DATA RACE"); i >= 0 {
			t.Errorf("the gateway has a data race:\n%.4000s", out[i:])
		} else if i := strings.Index(out, "\npanic: "); i >= 0 && t.Failed() {
			t.Logf("the gateway's panic:\n%.4000s", out[i:])
		} else if i := strings.Index(out, "fatal error: "); i >= 0 && t.Failed() {
			t.Logf("the gateway's fatal error:\n%.4000s", out[i:])
		}
	})
	return s
}

// metric reads one sample of the gateway's /metrics; name includes the
// label set as exposed, e.g. fhirgate_config_reloads_total{result="success"}.
func (s *fullStack) metric(t *testing.T, name string) float64 {
	t.Helper()
	rest, ok := procs.Sample(s.scrape(t), name)
	if !ok {
		return 0
	}
	v, err := strconv.ParseFloat(rest, 64)
	if err != nil {
		t.Fatalf("%s %s: %v", name, rest, err)
	}
	return v
}

func (s *fullStack) scrape(t *testing.T) string {
	t.Helper()
	return procs.Scrape(t, s.admin)
}

// mixRequest is one request of the traffic mix with the answer it must get.
type mixRequest struct {
	name   string
	status int
	text   string // a prefix of the first issue's text; "" for no body
	build  func(i int64) *http.Request
}

// trafficMix covers both bases, backend round trips and gateway-only
// answers. Every request is valid for any number of repetitions: Twiin
// notifications carry a fresh identifier each time.
func (s *fullStack) trafficMix(t *testing.T) []mixRequest {
	erpToken := token(t, jwt.MapClaims{"sub": "load-pharmacy", "professionOID": "1.2.276.0.76.4.54", "idNummer": "3-SMC-B-Testkarte-883110000116873"})
	twToken := twiinToken(t, nil)
	abort := func(method string) func(int64) *http.Request {
		return func(int64) *http.Request {
			req, _ := http.NewRequest(method, s.gw+"/erp/Task/160.000.000.000.999.67/$abort?ac="+strings.Repeat("0", 64), nil)
			req.Header.Set("Authorization", "Bearer "+erpToken)
			return req
		}
	}
	twiin := func(body func(i int64) []byte) func(int64) *http.Request {
		return func(i int64) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, s.gw+"/twiin/Task", bytes.NewReader(body(i)))
			req.Header.Set("Content-Type", "application/fhir+json")
			req.Header.Set("Authorization", "Bearer "+twToken)
			return req
		}
	}
	return []mixRequest{
		{"E-Rezept $abort of an unknown Task (backend 404)", 404, "Task not found for prescription id", abort(http.MethodPost)},
		{"E-Rezept GET on $abort (gateway 405)", 405, "no matching handler found.", abort(http.MethodGet)},
		{"Twiin-01 notification (backend 201)", 201, "", twiin(func(i int64) []byte {
			b, _ := json.Marshal(notification("urn:oid:2.16.528.1.1007.99.3999", fmt.Sprintf("load-%d-%d", time.Now().UnixNano(), i), nil))
			return b
		})},
		{"Twiin-01 notification that is no Task (gateway 400)", 400, "", twiin(func(int64) []byte { return []byte(`{"resourceType":"Patient"}`) })},
	}
}

// load sends the traffic mix from workers until stop is closed and
// returns the number of answers and every deviation from the expected
// answer (transport errors included).
type loadResult struct {
	mu       sync.Mutex
	answered atomic.Int64
	failures []string
}

func (r *loadResult) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.failures) < 20 {
		r.failures = append(r.failures, fmt.Sprintf(format, args...))
	} else {
		r.failures[19] = "… and more"
	}
}

func runLoad(mix []mixRequest, workers int, stop <-chan struct{}) (*loadResult, *sync.WaitGroup) {
	res := &loadResult{}
	var wg sync.WaitGroup
	var seq atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := seq.Add(1)
				m := mix[int(i)%len(mix)]
				resp, err := client.Do(m.build(i))
				if err != nil {
					res.fail("%s: %v", m.name, err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				res.answered.Add(1)
				if resp.StatusCode != m.status {
					res.fail("%s: status %d, want %d: %.200s", m.name, resp.StatusCode, m.status, body)
					continue
				}
				if m.text != "" && !bytes.Contains(body, []byte(m.text)) {
					res.fail("%s: body lacks %q: %.200s", m.name, m.text, body)
				}
			}
		}()
	}
	return res, &wg
}

// replaceFile writes data next to file and renames it over file, so that
// the watcher never reads half a file.
func replaceFile(t *testing.T, file string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(file), ".routes.yaml.tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// TestReloadUnderLoad replaces the configuration 50 times, valid and
// invalid alternately, while the traffic mix runs: no request fails, each
// valid version serves from its reload on, each invalid one leaves the
// previous version serving, and the reload counters show every attempt.
func TestReloadUnderLoad(t *testing.T) {
	s := startFull(t, []string{"--watch", "20ms"}, loadEdits...)
	mix := s.trafficMix(t)
	for _, m := range mix { // each request of the mix answers as expected when alone
		res, wg := runLoad([]mixRequest{m}, 1, closedAfter(1))
		wg.Wait()
		if len(res.failures) > 0 {
			t.Fatalf("before the load: %v", res.failures)
		}
	}
	original, err := os.ReadFile(s.file)
	if err != nil {
		t.Fatal(err)
	}
	invalid := []func(string) string{
		func(c string) string { return c + "\nsurprise: 1\n" },
		func(c string) string { return c[:len(c)/2] + "\n  - ]\n" },
		func(c string) string { return strings.Replace(c, "backend: gtk", "backend: nowhere", 1) },
		func(c string) string { return strings.Replace(c, "${path.id}", "${path.id", 1) },
	}
	stop := make(chan struct{})
	res, wg := runLoad(mix, 4, stop)
	success0 := s.metric(t, `fhirgate_config_reloads_total{result="success"}`)
	failure0 := s.metric(t, `fhirgate_config_reloads_total{result="failure"}`)
	current := "Task not found for prescription id"
	for i := 0; i < 50; i++ {
		valid := i%2 == 0
		if valid {
			current = fmt.Sprintf("Task not found for prescription id (version %d)", i)
			replaceFile(t, s.file, bytes.Replace(original, []byte("Task not found for prescription id"), []byte(current), 1))
		} else {
			replaceFile(t, s.file, []byte(invalid[(i/2)%len(invalid)](string(original))))
		}
		wantS, wantF := success0+float64(i/2+1), failure0+float64((i+1)/2)
		deadline := time.Now().Add(10 * time.Second)
		for {
			gotS := s.metric(t, `fhirgate_config_reloads_total{result="success"}`)
			gotF := s.metric(t, `fhirgate_config_reloads_total{result="failure"}`)
			if gotS == wantS && gotF == wantF {
				break
			}
			if gotS > wantS || gotF > wantF || time.Now().After(deadline) {
				t.Fatalf("replacement %d: reloads success=%v failure=%v, want %v and %v", i, gotS, gotF, wantS, wantF)
			}
			time.Sleep(10 * time.Millisecond)
		}
		probe, pwg := runLoad([]mixRequest{{mix[0].name, 404, current, mix[0].build}}, 1, closedAfter(1))
		pwg.Wait()
		if len(probe.failures) > 0 {
			t.Fatalf("replacement %d (valid=%v): %v", i, valid, probe.failures)
		}
	}
	// SIGHUP reloads too, without a file change: the last replacement was
	// invalid, so it is rejected once more.
	s.gwProc.Cmd.Process.Signal(syscall.SIGHUP)
	waitMetric(t, s, `fhirgate_config_reloads_total{result="failure"}`, failure0+26)
	close(stop)
	wg.Wait()
	if len(res.failures) > 0 {
		t.Errorf("%d requests answered, failures:\n%s", res.answered.Load(), strings.Join(res.failures, "\n"))
	}
	if res.answered.Load() < 200 {
		t.Errorf("only %d requests during the reloads: the load proves little", res.answered.Load())
	}
	t.Logf("%d requests answered during 50 replacements + SIGHUP; reloads success=%v failure=%v",
		res.answered.Load(), s.metric(t, `fhirgate_config_reloads_total{result="success"}`), s.metric(t, `fhirgate_config_reloads_total{result="failure"}`))
	if !strings.Contains(s.gwProc.Out.String(), `"msg":"configuration rejected; the previous one keeps serving"`) {
		t.Error("rejections are not logged")
	}
}

// closedAfter returns a channel closed after n requests' worth of time:
// the single-request probes above stop after their first answer.
func closedAfter(n int) <-chan struct{} {
	c := make(chan struct{})
	go func() { time.Sleep(time.Duration(n) * 50 * time.Millisecond); close(c) }()
	return c
}

func waitMetric(t *testing.T, s *fullStack, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.metric(t, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, s.metric(t, name), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownUnderLoad: SIGTERM during continuous traffic. A load
// balancer (a goroutine polling /readyz, as Kubernetes does) stops sending
// once readiness fails; requests sent before that, and slow ones in flight
// when the listener closes, are all answered; the gateway exits 0 within
// drain delay + grace.
func TestShutdownUnderLoad(t *testing.T) {
	const drain, grace = 500 * time.Millisecond, 5 * time.Second
	// Log lines are batched for an hour: only the shutdown writes them,
	// and it must write every one.
	s := startFull(t, nil, append(loadEdits, "drain_delay: 200ms", "drain_delay: "+drain.String(),
		"log:\n  level: info\n", "log:\n  level: info\n  flush_interval: 1h\n")...)
	// Backend calls take 300 ms, so requests are in flight when the listener closes.
	resp, err := http.Post(s.gtk+"/admin/fault?mode=delay&count=1000000&delay=300ms", "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("fault: %v %v", err, resp)
	}
	stop := make(chan struct{})
	var notReadyAt atomic.Int64
	go func() { // the load balancer
		for {
			r, err := http.Get(s.admin + "/readyz")
			if err != nil || r.StatusCode != http.StatusOK {
				notReadyAt.Store(time.Now().UnixNano())
				close(stop)
				return
			}
			r.Body.Close()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	res, wg := runLoad(s.trafficMix(t), 8, stop)
	time.Sleep(time.Second)
	before := res.answered.Load()
	sigterm := time.Now()
	s.gwProc.Cmd.Process.Signal(syscall.SIGTERM)
	var exitErr error
	select {
	case exitErr = <-s.gwProc.Done:
		s.gwProc.Stopped = true
	case <-time.After(drain + grace + 2*time.Second):
		t.Fatal("the gateway did not exit within drain delay + grace")
	}
	took := time.Since(sigterm)
	wg.Wait()
	if exitErr != nil {
		t.Errorf("exit: %v\n%s", exitErr, s.gwProc.Out.String())
	}
	if len(res.failures) > 0 {
		t.Errorf("failures:\n%s", strings.Join(res.failures, "\n"))
	}
	after := res.answered.Load() - before
	if after == 0 {
		t.Error("no request was answered after SIGTERM: nothing was in flight")
	}
	if n := notReadyAt.Load(); n == 0 || time.Unix(0, n).Sub(sigterm) > 200*time.Millisecond {
		t.Errorf("readiness did not turn false promptly after SIGTERM")
	}
	t.Logf("%d requests before SIGTERM, %d answered after it; exit after %v", before, after, took.Round(time.Millisecond))
	// Readiness failed before the listener closed.
	out := s.gwProc.Out.String()
	if i, j := strings.Index(out, `"msg":"draining"`), strings.Index(out, `"msg":"shutting down"`); i < 0 || j < i {
		t.Errorf("log does not show draining before shutdown:\n%s", lastLines(out, 5))
	}
	if n := int64(strings.Count(out, `"msg":"request"`)); n < res.answered.Load() || !strings.Contains(out, `"msg":"stopped"`) {
		t.Errorf("%d access log lines for %d answered requests (stopped logged: %v): batched lines lost at exit",
			n, res.answered.Load(), strings.Contains(out, `"msg":"stopped"`))
	}
}

func lastLines(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// metricNames are the series names the dashboard and the alert rules
// query (up, Prometheus' own, excluded).
func metricNames(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("../../charts/fhirgate/dashboards/*.json")
	files = append(files, "../../charts/fhirgate/rules/fhirgate-alerts.yaml")
	names := map[string]bool{}
	re := regexp.MustCompile(`\b(?:fhirgate|process|go)_[a-z_]+[a-z]\b`)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllString(string(data), -1) {
			names[m] = true
		}
	}
	var out []string
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// TestMetricsCoverDashboardAndRules scrapes a gateway after a traffic mix
// (successes, refusals, validation failures, a backend timeout) and finds a
// sample of every series the dashboard and the alert rules query.
func TestMetricsCoverDashboardAndRules(t *testing.T) {
	s := startFull(t, nil, loadEdits...)
	res, wg := runLoad(s.trafficMix(t), 2, closedAfter(4))
	wg.Wait()
	if len(res.failures) > 0 {
		t.Fatal(res.failures)
	}
	exposed := map[string]bool{}
	for _, line := range strings.Split(s.scrape(t), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		exposed[name] = true
	}
	names := metricNames(t)
	if len(names) < 10 {
		t.Fatalf("only %d names found in the dashboard and rules: %v", len(names), names)
	}
	for _, n := range names {
		// Series of a limit store exist per configured store; this stack
		// has none (make run). test/monitoring runs one on a real Redis and
		// queries every dashboard panel, these included.
		if strings.HasPrefix(n, "fhirgate_limit_store_") {
			continue
		}
		if !exposed[n] {
			t.Errorf("%s is queried by the dashboard or the rules but not exposed", n)
		}
	}
	t.Logf("%d series names used by the dashboard and rules, all exposed", len(names))
}
