package profile

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/validation/fhirxml"
	"github.com/gofhir/fhirpath/funcs"
)

const gematikCorpus = "../../../shared/fixtures/conformance/gematik-erp-task/valmodule-erp/src"

func decode(t *testing.T, data []byte) map[string]any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestGematikTaskCorpus: every gematik Task instance is classified as its
// valid/ or invalid/ folder says, against GEM_ERP_PR_Task of the package
// its version belongs to.
func TestGematikTaskCorpus(t *testing.T) {
	packages := map[string]string{
		"GEM_ERP_PR_Task/1.5": "de.gematik.erezept-workflow.r4-1.5.2.tgz",
		"GEM_ERP_PR_Task/1.3": "de.gematik.erezept-workflow.r4-1.3.1.tgz",
		"ErxTask/1.1.1":       "de.gematik.erezept-workflow.r4-1.1.1.tgz",
	}
	files, _ := filepath.Glob(gematikCorpus + "/test/resources/OtherProfiles/*/*/*/*.xml")
	if len(files) == 0 {
		t.Skip("gematik corpus not found (../shared beside the checkout)")
	}
	loaded := map[string]*Package{}
	for _, f := range files {
		rel := strings.TrimPrefix(f, gematikCorpus+"/test/resources/OtherProfiles/")
		parts := strings.Split(rel, "/")
		key, verdict := parts[0]+"/"+parts[1], parts[2]
		t.Run(rel, func(t *testing.T) {
			pkgFile, ok := packages[key]
			if !ok {
				t.Fatalf("no package known for %s", key)
			}
			pkg := loaded[pkgFile]
			if pkg == nil {
				var err error
				if pkg, err = LoadPackage(gematikCorpus + "/main/resources/erp/package/" + pkgFile); err != nil {
					t.Fatal(err)
				}
				loaded[pkgFile] = pkg
			}
			xmlData, _ := os.ReadFile(f)
			j, err := fhirxml.ToJSON(fhirxml.R4, xmlData)
			if err != nil {
				if verdict == "invalid" {
					return // refused before the profile: also invalid
				}
				t.Fatalf("XML: %v", err)
			}
			res := decode(t, j)
			meta, _ := res["meta"].(map[string]any)
			profiles, _ := meta["profile"].([]any)
			if len(profiles) == 0 {
				t.Fatal("instance declares no profile")
			}
			p := pkg.Profile(profiles[0].(string))
			if p == nil {
				t.Fatalf("profile %s not in %s (%d profiles)", profiles[0], pkgFile, pkg.Len())
			}
			issues := p.Validate(res)
			errors := 0
			for _, is := range issues {
				if is.Severity == "error" {
					errors++
				}
			}
			if (verdict == "valid") != (errors == 0) {
				t.Errorf("folder says %s, %d errors: %+v", verdict, errors, issues)
			}
			if verdict == "invalid" {
				t.Logf("refused: %+v", issues)
			}
		})
	}
}

func TestPatternAndEqual(t *testing.T) {
	num := func(s string) json.Number { return json.Number(s) }
	cases := []struct {
		val, pattern any
		want         bool
	}{
		{map[string]any{"system": "a", "code": "b"}, map[string]any{"system": "a"}, true},
		{map[string]any{"system": "x"}, map[string]any{"system": "a"}, false},
		{map[string]any{"coding": []any{map[string]any{"system": "s", "code": "c"}, map[string]any{"system": "t"}}}, map[string]any{"coding": []any{map[string]any{"system": "t"}}}, true},
		{num("1.50"), num("1.5"), true},
		{nil, "x", false},
	}
	for i, c := range cases {
		if got := matches(c.val, c.pattern); got != c.want {
			t.Errorf("case %d: matches = %v", i, got)
		}
	}
	if equal(map[string]any{"a": "b", "c": "d"}, map[string]any{"a": "b"}) {
		t.Error("fixed compares as a pattern")
	}
}

