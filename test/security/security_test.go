// Package security attacks the real gateway, in front of the real legacy
// simulators, the way a hostile client would: forged and oversized tokens,
// XML and JSON bombs, path traversal, header injection and SSRF through
// templates. Every attack must get a precise FHIR answer (or, where Go's
// HTTP server answers before the gateway, a refusal), quickly, with no
// effect on the backends, and no credential may surface in logs, metrics,
// audit records or exported traces.
package security

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/test/fixtures"
	"github.com/fhirgate/fhirgate/test/procs"
	"github.com/golang-jwt/jwt/v5"
)

// env holds the built binaries and the demo IDPs' signing key.
var env *procs.Env

func TestMain(m *testing.M) { os.Exit(procs.Main(m, "fhirgate-security-", &env)) }

// collector is an OTLP/HTTP endpoint that keeps the raw exports.
type collector struct {
	mu  sync.Mutex
	raw bytes.Buffer
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.raw.Write(b)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
}

type stack struct {
	gw, admin, fach, gtk string
	procs                []*procs.Proc
	collector            *collector
	evil                 string // a listener no call may ever reach
	evilHits             *atomic.Int32
}

func startStack(t *testing.T) *stack {
	t.Helper()
	gw, admin, fach, gtk := procs.FreeAddr(t), procs.FreeAddr(t), procs.FreeAddr(t), procs.FreeAddr(t)
	col := &collector{}
	cs := httptest.NewServer(col)
	t.Cleanup(cs.Close)
	evil, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { evil.Close() })
	hits := &atomic.Int32{}
	go func() {
		for {
			c, err := evil.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.Close()
		}
	}()
	file := procs.WriteRoutes(t, "../../routes.yaml",
		"127.0.0.1:8080", gw, "127.0.0.1:9090", admin, "127.0.0.1:9101", fach, "127.0.0.1:9102", gtk,
		"  # otlp_endpoint: http://127.0.0.1:4318", "  otlp_endpoint: "+cs.URL,
		"requests: 20\n      per: 1s\n      burst: 40", "requests: 100000\n      per: 1s\n      burst: 100000",
		"  max_body_bytes: 1048576\n", "  max_body_bytes: 1048576\n  read_timeout: 1s\n",
		// A client value in a backend header, to attack it with CR/LF.
		"          path: /gtk/v2/notifications\n          body:\n", "          path: /gtk/v2/notifications\n          headers: {X-Notification-Id: \"${resource.identifier.value}\"}\n          body:\n",
		// Any id reaches the backend call, to attack the path template.
		"            format: prescription-id\n", "            format: regex\n            pattern: \".*\"\n",
	)
	s := &stack{gw: "http://" + gw, admin: "http://" + admin, fach: "http://" + fach, gtk: "http://" + gtk, collector: col, evil: evil.Addr().String(), evilHits: hits}
	fp := procs.Start(t, filepath.Join(env.BinDir, "legacysim"), "fachdienst", "--listen", fach, "--idp-key", env.KeyFile)
	gp := procs.Start(t, filepath.Join(env.BinDir, "legacysim"), "gtk", "--listen", gtk, "--idp-key", env.KeyFile)
	procs.WaitHTTP(t, s.fach+"/demo/jwks.json", fp)
	procs.WaitHTTP(t, s.gtk+"/demo/jwks.json", gp)
	g := procs.Start(t, filepath.Join(env.BinDir, "fhirgate"), "serve", "--config", file)
	procs.WaitHTTP(t, s.admin+"/readyz", g)
	s.procs = []*procs.Proc{g, fp, gp}
	return s
}

