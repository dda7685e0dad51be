package profile

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gofhir/fhirpath"
)

// TestNativeProfileInvariants holds the Go forms of ext-1 and of dom-3
// (without contained resources) to the FHIRPath engine on resources made
// to make them hold and fail.
func TestNativeProfileInvariants(t *testing.T) {
	const ext1 = "extension.exists() != value.exists()"
	dom3 := "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | %resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()"
	tasks := []string{
		`{"resourceType":"Task","status":"ready","intent":"order"}`,
		`{"resourceType":"Task","extension":[{"url":"u","valueString":"x"}]}`,
		`{"resourceType":"Task","extension":[{"url":"u","valueCoding":{"code":"c"}},{"url":"v","valueDate":"2026-01-01"}]}`,
		`{"resourceType":"Task","extension":[{"url":"u","extension":[{"url":"a","valueString":"x"}]}]}`,
		`{"resourceType":"Task","extension":[{"url":"u"}]}`,
		`{"resourceType":"Task","extension":[{"url":"u","valueString":"x"},{"url":"w"}]}`,
		`{"resourceType":"Task","extension":[{"url":"u","valueString":"x","extension":[{"url":"a","valueString":"y"}]}]}`,
		`{"resourceType":"Task","extension":[{"url":"u","valueBoolean":false}]}`,
	}
	ext1Native := nativeInvariants[ext1]
	if ext1Native == nil {
		t.Fatal("no native ext-1")
	}
	for _, src := range tasks {
		var res map[string]any
		d := json.NewDecoder(strings.NewReader(src))
		d.UseNumber()
		d.Decode(&res)
		for _, c := range []struct {
			expr   string
			path   string
			native func(map[string]any, []any) (bool, bool)
		}{
			{"(Task.extension).all(" + ext1 + ")", "extension", ext1Native},
			{dom3, "", func(r map[string]any, _ []any) (bool, bool) {
				return !Present(r["contained"]), !Present(r["contained"])
			}},
		} {
			e, err := fhirpath.Compile(c.expr)
			if err != nil {
				t.Fatal(err)
			}
			out, err := e.EvaluateWithContext(PrunedContext(res, RootNames(c.expr), func() []byte { return []byte(src) }))
			if err != nil {
				t.Fatal(err)
			}
			var inst []any
			if c.path != "" {
				inst = instancePathValues(res, c.path)
				if len(inst) == 0 {
					continue // P.all(E) of nothing: not asked
				}
			}
			holds, ok := c.native(res, inst)
			if !ok {
				t.Fatalf("%s declined on %s", c.expr[:20], src)
			}
			if holds != !Violated(out) {
				t.Errorf("%.40s on %s: native %v, engine %v", c.expr, src, holds, !Violated(out))
			}
		}
	}
}
