package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirgate/fhirgate/test/legacysim/fachdienst"
)

// BenchmarkReadAnswer measures, in process with a loopback backend, a read
// that answers a built and validated Task ("resource") beside the same
// route answering 204 from the same backend answer ("status"): the
// difference is the cost of building and validating per answer.
func BenchmarkReadAnswer(b *testing.B) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"prescriptionId":"160.000.000.000.000.01","state":"OPEN","prio":"urgent","created":"2026-11-30T10:00:00+01:00","count":3,"flag":true}`)
	}))
	defer be.Close()
	status := strings.Replace(readRoutes, "          - when: {status: 200}\n            answer:\n              status: 200\n",
		"          - when: {status: 200}\n            answer:\n              status: 204\n          - when: {status: 201}\n            answer:\n              status: 200\n", 1)
	for _, c := range []struct{ name, routes string }{{"status", status}, {"resource", readRoutes}} {
		b.Run(c.name, func(b *testing.B) {
			f := newFixtureRoutes(b, strings.Replace(c.routes, "BACKEND", be.URL, 1), nil)
			benchGet(b, f.gw.URL+"/fhir/Task/160.000.000.000.000.01", f.token)
		})
	}
}

// BenchmarkERezeptReads measures the E-Rezept reads of routes.yaml in
// process in front of the Fachdienst simulator's read API (loopback):
// "legacy" is the simulator's own answer fetched directly (the floor),
// then the insured person's Task with its prescription document (JSON),
// the pharmacy's recovery read (Task and QES Binary, XML) and the insured
// list of six Tasks (a searchset) — each built, validated against
// GEM_ERP_PR_Task|1.5 and rendered per request.
func BenchmarkERezeptReads(b *testing.B) {
	legacy := fachdienst.RESTHandler(fachdienst.NewStore(fachdienst.DefaultSeed()))
	g, sign, _ := benchGatewaySigner(b, legacy)
	gw := httptest.NewServer(g)
	b.Cleanup(gw.Close)
	direct := httptest.NewServer(legacy)
	b.Cleanup(direct.Close)
	insured := sign(jwt.MapClaims{"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/", "sub": "bench-insured", "professionOID": "1.2.276.0.76.4.49", "idNummer": "X110000100"})
	pharmacy := sign(jwt.MapClaims{"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/", "sub": "bench-pharmacy", "professionOID": "1.2.276.0.76.4.54", "idNummer": "3-SMC-B-Testkarte-883110000116873"})
	var ac string
	for _, t := range fachdienst.DefaultSeed() {
		if t.ID == "160.000.000.000.202.33" {
			ac = t.AccessCode
		}
	}
	cases := []struct{ name, url, token string }{
		{"legacy", direct.URL + "/legacy/v1/prescriptions/160.000.000.000.203.30?actorRole=insured&actorId=X110000100", ""},
		{"insured-task", gw.URL + "/erp/Task/160.000.000.000.203.30", insured},
		{"pharmacy-recovery-xml", gw.URL + "/erp/Task/160.000.000.000.202.33?ac=" + ac, pharmacy},
		{"insured-list-6", gw.URL + "/erp/Task", insured},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) { benchGet(b, c.url, c.token) })
	}
}

// benchGet measures GETs of url (with a bearer token unless empty) over
// a keep-alive connection; any status but 2xx stops the benchmark.
func benchGet(b *testing.B, url, token string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