// The invalid instances are refused for the reason their files show, at
// the element concerned.
func TestGematikRefusalReasons(t *testing.T) {
	pkg, err := LoadPackage(gematikCorpus + "/main/resources/erp/package/de.gematik.erezept-workflow.r4-1.5.2.tgz")
	if err != nil {
		t.Skip(err)
	}
	base, err := os.ReadFile(gematikCorpus + "/test/resources/OtherProfiles/GEM_ERP_PR_Task/1.5/valid/Task-9b48f82c-9c11-4a57-aa72-a805f9537a82.xml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := fhirxml.ToJSON(fhirxml.R4, base)
	if err != nil {
		t.Fatal(err)
	}
	p := pkg.Profile("https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Task")
	mutate := func(f func(map[string]any)) []Issue {
		res := decode(t, j)
		f(res)
		var errs []Issue
		for _, is := range p.Validate(res) {
			if is.Severity == "error" {
				errs = append(errs, is)
			}
		}
		return errs
	}
	cases := []struct {
		name       string
		mutate     func(map[string]any)
		code, expr string
	}{
		{"valid as is", func(map[string]any) {}, "", ""},
		{"flowType code unknown", func(r map[string]any) {
			ext := r["extension"].([]any)[0].(map[string]any)
			ext["valueCoding"].(map[string]any)["code"] = "999"
		}, "code-invalid", "Task.extension[0].valueCoding"},
		{"flowType missing", func(r map[string]any) { r["extension"] = r["extension"].([]any)[1:] }, "required", "Task.extension"},
		{"unknown identifier system (closed slicing)", func(r map[string]any) {
			r["identifier"] = append(r["identifier"].([]any), map[string]any{"system": "urn:x", "value": "1"})
		}, "structure", "Task.identifier[2]"},
		{"intent not order (fixed)", func(r map[string]any) { r["intent"] = "plan" }, "value", "Task.intent"},
		{"two PrescriptionIDs", func(r map[string]any) {
			ids := r["identifier"].([]any)
			r["identifier"] = append(ids, ids[0])
		}, "structure", "Task.identifier"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := mutate(c.mutate)
			if c.code == "" {
				if len(errs) != 0 {
					t.Fatalf("errors: %+v", errs)
				}
				return
			}
			for _, e := range errs {
				if e.Code == c.code && e.Expression == c.expr {
					return
				}
			}
			t.Errorf("no %s error at %s: %+v", c.code, c.expr, errs)
		})
	}
}

