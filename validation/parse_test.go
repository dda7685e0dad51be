package validation

import (
	"fmt"

	"github.com/fhirgate/fhirgate/validation/profile"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustParser(t testing.TB, v Version) *Parser {
	p, err := NewParser(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The corrected Twiin examples are valid STU3; the TA's originals are not,
// with issues at the elements its README names (identifier as an object,
// input value[x] spelled value). The gematik R4 Task examples are valid R4.
func TestParseFixtures(t *testing.T) {
	type want struct {
		expression, code, text string
	}
	cases := []struct {
		file    string
		version Version
		issues  []want
	}{
		{"twiin/new-notification-task.json", STU3, nil},
		{"twiin/cancel-notification-task.json", STU3, nil},
		{"twiin/additional-info-notification-task.json", STU3, nil},
		{"twiin/original-new-notification-task.json", STU3, []want{{"Task.identifier", "structure", "expected array"}, {"Task.input[0].value", "structure", "unknown field"}}},
		{"twiin/original-cancel-notification-task.json", STU3, []want{{"Task.identifier", "structure", "expected array"}}},
		{"twiin/original-additional-info-notification-task.json", STU3, []want{{"Task.identifier", "structure", "expected array"}, {"Task.input[0].value", "structure", "unknown field"}}},
	}
	files, _ := filepath.Glob("testdata/erezept/Task-*.json")
	if len(files) < 4 {
		t.Fatalf("gematik Task examples missing: %v", files)
	}
	for _, f := range files {
		cases = append(cases, struct {
			file    string
			version Version
			issues  []want
		}{strings.TrimPrefix(f, "testdata/"), R4, nil})
	}
	parsers := map[Version]*Parser{STU3: mustParser(t, STU3), R4: mustParser(t, R4)}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			res, issues := parsers[c.version].ParseJSON(data)
			if len(issues) != len(c.issues) {
				t.Fatalf("%d issues %+v, want %+v", len(issues), issues, c.issues)
			}
			for i, w := range c.issues {
				is := issues[i]
				if is.Severity != "error" || is.Expression != w.expression || is.Code != w.code || is.Text != w.text {
					t.Errorf("issue %d = %+v, want %+v", i, is, w)
				}
			}
			if (res == nil) != (len(c.issues) > 0) {
				t.Errorf("resource returned = %v with %d issues", res != nil, len(issues))
			}
		})
	}
}

// Single problems each yield one issue with code and location.
func TestParseIssues(t *testing.T) {
	p := mustParser(t, R4)
	task := func(extra string) string {
		return `{"resourceType":"Task","status":"ready","intent":"order"` + extra + `}`
	}
	cases := []struct {
		name, json, expression, code string
	}{
		{"missing required status", `{"resourceType":"Task","intent":"order"}`, "Task.status", "required"},
		{"bad code", strings.Replace(task(""), `"ready"`, `"bogus"`, 1), "Task.status", "code-invalid"},
		{"bad dateTime", task(`,"authoredOn":"2020-13-45"`), "Task.authoredOn", "value"},
		{"number for a string", task(`,"identifier":[{"system":"x","value":1}]`), "Task.identifier[0].value", "structure"},
		{"object for an array", task(`,"identifier":{"value":"x"}`), "Task.identifier", "structure"},
		{"unknown element", task(`,"colour":"red"`), "Task.colour", "structure"},
		{"unknown resource type", `{"resourceType":"Nope"}`, "resourceType", "structure"},
		{"truncated JSON", `{"resourceType":"Task",`, "", "structure"},
		{"not an object", `[1]`, "", "structure"},
		{"too deep", task(`,"contained":[` + strings.Repeat(`{"resourceType":"Task","status":"ready","intent":"order","contained":[`, 40) + strings.Repeat(`]}`, 40) + `]`), "", "structure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, issues := p.ParseJSON([]byte(c.json))
			// Depth overflow is reported once per field at the limit.
			if len(issues) != 1 && !(c.name == "too deep" && len(issues) > 0) {
				t.Fatalf("%d issues: %+v", len(issues), issues)
			}
			is := issues[0]
			if is.Severity != "error" || is.Code != c.code || (c.expression != "" && is.Expression != c.expression) || is.Text == "" {
				t.Errorf("got %+v, want %s at %q", is, c.code, c.expression)
			}
			if strings.Contains(is.Text, "bogus") || strings.Contains(is.Text, "2020-13-45") {
				t.Errorf("the text quotes the input (that belongs in diagnostics): %q", is.Text)
			}
		})
	}
}

