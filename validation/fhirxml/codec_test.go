package fhirxml

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExactDigits: XML → JSON → XML gives back the same document with every
// value as written, decimals' trailing zeros included.
func TestExactDigits(t *testing.T) {
	for _, vc := range []struct {
		dir string
		v   Version
	}{{"stu3", STU3}, {"r4", R4}} {
		for _, base := range pairs(t, vc.dir) {
			xmlData, _ := os.ReadFile(xmlFileFor(base))
			j, err := ToJSON(vc.v, xmlData)
			if err != nil {
				t.Fatalf("%s: %v", base, err)
			}
			back, err := ToXML(vc.v, j)
			if err != nil {
				t.Fatalf("%s: %v", base, err)
			}
			if g, w := normXMLWith(t, back, true), normXMLWith(t, xmlData, true); g != w {
				t.Errorf("%s: round trip changed the document:\n%s", filepath.Base(base), firstDiff(g, w))
			}
		}
	}
	j, err := ToJSON(R4, []byte(`<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="x"/></code><valueQuantity><value value="1.500"/></valueQuantity></Observation>`))
	if err != nil || !bytes.Contains(j, []byte(`"value":1.500`)) {
		t.Errorf("decimal digits not kept: %s %v", j, err)
	}
}

// Hostile and malformed documents are refused with a precise error.
func TestRefusals(t *testing.T) {
	const ns = `xmlns="http://hl7.org/fhir"`
	cases := []struct {
		name, doc, path, msg string
	}{
		{"XXE", `<?xml version="1.0"?><!DOCTYPE Task [<!ENTITY x SYSTEM "file:///etc/passwd">]><Task ` + ns + `><status value="&x;"/></Task>`, "", "DOCTYPE"},
		{"billion laughs", `<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><Task ` + ns + `><status value="&lol2;"/></Task>`, "", "DOCTYPE"},
		{"undeclared entity", `<Task ` + ns + `><status value="&nbsp;"/></Task>`, "", "not well-formed"},
		{"deep nesting", `<Task ` + ns + `>` + strings.Repeat("<extension>", 100) + strings.Repeat("</extension>", 100) + `</Task>`, "", "levels"},
		{"foreign namespace", `<Task xmlns="http://example.org/"><status value="ready"/></Task>`, "Task", "not in the FHIR namespace"},
		{"foreign element inside", `<Task ` + ns + `><x:status xmlns:x="urn:x" value="ready"/></Task>`, "status", "not in the FHIR namespace"},
		{"out of order", `<Task ` + ns + `><intent value="order"/><status value="ready"/></Task>`, "Task.status", "out of order"},
		{"unknown element", `<Task ` + ns + `><colour value="red"/></Task>`, "Task.colour", "unknown element"},
		// A refused child between two of a list: the list goes on and
		// its items keep their places (the third identifier is [2]).
		{"list broken by an unknown element", `<Task ` + ns + `><identifier><value value="a"/></identifier><colour value="red"/><identifier><value value="b"/></identifier><identifier><bogus value="x"/></identifier></Task>`, "Task.identifier[2].bogus", "unknown element"},
		{"repeats a single element", `<Task ` + ns + `><status value="ready"/><status value="draft"/></Task>`, "Task.status", "more than once"},
		{"empty attribute", `<Task ` + ns + `><status value=""/></Task>`, "status", "empty"},
		{"stray text", `<Task ` + ns + `><status value="ready"/>hello</Task>`, "Task", "text content"},
		{"text instead of value", `<Task ` + ns + `><status>ready</status></Task>`, "status", "text content"},
		{"unknown attribute", `<Task ` + ns + `><status value="ready" colour="red"/></Task>`, "Task.status", "not allowed"},
		{"bad boolean", `<Patient ` + ns + `><active value="yes"/></Patient>`, "Patient.active", "not a boolean"},
		{"bad decimal", `<Observation ` + ns + `><status value="final"/><code><text value="x"/></code><valueQuantity><value value="1.5.0"/></valueQuantity></Observation>`, "Observation.valueQuantity.value", "not a valid decimal"},
		{"unknown resource", `<Nope ` + ns + `/>`, "Nope", "unknown resource type"},
		{"two roots", `<Task ` + ns + `/><Task ` + ns + `/>`, "", "more than one root"},
		{"processing instruction", `<Task ` + ns + `><?php x ?></Task>`, "", "processing instructions"},
		{"div outside XHTML", `<Patient ` + ns + `><text><status value="generated"/><div>x</div></text></Patient>`, "div", "text content"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ToJSON(R4, []byte(c.doc))
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("accepted (err %v)", err)
			}
			for _, e := range es {
				if strings.Contains(e.Msg, c.msg) && (c.path == "" || e.Path == c.path) {
					return
				}
			}
			t.Errorf("no error at %q containing %q: %v", c.path, c.msg, es)
		})
	}
}

func TestToXMLRefusals(t *testing.T) {
	for _, c := range []struct{ name, json, msg string }{
		{"unknown element", `{"resourceType":"Task","colour":"red"}`, "unknown element colour"},
		{"string for boolean", `{"resourceType":"Patient","active":"true"}`, "a string where a boolean"},
		{"number for string", `{"resourceType":"Task","status":1}`, "a number where a code"},
		{"object for array", `{"resourceType":"Task","identifier":{"value":"x"}}`, "an array is required"},
		{"unknown resource", `{"resourceType":"Nope"}`, "unknown or missing resourceType"},
		{"not an object", `[1]`, "not a JSON object"},
		{"trailing data", `{"resourceType":"Task"} {}`, "data after"},
	} {
		if _, err := ToXML(R4, []byte(c.json)); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", c.name, err, c.msg)
		}
	}
}

// FuzzToJSON: any XML, either version: no panic, and a document that
// converts comes back the same from JSON → XML → JSON.
func FuzzToJSON(f *testing.F) {
	for _, file := range []string{"stu3/xml/task-example1.xml", "r4/xml/task-example1.xml"} {
		if data, err := os.ReadFile(filepath.Join(officialExamples, file)); err == nil {
			f.Add(data, strings.HasPrefix(file, "r4"))
		}
	}
	f.Add([]byte(`<Task xmlns="http://hl7.org/fhir"><status value="ready"/></Task>`), true)
	f.Add([]byte(`<Patient xmlns="http://hl7.org/fhir"><name><given value="a"/><given id="x"><extension url="u"><valueString value="v"/></extension></given></name></Patient>`), false)
	f.Fuzz(func(t *testing.T, data []byte, r4 bool) {
		v := STU3
		if r4 {
			v = R4
		}
		j, err := ToJSON(v, data)
		if err != nil {
			return
		}
		x, err := ToXML(v, j)
		if err != nil {
			t.Fatalf("converted XML's JSON does not convert back: %v\n%s", err, j)
		}
		j2, err := ToJSON(v, x)
		if err != nil || !bytes.Equal(j, j2) {
			t.Fatalf("not stable: %v\n%s\n%s", err, j, j2)
		}
	})
}
