package gateway

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/pipeline"
)

// backendSpy is a real loopback backend that records what it received.
type backendSpy struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	answer   func(w http.ResponseWriter, r *http.Request)
}

func (b *backendSpy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.requests = append(b.requests, r)
	b.bodies = append(b.bodies, string(body))
	answer := b.answer
	b.mu.Unlock()
	answer(w, r)
}

func (b *backendSpy) last() (*http.Request, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		return nil, ""
	}
	return b.requests[len(b.requests)-1], b.bodies[len(b.bodies)-1]
}

const testRoutes = `
auth:
  idp:
    keys: {pem_file: key.pem}
    roles: {claim: role, map: {doc: prescriber}}
backends:
  legacy:
    urls: [BACKEND]
    timeout: 300ms
bases:
  - path: /fhir
    fhir_version: R4
    routes:
      - name: op
        interaction: operation
        method: POST
        path: /Task/{id}/$op
        auth: idp
        call:
          backend: legacy
          path: /legacy/${path.id}
          query: {who: "${query.who}"}
          headers: {X-Who: "${query.who}"}
          body: {encoding: json, fields: {id: "${path.id}"}}
        responses:
          - when: {status: 200, match: {body.ok: "true"}}
            answer: {status: 204}
          - when: {status: 200, match: {body.ok: "false"}}
            answer: {status: 409, code: conflict, text: "refused: ${body.reason}"}
`

type fixture struct {
	gw      *httptest.Server
	spy     *backendSpy
	token   string
	table   *pipeline.Table
	metrics *pipeline.Metrics
}

func newFixture(t *testing.T, backendURL string, spy *backendSpy, opts ...Option) *fixture {
	t.Helper()
	return newFixtureRoutes(t, strings.Replace(testRoutes, "BACKEND", backendURL, 1), spy, opts...)
}