// FuzzValidate: any JSON object against GEM_ERP_PR_Task: no panic, and
// every issue has a severity, a code and a text.
func FuzzValidate(f *testing.F) {
	pkg, err := LoadPackage(gematikCorpus + "/main/resources/erp/package/de.gematik.erezept-workflow.r4-1.5.2.tgz")
	if err != nil {
		f.Skip(err)
	}
	p := pkg.Profile("https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Task")
	f.Add([]byte(`{"resourceType":"Task","extension":[{"url":"https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_EX_PrescriptionType","valueCoding":{"code":"160"}}],"identifier":[{"system":"x"}]}`))
	f.Add([]byte(`{"resourceType":"Task","meta":{"profile":[1,null,{}]},"intent":["order"],"_intent":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) != nil {
			return
		}
		for _, is := range p.Validate(m) {
			if is.Severity == "" || is.Code == "" || is.Text == "" {
				t.Fatalf("incomplete issue %+v", is)
			}
		}
	})
}

// A differential-only profile (the shared GEM_ERP_PR_Task 1.6.4) compiles
// with implicit parents and checks what its differential constrains.
func TestDifferentialProfile(t *testing.T) {
	data, err := os.ReadFile("../../../shared/fixtures/erezept/fhir-profiles-erp_1.6.4/StructureDefinition-GEM-ERP-PR-Task.json")
	if err != nil {
		t.Skip(err)
	}
	p, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Task-09330307-16ce-4cdc-810a-ca24ef80dde3.json", "Task-607255ed-ce41-47fc-aad3-cfce1c39963f.json", "Task-b12eb5f7-91ce-4887-93c7-800454601377.json", "Task-d70932d1-9e1c-483c-b2d4-b7dced09b35e.json"} {
		j, err := os.ReadFile("../testdata/erezept/" + f)
		if err != nil {
			t.Fatal(err)
		}
		for _, is := range p.Validate(decode(t, j)) {
			if is.Severity == "error" {
				t.Errorf("%s: %+v", f, is)
			}
		}
	}
	j, _ := os.ReadFile("../testdata/erezept/Task-09330307-16ce-4cdc-810a-ca24ef80dde3.json")
	res := decode(t, j)
	res["intent"] = "plan"
	delete(res, "identifier")
	var codes []string
	for _, is := range p.Validate(res) {
		if is.Severity == "error" {
			codes = append(codes, is.Code+"@"+is.Expression)
		}
	}
	// The PrescriptionID slice minimum is a warning here: its discriminator
	// (the system) is in GEM_ERP_PR_PrescriptionId, not in this folder.
	if strings.Join(codes, " ") != "required@Task.identifier value@Task.intent" {
		t.Errorf("errors %v", codes)
	}
	// A primitive given only by its extension (_intent) is an element
	// present without a value: it is checked against the fixed value (and
	// would count for a minimum) — in an object with fewer names than the
	// definition has elements too, where the validator looks for _name
	// only when the object holds one.
	res = map[string]any{"resourceType": "Task", "_intent": map[string]any{"extension": []any{
		map[string]any{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}}}}
	var intent []string
	for _, is := range p.Validate(res) {
		if is.Expression == "Task.intent" {
			intent = append(intent, is.Code)
		}
	}
	if strings.Join(intent, " ") != "value" {
		t.Errorf("intent given by _intent only: issues %v, want the fixed value's", intent)
	}
}

// Invariants of the snapshot are evaluated: R4 Task inv-1 (lastModified
// not before authoredOn), dom-2 (no nested contained), ext-1 (extension
// with value or extensions, not both).
func TestInvariants(t *testing.T) {
	pkg, err := LoadPackage(gematikCorpus + "/main/resources/erp/package/de.gematik.erezept-workflow.r4-1.5.2.tgz")
	if err != nil {
		t.Skip(err)
	}
	p := pkg.Profile("https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Task")
	if len(p.invariants) < 5 {
		t.Fatalf("only %d invariants compiled", len(p.invariants))
	}
	base, _ := os.ReadFile(gematikCorpus + "/test/resources/OtherProfiles/GEM_ERP_PR_Task/1.5/valid/Task-9b48f82c-9c11-4a57-aa72-a805f9537a82.xml")
	j, err := fhirxml.ToJSON(fhirxml.R4, base)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		mutate func(map[string]any)
		key    string
	}{
		{"lastModified before authoredOn", func(r map[string]any) {
			r["authoredOn"] = "2025-10-02T10:00:00+00:00"
			r["lastModified"] = "2025-10-01T10:00:00+00:00"
		}, "inv-1"},
		{"nested contained", func(r map[string]any) {
			r["contained"] = []any{map[string]any{"resourceType": "Basic", "id": "b", "contained": []any{map[string]any{"resourceType": "Basic", "id": "c"}}}}
		}, "dom-2"},
		{"extension with value and extensions", func(r map[string]any) {
			ext := r["extension"].([]any)[0].(map[string]any)
			ext["extension"] = []any{map[string]any{"url": "x", "valueString": "y"}}
		}, "ext-1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := decode(t, j)
			if errs := errorsOf(p.Validate(res)); len(errs) != 0 {
				t.Fatalf("valid instance has errors: %+v", errs)
			}
			c.mutate(res)
			for _, is := range p.Validate(res) {
				if is.Code == "invariant" && strings.Contains(is.Text, "constraint "+c.key+" failed") && is.Severity == "error" {
					return
				}
			}
			t.Errorf("%s not reported: %+v", c.key, p.Validate(res))
		})
	}
}

func TestReferenceTargets(t *testing.T) {
	p, err := Load([]byte(`{"resourceType":"StructureDefinition","url":"http://x/sd","type":"Task","fhirVersion":"4.0.1",
	  "differential":{"element":[{"id":"Task","path":"Task"},
	  {"id":"Task.for","path":"Task.for","type":[{"code":"Reference","targetProfile":["http://hl7.org/fhir/StructureDefinition/Patient","http://hl7.org/fhir/StructureDefinition/Group"]}]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	for ref, ok := range map[string]bool{
		"Patient/1": true, "Group/g": true, "https://server.example/fhir/Patient/1/_history/2": true,
		"#contained": true, "urn:uuid:1234": true, "Practitioner/1": false, "https://server.example/fhir/Device/9": false,
	} {
		errs := errorsOf(p.Validate(map[string]any{"resourceType": "Task", "for": map[string]any{"reference": ref}}))
		if (len(errs) == 0) != ok {
			t.Errorf("%s: %+v", ref, errs)
		} else if !ok && (errs[0].Expression != "Task.for.reference" || errs[0].Code != "invalid") {
			t.Errorf("%s: %+v", ref, errs[0])
		}
	}
}

// trace() in an invariant writes nothing: the library's logger (which
// would print resource content to stderr) is replaced by the null logger.
func TestTraceIsSilent(t *testing.T) {
	if _, ok := funcs.GetTraceLogger().(funcs.NullTraceLogger); !ok {
		t.Fatalf("trace logger is %T", funcs.GetTraceLogger())
	}
	p, err := Load([]byte(`{"resourceType":"StructureDefinition","url":"http://x/sd","type":"Task","fhirVersion":"4.0.1",
	  "differential":{"element":[{"id":"Task","path":"Task","constraint":[{"key":"t-1","severity":"error","human":"h","expression":"description.trace('d').exists()"}]}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if errs := errorsOf(p.Validate(map[string]any{"resourceType": "Task", "description": "x"})); len(errs) != 0 {
		t.Errorf("%+v", errs)
	}
}

func TestRootNames(t *testing.T) {
	cases := map[string]string{
		"lastModified.exists().not() or authoredOn.exists().not() or lastModified >= authoredOn": "lastModified exists not authoredOn",
		"(Task.extension).all(extension.exists() != value.exists())":                             "Task extension all exists value",
		"code = 'a.b c' and `div`.exists()":                                                      "code div exists",
		"%resource.descendants().reference":                                                      "",
		"start <= @2020-01-01T10:00:00Z":                                                         "start",
	}
	for src, want := range cases {
		if got := strings.Join(RootNames(src), " "); got != want {
			t.Errorf("%q: %q, want %q", src, got, want)
		}
	}
}

// anyValueAt must see exactly the present values instancePathValues lists
// (the absent values of extension-only primitives never match a
// discriminator's value, so they may be skipped).
func FuzzAnyValueAtAgrees(f *testing.F) {
	f.Add(`{"url":"a","extension":[{"url":"b"},{"url":"c","valueCoding":{"code":"x"}}]}`, "extension.url")
	f.Add(`{"type":{"coding":[{"system":"s","code":"c"},null]},"_status":{"id":"1"}}`, "type.coding.code")
	f.Add(`{"valueString":"v","valueCode":"c","_valueCode":{}}`, "value[x]")
	f.Add(`{"a":[{"b":[1,2,{"c":3}]},{"b":{"c":[4]}}]}`, "a.b.c")
	f.Add(`{"status":null,"_status":{"id":"1"}}`, "status")
	f.Add(`{"x":1}`, "$this")
	f.Fuzz(func(t *testing.T, doc, path string) {
		var val any
		dec := json.NewDecoder(strings.NewReader(doc))
		dec.UseNumber()
		if dec.Decode(&val) != nil {
			return
		}
		var want []any
		for _, x := range instancePathValues(val, path) {
			if x != nil {
				want = append(want, x)
			}
		}
		var got []any
		anyValueAt(val, path, func(x any) bool {
			if x != nil {
				got = append(got, x)
			}
			return false
		})
		if len(got) != len(want) {
			t.Fatalf("%s at %q: anyValueAt saw %v, instancePathValues %v", doc, path, got, want)
		}
		// The same values; a choice's ([x]) come in map order.
		used := make([]bool, len(want))
	next:
		for _, g := range got {
			for i, w := range want {
				if !used[i] && equal(g, w) {
					used[i] = true
					continue next
				}
			}
			t.Fatalf("%s at %q: anyValueAt saw %v, not among %v", doc, path, g, want)
		}
	})
}
