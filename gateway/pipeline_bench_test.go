package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/logline"
	"github.com/fhirgate/fhirgate/gateway/pipeline"
	"github.com/fhirgate/fhirgate/test/procs"
)

// benchGateway is the repository's routes.yaml in front of a loopback
// backend that confirms every call, with keys from a file; logs and audit
// are written to io.Discard.
func benchGateway(b *testing.B) (*Gateway, map[string]string) {
	return benchGatewayWith(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/cancellation"):
			io.WriteString(w, `{"result":"CANCELLED"}`)
		case strings.HasSuffix(r.URL.Path, "/notifications"):
			io.WriteString(w, `{"outcome":"STORED","notificationId":"ntf-000001","revision":1}`)
		default:
			io.WriteString(w, `{"outcome":"CANCELLED","notificationId":"ntf-000001","revision":2}`)
		}
	}))
}

// benchGatewayWith is benchGateway in front of the given legacy backend;
// the tokens are those of a prescriber (erp) and a Twiin sender (twiin),
// and sign makes others.
func benchGatewayWith(b *testing.B, legacy http.Handler) (*Gateway, map[string]string) {
	g, _, tokens := benchGatewaySigner(b, legacy)
	return g, tokens
}

func benchGatewaySigner(b *testing.B, legacy http.Handler) (*Gateway, func(jwt.MapClaims) string, map[string]string) {
	b.Helper()
	be := httptest.NewServer(legacy)
	b.Cleanup(be.Close)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	dir := b.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pub := filepath.Join(dir, "idp.pem")
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	file := procs.WriteRoutes(b, "../routes.yaml",
		"      jwks_url: http://127.0.0.1:9101/demo/jwks.json\n      refresh: 15m\n", "      pem_file: "+pub+"\n",
		"      jwks_url: http://127.0.0.1:9102/demo/jwks.json\n      refresh: 15m\n", "      pem_file: "+pub+"\n",
		"http://127.0.0.1:9101", be.URL, "http://127.0.0.1:9102", be.URL,
		"requests: 20\n      per: 1s\n      burst: 40", "requests: 100000000\n      per: 1s\n      burst: 100000000")
	cfg, err := config.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	table, err := pipeline.Build(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	// Logged as fhirgate serve logs (logline).
	g, err := New(table, pipeline.NewMetrics(), slog.New(logline.New(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	sign := func(c jwt.MapClaims) string {
		c["iat"], c["exp"] = time.Now().Unix(), time.Now().Add(time.Hour).Unix()
		s, _ := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(key)
		return s
	}
	return g, sign, map[string]string{
		"erp":   sign(jwt.MapClaims{"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/", "sub": "bench", "professionOID": "1.2.276.0.76.4.50", "idNummer": "1-B"}),
		"twiin": sign(jwt.MapClaims{"iss": "https://twiin-idp.fhirgate.example", "aud": "https://gtk.fhirgate.example/", "sub": "bench", "scope": "tanp"}),
	}
}

// BenchmarkPipeline serves the benchmark scenarios in process (the
// backend call goes over loopback): the gateway's whole cost per request,
// for profiling with -cpuprofile / -memprofile.
func BenchmarkPipeline(b *testing.B) {
	g, tokens := benchGateway(b)
	read := func(name string) []byte {
		data, err := os.ReadFile("../test/bench/testdata/" + name)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	cancel := "/twiin/Task?identifier=https%3A%2F%2Ftools.ietf.org%2Fhtml%2Frfc4122%7C0f5f7c1e-8c2d-4a3b-9a51-2e6b5b0d7f11"
	cases := []struct {
		name, method, path, token, contentType string
		body                                   []byte
		status                                 int
	}{
		{"a_abort", "POST", "/erp/Task/160.000.033.491.280.78/$abort?ac=" + strings.Repeat("7", 64), tokens["erp"], "", nil, 204},
		{"b_cancel_json", "PUT", cancel, tokens["twiin"], "application/fhir+json", read("twiin-02-cancellation.json"), 201},
		{"c_cancel_xml", "PUT", cancel, tokens["twiin"], "application/fhir+xml", read("twiin-02-cancellation.xml"), 201},
		{"d_notify_json", "POST", "/twiin/Task", tokens["twiin"], "application/fhir+json", read("twiin-01-notification.json"), 201},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(c.method, c.path, bytes.NewReader(c.body))
				req.Header.Set("Authorization", "Bearer "+c.token)
				if c.contentType != "" {
					req.Header.Set("Content-Type", c.contentType)
				}
				w := httptest.NewRecorder()
				g.ServeHTTP(w, req)
				if w.Code != c.status {
					b.Fatalf("%d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
