package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/validation"
)

const searchRoutes = answerRoutes + `      - name: search-tasks
        interaction: search
        method: GET
        path: /Task
        auth: idp
        search_params: {status: token}
        call: {backend: legacy, method: GET, path: /tasks, query: {state: "${query.status}"}}
        responses:
          - when: {status: 200}
            answer:
              status: 200
              bundle:
                entries: ENTRIES
                total: ${body.total}
                full_url: ${request.base}/Task/${item.id}
                resource:
                  resourceType: Task
                  id: ${item.id}
                  status: ${item.state -> states}
                  intent: order
`

// A search route answers a searchset Bundle: one entry per repeated
// element of the backend's answer (JSON array or XML elements), total from
// the backend, fullUrl and search.mode per entry, a self link with the
// parameters used; _count and _summary=count; an unknown parameter ignored
// — refused with Prefer: handling=strict —; an invalid entry a 502; the
// CapabilityStatement lists the search parameter.
func TestSearchBundles(t *testing.T) {
	for _, format := range []string{"json", "xml"} {
		t.Run(format, func(t *testing.T) {
			var answer string
			be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/"+format)
				io.WriteString(w, answer)
			}))
			defer be.Close()
			entries, three, badSecond := "body.tasks", `{"total":7,"tasks":[{"id":"t1","state":"OPEN"},{"id":"t2","state":"DONE"},{"id":"t3","state":"OPEN"}]}`,
				`{"total":2,"tasks":[{"id":"t1","state":"OPEN"},{"id":"t2"}]}`
			if format == "xml" {
				entries = "body.tasks.task"
				three = `<result><total>7</total><tasks><task><id>t1</id><state>OPEN</state></task><task><id>t2</id><state>DONE</state></task><task><id>t3</id><state>OPEN</state></task></tasks></result>`
				badSecond = `<result><total>2</total><tasks><task><id>t1</id><state>OPEN</state></task><task><id>t2</id></task></tasks></result>`
			}
			f := newFixtureRoutes(t, strings.NewReplacer("BACKEND", be.URL, "ENTRIES", entries).Replace(searchRoutes), nil)
			get := func(path string, header ...string) (int, map[string]any, string) {
				resp, raw := f.send(t, http.MethodGet, path, header...)
				var m map[string]any
				json.Unmarshal([]byte(raw), &m)
				return resp.StatusCode, m, raw
			}
			parser, _ := validation.NewParser(validation.R4)

			answer = three
			status, bundle, raw := get("/fhir/Task?status=ready&foo=1")
			if status != 200 || bundle["type"] != "searchset" || bundle["total"] != 7.0 {
				t.Fatalf("%d %s", status, raw)
			}
			entry := bundle["entry"].([]any)
			first := entry[0].(map[string]any)
			if len(entry) != 3 || !strings.HasSuffix(first["fullUrl"].(string), "/fhir/Task/t1") || first["search"].(map[string]any)["mode"] != "match" ||
				entry[1].(map[string]any)["resource"].(map[string]any)["status"] != "completed" {
				t.Errorf("entries %s", raw)
			}
			self := bundle["link"].([]any)[0].(map[string]any)
			if self["relation"] != "self" || !strings.HasSuffix(self["url"].(string), "/fhir/Task?status=ready") {
				t.Errorf("self link %v: want the parameters used, foo ignored", self)
			}
			if c := parser.Check([]byte(raw), false, nil, nil); validation.HasErrors(append(c.Base, c.Profile...)) {
				t.Errorf("the Bundle does not validate: %+v", c.Base)
			}
			if _, b, _ := get("/fhir/Task?_count=1"); len(b["entry"].([]any)) != 1 || b["total"] != 7.0 {
				t.Errorf("_count=1: %v", b)
			}
			if _, b, _ := get("/fhir/Task?_summary=count"); b["entry"] != nil || b["total"] != 7.0 {
				t.Errorf("_summary=count: %v", b)
			}
			if status, _, raw := get("/fhir/Task?foo=1", "Prefer", "handling=strict"); status != 400 || !strings.Contains(raw, "unknown search parameter 'foo'") {
				t.Errorf("strict: %d %s", status, raw)
			}
			if status, _, raw := get("/fhir/Task?_count=-1"); status != 400 || !strings.Contains(raw, "_count") {
				t.Errorf("_count=-1: %d %s", status, raw)
			}
			answer = badSecond
			if status, _, raw := get("/fhir/Task"); status != 502 || !strings.Contains(raw, "Bundle.entry[1].resource") || strings.Contains(raw, "searchset") {
				t.Errorf("invalid entry: %d %s", status, raw)
			}
		})
	}
	// The CapabilityStatement lists the interaction and its parameter.
	f := newFixtureRoutes(t, strings.NewReplacer("BACKEND", "http://127.0.0.1:1", "ENTRIES", "body.tasks").Replace(searchRoutes), nil)
	resp, err := http.Get(f.gw.URL + "/fhir/metadata")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"search-type"`) || !strings.Contains(string(b), `"searchParam":[{"name":"status","type":"token"}]`) {
		t.Errorf("CapabilityStatement %s", b)
	}
}
