package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/backend"
	"github.com/fhirgate/fhirgate/test/procs"
)

// benchTable builds the repository's routes.yaml (keys from a file the
// benchmark writes; no call is made).
func benchTable(b *testing.B) *Table {
	b.Helper()
	dir := b.TempDir()
	pub := filepath.Join(dir, "idp.pem")
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	file := procs.WriteRoutes(b, "../../routes.yaml",
		"      jwks_url: http://127.0.0.1:9101/demo/jwks.json\n      refresh: 15m\n", "      pem_file: "+pub+"\n",
		"      jwks_url: http://127.0.0.1:9102/demo/jwks.json\n      refresh: 15m\n", "      pem_file: "+pub+"\n")
	cfg, err := config.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	table, err := Build(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return table
}

// BenchmarkMapAnswer is the response-mapping stage alone: the Twiin-01
// route's rules applied to a backend answer — the confirmation (201 with
// Location and ETag from the answer's fields) and a refusal (422
// OperationOutcome whose text quotes the request) — without the call.
func BenchmarkMapAnswer(b *testing.B) {
	table := benchTable(b)
	m := NewMetrics()
	var r *Route
	var bs *base
	for _, base := range table.bases {
		for _, rt := range base.routes {
			if rt.cfg.Name == "twiin-notification" {
				r, bs = rt, base
			}
		}
	}
	if r == nil {
		b.Fatal("no twiin-notification route in routes.yaml")
	}
	resource := map[string]any{"resourceType": "Task", "identifier": []any{map[string]any{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:0f5f7c1e"}}}
	for _, c := range []struct {
		name   string
		status int
		body   string
		want   int
	}{
		{"confirmed", 200, `{"outcome":"STORED","notificationId":"ntf-000001","revision":1}`, 201},
		{"refused", 409, `{"errorCode":"GTK-E-108","message":"duplicate"}`, 422},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				req := httptest.NewRequest("POST", "/twiin/Task", nil)
				x := &Exchange{w: w, r: req, table: table, metrics: m, base: bs, route: r,
					resource: resource, resp: &backend.Response{Status: c.status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(c.body)}}
				r.mapAnswer(x, nil)
				if w.Code != c.want {
					b.Fatalf("%d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
