package fhirpathlite

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gofhir/fhirpath"
	"github.com/gofhir/fhirpath/types"
)

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHolds(t *testing.T) {
	task := `{"resourceType":"Task","status":"ready","intent":"order",
		"authoredOn":"2024-01-02T10:00:00+01:00","lastModified":"2024-01-02T09:30:00Z",
		"input":[{"type":{"text":"a"},"valueString":"x"},{"type":{"text":"b"}}],
		"extension":[{"url":"u","valueBoolean":true}],
		"identifier":[{"system":"s","value":"1"},{"value":"2"}]}`
	cases := []struct {
		expr  string
		holds bool
		ok    bool
	}{
		{"status.exists()", true, true},
		{"contained.empty()", true, true},
		{"contained.exists()", false, true},
		{"identifier.count() = 2", true, true},
		{"identifier.count() > 2", false, true},
		{"identifier.all(value.exists())", true, true},
		{"identifier.all(system.exists())", false, true},
		{"identifier.where(system = 's').count() = 1", true, true},
		{"identifier.exists(system = 'x')", false, true},
		{"status = 'ready' and intent = 'order'", true, true},
		{"status = 'ready' implies intent = 'plan'", false, true},
		{"status = 'draft' implies intent = 'plan'", true, true},
		{"status != 'ready' or {}.exists()", false, true},
		{"status = 'x' xor intent = 'order'", true, true},
		{"(Task.extension).all(extension.exists() != value.exists())", false, false}, // valueBoolean: choice → declined
		{"Task.identifier.value.hasValue()", false, false},                           // several items: declined
		{"Task.status.hasValue() and identifier.first().exists()", false, false},
		{"Task.status.hasValue() and input.type.hasValue().not()", false, false},
		{"Task.status.hasValue() and identifier.where(value = '1').type.hasValue().not()", true, true},
		{"lastModified.empty() or authoredOn.empty() or lastModified >= authoredOn", true, true},
		{"lastModified < authoredOn", false, true},
		{"authoredOn = lastModified", false, false}, // dates compared for equality: declined
		{"status.not()", false, false},              // not() of a string: declined
		{"identifier.value.not()", false, false},    // two items: declined
		{"Patient.name.exists()", false, false},     // another type: declined
		{"input.value.exists()", false, false},      // valueString exists: declined
		{"%resource.id.exists()", false, false},     // outside the subset
		{"status in ('a' | 'b')", false, false},
		{"identifier[0].exists()", false, false},
		{"status.matches('r.*')", false, false},
		{"1.5 > 1", false, false},
		{"`status`.exists() and $this.intent = 'order'", true, true},
		{"input.where(type.text = 'a').valueString = 'x'", true, true},
		{"'77599-9' = '77599-9'", true, true},
		{"'2024' = '2024'", false, false},
		{"'2024-01' != '2024-02'", false, false},
	}
	res := decode(t, task)
	for _, c := range cases {
		e, ok := Compile(c.expr)
		if !ok {
			if c.ok {
				t.Errorf("%s: does not compile", c.expr)
			}
			continue
		}
		holds, ok := e.Holds(res)
		if ok != c.ok || ok && holds != c.holds {
			t.Errorf("%s: holds=%v ok=%v, want holds=%v ok=%v", c.expr, holds, ok, c.holds, c.ok)
		}
	}
}

// TestAgreesWithFullEngine evaluates the core invariants of every official
// example (each at the paths where production evaluates them) and the
// invariants of the project's profiles on both engines: where the subset
// answers, its answer is the full engine's.
func TestAgreesWithFullEngine(t *testing.T) {
	var files []string
	for _, dir := range []string{"../../../shared/fixtures/official-examples/stu3/json", "../../../shared/fixtures/official-examples/r4/json", "../testdata/twiin", "../testdata/erezept"} {
		f, _ := filepath.Glob(dir + "/*.json")
		files = append(files, f...)
	}
	if len(files) < 100 {
		t.Fatalf("only %d example files found", len(files))
	}
	exprs := corpusExpressions(t)
	answered, declined := 0, 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		res := decode(t, string(data))
		for _, src := range exprs {
			if compareEngines(t, src, res, data, filepath.Base(file)) {
				answered++
			} else {
				declined++
			}
		}
	}
	t.Logf("%d expressions × %d files: %d answered by the subset, %d declined", len(exprs), len(files), answered, declined)
	if answered < 1000 {
		t.Errorf("the subset answered only %d evaluations", answered)
	}
}

