package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// wrkResult is what one wrk run reports through the script's done().
type wrkResult struct {
	Requests   int64
	Duration   time.Duration
	Throughput float64 // requests per second
	// Errors: connection, read, write, timeout; Non2xx3xx answers with a
	// status outside 2xx and 3xx.
	Errors    int64
	Non2xx3xx int64
	P50, P99  time.Duration
}

// wrkScript writes the Lua script that makes wrk send sc's request (the
// body from a file, so that any bytes pass) and print one result line.
func wrkScript(dir string, sc scenario) (string, error) {
	tag := fmt.Sprintf("%c", sc.name[1])
	var b strings.Builder
	fmt.Fprintf(&b, "wrk.method = %q\n", sc.method)
	if len(sc.body) > 0 {
		bodyFile := filepath.Join(dir, "body-"+tag)
		if err := os.WriteFile(bodyFile, sc.body, 0o644); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "local f = assert(io.open(%q, \"rb\"))\nwrk.body = f:read(\"*a\")\nf:close()\n", bodyFile)
	}
	for k, vs := range sc.header {
		fmt.Fprintf(&b, "wrk.headers[%q] = %q\n", k, vs[0])
	}
	b.WriteString(`done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKRESULT %d %d %d %d %d %d\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
`)
	file := filepath.Join(dir, "wrk-"+tag+".lua")
	return file, os.WriteFile(file, []byte(b.String()), 0o644)
}

// runWrk saturates url for d with one wrk thread on cpu: as many
// requests as conns keep-alive connections carry.
func runWrk(cpu, script, url string, conns int, d time.Duration) (*wrkResult, error) {
	cmd := exec.Command("taskset", "-c", cpu, "wrk", "-t1", fmt.Sprintf("-c%d", conns),
		fmt.Sprintf("-d%ds", int(d.Seconds())), "--timeout", "10s", "-s", script, url)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk: %v: %s", err, errOut.String())
	}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "WRKRESULT ")
		if !ok {
			continue
		}
		var r wrkResult
		var durUS, p50, p99 int64
		if _, err := fmt.Sscanf(line, "%d %d %d %d %d %d", &r.Requests, &durUS, &r.Errors, &r.Non2xx3xx, &p50, &p99); err != nil {
			return nil, fmt.Errorf("wrk result %q: %v", line, err)
		}
		r.Duration = time.Duration(durUS) * time.Microsecond
		r.Throughput = float64(r.Requests) / r.Duration.Seconds()
		r.P50, r.P99 = time.Duration(p50)*time.Microsecond, time.Duration(p99)*time.Microsecond
		return &r, nil
	}
	return nil, fmt.Errorf("wrk printed no result: %s %s", out.String(), errOut.String())
}
