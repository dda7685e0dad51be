package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/test/legacysim/fachdienst"
	"github.com/fhirgate/fhirgate/test/procs"
	"github.com/golang-jwt/jwt/v5"
)

// failure makes one of the gateway-owned checks of spec §3 rows 1–7 fail
// on a request.
type failure struct {
	row    int
	status int
	text   string
	apply  func(r *abortRequest)
}

// Rows 1–7. Row 4 (rate limit) is exercised by exhausting the bucket of
// the token's subject before the request; see TestPrecedence.
func gatewayFailures(t *testing.T) []failure {
	return []failure{
		{1, 400, "Authorization header is missing", func(r *abortRequest) { r.token = "" }},
		{2, 405, "no matching handler found.", func(r *abortRequest) { r.method = http.MethodGet }},
		{3, 401, "JWT expired", func(r *abortRequest) {
			r.token = token(t, jwt.MapClaims{"sub": "expired-" + r.id, "professionOID": "1.2.276.0.76.4.59", "idNummer": "X", "exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()})
		}},
		{4, 429, "Token with given sub used too often within certain timespan.", nil},
		{5, 403, "endpoint is forbidden for professionOID 1.2.276.0.76.4.59", func(r *abortRequest) {
			r.token = token(t, jwt.MapClaims{"sub": r.token[len(r.token)-12:], "professionOID": "1.2.276.0.76.4.59", "idNummer": "X"})
		}},
		{6, 406, "Requested format 'text/html' cannot be provided", func(r *abortRequest) { r.format = formatVariant{query: "text/html"} }},
		{7, 404, txtBadID, func(r *abortRequest) { r.id = "160.000.000.000.000.01" }},
	}
}

// TestPrecedence: each of rows 1–7 wins over every later row, including
// the backend's rows (the Task used is cancelled, so reaching the backend
// would answer 410).
func TestPrecedence(t *testing.T) {
	// A bucket that does not refill within the test, so that once it is
	// empty every request of that subject is over the limit.
	s := startStack(t, dialects[0].routes, dialects[0].dialect, dialects[0].addrs,
		"requests: 20\n      per: 1s\n      burst: 40", "requests: 1\n      per: 1h\n      burst: 40")
	seed := fachdienst.DefaultSeed()
	cancelled := seed[4] // 160, cancelled
	if cancelled.Status != "cancelled" {
		t.Fatalf("seed order changed: %+v", cancelled)
	}
	fs := gatewayFailures(t)
	for i, f := range fs {
		t.Run(fmt.Sprintf("row %d over rows %d-7 and the backend", f.row, f.row+1), func(t *testing.T) {
			sub := fmt.Sprintf("precedence-%d-%d", i, time.Now().UnixNano())
			r := abortRequest{id: cancelled.ID, token: token(t, jwt.MapClaims{"sub": sub, "professionOID": "1.2.276.0.76.4.50", "idNummer": "1-X"}), format: formatVariants[0]}
			// Apply the later failures first: a later failure may set the
			// token (row 5) that an earlier one then replaces (row 3, 1).
			for j := len(fs) - 1; j > i; j-- {
				if fs[j].apply != nil {
					fs[j].apply(&r)
				}
			}
			if f.apply != nil {
				f.apply(&r)
			}
			if f.row == 4 {
				// Exhaust the subject's bucket (burst 40) with otherwise
				// valid requests, then add rows 5–7 on the same subject.
				limited := false
				for k := 0; k < 200 && !limited; k++ {
					warm := abortRequest{id: "160.000.000.000.000.01", token: token(t, jwt.MapClaims{"sub": sub + "-rl", "professionOID": "1.2.276.0.76.4.50", "idNummer": "1-X"}), format: formatVariants[0]}
					limited = do(t, s.request(t, warm)).Status == 429
				}
				if !limited {
					t.Fatal("the rate limit never answered 429")
				}
				r.token = token(t, jwt.MapClaims{"sub": sub + "-rl", "professionOID": "1.2.276.0.76.4.59", "idNummer": "1-X"})
			}
			got := do(t, s.request(t, r))
			if got.Status != f.status || got.Text != f.text {
				t.Fatalf("got %d %q, want %d %q", got.Status, got.Text, f.status, f.text)
			}
			if f.row == 4 && got.Header.Get("VAU-Error-Code") != "brute_force" {
				t.Errorf("429 without VAU-Error-Code: brute_force")
			}
			if f.row == 2 && got.Header.Get("Allow") != "POST" {
				t.Errorf("405 Allow = %q", got.Header.Get("Allow"))
			}
		})
	}
	t.Run("the issue's examples", func(t *testing.T) {
		// A bad token on a bad id → 401, not 404.
		got := do(t, s.request(t, abortRequest{id: "160.000.000.000.000.01", token: "garbage", format: formatVariants[0]}))
		if got.Status != 401 || got.Text != "JWT has invalid format" {
			t.Errorf("bad token on bad id: %d %q", got.Status, got.Text)
		}
		// An unknown professionOID on a cancelled Task → 403, not 410.
		got = do(t, s.request(t, abortRequest{id: cancelled.ID, token: token(t, jwt.MapClaims{"sub": "kt", "professionOID": "1.2.276.0.76.4.59", "idNummer": "X"}), format: formatVariants[0]}))
		if got.Status != 403 || got.Text != "endpoint is forbidden for professionOID 1.2.276.0.76.4.59" {
			t.Errorf("unknown OID on cancelled Task: %d %q", got.Status, got.Text)
		}
	})
	s.assertNoSecretsInLogs(t)
}

// TestJWTNegatives: every way a token can be wrong gets 401 with its text
// and the WWW-Authenticate header; none reaches the backend (the Task used
// is ready and would be cancelled).
func TestJWTNegatives(t *testing.T) {
	s := startStack(t, dialects[0].routes, dialects[0].dialect, dialects[0].addrs)
	task := fachdienst.DefaultSeed()[1] // 160 ready
	good := jwt.MapClaims{"sub": "neg", "professionOID": "1.2.276.0.76.4.50", "idNummer": "1-X"}
	with := func(extra jwt.MapClaims) jwt.MapClaims {
		m := jwt.MapClaims{}
		for k, v := range good {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, &env.Key.PublicKey)})
	now := time.Now()
	cases := []struct {
		name, token, text string
	}{
		{"expired", token(t, with(jwt.MapClaims{"exp": now.Add(-time.Minute).Unix(), "iat": now.Add(-time.Hour).Unix()})), "JWT expired"},
		{"not yet valid", token(t, with(jwt.MapClaims{"nbf": now.Add(10 * time.Minute).Unix()})), "JWT not yet valid"},
		{"issued in the future", token(t, with(jwt.MapClaims{"iat": now.Add(10 * time.Minute).Unix()})), "JWT not yet valid"},
		{"wrong aud", token(t, with(jwt.MapClaims{"aud": "https://other.example/"})), "JWT has invalid aud claim"},
		{"wrong iss", token(t, with(jwt.MapClaims{"iss": "https://evil.example"})), "JWT has invalid iss claim"},
		{"no exp", token(t, with(jwt.MapClaims{"exp": nil})), "JWT misses required claims"},
		{"missing professionOID", token(t, with(jwt.MapClaims{"professionOID": nil})), "JWT misses required claims"},
		{"missing idNummer", token(t, with(jwt.MapClaims{"idNummer": nil})), "JWT misses required claims"},
		{"bad signature (other key)", signWith(t, jwt.SigningMethodRS256, otherKey, with(nil)), "JWT has invalid signature"},
		{"tampered payload", tamper(token(t, with(nil))), "JWT has invalid signature"},
		{"alg none", unsignedNone(t, with(nil)), "JWT has invalid signature"},
		{"HS256 signed with the RSA public key", signWith(t, jwt.SigningMethodHS256, pubPEM, with(nil)), "JWT has invalid signature"},
		{"garbage", "garbage", "JWT has invalid format"},
		{"three garbage parts", "a.b.c", "JWT has invalid format"},
		{"oversized", strings.Repeat("a", 20000), "JWT has invalid format"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := do(t, s.request(t, abortRequest{id: task.ID, token: c.token, ac: task.AccessCode, format: formatVariants[0]}))
			assertAnswer(t, got, expectation{status: 401, text: c.text}, false, formatVariants[0])
		})
	}
	for _, c := range []struct{ name, header, text string }{
		{"Basic scheme", "Basic dXNlcjpwYXNz", "invalid Authorization Bearer header field"},
		{"Bearer without token", "Bearer ", "invalid Authorization Bearer header field"},
		{"token without scheme", "eyJhbGciOiJSUzI1NiJ9", "invalid Authorization Bearer header field"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := s.request(t, abortRequest{id: task.ID, format: formatVariants[0]})
			req.Header.Set("Authorization", c.header)
			got := do(t, req)
			if got.Status != 400 || got.Text != c.text || got.Code != "invalid" {
				t.Errorf("got %d %s %q, want 400 invalid %q", got.Status, got.Code, got.Text, c.text)
			}
		})
	}
	if st := s.taskStatus(t, task.ID); st != "ready" {
		t.Errorf("a refused token changed the Task: %s", st)
	}
	s.assertNoSecretsInLogs(t)
}

