// Command bench is the side-by-side load benchmark (`make bench`): the same
// requests against the benchmark backend directly, through nginx as a
// plain reverse proxy, through a bare tuned httputil.ReverseProxy (the
// floor of any gateway on Go's net/http) and through fhirgate
// authenticating and fully validating, in one run, on loopback. The load
// generator and the backend (nginx answering canned confirmations) run on
// one core, the proxy under test on the other (taskset).
//
// For each scenario, each repetition measures every target's saturation
// throughput with wrk (one thread, as many requests as 64 keep-alive
// connections carry), then p50/p99/p99.9 at a fixed rate of half the
// gateway's saturation with vegeta (in this process). A repetition whose
// direct backend is not 1.5 × faster than the fastest proxy stops the run
// as generator-bound: then the generator's core, not the proxy, would be
// measured. Ratios are taken within each repetition; the report gives
// their median and range. The results replace the section between the
// results markers of BENCHMARKS.md.
//
//	go run ./cmd/bench [-duration 5s] [-reps 5] [-out ../../BENCHMARKS.md]
package main

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

var (
	duration = flag.Duration("duration", 5*time.Second, "length of each measurement")
	reps     = flag.Int("reps", 5, "repetitions; medians and ranges are reported (use an odd count)")
	out      = flag.String("out", "../../BENCHMARKS.md", "file whose results section is replaced")
	conns    = flag.Int("connections", 64, "keep-alive connections of the generators")
	only     = flag.String("only", "", "run only the scenarios whose name contains this")
	gogc     = flag.String("gogc", "400", "GOGC of the gateway (the chart's goGC)")
	profile  = flag.String("cpuprofile", "", "if set, CPU profiles of the gateway and of the bare proxy during each scenario's first saturation run are written to <this>-<scenario letter>.prof and <this>-<scenario letter>-bare.prof")
	maxprocs = flag.String("gomaxprocs", "", "GOMAXPROCS of the gateway; empty: Go's default (the one CPU it is pinned to)")
	gcTrace  = flag.String("gctrace", "", "if set, the gateway runs with GODEBUG=gctrace=1, its stderr goes to <this>-gateway.log, its start time to <this>-start.txt, and each scenario's first fixed-rate run through it to <this>-<letter>-latency.tsv (send time, latency, both ns): to line slow requests up with collections")
	memlimit = flag.String("gomemlimit", "56MiB", "GOMEMLIMIT of the gateway (the chart's goMemLimit); empty: none")
	share    = flag.Float64("proxy-share", 0.5, "share of its core each proxy under test gets during the saturation runs (a CPU cgroup; 1: the whole core, no cgroup), so that the generator's core stays ahead of the fastest proxy")
	redisLim = flag.Bool("redis-limits", false, "also measure the gateway with its per-subject rate limit in a Redis limit store (a redis-server on the generator's core) as a target of its own, \"fhirgate, limits in Redis\": the store's cost over the in-memory limiter; scenario (a) is the one with a rate limit")
	compare  = flag.String("compare", "", "path of another fhirgate binary (e.g. built at an earlier commit) measured side by side as a fifth target, same core; with the routes.yaml of the directory it is in when there is one (build it in a worktree of its commit), else this checkout's")
)

