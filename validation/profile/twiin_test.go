package profile

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/validation/fhirxml"
)

const (
	twiinNotification = "https://fhirgate.example/fhir/twiin/StructureDefinition/notification-task"
	twiinCancellation = "https://fhirgate.example/fhir/twiin/StructureDefinition/cancellation-task"
)

func twiinProfiles(t *testing.T) *Package {
	pkg, err := LoadDir("../../profiles/twiin")
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Profile(twiinNotification) == nil || pkg.Profile(twiinCancellation) == nil {
		t.Fatalf("profiles missing: %d loaded", pkg.Len())
	}
	return pkg
}

func loadInstance(t *testing.T, file string) map[string]any {
	data, err := os.ReadFile("../testdata/twiin/" + file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(file, ".xml") {
		if data, err = fhirxml.ToJSON(fhirxml.STU3, data); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	return decode(t, data)
}

func errorsOf(issues []Issue) []Issue {
	var out []Issue
	for _, is := range issues {
		if is.Severity == "error" {
			out = append(out, is)
		}
	}
	return out
}

// The corrected examples (resources-r3) and the XML examples conform.
func TestTwiinExamplesConform(t *testing.T) {
	pkg := twiinProfiles(t)
	for _, c := range []struct{ file, profile string }{
		{"new-notification-task.json", twiinNotification},
		{"additional-info-notification-task.json", twiinNotification},
		{"new-notification-task.stu3.xml", twiinNotification},
		{"cancel-notification-task.json", twiinCancellation},
		{"cancel-notification-task.stu3.xml", twiinCancellation},
		{"Task-CancelTask.xml", twiinCancellation},
	} {
		t.Run(c.file, func(t *testing.T) {
			if errs := errorsOf(pkg.Profile(c.profile).Validate(loadInstance(t, c.file))); len(errs) != 0 {
				t.Errorf("%+v", errs)
			}
		})
	}
}

// One mutation per rule of the spec's element tables, each refused with
// the issue code at the element concerned.
func TestTwiinMutations(t *testing.T) {
	pkg := twiinProfiles(t)
	input := func(code string, value map[string]any) map[string]any {
		in := map[string]any{"type": map[string]any{"coding": []any{map[string]any{"system": "http://fhir.nl/fhir/NamingSystem/TaskParameter", "code": code}}}}
		for k, v := range value {
			in[k] = v
		}
		return in
	}
	addInput := func(r map[string]any, in ...map[string]any) {
		arr, _ := r["input"].([]any)
		for _, i := range in {
			arr = append(arr, i)
		}
		r["input"] = arr
	}
	cases := []struct {
		name, profile, file string
		mutate              func(r map[string]any)
		code, expr          string
	}{
		{"identifier missing", twiinNotification, "", func(r map[string]any) { delete(r, "identifier") }, "required", "Task.identifier"},
		{"identifier twice", twiinNotification, "", func(r map[string]any) { r["identifier"] = append(r["identifier"].([]any), r["identifier"].([]any)[0]) }, "structure", "Task.identifier"},
		{"identifier without system", twiinNotification, "", func(r map[string]any) { delete(r["identifier"].([]any)[0].(map[string]any), "system") }, "required", "Task.identifier.system"},
		{"identifier without value", twiinNotification, "", func(r map[string]any) { delete(r["identifier"].([]any)[0].(map[string]any), "value") }, "required", "Task.identifier.value"},
		{"groupIdentifier missing", twiinNotification, "", func(r map[string]any) { delete(r, "groupIdentifier") }, "required", "Task.groupIdentifier"},
		{"status not requested", twiinNotification, "", func(r map[string]any) { r["status"] = "ready" }, "value", "Task.status"},
		{"intent not proposal", twiinNotification, "", func(r map[string]any) { r["intent"] = "order" }, "value", "Task.intent"},
		{"code missing", twiinNotification, "", func(r map[string]any) { delete(r, "code") }, "required", "Task.code"},
		{"code not pull-notification", twiinNotification, "", func(r map[string]any) {
			r["code"] = map[string]any{"coding": []any{map[string]any{"system": "http://fhir.nl/fhir/NamingSystem/TaskCode", "code": "other"}}}
		}, "code-invalid", "Task.code"},
		{"code from another system", twiinNotification, "", func(r map[string]any) {
			r["code"] = map[string]any{"coding": []any{map[string]any{"system": "urn:other", "code": "pull-notification"}}}
		}, "code-invalid", "Task.code"},
		{"requester missing", twiinNotification, "", func(r map[string]any) { delete(r, "requester") }, "required", "Task.requester"},
		{"requester.agent missing", twiinNotification, "", func(r map[string]any) { delete(r["requester"].(map[string]any), "agent") }, "required", "Task.requester.agent"},
		{"requester.onBehalfOf missing", twiinNotification, "", func(r map[string]any) { delete(r["requester"].(map[string]any), "onBehalfOf") }, "required", "Task.requester.onBehalfOf"},
		{"owner missing", twiinNotification, "", func(r map[string]any) { delete(r, "owner") }, "required", "Task.owner"},
		{"two authorization-base inputs", twiinNotification, "", func(r map[string]any) {
			addInput(r, input("authorization-base", map[string]any{"valueString": "x"}))
		}, "structure", "Task.input"},
		{"authorization-base not a string", twiinNotification, "", func(r map[string]any) {
			in := r["input"].([]any)[0].(map[string]any)
			delete(in, "valueString")
			in["valueBoolean"] = true
		}, "required", "Task.input[0].valueString"},
		{"get-workflow-task not a boolean", twiinNotification, "", func(r map[string]any) {
			addInput(r, input("get-workflow-task", map[string]any{"valueString": "yes"}))
		}, "required", "Task.input[3].valueBoolean"},
		{"two get-workflow-task inputs", twiinNotification, "", func(r map[string]any) {
			addInput(r, input("get-workflow-task", map[string]any{"valueBoolean": true}), input("get-workflow-task", map[string]any{"valueBoolean": false}))
		}, "structure", "Task.input"},
		{"read-resource without a reference", twiinNotification, "", func(r map[string]any) {
			addInput(r, input("read-resource", map[string]any{"valueString": "Observation/1"}))
		}, "required", "Task.input[3].valueReference"},
		{"read-available-resource without a reference", twiinNotification, "", func(r map[string]any) {
			addInput(r, input("read-available-resource", map[string]any{"valueUri": "Observation/1"}))
		}, "required", "Task.input[3].valueReference"},
		{"search-resource without a query", twiinNotification, "", func(r map[string]any) {
			addInput(r, input("search-resource", nil))
		}, "required", "Task.input[3].valueString"},
		{"query-available-resources not a string", twiinNotification, "", func(r map[string]any) {
			addInput(r, input("query-available-resources", map[string]any{"valueBoolean": true}))
		}, "required", "Task.input[3].valueString"},
		{"cancellation: status not cancelled", twiinCancellation, "cancel-notification-task.json", func(r map[string]any) { r["status"] = "requested" }, "value", "Task.status"},
		{"cancellation: identifier missing", twiinCancellation, "cancel-notification-task.json", func(r map[string]any) { delete(r, "identifier") }, "required", "Task.identifier"},
		{"cancellation: identifier without value", twiinCancellation, "cancel-notification-task.json", func(r map[string]any) {
			delete(r["identifier"].([]any)[0].(map[string]any), "value")
		}, "required", "Task.identifier.value"},
		{"cancellation: two identifiers", twiinCancellation, "cancel-notification-task.json", func(r map[string]any) {
			r["identifier"] = append(r["identifier"].([]any), map[string]any{"value": "x"})
		}, "structure", "Task.identifier"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := c.file
			if file == "" {
				file = "new-notification-task.stu3.xml"
			}
			res := loadInstance(t, file)
			c.mutate(res)
			// A mutation must still be JSON (the mutate helpers build maps).
			if _, err := json.Marshal(res); err != nil {
				t.Fatal(err)
			}
			errs := errorsOf(pkg.Profile(c.profile).Validate(res))
			for _, e := range errs {
				if e.Code == c.code && e.Expression == c.expr {
					return
				}
			}
			t.Errorf("no %s error at %s; got %+v", c.code, c.expr, errs)
		})
	}
}

// The STU3 base invariants carried by the Twiin profiles are evaluated.
func TestTwiinInvariants(t *testing.T) {
	pkg := twiinProfiles(t)
	res := loadInstance(t, "new-notification-task.stu3.xml")
	res["lastModified"] = "2020-01-01T00:00:00Z" // before authoredOn
	for _, is := range pkg.Profile(twiinNotification).Validate(res) {
		if is.Code == "invariant" && strings.Contains(is.Text, "inv-1") {
			return
		}
	}
	t.Error("inv-1 not reported")
}
