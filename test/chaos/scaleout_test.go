package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirgate/fhirgate/test/redisproc"
)

// startSharedGateway runs a gateway whose Twiin auth profile limits each
// subject to a burst of `burst` (then 1 per hour) in the Redis store at
// redisURL (deadline 100 ms — wide enough that a loaded machine does not
// turn shared decisions into fallbacks, narrow enough to see a stall —
// on_failure local).
func startSharedGateway(t *testing.T, g *gtk, redisURL string, burst int) *gateway {
	return startGateway(t, "127.0.0.1:1", gtkBlock(deadline, g.url),
		"      map: {tanp: sender}\n    errors:",
		fmt.Sprintf("      map: {tanp: sender}\n    rate_limit: {requests: 1, per: 1h, burst: %d, store: shared}\n    errors:", burst),
		"\ntracing:\n", fmt.Sprintf("\nlimit_stores:\n  shared: {url: %q, timeout: 100ms, key_prefix: \"chaos:\"}\ntracing:\n", redisURL))
}

func subjectToken(t *testing.T, sub string) string {
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"iss": "https://twiin-idp.fhirgate.example", "aud": "https://gtk.fhirgate.example/",
		"sub": sub, "scope": "tanp", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).SignedString(env.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// notifyAs sends a fresh notification under token through g.
func notifyAs(g *gateway, client *http.Client, token string) result {
	value := fmt.Sprintf("scale-%d-%d", time.Now().UnixNano(), seq.Add(1))
	body, _ := json.Marshal(notificationTask(value))
	req, _ := http.NewRequest(http.MethodPost, g.url+"/twiin/Task", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+token)
	return do(client, req)
}

// alternate sends n notifications of one subject, alternating between the
// gateways, and returns how many were admitted (201); every other answer
// must be a 429 OperationOutcome with Retry-After.
func alternate(t *testing.T, gws []*gateway, client *http.Client, sub string, n int) (admitted int) {
	t.Helper()
	token := subjectToken(t, sub)
	for i := range n {
		r := notifyAs(gws[i%len(gws)], client, token)
		switch {
		case r.err != nil:
			t.Fatalf("%s request %d: %v", sub, i, r.err)
		case r.status == http.StatusCreated:
			admitted++
		case r.status == http.StatusTooManyRequests:
			if r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), `"OperationOutcome"`) {
				t.Errorf("%s request %d: 429 without Retry-After or OperationOutcome: %v %s", sub, i, r.header, r.body)
			}
		default:
			t.Errorf("%s request %d: %d %s (only 201 or 429 may answer)", sub, i, r.status, r.body)
		}
	}
	return admitted
}

// TestSharedLimitAcrossReplicas: two gateway processes, one Redis. One
// subject's budget (burst 12) holds across both — exactly 12 of 30
// admitted, as one gateway admits. Redis killed: each gateway decides with
// its own buckets (no 5xx; metric 0, fallbacks counted, logged); Redis
// back: shared again (metric 1, logged) and a new subject again gets
// exactly 12. Redis stalled (SIGSTOP): answers stay within the deadline.
func TestSharedLimitAcrossReplicas(t *testing.T) {
	srv := redisproc.Start(t)
	gk := startGtK(t)
	const burst = 12
	a := startSharedGateway(t, gk, srv.URL(), burst)
	b := startSharedGateway(t, gk, srv.URL(), burst)
	gws := []*gateway{a, b}
	client := &http.Client{Timeout: 5 * time.Second}

	if got := alternate(t, gws, client, "subject-1", 30); got != burst {
		t.Fatalf("shared: %d of 30 admitted across two gateways, want %d", got, burst)
	}
	if got := alternate(t, gws[:1], client, "subject-1b", 30); got != burst {
		t.Fatalf("one gateway alone admits %d, want %d", got, burst)
	}

	// Killed mid-run: the next requests of a subject that has used 4.
	if got := alternate(t, gws, client, "subject-2", 4); got != 4 {
		t.Fatalf("subject-2 before the kill: %d of 4", got)
	}
	srv.Kill()
	got := alternate(t, gws, client, "subject-2", 40)
	// Each gateway's own bucket holds a fresh burst: up to 2 × 12.
	if got < burst || got > 2*burst {
		t.Errorf("with Redis down: %d of 40 admitted, want between %d and %d (each replica's own bucket)", got, burst, 2*burst)
	}
	for _, g := range gws {
		page := metricsPage(t, g)
		if sample(page, `fhirgate_limit_store_up{store="shared"}`) != 0 || sample(page, `fhirgate_limit_store_fallbacks_total{store="shared"}`) < 1 {
			t.Errorf("metrics with Redis down:\n%s", grepLines(page, "fhirgate_limit_store"))
		}
		if !strings.Contains(g.proc.Out.String(), "limit store unavailable; deciding without it") {
			t.Errorf("no log line for the store going down:\n%s", g.proc.Out.String())
		}
	}

	srv.Restart(t)
	deadline := time.Now().Add(5 * time.Second)
	for _, g := range gws {
		for sample(metricsPage(t, g), `fhirgate_limit_store_up{store="shared"}`) != 1 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if sample(metricsPage(t, g), `fhirgate_limit_store_up{store="shared"}`) != 1 {
			t.Fatalf("store not up again after the restart")
		}
		if !strings.Contains(g.proc.Out.String(), "limit store answers again; limits are shared") {
			t.Errorf("no log line for the store coming back")
		}
	}
	if got := alternate(t, gws, client, "subject-3", 30); got != burst {
		t.Errorf("shared again: %d of 30 admitted, want %d", got, burst)
	}

	// Stalled: every answer still comes, bounded by the 100 ms deadline
	// (the first call waits for it; then the store is down until a probe
	// succeeds and calls do not wait).
	srv.Pause()
	token := subjectToken(t, "subject-4")
	var took []time.Duration
	for i := range 40 {
		r := notifyAs(gws[i%2], client, token)
		if r.err != nil || (r.status != http.StatusCreated && r.status != http.StatusTooManyRequests) {
			t.Fatalf("with Redis stalled, request %d: %v %d %s", i, r.err, r.status, r.body)
		}
		took = append(took, r.took)
	}
	srv.Resume()
	slices.Sort(took)
	p99 := took[len(took)*99/100]
	t.Logf("with Redis stalled: p50 %v, p99 %v, max %v", took[len(took)/2], p99, took[len(took)-1])
	if took[len(took)-1] > 500*time.Millisecond {
		t.Errorf("an answer took %v with Redis stalled and a 100 ms store deadline", took[len(took)-1])
	}
}