func erpClaims(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/", "sub": sub,
		"professionOID": "1.2.276.0.76.4.54", "idNummer": "3-SMC-B-Testkarte-883110000116873", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func sign(t *testing.T, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(env.Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// notification is a valid Twiin-01 Task with the given identifier value.
func notification(value string) map[string]any {
	return fixtures.Notification("https://tools.ietf.org/html/rfc4122", value, nil)
}

// authBase is the credential inside every notification.
const authBase = fixtures.AuthorizationBase

// attack is one hostile request and the answer it must get.
type attack struct {
	name   string
	req    func(s *stack) *http.Request
	status int
	text   string // in the first issue's text, "" for any
	// bare: Go's HTTP server answers before the gateway sees the request
	// (header block beyond twice server.max_header_bytes).
	bare bool
}

func erpAbort(s *stack, id, query, token string) *http.Request {
	u := s.gw + "/erp/Task/" + id + "/$abort"
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest(http.MethodPost, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func twiinPost(s *stack, token, contentType string, body []byte) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, s.gw+"/twiin/Task", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

func twiinToken(t *testing.T) string {
	now := time.Now()
	return sign(t, jwt.MapClaims{"iss": "https://twiin-idp.fhirgate.example", "aud": "https://gtk.fhirgate.example/", "sub": "sending-gtk-1", "scope": "tanp", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}, nil)
}

func attacks(t *testing.T, s *stack) []attack {
	good := sign(t, erpClaims("attacker"), nil)
	pub, _ := x509.MarshalPKIXPublicKey(&env.Key.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
	hs, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, erpClaims("confused")).SignedString(pubPEM)
	none := b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(erpClaims("nobody")) + "."
	expired := erpClaims("late")
	expired["exp"], expired["iat"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-2*time.Hour).Unix()
	early := erpClaims("early")
	early["nbf"] = time.Now().Add(time.Hour).Unix()
	tw := twiinToken(t)
	xmlTask := func(inner string) []byte {
		return []byte(`<?xml version="1.0"?>` + inner)
	}
	evilHost := s.evil
	return []attack{
		// JWT
		{"JWT alg none", func(s *stack) *http.Request { return erpAbort(s, "1", "", none) }, 401, "", false},
		{"JWT HS256 keyed with the RSA public key (key confusion)", func(s *stack) *http.Request { return erpAbort(s, "1", "", hs) }, 401, "", false},
		{"JWT kid path injection", func(s *stack) *http.Request {
			return erpAbort(s, "1", "", sign(t, erpClaims("kid1"), map[string]any{"kid": "../../../../etc/passwd"}))
		}, 401, "", false},
		{"JWT kid with CR/LF and SQL", func(s *stack) *http.Request {
			return erpAbort(s, "1", "", sign(t, erpClaims("kid2"), map[string]any{"kid": "x' OR '1'='1\r\nX-Injected: 1"}))
		}, 401, "", false},
		{"JWT expired", func(s *stack) *http.Request { return erpAbort(s, "1", "", sign(t, expired, nil)) }, 401, "JWT expired", false},
		{"JWT nbf in the future", func(s *stack) *http.Request { return erpAbort(s, "1", "", sign(t, early, nil)) }, 401, "JWT not yet valid", false},
		{"signed JWT of 40 KB (over auth.MaxTokenBytes, 16 KiB)", func(s *stack) *http.Request {
			c := erpClaims("big")
			c["pad"] = strings.Repeat("A", 40<<10)
			return erpAbort(s, "1", "", sign(t, c, nil))
		}, 401, "JWT has invalid format", false},
		{"token of 100 KB (over max_header_bytes)", func(s *stack) *http.Request { return erpAbort(s, "1", "", strings.Repeat("a", 100<<10)) }, 431, "headers exceed the limit", false},
		{"token of 300 KB (over twice max_header_bytes)", func(s *stack) *http.Request { return erpAbort(s, "1", "", strings.Repeat("a", 300<<10)) }, 431, "", true},
		// XML
		{"XML external entity (XXE)", func(s *stack) *http.Request {
			return twiinPost(s, tw, "application/fhir+xml", xmlTask(`<!DOCTYPE Task [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Task xmlns="http://hl7.org/fhir"><id value="&xxe;"/></Task>`))
		}, 400, "", false},
		{"XML billion laughs", func(s *stack) *http.Request {
			var d strings.Builder
			d.WriteString(`<!DOCTYPE Task [<!ENTITY l0 "lol">`)
			for i := 1; i < 10; i++ {
				fmt.Fprintf(&d, `<!ENTITY l%d "%s">`, i, strings.Repeat(fmt.Sprintf("&l%d;", i-1), 10))
			}
			d.WriteString(`]><Task xmlns="http://hl7.org/fhir"><status value="&l9;"/></Task>`)
			return twiinPost(s, tw, "application/fhir+xml", xmlTask(d.String()))
		}, 400, "", false},
		{"XML quadratic blow-up", func(s *stack) *http.Request {
			body := `<!DOCTYPE Task [<!ENTITY a "` + strings.Repeat("x", 50000) + `">]><Task xmlns="http://hl7.org/fhir"><status value="` + strings.Repeat("&a;", 10000) + `"/></Task>`
			return twiinPost(s, tw, "application/fhir+xml", xmlTask(body))
		}, 400, "", false},
		{"XML nested 100000 deep", func(s *stack) *http.Request {
			return twiinPost(s, tw, "application/fhir+xml", xmlTask(`<Task xmlns="http://hl7.org/fhir">`+strings.Repeat("<a>", 100000)+strings.Repeat("</a>", 100000)+`</Task>`))
		}, 400, "", false},
		// JSON
		{"JSON nested 100000 deep", func(s *stack) *http.Request {
			return twiinPost(s, tw, "application/fhir+json", []byte(`{"resourceType":"Task","note":`+strings.Repeat("[", 100000)+strings.Repeat("]", 100000)+`}`))
		}, 400, "", false},
		{"JSON huge number", func(s *stack) *http.Request {
			b, _ := json.Marshal(notification("big-number"))
			b = bytes.Replace(b, []byte(`"restriction":{`), []byte(`"restriction":{"repetitions":1e999999999,`), 1)
			return twiinPost(s, tw, "application/fhir+json", b)
		}, 400, "", false},
		{"JSON 400-digit integer", func(s *stack) *http.Request {
			b, _ := json.Marshal(notification("long-number"))
			b = bytes.Replace(b, []byte(`"restriction":{`), []byte(`"restriction":{"repetitions":`+strings.Repeat("9", 400)+`,`), 1)
			return twiinPost(s, tw, "application/fhir+json", b)
		}, 400, "", false},
		{"JSON duplicate key", func(s *stack) *http.Request {
			b, _ := json.Marshal(notification("dup"))
			b = bytes.Replace(b, []byte(`"status":"requested"`), []byte(`"status":"requested","status":"cancelled"`), 1)
			return twiinPost(s, tw, "application/fhir+json", b)
		}, 400, "given twice", false},
		{"body over max_body_bytes", func(s *stack) *http.Request {
			return twiinPost(s, tw, "application/fhir+json", bytes.Repeat([]byte(" "), 2<<20))
		}, 413, "", false},
		// Paths and templates
		{"path traversal with encoded slashes in the id", func(s *stack) *http.Request {
			return erpAbort(s, "..%2F..%2F..%2Fadmin%2Freset", "", good)
		}, 404, "Task not found", false},
		{"path traversal with dot segments", func(s *stack) *http.Request {
			req := erpAbort(s, "x", "", good)
			req.URL.Opaque = "/erp/Task/../../admin/reset/$abort"
			return req
		}, 404, "", false},
		{"SSRF: scheme and host in the id", func(s *stack) *http.Request {
			return erpAbort(s, "http:%2F%2F"+evilHost+"%2Fx", "", good)
		}, 404, "Task not found", false},
		{"SSRF: authority in the id", func(s *stack) *http.Request { return erpAbort(s, "@"+evilHost, "", good) }, 404, "Task not found", false},
		{"SSRF: network-path reference in the id", func(s *stack) *http.Request { return erpAbort(s, "%2F%2F"+evilHost, "", good) }, 404, "Task not found", false},
		{"CR/LF through a template into a backend header", func(s *stack) *http.Request {
			b, _ := json.Marshal(notification("n-1\r\nX-Injected: yes"))
			return twiinPost(s, tw, "application/fhir+json", b)
		}, 400, "cannot be forwarded", false},
		{"URL over max_url_bytes", func(s *stack) *http.Request { return erpAbort(s, "1", "ac="+strings.Repeat("a", 10<<10), good) }, 414, "", false},
	}
}

type answer struct {
	status int
	ct     string
	body   []byte
	took   time.Duration
	err    error
}

func send(req *http.Request) answer {
	start := time.Now()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, ct: resp.Header.Get("Content-Type"), body: b, took: time.Since(start)}
}

// TestAttacks sends every attack and checks the answer, its speed and its
// form; then that no backend was reached where it must not be, and that
// no credential sent surfaced anywhere.
func TestAttacks(t *testing.T) {
	s := startStack(t)
	gtkBefore := gtkRecords(t, s)
	for _, a := range attacks(t, s) {
		t.Run(a.name, func(t *testing.T) {
			got := send(a.req(s))
			if got.err != nil {
				t.Fatalf("no answer: %v", got.err)
			}
			t.Logf("→ %d %s in %v", got.status, got.ct, got.took.Round(time.Millisecond))
			if got.status != a.status {
				t.Errorf("status %d, want %d: %.300s", got.status, a.status, got.body)
			}
			if got.took > 2*time.Second {
				t.Errorf("answered after %v", got.took)
			}
			if a.bare {
				return
			}
			if !strings.HasPrefix(got.ct, "application/fhir+") || !bytes.Contains(got.body, []byte("OperationOutcome")) {
				t.Errorf("not an OperationOutcome: %s %.300s", got.ct, got.body)
			}
			if a.text != "" && !bytes.Contains(got.body, []byte(a.text)) {
				t.Errorf("body lacks %q: %.300s", a.text, got.body)
			}
			if bytes.Contains(got.body, []byte("root:")) {
				t.Error("file content in the answer")
			}
		})
	}
	if n := s.evilHits.Load(); n != 0 {
		t.Errorf("the listener named in client values got %d connections", n)
	}
	if after := gtkRecords(t, s); after != gtkBefore {
		t.Errorf("the GtK's records changed under attack:\n%s\n%s", gtkBefore, after)
	}
	// The gateway is still serving.
	if got := send(erpAbort(s, "160.000.000.000.999.67", "", sign(t, erpClaims("after"), nil))); got.status != 404 {
		t.Errorf("after the attacks: %d %s", got.status, got.body)
	}
}

// TestSlowBody: a body that trickles in slower than read_timeout is
// answered 408 with an OperationOutcome, and the backend never called.
func TestSlowBody(t *testing.T) {
	s := startStack(t)
	before := gtkRecords(t, s)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.gw, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /twiin/Task HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/fhir+json\r\nContent-Length: 2000\r\n\r\n{\"resourceType\":", twiinToken(t))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("→ %d %s in %v", resp.StatusCode, resp.Header.Get("Content-Type"), time.Since(start).Round(time.Millisecond))
	if resp.StatusCode != http.StatusRequestTimeout || !bytes.Contains(body, []byte("did not arrive in time")) {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	if after := gtkRecords(t, s); after != before {
		t.Error("the GtK was called")
	}
}

func gtkRecords(t *testing.T, s *stack) string {
	resp, err := http.Get(s.gtk + "/admin/notifications")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestSecretsNeverSurface sends successful and failing requests carrying
// every kind of credential, then searches the gateway's log and audit
// stream, both simulators' output, the metrics and the exported spans.
func TestSecretsNeverSurface(t *testing.T) {
	s := startStack(t)
	tok := sign(t, erpClaims("secret-holder"), nil)
	ac := "7d6e2ab1c0ffee99" + strings.Repeat("ab", 24)
	secret := "c0ffee" + strings.Repeat("5e", 29)
	tw := twiinToken(t)
	body, _ := json.Marshal(notification("secret-test-1"))
	for _, req := range []*http.Request{
		erpAbort(s, "160.000.000.000.999.67", "ac="+ac, tok),
		erpAbort(s, "160.000.000.000.999.67", "secret="+secret, tok),
		func() *http.Request { r := erpAbort(s, "x", "", tok); r.Header.Set("X-AccessCode", ac); return r }(),
		erpAbort(s, "1", "ac="+ac, tok[:len(tok)-4]+"AAAA"), // bad signature
		twiinPost(s, tw, "application/fhir+json", body),
		twiinPost(s, tw, "application/fhir+json", bytes.Replace(body, []byte(`"status":"requested"`), []byte(`"status":"draft"`), 1)),
	} {
		if got := send(req); got.err != nil || got.status == 0 {
			t.Fatalf("%v", got.err)
		}
	}
	metrics := procs.Scrape(t, s.admin)
	s.procs[0].Stop(t) // flushes the spans
	s.collector.mu.Lock()
	spans := s.collector.raw.String()
	s.collector.mu.Unlock()
	if len(spans) == 0 {
		t.Fatal("no spans exported: the search below would prove nothing")
	}
	places := map[string]string{"metrics": metrics, "exported spans": spans}
	for i, p := range s.procs {
		places[[]string{"gateway log and audit", "Fachdienst output", "GtK output"}[i]] = p.Out.String()
	}
	if !strings.Contains(places["gateway log and audit"], `"request_id"`) {
		t.Fatal("the gateway wrote no records")
	}
	for name, text := range places {
		for label, secret := range map[string]string{"bearer token": tok[len(tok)-40:], "Twiin token": tw[len(tw)-40:], "AccessCode": ac, "secret": secret, "authorization-base": authBase} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s appears in the %s", label, name)
			}
		}
	}
}