// Several problems are all reported, in a stable order.
func TestParseCollectsAndSorts(t *testing.T) {
	p := mustParser(t, R4)
	in := []byte(`{"resourceType":"Task","status":"bogus","intent":"order","authoredOn":"x","lastModified":"y"}`)
	_, first := p.ParseJSON(in)
	if len(first) != 3 {
		t.Fatalf("%d issues: %+v", len(first), first)
	}
	for i := 0; i < 20; i++ {
		_, again := p.ParseJSON(in)
		for j := range again {
			if again[j] != first[j] {
				t.Fatalf("order differs on run %d: %+v vs %+v", i, again, first)
			}
		}
	}
}

// FuzzParseJSON: any input, either version: no panic, and no resource only
// ever comes with an error issue saying why.
func FuzzParseJSON(f *testing.F) {
	for _, name := range []string{"twiin/new-notification-task.json", "twiin/original-new-notification-task.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false)
	}
	f.Add([]byte(`{"resourceType":"Task","intent":"order"}`), true)
	stu3, r4 := mustParser(f, STU3), mustParser(f, R4)
	f.Fuzz(func(t *testing.T, data []byte, useR4 bool) {
		p := stu3
		if useR4 {
			p = r4
		}
		res, issues := p.ParseJSON(data)
		if res == nil && !HasErrors(issues) {
			t.Fatal("no resource and no error issue")
		}
	})
}

// The Twiin XML examples parse as STU3 through the XML codec; the R4
// rendering of the notification (requester as a Reference) is refused as
// STU3 at the element that differs.
func TestParseXMLFixtures(t *testing.T) {
	p := mustParser(t, STU3)
	for _, f := range []string{"twiin/new-notification-task.stu3.xml", "twiin/cancel-notification-task.stu3.xml", "twiin/Task-CancelTask.xml"} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		res, j, issues := p.ParseXML(data)
		if len(issues) != 0 || res == nil || len(j) == 0 {
			t.Errorf("%s: %+v", f, issues)
		}
	}
	data, _ := os.ReadFile("testdata/twiin/r4rendering-Task-NewTask.xml")
	_, _, issues := p.ParseXML(data)
	found := false
	for _, is := range issues {
		if strings.HasPrefix(is.Expression, "Task.requester") && is.Code == "structure" {
			found = true
		}
	}
	if !found {
		t.Errorf("R4 requester accepted as STU3: %+v", issues)
	}
}

// XML and JSON of the same resource give the same issues.
func TestXMLAndJSONAgree(t *testing.T) {
	p := mustParser(t, R4)
	xmlDoc := `<Task xmlns="http://hl7.org/fhir"><status value="bogus"/><intent value="order"/><authoredOn value="2020-13-45"/></Task>`
	jsonDoc := `{"resourceType":"Task","status":"bogus","intent":"order","authoredOn":"2020-13-45"}`
	_, _, xi := p.ParseXML([]byte(xmlDoc))
	_, ji := p.ParseJSON([]byte(jsonDoc))
	if len(xi) != 2 || len(xi) != len(ji) {
		t.Fatalf("xml %+v\njson %+v", xi, ji)
	}
	for i := range xi {
		if xi[i] != ji[i] {
			t.Errorf("issue %d: xml %+v, json %+v", i, xi[i], ji[i])
		}
	}
}