const (
	genCPU   = "1" // generators and backend
	proxyCPU = "0" // the proxy under test
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	if *reps < 1 {
		fatal("-reps must be at least 1")
	}
	root, _ := filepath.Abs("../..")
	work, err := os.MkdirTemp("", "fhirgate-bench-")
	must(err)
	var procs []*exec.Cmd
	var cg *cpuShare
	cleanup = func() {
		// SIGTERM first: nginx's master stops its workers on it (on
		// SIGKILL they would stay behind).
		for _, p := range procs {
			p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				p.Process.Kill()
				<-done
			}
		}
		if cg != nil {
			cg.remove()
		}
		os.RemoveAll(work)
	}
	defer cleanup()
	// Ctrl-C or a kill stops the processes and removes the cgroup too.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fatal("interrupted")
	}()
	if *share < 1 {
		cg, err = newCPUShare(fmt.Sprintf("fhirgate-bench-%d", os.Getpid()))
		must(err)
	}
	// proxyCommand runs argv on the proxy core, in the cgroup if any.
	proxyCommand := func(argv ...string) *exec.Cmd {
		argv = append([]string{"taskset", "-c", proxyCPU}, argv...)
		if cg != nil {
			argv = cg.wrap(argv)
		}
		return exec.Command(argv[0], argv[1:]...)
	}
	start := func(cmd *exec.Cmd) {
		must(cmd.Start())
		procs = append(procs, cmd)
	}

	log.Print("building fhirgate and the bare proxy")
	build := exec.Command("go", "build", "-o", filepath.Join(work, "fhirgate.linked"), "./cmd/fhirgate")
	build.Dir, build.Stderr = root, os.Stderr
	must(build.Run())
	// The gateway runs a copy written as a deployment writes its binary
	// (an image layer extracted, a package installed: write(2)). The
	// linker writes through a mapping, and the page cache then holds the
	// file in large folios, which the kernel maps back whole at a fault
	// in them: pages the gateway gives back after start (memtrim) would
	// come back in tens of MiB — an idle RSS of 49 instead of 38 MiB that
	// no deployed gateway has.
	must(copyFile(filepath.Join(work, "fhirgate.linked"), filepath.Join(work, "fhirgate")))
	build = exec.Command("go", "build", "-o", work+"/", "./cmd/bareproxy")
	build.Stderr = os.Stderr
	must(build.Run())
	pin := exec.Command("taskset", "-a", "-p", "-c", genCPU, strconv.Itoa(os.Getpid()))
	if outp, err := pin.CombinedOutput(); err != nil {
		fatalf("taskset: %v %s", err, outp)
	}

	backend, nginxAddr, bareAddr, gw := freeAddr(), freeAddr(), freeAddr(), freeAddr()
	must(writeNginxBackend(work, backend))
	start(exec.Command("taskset", "-c", genCPU, "nginx", "-p", filepath.Join(work, "backend"), "-c", filepath.Join(work, "backend", "nginx.conf")))
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubFile := filepath.Join(work, "idp.pem")
	must(os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644))
	must(writeNginx(work, nginxAddr, backend))
	start(proxyCommand("nginx", "-p", work, "-c", filepath.Join(work, "nginx.conf")))
	bareArgs := []string{filepath.Join(work, "bareproxy"), "--listen", bareAddr, "--backend", backend}
	barePprof := ""
	if *profile != "" {
		barePprof = freeAddr()
		bareArgs = append(bareArgs, "--pprof", barePprof)
	}
	start(proxyCommand(bareArgs...))
	admin := freeAddr()
	cfg := benchRoutes(root, gw, admin, backend, pubFile)
	cfgFile := filepath.Join(work, "routes.yaml")
	must(os.WriteFile(cfgFile, []byte(cfg), 0o644))
	gwEnv := append(os.Environ(), "GOGC="+*gogc)
	if *memlimit != "" {
		gwEnv = append(gwEnv, "GOMEMLIMIT="+*memlimit)
	}
	if *maxprocs != "" {
		gwEnv = append(gwEnv, "GOMAXPROCS="+*maxprocs)
	}
	addrs := map[string]string{"direct": backend, "nginx": nginxAddr, "bare": bareAddr, "gateway": gw}
	if *compare != "" {
		// The binary compared with runs the same configuration on its own
		// addresses, on the proxy core, idle while the others are measured.
		// Built in a checkout of its commit (a git worktree), it runs that
		// checkout's routes.yaml and profiles, which it understands: the
		// same routes for the scenarios, without keys added since.
		before := freeAddr()
		cmpRoot := root
		if _, err := os.Stat(filepath.Join(filepath.Dir(*compare), "routes.yaml")); err == nil {
			cmpRoot = filepath.Dir(*compare)
		}
		cmpFile := filepath.Join(work, "routes-before.yaml")
		must(os.WriteFile(cmpFile, []byte(benchRoutes(cmpRoot, before, freeAddr(), backend, pubFile)), 0o644))
		cmd := proxyCommand(*compare, "serve", "--config", cmpFile, "--watch", "0")
		cmd.Env = gwEnv
		start(cmd)
		addrs["before"] = before
		targets = append(targets, "before")
		waitPort(before)
	}
	if *redisLim {
		// The same binary and configuration, its E-Rezept rate limit in
		// a Redis store: one EVALSHA round trip per limited request.
		redisAddr, redisGW := freeAddr(), freeAddr()
		_, port, _ := net.SplitHostPort(redisAddr)
		start(exec.Command("taskset", "-c", genCPU, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"))
		waitPort(redisAddr)
		rcfg := benchRoutes(root, redisGW, freeAddr(), backend, pubFile)
		rcfg = strings.Replace(rcfg, "burst: 100000000", "burst: 100000000\n      store: shared", 1)
		rcfg = strings.Replace(rcfg, "\ntracing:\n", "\nlimit_stores:\n  shared: {url: \"redis://"+redisAddr+"/0\"}\ntracing:\n", 1)
		rFile := filepath.Join(work, "routes-redis.yaml")
		must(os.WriteFile(rFile, []byte(rcfg), 0o644))
		cmd := proxyCommand(filepath.Join(work, "fhirgate"), "serve", "--config", rFile, "--watch", "0")
		cmd.Env = gwEnv
		start(cmd)
		addrs["redis"] = redisGW
		targets = append(targets, "redis")
		waitPort(redisGW)
	}
	gwCmd := proxyCommand(filepath.Join(work, "fhirgate"), "serve", "--config", cfgFile, "--watch", "0")
	gwCmd.Env = gwEnv
	if *gcTrace != "" {
		gwCmd.Env = append(gwCmd.Env, "GODEBUG=gctrace=1")
		f, err := os.Create(*gcTrace + "-gateway.log")
		must(err)
		defer f.Close()
		gwCmd.Stderr = f
	}
	must(gwCmd.Start())
	if *gcTrace != "" {
		must(os.WriteFile(*gcTrace+"-start.txt", []byte(strconv.FormatInt(time.Now().UnixNano(), 10)+"\n"), 0o644))
	}
	procs = append(procs, gwCmd)
	for _, a := range []string{backend, nginxAddr, bareAddr, gw} {
		waitPort(a)
	}
	time.Sleep(500 * time.Millisecond)
	idleRSS, idleAnon := rssOf(gwCmd.Process.Pid)

	tokens := map[string]string{
		"erp":   sign(key, jwt.MapClaims{"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/", "sub": "bench-prescriber", "professionOID": "1.2.276.0.76.4.50", "idNummer": "1-BENCH"}),
		"twiin": sign(key, jwt.MapClaims{"iss": "https://twiin-idp.fhirgate.example", "aud": "https://gtk.fhirgate.example/", "sub": "bench-gtk", "scope": "tanp"}),
	}
	scenarios := buildScenarios(root, tokens)
	var results []scenarioResult
	for _, sc := range scenarios {
		if *only != "" && !strings.Contains(sc.name, *only) {
			continue
		}
		script, err := wrkScript(work, sc)
		must(err)
		sr := scenarioResult{name: sc.name}
		// The fixed-rate generator (vegeta, in this process) must be far
		// from its own limit at the rates it is asked for: its saturation
		// against the backend directly is measured once per scenario.
		vegetaMax := attack(sc, backend, "direct", 0).Throughput
		for rep := 0; rep < *reps; rep++ {
			sat := map[string]float64{}
			for _, tg := range targets {
				probe(sc, tg, addrs[tg])
				var rss, anon atomic.Int64
				stop := make(chan struct{})
				if tg == "gateway" {
					go sampleRSS(gwCmd.Process.Pid, &rss, &anon, stop)
				}
				var profiled chan struct{}
				if (tg == "gateway" || tg == "bare") && rep == 0 && *profile != "" {
					from, file := admin, fmt.Sprintf("%s-%c.prof", *profile, sc.name[1])
					if tg == "bare" {
						from, file = barePprof, fmt.Sprintf("%s-%c-bare.prof", *profile, sc.name[1])
					}
					profiled = make(chan struct{})
					go func() {
						defer close(profiled)
						fetchProfile(from, *duration-time.Second, file)
					}()
				}
				if cg != nil {
					must(cg.set(*share))
				}
				b0, t0 := coreTime(proxyCPU)
				res, err := runWrk(genCPU, script, "http://"+addrs[tg]+sc.path, *conns, *duration)
				must(err)
				b1, t1 := coreTime(proxyCPU)
				busy := float64(b1-b0) / float64(max(t1-t0, 1))
				if tg != "direct" {
					sr.add("busy", tg, busy)
				}
				if profiled != nil {
					<-profiled
				}
				close(stop)
				if bad := res.Errors + res.Non2xx3xx; float64(bad) > 0.001*float64(res.Requests) {
					fatalf("%s via %s: %d of %d requests failed (%d socket errors, %d answers outside 2xx/3xx)", sc.name, tg, bad, res.Requests, res.Errors, res.Non2xx3xx)
				}
				sat[tg] = res.Throughput
				sr.add("sat", tg, res.Throughput)
				if tg == "gateway" {
					sr.add("rss", tg, float64(rss.Load())/(1<<20))
					sr.add("anon", tg, float64(anon.Load())/(1<<20))
				}
			}
			// The guard: the generator and the backend share a core, so
			// the direct rate is what that core can carry. Unless it is
			// well above every proxy, a proxy's figure may be the
			// generator's, and no ratio is printed.
			fastest := max(sat["nginx"], sat["bare"], sat["gateway"], sat["before"], sat["redis"])
			headroom := sat["direct"] / fastest
			if headroom < minHeadroom {
				fatalf("GENERATOR-BOUND: %s rep %d: direct %.0f req/s is %.2f × the fastest proxy (%.0f req/s), below %.1f ×: the load generator's core, not the proxy, may be the limit; no figure is reported",
					sc.name, rep+1, sat["direct"], headroom, fastest, minHeadroom)
			}
			sr.add("headroom", "direct", headroom)
			// Ratios are taken within a repetition — targets measured
			// minutes apart would carry the machine's drift.
			sr.add("ratio", "nginx", sat["gateway"]/sat["nginx"])
			sr.add("ratio", "bare", sat["gateway"]/sat["bare"])
			if cg != nil {
				must(cg.set(1))
			}
			// Half the gateway's saturation on its whole core (the share
			// held it to a part of the core).
			rate := sat["gateway"] / 2 / min(*share, 1)
			if rate > vegetaMax/2 {
				fatalf("GENERATOR-BOUND: %s: the fixed rate %.0f req/s is above half of vegeta's own saturation (%.0f req/s)", sc.name, rate, vegetaMax)
			}
			p50, p99 := map[string]float64{}, map[string]float64{}
			for _, tg := range targets {
				var record []string
				if *gcTrace != "" && tg == "gateway" && rep == 0 {
					record = append(record, fmt.Sprintf("%s-%c-latency.tsv", *gcTrace, sc.name[1]))
				}
				m := attack(sc, addrs[tg], tg, rate, record...)
				checkStatus(sc, tg, m)
				if m.Rate < 0.97*rate {
					fatalf("GENERATOR-BOUND: %s via %s: vegeta sent %.0f req/s of the %.0f asked for", sc.name, tg, m.Rate, rate)
				}
				p50[tg], p99[tg] = ms(m.Latencies.P50), ms(m.Latencies.P99)
				sr.add("p50", tg, p50[tg])
				sr.add("p99", tg, p99[tg])
				sr.add("p999", tg, ms(m.Latencies.Quantile(0.999)))
				sr.add("rate", tg, rate)
			}
			sr.add("added", "bare", p50["gateway"]-p50["bare"])
			if *redisLim {
				sr.add("ratio", "redis", sat["redis"]/sat["gateway"])
				sr.add("added", "redis", p50["redis"]-p50["gateway"])
			}
			if *compare != "" {
				sr.add("ratio", "before", sat["gateway"]/sat["before"])
				sr.add("p99ratio", "before", p99["gateway"]/p99["before"])
			}
			sr.add("p99ratio", "nginx", p99["gateway"]/p99["nginx"])
			log.Printf("%s rep %d: saturation direct %.0f, nginx %.0f, bare proxy %.0f, gateway %.0f req/s (headroom %.2f; gateway/bare %.2f, gateway/nginx %.2f); proxy core busy: nginx %.0f%%, bare %.0f%%, gateway %.0f%%; fixed rate %.0f: p99 gateway %.2f ms, nginx %.2f ms",
				sc.name, rep+1, sat["direct"], sat["nginx"], sat["bare"], sat["gateway"], headroom, sat["gateway"]/sat["bare"], sat["gateway"]/sat["nginx"],
				100*last(sr.values["busy/nginx"]), 100*last(sr.values["busy/bare"]), 100*last(sr.values["busy/gateway"]), rate, p99["gateway"], p99["nginx"])
		}
		results = append(results, sr)
	}
	report := render(results, idleRSS, idleAnon)
	fmt.Print(report)
	if *gcTrace != "" {
		for _, sc := range scenarios {
			if file := fmt.Sprintf("%s-%c-latency.tsv", *gcTrace, sc.name[1]); fileExists(file) {
				fmt.Printf("%s at the fixed rate: %s\n", sc.name, slowVersusGC(file, *gcTrace+"-gateway.log", *gcTrace+"-start.txt"))
			}
		}
	}
	if *out != "" && *only == "" {
		must(replaceSection(*out, report))
		log.Printf("results written to %s", *out)
	}
}

// targets in the order each repetition measures them: the backend alone,
// then the three proxies in front of it.
var targets = []string{"direct", "nginx", "bare", "gateway"}

// minHeadroom is how much faster than the fastest proxy the direct
// backend must be in a repetition for its figures to count.
const minHeadroom = 1.5

// probe sends sc's request once and checks the exact status (wrk only
// tells 2xx/3xx from the rest).
func probe(sc scenario, target, addr string) {
	req, err := http.NewRequest(sc.method, "http://"+addr+sc.path, bytes.NewReader(sc.body))
	must(err)
	req.Header = sc.header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fatalf("%s via %s: %v", sc.name, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := sc.expect[target]; resp.StatusCode != want {
		fatalf("%s via %s: status %d, want %d: %s", sc.name, target, resp.StatusCode, want, body)
	}
}

type scenario struct {
	name   string
	method string
	path   string
	header http.Header
	body   []byte
	expect map[string]int // target → status
}

func buildScenarios(root string, tokens map[string]string) []scenario {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(root, "test/bench/testdata", name))
		must(err)
		return b
	}
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	ac := strings.Repeat("7", 64)
	cancelQuery := "?identifier=https%3A%2F%2Ftools.ietf.org%2Fhtml%2Frfc4122%7C0f5f7c1e-8c2d-4a3b-9a51-2e6b5b0d7f11"
	direct200 := map[string]int{"direct": 200, "nginx": 200, "bare": 200}
	with := func(m map[string]int, gw int) map[string]int {
		out := map[string]int{"gateway": gw, "before": gw, "redis": gw}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	return []scenario{
		{"(a) E-Rezept $abort, JWT", http.MethodPost, "/erp/Task/160.000.033.491.280.78/$abort?ac=" + ac,
			h("Authorization", "Bearer "+tokens["erp"]), nil, with(direct200, 204)},
		{"(b) Twiin-02 cancellation, JSON 1.7 KB", http.MethodPut, "/twiin/Task" + cancelQuery,
			h("Authorization", "Bearer "+tokens["twiin"], "Content-Type", "application/fhir+json"), read("twiin-02-cancellation.json"), with(direct200, 201)},
		{"(c) Twiin-02 cancellation, XML", http.MethodPut, "/twiin/Task" + cancelQuery,
			h("Authorization", "Bearer "+tokens["twiin"], "Content-Type", "application/fhir+xml"), read("twiin-02-cancellation.xml"), with(direct200, 201)},
		{"(d) Twiin-01 notification, JSON", http.MethodPost, "/twiin/Task",
			h("Authorization", "Bearer "+tokens["twiin"], "Content-Type", "application/fhir+json"), read("twiin-01-notification.json"), with(direct200, 201)},
	}
}

// attack runs one vegeta measurement: rate 0 is saturation (as fast as
// the connections carry), otherwise a fixed rate. With a record file,
// every request's send time and latency are written to it.
func attack(sc scenario, addr, name string, rate float64, record ...string) *vegeta.Metrics {
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: sc.method, URL: "http://" + addr + sc.path, Body: sc.body, Header: sc.header})
	opts := []func(*vegeta.Attacker){vegeta.KeepAlive(true), vegeta.Connections(*conns), vegeta.MaxConnections(*conns), vegeta.Timeout(10 * time.Second)}
	var r vegeta.Rate
	if rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(*conns)), vegeta.MaxWorkers(uint64(*conns)))
	} else {
		r = vegeta.Rate{Freq: int(rate), Per: time.Second}
		opts = append(opts, vegeta.Workers(uint64(*conns)), vegeta.MaxWorkers(uint64(4**conns)))
	}
	a := vegeta.NewAttacker(opts...)
	var m vegeta.Metrics
	var rec bytes.Buffer
	for res := range a.Attack(tr, r, *duration, name) {
		m.Add(res)
		if len(record) > 0 {
			fmt.Fprintf(&rec, "%d\t%d\n", res.Timestamp.UnixNano(), res.Latency.Nanoseconds())
		}
	}
	m.Close()
	if len(record) > 0 {
		must(os.WriteFile(record[0], rec.Bytes(), 0o644))
	}
	return &m
}

