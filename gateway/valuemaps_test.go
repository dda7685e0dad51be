package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// conceptMaps are two FHIR ConceptMaps in a base's profiles: states (R4
// equivalence) and reasons (relationship, with an unmatched target that
// must not be used), neither with an unmapped rule.
var conceptMaps = map[string]string{
	"states.json": `{"resourceType":"ConceptMap","url":"https://fhirgate.example/ConceptMap/states","name":"States","status":"active",
 "group":[{"element":[{"code":"in-progress","target":[{"code":"2","equivalence":"equivalent"}]},
                      {"code":"ready","target":[{"code":"9","equivalence":"unmatched"},{"code":"1","equivalence":"equal"}]}]}]}`,
	"reasons.json": `{"resourceType":"ConceptMap","url":"https://fhirgate.example/ConceptMap/reasons","status":"active",
 "group":[{"element":[{"code":"E1","target":[{"code":"locked","relationship":"equivalent"}]}]}]}`,
}

// Value maps in every kind of template: the call's query, header and
// body fields (table and ConceptMap), an answer's text; an untranslatable
// request value gets the map's answer (configured, or the default 422) and
// never reaches the backend nor appears in the answer; an untranslatable
// backend value is a 502.
func TestValueMaps(t *testing.T) {
	profiles := t.TempDir()
	for name, content := range conceptMaps {
		if err := os.WriteFile(filepath.Join(profiles, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, r.URL.Query().Get("answer"))
	}}
	be := httptest.NewServer(spy)
	defer be.Close()
	routes := strings.NewReplacer(
		"backends:\n", `value_maps:
  roles: {map: {prescriber: DOC}}
  kinds: {map: {a: A}}
  states:
    concept_map: https://fhirgate.example/ConceptMap/states
    unmapped: {status: 400, code: value, text: "unknown state"}
backends:
`,
		"    fhir_version: R4\n", "    fhir_version: R4\n    profiles: ["+profiles+"]\n",
		`          query: {who: "${query.who}"}`, `          query: {answer: "${query.answer}", state: "${query.state -> states}", role: "${role -> roles}"}`,
		`          headers: {X-Who: "${query.who}"}`, `          headers: {X-Kind: "${query.kind -> kinds}"}`,
		`fields: {id: "${path.id}"}`, `fields: {id: "${path.id}", role: "${role -> roles}", state: "${query.state -> https://fhirgate.example/ConceptMap/states}"}`,
		`text: "refused: ${body.reason}"`, `text: "refused: ${body.reason -> https://fhirgate.example/ConceptMap/reasons}"`,
		"BACKEND", be.URL,
	).Replace(testRoutes)
	f := newFixtureRoutes(t, routes, spy)

	ok := url.QueryEscape(`{"ok":"true"}`)
	for _, c := range []struct {
		name, query string
		status      int
		text        string // in the answer
		reached     bool   // the backend was called
		sent        string // in the backend's query or body
	}{
		{"translated", "state=in-progress&kind=a&answer=" + ok, 204, "", true, "state=2"},
		{"translated, second target after unmatched", "state=ready&answer=" + ok, 204, "", true, `"state":"1"`},
		{"absent stays absent", "answer=" + ok, 204, "", true, `"role":"DOC"`},
		{"state without translation: the map's answer", "state=s3cret-value&answer=" + ok, 400, "unknown state", false, ""},
		{"kind without translation: the default 422", "kind=s3cret-value&answer=" + ok, 422, "the value of query.kind has no translation in value map kinds", false, ""},
		{"backend value translated in the answer", "answer=" + url.QueryEscape(`{"ok":"false","reason":"E1"}`), 409, "refused: locked", true, ""},
		{"backend value without translation: 502", "answer=" + url.QueryEscape(`{"ok":"false","reason":"E7-s3cret"}`), 502, "cannot translate", true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(spy.requests)
			resp, body := f.post(t, "/fhir/Task/1/$op?"+c.query)
			if resp.StatusCode != c.status || !strings.Contains(body, c.text) {
				t.Fatalf("%d %s, want %d %q", resp.StatusCode, body, c.status, c.text)
			}
			if strings.Contains(body, "s3cret") {
				t.Errorf("the answer shows the untranslated value: %s", body)
			}
			spy.mu.Lock()
			reached := len(spy.requests) > before
			spy.mu.Unlock()
			if reached != c.reached {
				t.Fatalf("backend reached %v, want %v", reached, c.reached)
			}
			if c.sent != "" {
				r, b := spy.last()
				if !strings.Contains(r.URL.RawQuery+" "+b, c.sent) || !strings.Contains(r.URL.RawQuery, "role=DOC") {
					t.Errorf("backend got %s %s, want %s and role=DOC", r.URL.RawQuery, b, c.sent)
				}
				if c.name == "translated" && r.Header.Get("X-Kind") != "A" {
					t.Errorf("X-Kind %q, want A", r.Header.Get("X-Kind"))
				}
			}
		})
	}
}