func mustPKIX(t *testing.T, k *rsa.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func signWith(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	full := jwt.MapClaims{"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range claims {
		full[k] = v
	}
	s, err := jwt.NewWithClaims(m, full).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unsignedNone(t *testing.T, claims jwt.MapClaims) string {
	return signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims)
}

// tamper changes the payload of a signed token (professionOID → pharmacy).
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), "1.2.276.0.76.4.50", "1.2.276.0.76.4.54", 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// TestAccessCodeSources: ?ac wins over X-AccessCode.
func TestAccessCodeSources(t *testing.T) {
	s := startStack(t, dialects[0].routes, dialects[0].dialect, dialects[0].addrs)
	task := fachdienst.DefaultSeed()[1] // 160 ready
	wrong := strings.Repeat("0", 64)
	for _, c := range []struct {
		name       string
		query, hdr string
		want       expectation
	}{
		{"query correct, header wrong", task.AccessCode, wrong, expectation{status: 204}},
		{"query wrong, header correct", wrong, task.AccessCode, expectation{status: 403, text: txtAC, brute: true}},
		{"header only, correct", "", task.AccessCode, expectation{status: 204}},
		{"header only, wrong", "", wrong, expectation{status: 403, text: txtAC, brute: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.reset(t)
			tok := token(t, jwt.MapClaims{"sub": "ac-" + c.name, "professionOID": "1.2.276.0.76.4.50", "idNummer": "1-X"})
			got := do(t, s.request(t, abortRequest{id: task.ID, token: tok, ac: c.query, acHeader: c.hdr, format: formatVariants[0]}))
			assertAnswer(t, got, c.want, false, formatVariants[0])
		})
	}
	s.assertNoSecretsInLogs(t)
}