func checkStatus(sc scenario, target string, m *vegeta.Metrics) {
	want := strconv.Itoa(sc.expect[target])
	if n := m.StatusCodes[want]; float64(n) < 0.999*float64(m.Requests) {
		fatalf("%s via %s: status codes %v, want %s (errors %v)", sc.name, target, m.StatusCodes, want, first(m.Errors, 3))
	}
}

func last(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	return vs[len(vs)-1]
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

type scenarioResult struct {
	name   string
	values map[string][]float64 // "metric/target" → per repetition
}

func (r *scenarioResult) add(metric, target string, v float64) {
	if r.values == nil {
		r.values = map[string][]float64{}
	}
	r.values[metric+"/"+target] = append(r.values[metric+"/"+target], v)
}

// median is the middle value over the repetitions; of an even count, the
// mean of the two middle ones.
func (r *scenarioResult) median(metric, target string) float64 {
	return median(r.values[metric+"/"+target])
}

func median(values []float64) float64 {
	vs := slices.Clone(values)
	if len(vs) == 0 {
		return 0
	}
	sort.Float64s(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

// span is the lowest and highest value over the repetitions.
func (r *scenarioResult) span(metric, target string) (lo, hi float64) {
	vs := r.values[metric+"/"+target]
	if len(vs) == 0 {
		return 0, 0
	}
	return slices.Min(vs), slices.Max(vs)
}

func render(results []scenarioResult, idleRSS, idleAnon float64) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Run %s: %v per measurement, %d connections, %d repetitions; medians with the range (lowest–highest) over the repetitions.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), *duration, *conns, *reps)
	fmt.Fprintln(&b, "| scenario | target | saturation req/s (wrk) | fixed rate req/s (vegeta) | p50 ms | p99 ms | p99.9 ms |")
	fmt.Fprintln(&b, "|---|---|---:|---:|---:|---:|---:|")
	for _, r := range results {
		for _, tg := range targets {
			lo, hi := r.span("sat", tg)
			fmt.Fprintf(&b, "| %s | %s | %.0f (%.0f–%.0f) | %.0f | %.3f | %.3f | %.3f |\n", r.name, targetNames[tg], r.median("sat", tg), lo, hi, r.median("rate", tg),
				r.median("p50", tg), r.median("p99", tg), r.median("p999", tg))
		}
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| scenario | generator headroom: direct / fastest proxy (lowest) | gateway / bare proxy | gateway / nginx | gateway − bare proxy p50 | gateway / nginx p99 | gateway peak RSS (anonymous) | goal |")
	fmt.Fprintln(&b, "|---|---:|---:|---:|---:|---:|---:|---|")
	goals := map[byte]string{'a': "≥ 0.9 × bare; +p50 ≤ 0.2 ms", 'b': "≥ 0.6 × bare", 'c': "≥ 0.5 × bare", 'd': "≥ 0.6 × bare"}
	for _, r := range results {
		hlo, _ := r.span("headroom", "direct")
		blo, bhi := r.span("ratio", "bare")
		nlo, nhi := r.span("ratio", "nginx")
		plo, phi := r.span("p99ratio", "nginx")
		fmt.Fprintf(&b, "| %s | %.2f (%.2f) | %.2f (%.2f–%.2f) | %.2f (%.2f–%.2f) | %+.3f ms | %.2f (%.2f–%.2f) | %.1f MiB (%.1f MiB) | %s; p99 ≤ 1.5 × nginx; RSS ≤ 96 MiB |\n", r.name,
			r.median("headroom", "direct"), hlo, r.median("ratio", "bare"), blo, bhi, r.median("ratio", "nginx"), nlo, nhi,
			r.median("added", "bare"), r.median("p99ratio", "nginx"), plo, phi, r.median("rss", "gateway"), r.median("anon", "gateway"), goals[r.name[1]])
	}
	if *redisLim {
		fmt.Fprintln(&b, "\n| scenario | limits in Redis / in memory: throughput | added p50 at the fixed rate | goal |")
		fmt.Fprintln(&b, "|---|---:|---:|---|")
		for _, r := range results {
			lo, hi := r.span("ratio", "redis")
			alo, ahi := r.span("added", "redis")
			fmt.Fprintf(&b, "| %s | %.3f (%.3f–%.3f) | %+.3f ms (%+.3f–%+.3f) | added p50 ≤ 0.2 ms |\n", r.name, r.median("ratio", "redis"), lo, hi, r.median("added", "redis"), alo, ahi)
		}
	}
	if *compare != "" {
		fmt.Fprintln(&b, "\n| scenario | fhirgate / compared binary: throughput | p99 at the fixed rate |")
		fmt.Fprintln(&b, "|---|---:|---:|")
		for _, r := range results {
			lo, hi := r.span("ratio", "before")
			plo, phi := r.span("p99ratio", "before")
			fmt.Fprintf(&b, "| %s | %.3f (%.3f–%.3f) | %.2f (%.2f–%.2f) |\n", r.name, r.median("ratio", "before"), lo, hi, r.median("p99ratio", "before"), plo, phi)
		}
	}
	fmt.Fprintf(&b, "\nGateway idle after start: RSS %.1f MiB (anonymous %.1f MiB); goal ≤ 48 MiB.\n", idleRSS, idleAnon)
	fmt.Fprintf(&b, "\nMachine: %s, %d cores, %s, Go %s, %s, %s. Generators and backend on CPU %s, proxy under test on CPU %s, held to %.0f %% of it during the saturation runs (a CPU cgroup, %d ms period; the whole core at the fixed rate); gateway GOGC=%s, GOMEMLIMIT=%s.\n",
		cpuModel(), runtime.NumCPU(), kernel(), strings.TrimPrefix(runtime.Version(), "go"), nginxVersion(), wrkVersion(), genCPU, proxyCPU, 100*min(*share, 1), periodUS/1000, *gogc, cmp.Or(*memlimit, "unset"))
	return b.String()
}

var targetNames = map[string]string{"direct": "backend direct", "nginx": "nginx", "bare": "bare Go proxy", "gateway": "fhirgate", "before": "fhirgate (compared binary)", "redis": "fhirgate, limits in Redis"}

func replaceSection(file, report string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	const begin, end = "<!-- results:start -->", "<!-- results:end -->"
	s := string(data)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s section", file, begin, end)
	}
	return os.WriteFile(file, []byte(s[:i+len(begin)]+"\n"+report+s[j:]), 0o644)
}

