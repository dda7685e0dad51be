// Command dashlinks prints, for each panel of the chart's Grafana
// dashboard, a link that opens its queries in a Prometheus web UI — the
// dashboard without Grafana, for `make observe`.
//
//	go run ./scripts/dashlinks [-prometheus http://127.0.0.1:9099] [-dashboard charts/fhirgate/dashboards/fhirgate.json]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"strconv"
	"strings"
)

func main() {
	prom := flag.String("prometheus", "http://127.0.0.1:9099", "Prometheus web UI")
	file := flag.String("dashboard", "charts/fhirgate/dashboards/fhirgate.json", "dashboard JSON")
	job := flag.String("job", "fhirgate", "value of the dashboard's $job variable")
	flag.Parse()
	data, err := os.ReadFile(*file)
	if err != nil {
		log.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		log.Fatal(err)
	}
	// Grafana's variables: one job, every route, a rate interval of four
	// scrapes of make observe's Prometheus (5 s).
	vars := strings.NewReplacer(`"$job"`, strconv.Quote(*job), `"$route"`, `".*"`, "$__rate_interval", "20s")
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			continue
		}
		q := url.Values{}
		for i, t := range p.Targets {
			g := fmt.Sprintf("g%d.", i)
			q.Set(g+"expr", vars.Replace(t.Expr))
			q.Set(g+"tab", "0")
			q.Set(g+"range_input", "15m")
		}
		fmt.Printf("%-50s %s/graph?%s\n", p.Title, strings.TrimSuffix(*prom, "/"), q.Encode())
	}
}