// TestHTTPBehaviour covers the pipeline around the route: trailing slash,
// encoded $, unknown paths, request ids, 413 and the admin listener.
func TestHTTPBehaviour(t *testing.T) {
	s := startStack(t, dialects[0].routes, dialects[0].dialect, dialects[0].addrs)
	seed := fachdienst.DefaultSeed()
	prescriber := func() string {
		return token(t, jwt.MapClaims{"sub": fmt.Sprintf("http-%d", time.Now().UnixNano()), "professionOID": "1.2.276.0.76.4.50", "idNummer": "1-X"})
	}
	post := func(path string, hdr map[string]string) answer {
		req, _ := http.NewRequest(http.MethodPost, s.gw+path, strings.NewReader(""))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return do(t, req)
	}
	t.Run("trailing slash accepted", func(t *testing.T) {
		s.reset(t)
		got := post("/erp/Task/"+seed[1].ID+"/$abort/?ac="+seed[1].AccessCode, map[string]string{"Authorization": "Bearer " + prescriber()})
		if got.Status != 204 {
			t.Fatalf("got %d %s", got.Status, got.Body)
		}
	})
	t.Run("percent-encoded $abort", func(t *testing.T) {
		s.reset(t)
		got := post("/erp/Task/"+seed[1].ID+"/%24abort?ac="+seed[1].AccessCode, map[string]string{"Authorization": "Bearer " + prescriber()})
		if got.Status != 204 {
			t.Fatalf("got %d %s", got.Status, got.Body)
		}
	})
	t.Run("encoded slash in id is one segment, refused as id", func(t *testing.T) {
		got := post("/erp/Task/..%2F..%2Fadmin/$abort", map[string]string{"Authorization": "Bearer " + prescriber()})
		if got.Status != 404 || got.Text != txtBadID {
			t.Fatalf("got %d %q", got.Status, got.Text)
		}
	})
	t.Run("unknown path under the base", func(t *testing.T) {
		got := post("/erp/Patient/1", map[string]string{"Authorization": "Bearer " + prescriber()})
		if got.Status != 404 || got.Format != "xml" || got.Code != "not-found" {
			t.Fatalf("got %d %s %s", got.Status, got.Format, got.Code)
		}
		got = post("/erp/Patient/1", nil)
		if got.Status != 400 || got.Text != "Authorization header is missing" {
			t.Fatalf("without token: %d %q", got.Status, got.Text)
		}
	})
	t.Run("AbortOperation parameters checked", func(t *testing.T) {
		s.reset(t)
		cases := []struct {
			query, code, expr string
			issues            int
		}{
			{"?ac=a&ac=b", "structure", "$abort.parameter('ac')", 1},
			{"?foo=1", "not-supported", "$abort.parameter('foo')", 1},
			{"?secret=&secret=", "structure", "$abort.parameter('secret')", 2}, // twice, and empty
		}
		for _, c := range cases {
			got := post("/erp/Task/"+seed[1].ID+"/$abort"+c.query, map[string]string{"Authorization": "Bearer " + prescriber()})
			if got.Status != 400 || got.Code != c.code || len(got.Issues) != c.issues || len(got.Issues[0].Expression) != 1 || got.Issues[0].Expression[0] != c.expr {
				t.Errorf("%s: %d %s", c.query, got.Status, got.Body)
			}
		}
		if st := s.taskStatus(t, seed[1].ID); st != "ready" {
			t.Errorf("Task %s is %s after refused calls", seed[1].ID, st)
		}
		got := post("/erp/Task/"+seed[1].ID+"/$abort?_format=json&ac="+seed[1].AccessCode, map[string]string{"Authorization": "Bearer " + prescriber()})
		if got.Status != 204 {
			t.Errorf("a call within the definition: %d %s", got.Status, got.Body)
		}
	})
	t.Run("outside every base", func(t *testing.T) {
		got := post("/nothing", nil)
		if got.Status != 404 || got.Format != "json" {
			t.Fatalf("got %d %s", got.Status, got.Format)
		}
	})
	t.Run("request id echoed, forged one replaced", func(t *testing.T) {
		got := post("/erp/Task/x/$abort", map[string]string{"X-Request-Id": "abc-123"})
		if got.Header.Get("X-Request-Id") != "abc-123" {
			t.Errorf("X-Request-Id = %q", got.Header.Get("X-Request-Id"))
		}
		got = post("/erp/Task/x/$abort", map[string]string{"X-Request-Id": "a\" forged=1"})
		if id := got.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, "forged") {
			t.Errorf("X-Request-Id = %q", id)
		}
	})
	t.Run("413 for a body over the limit", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.gw+"/erp/Task/"+seed[1].ID+"/$abort", strings.NewReader(strings.Repeat("x", 2<<20)))
		req.Header.Set("Authorization", "Bearer "+prescriber())
		got := do(t, req)
		if got.Status != 413 {
			t.Fatalf("got %d", got.Status)
		}
	})
	t.Run("a body is ignored", func(t *testing.T) {
		s.reset(t)
		req, _ := http.NewRequest(http.MethodPost, s.gw+"/erp/Task/"+seed[1].ID+"/$abort?ac="+seed[1].AccessCode, strings.NewReader(`{"resourceType":"Parameters"}`))
		req.Header.Set("Authorization", "Bearer "+prescriber())
		req.Header.Set("Content-Type", "application/fhir+json")
		if got := do(t, req); got.Status != 204 {
			t.Fatalf("got %d %s", got.Status, got.Body)
		}
	})
	t.Run("admin listener", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(s.admin + p)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %v %v", p, err, resp)
			}
			resp.Body.Close()
		}
		page := procs.Scrape(t, s.admin)
		for _, name := range []string{
			`fhirgate_requests_total{code="204",route="erp-task-abort"}`,
			`fhirgate_request_duration_seconds_bucket{route="erp-task-abort"`,
			`fhirgate_validation_failures_total{kind="prescription-id",route="erp-task-abort"}`,
			`fhirgate_backend_requests_total{backend="fachdienst",outcome="2xx"}`,
			`fhirgate_backend_request_duration_seconds_bucket{backend="fachdienst"`,
			`fhirgate_inflight_requests`, `fhirgate_circuit_breaker_open{backend="fachdienst"} 0`,
			`fhirgate_config_reloads_total{result="success"} 1`, `fhirgate_config_last_reload_success_timestamp_seconds`,
			`go_goroutines`, `process_resident_memory_bytes`,
		} {
			if !strings.Contains(page, name) {
				t.Errorf("metrics lack %s", name)
			}
		}
	})
	s.assertNoSecretsInLogs(t)
}
