// Package monitoring does what an operator does: the real gateway and
// legacy simulators, scraped every second by a real Prometheus (Debian's
// package, installed by scripts/install-prometheus.sh, which `make test`
// runs) that evaluates the chart's alert rules — a copy with windows and
// `for:` durations short enough for a test — through traffic, a backend
// outage and a broken configuration file.
//
// It holds the numbers to what the gateway itself logged: the increase of
// every request counter over the run equals the access log's count, every
// dashboard query returns data, and the alerts an outage calls for are
// firing during it and resolved after it.
package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/test/fixtures"
	"github.com/fhirgate/fhirgate/test/procs"
	"github.com/fhirgate/fhirgate/test/redisproc"
	"github.com/golang-jwt/jwt/v5"
)

var env *procs.Env

func TestMain(m *testing.M) { os.Exit(procs.Main(m, "fhirgate-monitoring-", &env)) }

// prometheusBinary finds Debian's prometheus. Without it the test cannot
// run: in CI (CI set) that fails; elsewhere it is skipped with the command
// that installs it.
func prometheusBinary(t *testing.T) string {
	bin, err := exec.LookPath("prometheus")
	if err == nil {
		return bin
	}
	if os.Getenv("CI") != "" {
		t.Fatal("prometheus is not installed: scripts/install-prometheus.sh installs it (make test runs it)")
	}
	t.Skip("prometheus is not installed: run scripts/install-prometheus.sh (make test does)")
	return ""
}

// stack is the make run stack on free ports, plus Prometheus.
type stack struct {
	gw, admin, fach, gtk, prom string
	gwProc                     *procs.Proc
	redis                      *redisproc.Server // the shared limit store of the E-Rezept subjects
	routes                     string            // the gateway's configuration file
	good                       []byte            // its valid content
}

// testRules is the chart's rule file with durations for a test: 15 s
// rate windows instead of minutes, and `for:` of one second, so that
// alerts follow an outage of a few seconds.
func testRules(t *testing.T) []byte {
	data, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "charts/fhirgate/rules/fhirgate-alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`\[(5m|30m|1h|6h)\]`).ReplaceAllString(string(data), "[15s]")
	s = regexp.MustCompile(`for: \d+[smh]`).ReplaceAllString(s, "for: 1s")
	if s == string(data) {
		t.Fatal("the rule file's windows were not shortened")
	}
	return []byte(s)
}

func startStack(t *testing.T) *stack {
	t.Helper()
	gw, admin, fach, gtk, prom := procs.FreeAddr(t), procs.FreeAddr(t), procs.FreeAddr(t), procs.FreeAddr(t), procs.FreeAddr(t)
	s := &stack{gw: "http://" + gw, admin: "http://" + admin, fach: "http://" + fach, gtk: "http://" + gtk, prom: "http://" + prom}
	fachProc := procs.Start(t, filepath.Join(env.BinDir, "legacysim"), "fachdienst", "--listen", fach, "--idp-key", env.KeyFile)
	gtkProc := procs.Start(t, filepath.Join(env.BinDir, "legacysim"), "gtk", "--listen", gtk, "--idp-key", env.KeyFile)
	procs.WaitHTTP(t, s.fach+"/demo/jwks.json", fachProc)
	procs.WaitHTTP(t, s.gtk+"/demo/jwks.json", gtkProc)
	// The GtK's breaker opens after 3 failures and probes after 4 s;
	// rate limits out of the way (the E-Rezept one kept in a real Redis,
	// so that the limit-store series and panel have data); no audit trail
	// (the access log is the reference), every log line written at once.
	s.redis = redisproc.Start(t)
	s.routes = procs.WriteRoutes(t, "../../routes.yaml",
		"127.0.0.1:8080", gw, "127.0.0.1:9090", admin, "127.0.0.1:9101", fach, "127.0.0.1:9102", gtk,
		"    urls: [http://"+gtk+"]\n    timeout: 5s\n", "    urls: [http://"+gtk+"]\n    timeout: 5s\n    circuit_breaker: {consecutive_failures: 3, open_for: 4s}\n    retry: {attempts: 1}\n",
		"requests: 20\n      per: 1s\n      burst: 40", "requests: 100000\n      per: 1s\n      burst: 100000\n      store: shared",
		"audit:\n  output: stderr", "audit:\n  output: none",
		"\ntracing:\n", "\nlimit_stores:\n  shared: {url: \""+s.redis.URL()+"\", timeout: 50ms}\ntracing:\n")
	var err error
	if s.good, err = os.ReadFile(s.routes); err != nil {
		t.Fatal(err)
	}
	s.gwProc = procs.Start(t, filepath.Join(env.BinDir, "fhirgate"), "serve", "--config", s.routes, "--watch", "100ms")
	procs.WaitHTTP(t, s.admin+"/readyz", s.gwProc)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), testRules(t), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yaml]
scrape_configs:
  - job_name: fhirgate
    static_configs: [{targets: ["%s"]}]
