package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/pipeline"
)

// defaultTable builds the repository's routes.yaml.
func defaultTable(t *testing.T) *pipeline.Table {
	t.Helper()
	cfg, err := config.Load("../routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	table, err := pipeline.Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestMetadataEndpoint: GET [base]/metadata needs no token, negotiates
// like every answer, and HEAD has no body.
func TestMetadataEndpoint(t *testing.T) {
	g, err := New(defaultTable(t), pipeline.NewMetrics(), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(g)
	defer gw.Close()
	cases := []struct {
		method, path, accept string
		status               int
		contentType, body    string
	}{
		// The E-Rezept base answers XML by default (routes.yaml).
		{"GET", "/erp/metadata", "", 200, "application/fhir+xml;charset=utf-8", `<CapabilityStatement xmlns="http://hl7.org/fhir">`},
		{"GET", "/erp/metadata?_format=json", "", 200, "application/fhir+json;charset=utf-8", `"resourceType":"CapabilityStatement"`},
		{"GET", "/erp/metadata", "application/fhir+json", 200, "application/fhir+json;charset=utf-8", `"fhirVersion":"4.0.1"`},
		{"GET", "/twiin/metadata", "application/fhir+xml", 200, "application/fhir+xml;charset=utf-8", `<fhirVersion value="3.0.2"/>`},
		{"GET", "/twiin/metadata/", "", 200, "application/fhir+json;charset=utf-8", `"acceptUnknown":"no"`},
		{"HEAD", "/erp/metadata", "", 200, "application/fhir+xml;charset=utf-8", ""},
		{"GET", "/erp/metadata?_format=text/html", "", 406, "application/fhir+xml;charset=utf-8", "cannot be provided"},
		// Other methods are routed as usual: the token check comes first.
		{"POST", "/erp/metadata", "", 400, "application/fhir+xml;charset=utf-8", "Authorization header is missing"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, gw.URL+c.path, nil)
			if c.accept != "" {
				req.Header.Set("Accept", c.accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || resp.Header.Get("Content-Type") != c.contentType || !strings.Contains(string(body), c.body) {
				t.Errorf("%d %s\n%.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if c.method == "HEAD" && len(body) != 0 {
				t.Error("HEAD with a body")
			}
		})
	}
}
