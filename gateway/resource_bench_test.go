package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			req, _ := http.NewRequest(http.MethodGet, f.gw.URL+"/fhir/Task/160.000.000.000.000.01", nil)
			req.Header.Set("Authorization", "Bearer "+f.token)
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
		})
	}
}