// newFixtureRoutes is newFixture with a configuration of the test's own
// (testRoutes edited; key.pem is written beside it).
func newFixtureRoutes(t testing.TB, routes string, spy *backendSpy, opts ...Option) *fixture {
	t.Helper()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	dir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	file := filepath.Join(dir, "routes.yaml")
	os.WriteFile(file, []byte(routes), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	table, err := pipeline.Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := pipeline.NewMetrics()
	g, err := New(table, m, slog.New(slog.NewJSONHandler(io.Discard, nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "s", "role": "doc", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	f := &fixture{gw: httptest.NewServer(g), spy: spy, token: tok, table: table, metrics: m}
	t.Cleanup(f.gw.Close)
	return f
}

func (f *fixture) post(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	return f.send(t, http.MethodPost, path)
}

// send makes a request with the fixture's token and extra headers (name,
// value pairs) and returns the answer with its body read.
func (f *fixture) send(t *testing.T, method, path string, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, f.gw.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestBackendFailuresNeverSucceed: whatever goes wrong with the backend,
// the client gets a 5xx OperationOutcome, never a 2xx.
func TestBackendFailuresNeverSucceed(t *testing.T) {
	cases := []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		status int
		text   string
	}{
		{"confirmed", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }, 204, ""},
		{"business refusal inside 200", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":false,"reason":"locked"}`) }, 409, "refused: locked"},
		{"500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, 502, "the backend's answer could not be mapped"},
		{"200 without the confirmation field", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{}`) }, 502, "the backend's answer could not be mapped"},
		{"200 with garbage", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `<html>oops`) }, 502, "the backend's answer could not be mapped"},
		{"200 wrong content type", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, `<html><ok>true</ok></html>`)
		}, 502, "the backend's answer could not be mapped"},
		{"slower than the deadline", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			io.WriteString(w, `{"ok":true}`)
		}, 504, "the backend did not answer in time"},
		{"half a body", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, `{"ok":tr`)
		}, 502, "the backend call failed"},
		{"connection closed without an answer", func(w http.ResponseWriter, r *http.Request) {
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		}, 502, "the backend call failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spy := &backendSpy{answer: c.answer}
			be := httptest.NewServer(spy)
			defer be.Close()
			f := newFixture(t, be.URL, spy)
			start := time.Now()
			resp, body := f.post(t, "/fhir/Task/1/$op")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if time.Since(start) > time.Second {
				t.Errorf("answered after %v; the backend deadline is 300ms", time.Since(start))
			}
			if c.status == 204 {
				return
			}
			if !strings.Contains(body, `"resourceType":"OperationOutcome"`) || !strings.Contains(body, c.text) {
				t.Errorf("body %s lacks %q", body, c.text)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		f := newFixture(t, "http://"+addr, nil)
		resp, body := f.post(t, "/fhir/Task/1/$op")
		if resp.StatusCode != 502 || !strings.Contains(body, "the backend is not reachable") {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
}

// TestClientValuesCannotRedirectOrInject: values from the client land
// escaped in the path, encoded in the query, and never split a header.
func TestClientValuesCannotRedirectOrInject(t *testing.T) {
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }}
	be := httptest.NewServer(spy)
	defer be.Close()
	f := newFixture(t, be.URL, spy)
	for _, id := range []string{"..", "..%2F..%2Fadmin", "x%3Fy%3Dz", "%2F%2Fevil.example", "@evil.example", "a%23b"} {
		resp, _ := f.post(t, "/fhir/Task/"+id+"/$op")
		if resp.StatusCode != 204 {
			t.Fatalf("%s: %d", id, resp.StatusCode)
		}
		r, body := spy.last()
		if r.Host != strings.TrimPrefix(be.URL, "http://") || !strings.HasPrefix(r.URL.EscapedPath(), "/legacy/") || strings.Count(r.URL.EscapedPath(), "/") != 2 {
			t.Errorf("%s reached host %s path %s", id, r.Host, r.URL.EscapedPath())
		}
		if !strings.Contains(body, `"id":`) {
			t.Errorf("body %s", body)
		}
	}
	resp, body := f.post(t, "/fhir/Task/1/$op?who=a%0D%0AX-Injected:%201")
	if resp.StatusCode != 400 || !strings.Contains(body, "cannot be forwarded") {
		t.Errorf("CR/LF in a header value: %d %s", resp.StatusCode, body)
	}
	if r, _ := spy.last(); r.Header.Get("X-Injected") != "" {
		t.Error("header injected")
	}
	f.post(t, "/fhir/Task/1/$op?who=a%26b%3Dc")
	if r, _ := spy.last(); r.URL.Query().Get("who") != "a&b=c" || r.URL.Query().Get("b") != "" {
		t.Errorf("query not encoded: %s", r.URL.RawQuery)
	}
}

// TestPanicIsAnOperationOutcome: a panic in a handler is a 500
// OperationOutcome, not a dropped connection.
func TestPanicIsAnOperationOutcome(t *testing.T) {
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }}
	be := httptest.NewServer(spy)
	defer be.Close()
	f := newFixture(t, be.URL, spy, WithMiddleware(func(*gin.Context) { panic(fmt.Sprint("boom")) }))
	resp, body := f.post(t, "/fhir/Task/1/$op")
	if resp.StatusCode != 500 || !strings.Contains(body, "internal error") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestTypedRules: when.match conditions on a backend answer with numeric
// return codes — "rc = 0" confirms, "rc in {31, 32}" is a conflict, a
// message matching a pattern and "rc ≠ 0" are business refusals, and an
// answer no rule matches is a 502.
func TestTypedRules(t *testing.T) {
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, r.URL.Query().Get("who"))
	}}
	be := httptest.NewServer(spy)
	defer be.Close()
	rules := `        responses:
          - when: {status: 200, match: {body.rc: 0}}
            answer: {status: 204}
          - when: {status: 200, match: {body.rc: {any: [31, 32]}}}
            answer: {status: 409, code: conflict, text: "state ${body.rc}"}
          - when: {status: 200, match: {body.msg: {regex: "E_[A-Z]+"}}}
            answer: {status: 422, code: business-rule, text: "message ${body.msg}"}
          - when: {status: 200, match: {body.rc: {present_not: 0}}}
            answer: {status: 422, code: business-rule, text: "refused with rc ${body.rc}"}
`
	old := testRoutes[strings.Index(testRoutes, "        responses:\n"):]
	f := newFixtureRoutes(t, strings.Replace(strings.Replace(testRoutes, old, rules, 1), "BACKEND", be.URL, 1), spy)
	for _, c := range []struct {
		answer string
		status int
		text   string
	}{
		{`{"rc":0}`, 204, ""},
		{`{"rc":0.0}`, 204, ""},
		{`{"rc":"0"}`, 204, ""},
		{`{"rc":31}`, 409, "state 31"},
		{`{"rc":32.0}`, 409, "state 32.0"},
		{`{"rc":7,"msg":"E_LOCKED"}`, 422, "message E_LOCKED"},
		{`{"rc":7,"msg":"locked"}`, 422, "refused with rc 7"},
		{`{"rc":null}`, 502, ""},
		{`{}`, 502, ""},
	} {
		resp, body := f.post(t, "/fhir/Task/1/$op?who="+url.QueryEscape(c.answer))
		if resp.StatusCode != c.status || !strings.Contains(body, c.text) {
			t.Errorf("backend %s: %d %s, want %d %q", c.answer, resp.StatusCode, body, c.status, c.text)
		}
	}
}