// compareEngines evaluates src on a resource (decoded res, raw data) with
// both engines and reports a disagreement; answered is false when the
// subset declined (or does not compile src). A full-engine error leaves the
// subset's answer standing.
func compareEngines(t *testing.T, src string, res map[string]any, data []byte, what string) (answered bool) {
	t.Helper()
	lite, ok := Compile(src)
	if !ok {
		return false
	}
	holds, ok := lite.Holds(res)
	if !ok {
		return false
	}
	full, err := fhirpath.Compile(src)
	if err != nil {
		t.Fatalf("%s: the full engine does not compile it: %v", src, err)
	}
	if out, err := full.Evaluate(data); err == nil && violated(out) == holds {
		t.Errorf("%s on %s: subset holds=%v, full engine %v", src, what, holds, out)
	}
	return true
}

func violated(c types.Collection) bool {
	if len(c) != 1 {
		return false
	}
	b, ok := c[0].(types.Boolean)
	return ok && !b.Bool()
}

// corpusExpressions: invariant forms found in the core definitions and the
// profiles, each also wrapped the way constraints on elements are checked.
func corpusExpressions(testing.TB) []string {
	base := []string{
		"contained.contained.empty()",
		"contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
		"contained.text.empty()",
		"extension.exists() != value.exists()",
		"lastModified.empty() or authoredOn.empty() or lastModified >= authoredOn",
		"start.empty() or end.empty() or (start <= end)",
		"code.exists() or text.exists()",
		"system.exists() or value.exists()",
		"status = 'final' implies issued.exists()",
		"identifier.where(system.exists()).count() >= 1",
		"name.all(given.exists() or family.exists())",
		"telecom.where(system = 'email').exists() implies telecom.where(system = 'email').value.exists()",
		"meta.profile.count() <= 1",
		"reference.exists() xor display.exists()",
		"status.exists() and intent.exists()",
		"text.status = 'generated' or text.status = 'extensions'",
		"entry.all(resource.exists() or request.exists())",
		"entry.where(resource.exists()).count() > 0",
	}
	paths := []string{"", "Task.identifier", "Bundle.entry", "Patient.name", "Observation.component", "Task.input", "Patient.telecom"}
	var out []string
	for _, p := range paths {
		for _, b := range base {
			if p == "" {
				out = append(out, b)
			} else {
				out = append(out, "("+p+").all("+b+")")
			}
		}
	}
	return out
}

// FuzzHolds: on any JSON object, where the subset answers, the full engine
// (when it answers without error) agrees.
func FuzzHolds(f *testing.F) {
	f.Add(`{"resourceType":"Task","status":"ready","identifier":[{"system":"s","value":"1"}]}`)
	f.Add(`{"resourceType":"Period","start":"2020-01-01","end":"2019"}`)
	f.Add(`{"resourceType":"Task","lastModified":"2024-01-02T10:00:00Z","authoredOn":"2024-01-02T11:00:00+01:00"}`)
	f.Add(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Task"}},{"request":{}}]}`)
	exprs := corpusExpressions(f)
	f.Fuzz(func(t *testing.T, doc string) {
		dec := json.NewDecoder(bytes.NewReader([]byte(doc)))
		dec.UseNumber()
		var res map[string]any
		if dec.Decode(&res) != nil || dec.More() {
			return
		}
		for _, src := range exprs {
			compareEngines(t, src, res, []byte(doc), "the fuzzed document")
		}
	})
}