// writeNginxBackend configures the benchmark's legacy system: nginx
// answering every call at once with the canned confirmation the gateway's
// routes map to a success (C speed, so that the generator's core keeps
// headroom):
//
//	POST …/cancellation, /erp/…      → 200 {"result":"CANCELLED"}   ($abort → 204)
//	POST /gtk/v2/notifications,
//	POST /twiin/Task                 → 200 {"outcome":"STORED",…}   (Twiin-01 → 201)
//	POST /gtk/v2/cancellations,
//	PUT /twiin/Task                  → 200 {"outcome":"CANCELLED",…} (Twiin-02 → 201)
//
// The FHIR paths are there for the direct runs and the proxies, which pass
// the client's request on unchanged.
func writeNginxBackend(dir, listen string) error {
	dir = filepath.Join(dir, "backend")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	conf := nginxConf(dir, fmt.Sprintf(`  keepalive_timeout 300s;
  default_type application/json;
  server {
    listen %s;
    location / { return 404; }
    location /erp/ { return 200 '{"result":"CANCELLED"}'; }
    location ~ /cancellation$ { return 200 '{"result":"CANCELLED"}'; }
    location = /gtk/v2/notifications { return 200 '{"outcome":"STORED","notificationId":"ntf-000001","revision":1}'; }
    location = /gtk/v2/cancellations { return 200 '{"outcome":"CANCELLED","notificationId":"ntf-000001","revision":2}'; }
    location = /twiin/Task {
      if ($request_method = PUT) { return 200 '{"outcome":"CANCELLED","notificationId":"ntf-000001","revision":2}'; }
      return 200 '{"outcome":"STORED","notificationId":"ntf-000001","revision":1}';
    }
  }
`, listen))
	return os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
}

