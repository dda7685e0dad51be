package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/validation"
	"github.com/fhirgate/fhirgate/validation/fhirxml"
)

// answerRoutes is the head of the read and search test configurations:
// a token profile, a value map, a loopback backend (BACKEND) and an R4
// base whose routes follow.
const answerRoutes = `
auth:
  idp:
    keys: {pem_file: key.pem}
    roles: {claim: role, map: {doc: prescriber}}
value_maps:
  states: {map: {OPEN: ready, DONE: completed}}
backends:
  legacy:
    urls: [BACKEND]
    timeout: 300ms
bases:
  - path: /fhir
    fhir_version: R4
    routes:
`

const readRoutes = answerRoutes + `      - name: read-task
        interaction: read
        method: GET
        path: /Task/{id}
        auth: idp
        call: {backend: legacy, method: GET, path: "/tasks/${path.id}"}
        responses:
          - when: {status: 200}
            answer:
              status: 200
              resource:
                resourceType: Task
                id: ${path.id}
                identifier:
                  - system: https://gematik.de/fhir/erp/NamingSystem/GEM_ERP_NS_PrescriptionId
                    value: ${body.prescriptionId}
                status: ${body.state -> states}
                intent: order
                priority: ${body.prio}
                authoredOn: ${body.created}
                input:
                  - type: {text: count}
                    valueInteger: ${body.count}
                  - type: {text: flag}
                    valueBoolean: ${body.flag}
          - when: {status: 404}
            answer: {status: 404, text: "Task not found"}
`

// A read route answers a FHIR resource built from the backend's answer:
// values from the body (typed as the element's type, translated by a value
// map), optional elements left out when the backend gives nothing, JSON or
// XML as negotiated — and never an invalid one: a required element the
// backend left empty or a value of the wrong form is a 502 naming the
// problem, counted, with no part of the resource.
func TestResourceAnswers(t *testing.T) {
	var answer string // what the backend answers next
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	}))
	defer be.Close()
	f := newFixtureRoutes(t, strings.Replace(readRoutes, "BACKEND", be.URL, 1), nil)
	get := func(path string) (*http.Response, string) { return f.send(t, http.MethodGet, path) }
	parser, _ := validation.NewParser(validation.R4)

	answer = `{"prescriptionId":"160.000.000.000.000.01","state":"OPEN","prio":"urgent","created":"2026-11-30T10:00:00+01:00","count":3,"flag":true}`
	resp, body := get("/fhir/Task/160.000.000.000.000.01")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") || !strings.HasPrefix(body, `{"resourceType":"Task",`) {
		t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var task map[string]any
	json.Unmarshal([]byte(body), &task)
	input := task["input"].([]any)
	if task["status"] != "ready" || task["priority"] != "urgent" || input[0].(map[string]any)["valueInteger"] != 3.0 || input[1].(map[string]any)["valueBoolean"] != true {
		t.Errorf("built %s", body)
	}
	if c := parser.Check([]byte(body), false, nil, nil); validation.HasErrors(append(c.Base, c.Profile...)) {
		t.Errorf("the answer does not validate: %+v", c.Base)
	}

	// XML as negotiated: the same resource.
	resp, xmlBody := get("/fhir/Task/160.000.000.000.000.01?_format=xml")
	back, err := fhirxml.ToJSON(validation.R4, []byte(xmlBody))
	if resp.StatusCode != 200 || err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+xml") {
		t.Fatalf("XML: %d %v %s", resp.StatusCode, err, xmlBody)
	}
	var fromXML map[string]any
	json.Unmarshal(back, &fromXML)
	if fromXML["status"] != "ready" || fromXML["id"] != "160.000.000.000.000.01" {
		t.Errorf("XML answer reads back as %s", back)
	}

	// Optional elements the backend does not give are left out.
	answer = `{"prescriptionId":"160.000.000.000.000.01","state":"DONE","count":1,"flag":false}`
	resp, body = get("/fhir/Task/160.000.000.000.000.01")
	if resp.StatusCode != 200 || strings.Contains(body, "priority") || strings.Contains(body, "authoredOn") || !strings.Contains(body, `"status":"completed"`) {
		t.Errorf("without optional values: %d %s", resp.StatusCode, body)
	}

	for _, c := range []struct{ name, answer, want string }{
		{"required element empty", `{"prescriptionId":"160.000.000.000.000.01","count":1,"flag":true}`, "Task.status"},
		{"value of the wrong form", `{"prescriptionId":"160.000.000.000.000.01","state":"OPEN","created":"yesterday","count":1,"flag":true}`, "Task.authoredOn"},
		{"value of the wrong type", `{"prescriptionId":"160.000.000.000.000.01","state":"OPEN","count":"many","flag":true}`, "Task.input[0].valueInteger"},
	} {
		answer = c.answer
		resp, body := get("/fhir/Task/160.000.000.000.000.01")
		if resp.StatusCode != 502 || !strings.Contains(body, `"OperationOutcome"`) || !strings.Contains(body, c.want) || strings.Contains(body, `"resourceType":"Task"`) {
			t.Errorf("%s: %d %s, want 502 naming %s and no resource", c.name, resp.StatusCode, body, c.want)
		}
		t.Logf("%s: %s", c.name, body)
	}
}
