package fhirxml

import (
	"bytes"
	"encoding/json"
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
		{"unknown resource", `<Nope ` + ns + `/>`, "resourceType", "unknown resource type"},
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

// TestPrefixedNarrative: a narrative div written with a prefix — declared
// on the div or on an ancestor — becomes XHTML in the default namespace in
// JSON (copied verbatim it would lose its namespace binding); an
// unprefixed one is kept byte for byte.
func TestPrefixedNarrative(t *testing.T) {
	const want = `<div xmlns="http://www.w3.org/1999/xhtml"><p>Hello <b class="x">there</b></p></div>`
	for _, c := range []struct{ name, xml, want string }{
		{"prefix on the div", `<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><h:div xmlns:h="http://www.w3.org/1999/xhtml"><h:p>Hello <h:b class="x">there</h:b></h:p></h:div></text></Patient>`, want},
		{"prefix on an ancestor", `<Patient xmlns="http://hl7.org/fhir" xmlns:x="http://www.w3.org/1999/xhtml"><text><status value="generated"/><x:div><x:p>Hello <x:b class="x">there</x:b></x:p></x:div></text></Patient>`, want},
		{"default namespace, verbatim", `<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Hello <b class="x">there</b></p></div></text></Patient>`, want},
		{"escaped text and xml:lang", `<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><h:div xmlns:h="http://www.w3.org/1999/xhtml" xml:lang="nl"><h:p>a &lt; b &amp; c</h:p></h:div></text></Patient>`,
			`<div xmlns="http://www.w3.org/1999/xhtml" xml:lang="nl"><p>a &lt; b &amp; c</p></div>`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := ToJSON(STU3, []byte(c.xml))
			if err != nil {
				t.Fatal(err)
			}
			var r struct{ Text struct{ Div string } }
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			if r.Text.Div != c.want {
				t.Errorf("div\n got %s\nwant %s", r.Text.Div, c.want)
			}
		})
	}
}