// writeNginx configures nginx as a plain reverse proxy: no buffering of
// bodies to disk, keep-alive to the backend.
func writeNginx(dir, listen, backend string) error {
	conf := nginxConf(dir, fmt.Sprintf(`  upstream backend { server %s; keepalive 128; keepalive_requests 100000000; }
  server {
    listen %s;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
`, backend, listen))
	return os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644)
}

// nginxConf is an nginx.conf running in the foreground with one worker,
// its files under dir, no access log and keep-alive connections that are
// never closed for their request count; http is the http block's content.
func nginxConf(dir, http string) string {
	return fmt.Sprintf(`worker_processes 1;
daemon off;
error_log %[1]s/error.log warn;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
%[2]s}
`, dir, http)
}

// benchRoutes is the repository's routes.yaml with the benchmark's
// addresses, keys from a file, rate limits out of the way and the logs
// and audit trail written (to /dev/null), as in production.
func benchRoutes(root, gw, admin, backend, pubFile string) string {
	data, err := os.ReadFile(filepath.Join(root, "routes.yaml"))
	must(err)
	r := strings.NewReplacer(
		"127.0.0.1:8080", gw,
		"127.0.0.1:9090", admin,
		"      jwks_url: http://127.0.0.1:9101/demo/jwks.json\n      refresh: 15m\n", "      pem_file: "+pubFile+"\n",
		"      jwks_url: http://127.0.0.1:9102/demo/jwks.json\n      refresh: 15m\n", "      pem_file: "+pubFile+"\n",
		"http://127.0.0.1:9101", "http://"+backend,
		"http://127.0.0.1:9102", "http://"+backend,
		"requests: 20\n      per: 1s\n      burst: 40", "requests: 100000000\n      per: 1s\n      burst: 100000000",
		"audit:\n  output: stderr", "audit:\n  output: /dev/null",
		"[profiles/", "["+root+"/profiles/", ": profiles/", ": "+root+"/profiles/",
	)
	cfg := r.Replace(string(data))
	if *profile != "" {
		cfg = strings.Replace(cfg, "  admin_listen: "+admin+"\n", "  admin_listen: "+admin+"\n  pprof: true\n", 1)
	}
	if strings.Contains(cfg, "jwks_url") {
		fatal("routes.yaml changed: the benchmark's key replacement no longer applies")
	}
	return cfg
}