`, admin)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	promProc := procs.Start(t, prometheusBinary(t), "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+prom, "--log.level=warn")
	procs.WaitHTTP(t, s.prom+"/-/ready", promProc)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(s.prom + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus not ready: %v\n%s", err, promProc.Out.String())
		}
	}
	return s
}

// query evaluates an instant query at time at (zero: now).
func (s *stack) query(t *testing.T, q string, at float64) []sample {
	t.Helper()
	v := url.Values{"query": {q}}
	if at != 0 {
		v.Set("time", strconv.FormatFloat(at, 'f', 3, 64))
	}
	resp, err := http.Get(s.prom + "/api/v1/query?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, out.Error)
	}
	var samples []sample
	for _, r := range out.Data.Result {
		ts, _ := r.Value[0].(float64)
		text, _ := r.Value[1].(string)
		f, _ := strconv.ParseFloat(text, 64)
		samples = append(samples, sample{labels: r.Metric, at: ts, value: f})
	}
	return samples
}

type sample struct {
	labels map[string]string
	at     float64
	value  float64
}

// lastScrape is the time of the newest scrape of the gateway.
func (s *stack) lastScrape(t *testing.T) float64 {
	r := s.query(t, `timestamp(up{job="fhirgate"})`, 0)
	if len(r) != 1 {
		return 0
	}
	return r[0].value
}

// scrapeAfter waits for a scrape that started after now and returns its time.
func (s *stack) scrapeAfter(t *testing.T) float64 {
	t.Helper()
	now := float64(time.Now().UnixMilli()) / 1000
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ts := s.lastScrape(t); ts > now {
			return ts
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("Prometheus did not scrape the gateway")
	return 0
}

// waitAlert waits until alert is firing (want true) or not (false).
func (s *stack) waitAlert(t *testing.T, alert string, want bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		firing := len(s.query(t, `ALERTS{alertname="`+alert+`", alertstate="firing"}`, 0)) > 0
		if firing == want {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s firing should be %v within %v", alert, want, within)
}

func sign(t *testing.T, claims jwt.MapClaims) string {
	now := time.Now()
	claims["iat"], claims["exp"] = now.Unix(), now.Add(time.Hour).Unix()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(env.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// send makes one request and returns its status.
func send(t *testing.T, method, url, token, contentType string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestPrometheusSeesWhatTheLogSays(t *testing.T) {
	s := startStack(t)
	// The series are there, at zero, before the first request.
	t0 := s.scrapeAfter(t)
	if n := len(s.query(t, `fhirgate_requests_total{job="fhirgate"} == 0`, t0)); n == 0 {
		t.Fatal("no request series before the first request: increase() would lose the first increments")
	}

	prescriber := sign(t, jwt.MapClaims{"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/", "sub": "p1", "professionOID": "1.2.276.0.76.4.50", "idNummer": "1-X"})
	twiin := sign(t, jwt.MapClaims{"iss": "https://twiin-idp.fhirgate.example", "aud": "https://gtk.fhirgate.example/", "sub": "sending-gtk-1", "scope": "tanp"})
	abort := s.gw + "/erp/Task/160.000.033.491.280.78/$abort?ac=777bea0e13cc9c42ceec14aec3ddee2263325dc2c6c699db115f58fe423607ea"
	notify := func(i int) int {
		body, _ := json.Marshal(fixtures.Notification("urn:ietf:rfc:3986", fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i), nil))
		return send(t, "POST", s.gw+"/twiin/Task", twiin, "application/fhir+json", body)
	}

	// Traffic: confirmations, refusals, token and body errors.
	want := map[int]int{}
	count := func(status int) { want[status]++ }
	count(send(t, "POST", abort, prescriber, "", nil))                                       // 204
	count(send(t, "POST", abort, prescriber, "", nil))                                       // 410: gone
	count(send(t, "POST", s.gw+"/erp/Task/160.000.000.000.102.42/$abort", "", "", nil))      // 400: no token
	count(send(t, "POST", s.gw+"/erp/Task/160.000.000.000.102.42/$abort", "x.y.z", "", nil)) // 401
	for i := 0; i < 20; i++ {
		count(notify(i)) // 201
	}
	count(send(t, "POST", s.gw+"/twiin/Task", twiin, "text/plain", []byte("hello"))) // 415
	count(send(t, "POST", s.gw+"/twiin/Task", twiin, "application/fhir+json", []byte(`{"resourceType":"Task"}`)))
	count(send(t, "GET", s.gw+"/nowhere", "", "", nil)) // 404
	for _, st := range []int{204, 410, 400, 401, 201, 415, 404} {
		if want[st] == 0 {
			t.Errorf("no %d in the traffic: %v", st, want)
		}
	}

	// An outage of the GtK: every call fails, the breaker opens (calls
	// not made) and probes fail again.
	http.Post(s.gtk+"/admin/fault?mode=status500&count=100000", "", nil)
	outageEnd := time.Now().Add(8 * time.Second)
	for i := 100; time.Now().Before(outageEnd); i++ {
		count(notify(i))
		time.Sleep(50 * time.Millisecond)
	}
	if want[502] == 0 || want[503] == 0 {
		t.Fatalf("the outage gave no 502 (failed calls) or no 503 (breaker open): %v", want)
	}
	s.waitAlert(t, "FhirgateBackendErrorRatioHigh", true, 10*time.Second)
	s.waitAlert(t, "FhirgateCircuitBreakerOpen", true, 10*time.Second)
	if refused := s.query(t, `fhirgate_backend_refusals_total{backend="gtk"}`, 0); len(refused) != 1 || refused[0].value == 0 {
		t.Errorf("breaker refusals not counted apart: %v", refused)
	}

	// Recovery: the GtK answers again; healthy traffic until both
	// alerts resolve (the breaker closes on its first good probe, the
	// error ratio falls below 10 % as the window slides).
	http.Post(s.gtk+"/admin/fault?mode=", "", nil)
	recovered := time.Now().Add(40 * time.Second)
	for i := 1000; ; i++ {
		count(notify(i))
		time.Sleep(100 * time.Millisecond)
		ratio := len(s.query(t, `ALERTS{alertname="FhirgateBackendErrorRatioHigh", alertstate="firing"}`, 0))
		breaker := len(s.query(t, `ALERTS{alertname="FhirgateCircuitBreakerOpen", alertstate="firing"}`, 0))
		if ratio == 0 && breaker == 0 {
			break
		}
		if time.Now().After(recovered) {
			t.Fatalf("alerts still firing 40 s after the backend recovered: error ratio %d, breaker %d", ratio, breaker)
		}
	}

	// A broken configuration file: rejected, the alert fires; fixed: resolved.
	if err := os.WriteFile(s.routes, append(append([]byte{}, s.good...), []byte("\nsurprise: 1\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitAlert(t, "FhirgateConfigReloadFailing", true, 15*time.Second)
	if err := os.WriteFile(s.routes, s.good, 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitAlert(t, "FhirgateConfigReloadFailing", false, 15*time.Second)

	// The counters against the access log: increase() over the run,
	// evaluated at a scrape after the last request, equals the number of
	// log lines for every route and status.
	t1 := s.scrapeAfter(t)
	logged := map[string]float64{}
	for _, line := range strings.Split(s.gwProc.Out.String(), "\n") {
		var l struct {
			Msg, Route string
			Status     int
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "request" {
			logged[l.Route+" "+strconv.Itoa(l.Status)]++
		}
	}
	total := 0
	for _, n := range want {
		total += n
	}
	if sum := sumValues(logged); sum != float64(total) {
		t.Fatalf("the access log has %v lines, the test sent %d requests", sum, total)
	}
	// A request refused by the base's Authorization check, before its
	// route ran, is labelled with the route its path and method match.
	if logged["erp-task-abort 400"] != 1 || logged["unmatched 400"] != 0 {
		t.Errorf("the request without a token is not labelled with its route: %v", logged)
	}
	window := fmt.Sprintf("[%dms]", int64((t1-t0)*1000)+500)
	counted := map[string]float64{}
	for _, r := range s.query(t, `increase(fhirgate_requests_total{job="fhirgate"}`+window+`)`, t1) {
		if r.value != 0 {
			counted[r.labels["route"]+" "+r.labels["code"]] = r.value
		}
	}
	for k, n := range logged {
		if c := counted[k]; c < n-1e-9 || c > n+1e-9 {
			t.Errorf("%s: increase() %v, access log %v", k, c, n)
		}
	}
	for k, c := range counted {
		if _, ok := logged[k]; !ok {
			t.Errorf("%s: increase() %v, not in the access log", k, c)
		}
	}
	t.Logf("%d requests; by route and status: %v", total, logged)

	// Every dashboard query returns data.
	s.dashboardQueriesReturnData(t, t1)

	// The limit store stops answering: the alert fires; back: it ends.
	s.redis.Kill()
	token := sign(t, jwt.MapClaims{"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/", "sub": "p2", "professionOID": "1.2.276.0.76.4.50", "idNummer": "1-X"})
	for range 3 { // a limited request notices at once; the probe afterwards
		send(t, http.MethodPost, s.gw+"/erp/Task/160.000.000.000.000.01/$abort", token, "", nil)
	}
	s.waitAlert(t, "FhirgateLimitStoreDown", true, 15*time.Second)
	s.redis.Restart(t)
	s.waitAlert(t, "FhirgateLimitStoreDown", false, 15*time.Second)
}

func sumValues(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// dashboardQueriesReturnData runs every query of the chart's dashboard with
// its variables filled in (job fhirgate, every route, 15 s rate interval).
func (s *stack) dashboardQueriesReturnData(t *testing.T, at float64) {
	data, err := os.ReadFile(filepath.Join(procs.RepoRoot(), "charts/fhirgate/dashboards/fhirgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer(`"$job"`, `"fhirgate"`, `"$route"`, `".*"`, "$__rate_interval", "15s")
	n := 0
	for _, p := range d.Panels {
		for _, target := range p.Targets {
			n++
			q := r.Replace(target.Expr)
			if len(s.query(t, q, at)) == 0 {
				t.Errorf("panel %q: no data for %s", p.Title, q)
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d dashboard queries found", n)
	}
}