func TestBaseRulesBeyondJSONFormat(t *testing.T) {
	for _, c := range []struct {
		v          Version
		json, expr string
		code, text string
	}{
		{R4, `{"resourceType":"Task","id":"org_1","status":"ready","intent":"order"}`, "Task.id", "value", "invalid resource id"},
		{R4, `{"resourceType":"Task","id":"` + strings.Repeat("a", 65) + `","status":"ready","intent":"order"}`, "Task.id", "value", "invalid resource id"},
		{STU3, `{"resourceType":"Task","status":"ready","intent":"order","contained":[{"resourceType":"Patient","id":"a b"}]}`, "Task.contained[0].id", "value", "invalid resource id"},
		{R4, `{"resourceType":"Task","status":"ready","intent":"order","identifier":[ ]}`, "", "structure", "an array cannot be empty"},
	} {
		_, issues := mustParser(t, c.v).ParseJSON([]byte(c.json))
		found := false
		for _, is := range issues {
			if is.Code == c.code && is.Expression == c.expr && strings.Contains(is.Text, c.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: %+v", c.json[:50], issues)
		}
	}
	// "[]" inside a string is not an empty array.
	if _, issues := mustParser(t, R4).ParseJSON([]byte(`{"resourceType":"Task","status":"ready","intent":"order","description":"a [] b \" []"}`)); len(issues) != 0 {
		t.Errorf("%+v", issues)
	}
}

func TestR4ContainedIDs(t *testing.T) {
	_, issues := mustParser(t, R4).ParseJSON([]byte(`{"resourceType":"Task","status":"ready","intent":"order","contained":[{"resourceType":"Patient","id":"ok"},{"resourceType":"Organization","id":"org_1","name":"x"}]}`))
	if len(issues) != 1 || issues[0].Expression != "Task.contained[1].id" {
		t.Errorf("%+v", issues)
	}
}

// Resources in R4 Parameters.parameter.resource (and part) are parsed on
// their own; their problems are located under their parameter.
func TestParametersNestedResources(t *testing.T) {
	p := mustParser(t, R4)
	res, issues := p.ParseJSON([]byte(`{"resourceType":"Parameters","parameter":[
		{"name":"a","resource":{"resourceType":"Patient","id":"p1","gender":"male"}},
		{"name":"b","part":[{"name":"c","resource":{"resourceType":"Task","intent":"order"}}]}]}`))
	if res == nil || len(issues) != 1 || issues[0].Expression != "Parameters.parameter[1].part[0].resource.status" || issues[0].Code != "required" {
		t.Errorf("%v %+v", res != nil, issues)
	}
	if _, issues := p.ParseJSON([]byte(`{"resourceType":"Parameters","parameter":[{"name":"a","resource":{"resourceType":"Patient","gender":"male"}}]}`)); len(issues) != 0 {
		t.Errorf("%+v", issues)
	}
}

// The specification's own examples base-validate without errors, core
// invariants included, in JSON and in XML.
func TestOfficialExamplesBaseValid(t *testing.T) {
	for _, vc := range []struct {
		dir string
		v   Version
	}{{"stu3", STU3}, {"r4", R4}} {
		files, _ := filepath.Glob("../../shared/fixtures/official-examples/" + vc.dir + "/json/*.json")
		if len(files) == 0 {
			t.Skip("official examples not found")
		}
		p := mustParser(t, vc.v)
		for _, f := range files {
			data, _ := os.ReadFile(f)
			_, issues := p.ParseJSON(data)
			xmlData, _ := os.ReadFile(strings.Replace(strings.TrimSuffix(f, ".json")+".xml", "/json/", "/xml/", 1))
			_, _, xmlIssues := p.ParseXML(xmlData)
			for _, is := range append(issues, xmlIssues...) {
				if is.Severity == "error" {
					t.Errorf("%s/%s: %+v", vc.dir, filepath.Base(f), is)
				}
			}
		}
	}
}

// Core invariants: a real violation is an error; one the engine may have
// misread (response / responseCode) only a warning.
func TestCoreInvariants(t *testing.T) {
	p := mustParser(t, R4)
	_, issues := p.ParseJSON([]byte(`{"resourceType":"Task","status":"ready","intent":"order","authoredOn":"2020-02-01","lastModified":"2020-01-01"}`))
	if len(issues) != 1 || issues[0].Code != "invariant" || issues[0].Severity != "error" || issues[0].Expression != "Task" {
		t.Errorf("inv-1: %+v", issues)
	}
	_, issues = p.ParseJSON([]byte(`{"resourceType":"Encounter","status":"finished","class":{"code":"x"},"period":{"start":"2020-02-01T00:00:00Z","end":"2020-01-01T00:00:00Z"}}`))
	if len(issues) != 1 || issues[0].Severity != "error" || issues[0].Expression != "Encounter.period" {
		t.Errorf("per-1: %+v", issues)
	}
	if got := mentions("response.count() + responseCode.count() <= 1", []string{"response"}); got != "response" {
		t.Errorf("mentions = %q", got)
	}
	if got := mentions("responseCode.count() <= 1", []string{"response"}); got != "" {
		t.Errorf("mentions = %q", got)
	}
}

// ValidateJSON/XML give what ParseJSON/XML plus ValidateProfiles give.
func TestOnePassEqualsSteps(t *testing.T) {
	pkg, err := profile.LoadDir("../profiles/twiin")
	if err != nil {
		t.Fatal(err)
	}
	set := profile.NewSet()
	set.AddPackage(pkg)
	as := []string{"https://fhirgate.example/fhir/twiin/StructureDefinition/notification-task"}
	p := mustParser(t, STU3)
	for _, f := range []string{"original-new-notification-task.json", "new-notification-task.json", "cancel-notification-task.json"} {
		data, _ := os.ReadFile("testdata/twiin/" + f)
		_, steps := p.ParseJSON(data)
		if !HasErrors(steps) || f != "original-new-notification-task.json" {
			steps = append(steps, ValidateProfiles(set, data, as)...)
		}
		sortIssues(steps)
		_, one := p.ValidateJSON(data, set, as)
		if fmt.Sprint(steps) != fmt.Sprint(one) {
			t.Errorf("%s:\nsteps %+v\none   %+v", f, steps, one)
		}
	}
}