func sign(key *rsa.PrivateKey, c jwt.MapClaims) string {
	now := time.Now()
	c["iat"], c["exp"] = now.Unix(), now.Add(24*time.Hour).Unix()
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(key)
	must(err)
	return s
}

// sampleRSS records the highest VmRSS and RssAnon (the part that is not
// the binary's mapped pages) of a process until stop.
func sampleRSS(pid int, maxRSS, maxAnon *atomic.Int64, stop <-chan struct{}) {
	for {
		data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		for _, line := range strings.Split(string(data), "\n") {
			for prefix, max := range map[string]*atomic.Int64{"VmRSS:": maxRSS, "RssAnon:": maxAnon} {
				if v, ok := strings.CutPrefix(line, prefix); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					if kb<<10 > max.Load() {
						max.Store(kb << 10)
					}
				}
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rssOf reads a process's VmRSS and RssAnon in MiB.
func rssOf(pid int) (rss, anon float64) {
	var r, a atomic.Int64
	stop := make(chan struct{})
	close(stop)
	sampleRSS(pid, &r, &a, stop)
	return float64(r.Load()) / (1 << 20), float64(a.Load()) / (1 << 20)
}

func wrkVersion() string {
	out, _ := exec.Command("wrk", "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(out), " [")
	return strings.TrimSpace(line)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer l.Close()
	return l.Addr().String()
}

func waitPort(addr string) {
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fatalf("%s did not come up", addr)
}

func cpuModel() string {
	data, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func kernel() string {
	out, _ := exec.Command("uname", "-sr").Output()
	return strings.TrimSpace(string(out))
}

func nginxVersion() string {
	out, _ := exec.Command("nginx", "-v").CombinedOutput()
	return strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
}

// cleanup stops the processes the run started and removes what it made;
// fatalf runs it before exiting (log.Fatal would skip deferred calls).
var cleanup = func() {}

func fatalf(format string, args ...any) {
	cleanup()
	log.Fatalf(format, args...)
}

func fatal(args ...any) {
	cleanup()
	log.Fatal(args...)
}

func must(err error) {
	if err != nil {
		fatal(err)
	}
}

// fetchProfile writes a CPU profile taken for d of the process serving
// net/http/pprof at addr (the gateway's admin listener, the bare proxy's
// --pprof).
func fetchProfile(addr string, d time.Duration, file string) {
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, max(1, int(d.Seconds()))))
	if err != nil {
		log.Printf("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		log.Printf("profile: %d %v", resp.StatusCode, err)
		return
	}
	must(os.WriteFile(file, data, 0o644))
	log.Printf("CPU profile: %s", file)
}

// copyFile writes a copy of src to dst with plain writes, executable.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	// Wrapped, out is a bare Writer: io.Copy then writes instead of
	// letting the file system share the source's extents
	// (copy_file_range), which could keep the linker's folios.
	if _, err := io.Copy(struct{ io.Writer }{out}, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// slowVersusGC lines the requests at or above the p99 of a fixed-rate run
// up with the gateway's garbage collections (GODEBUG=gctrace=1 lines "gc N
// @Ts …: a+b+c ms clock", T counted from the process start): the slow
// requests are grouped into bursts (sent less than 20 ms apart), and each
// burst is placed relative to the nearest collection's start.
func slowVersusGC(latencyFile, gcLog, startFile string) string {
	startText, err := os.ReadFile(startFile)
	must(err)
	start, _ := strconv.ParseInt(strings.TrimSpace(string(startText)), 10, 64)
	logText, err := os.ReadFile(gcLog)
	must(err)
	var gcStarts []int64
	var gcClock []float64
	for _, line := range strings.Split(string(logText), "\n") {
		var n int
		var at, a, b, c float64
		if _, err := fmt.Sscanf(line, "gc %d @%fs", &n, &at); err != nil {
			continue
		}
		if i := strings.Index(line, ": "); i >= 0 {
			fmt.Sscanf(line[i+2:], "%f+%f+%f ms clock", &a, &b, &c)
		}
		gcStarts = append(gcStarts, start+int64(at*1e9))
		gcClock = append(gcClock, a+b+c)
	}
	type req struct{ sent, latency int64 }
	var reqs []req
	data, err := os.ReadFile(latencyFile)
	must(err)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var r req
		if _, err := fmt.Sscanf(line, "%d\t%d", &r.sent, &r.latency); err == nil {
			reqs = append(reqs, r)
		}
	}
	if len(reqs) == 0 || len(gcStarts) == 0 {
		return "no requests or no collections recorded"
	}
	lat := make([]int64, len(reqs))
	for i, r := range reqs {
		lat[i] = r.latency
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p99 := lat[len(lat)*99/100]
	var bursts [][]req
	for _, r := range reqs {
		if r.latency < p99 {
			continue
		}
		if n := len(bursts); n > 0 && r.sent-bursts[n-1][len(bursts[n-1])-1].sent < 20e6 {
			bursts[n-1] = append(bursts[n-1], r)
		} else {
			bursts = append(bursts, []req{r})
		}
	}
	first, last := reqs[0].sent, reqs[len(reqs)-1].sent
	cycles, near := 0, 0
	var clock float64
	for i, g := range gcStarts {
		if g >= first && g <= last {
			cycles++
			clock += gcClock[i]
		}
	}
	var offsets []string
	for _, b := range bursts {
		best := gcStarts[0]
		for _, g := range gcStarts {
			if abs(g-b[0].sent) < abs(best-b[0].sent) {
				best = g
			}
		}
		off := float64(b[0].sent-best) / 1e6
		if off >= -5 && off <= 40 {
			near++
		}
		offsets = append(offsets, fmt.Sprintf("%d@%+.0fms", len(b), off))
	}
	return fmt.Sprintf("p99 %.1f ms; the %d requests at or above it come in %d bursts, %d of them starting within -5…+40 ms of a collection's start (bursts as size@offset: %s); %d collections in the run, %.1f ms of clock each on average, every %.0f ms",
		float64(p99)/1e6, len(lat)-len(lat)*99/100, len(bursts), near, strings.Join(offsets, " "), cycles, clock/float64(max(cycles, 1)), float64(last-first)/1e6/float64(max(cycles, 1)))
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
