package validation

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A defect of a Task, written in JSON and in XML.
type defect struct {
	name      string
	typ       string // the resource type written ("Taks" for an unknown one)
	json, xml string // the Task's elements after resourceType / inside the element
	code      string // the issue code both formats must report …
	at        string // … at this path below the Task's place ("" the place itself)
}

var defects = []defect{
	{"unknown element", "Task", `"status":"ready","intent":"order","foo":1`,
		`<status value="ready"/><intent value="order"/><foo value="1"/>`, "structure", "foo"},
	{"wrong JSON type (object for a primitive)", "Task", `"status":{"x":1},"intent":"order"`,
		`<status><x value="1"/></status><intent value="order"/>`, "structure", "status.x"},
	{"wrong cardinality", "Task", `"status":"ready","intent":"order","priority":["routine","urgent"]`,
		`<status value="ready"/><intent value="order"/><priority value="routine"/><priority value="urgent"/>`, "structure", "priority"},
	{"bad primitive", "Task", `"status":"ready","intent":"order","authoredOn":"yesterday"`,
		`<status value="ready"/><intent value="order"/><authoredOn value="yesterday"/>`, "value", "authoredOn"},
	{"choice under two types", "Task", `"status":"ready","intent":"order","input":[{"type":{"text":"t"},"valueString":"a","valueBoolean":true}]`,
		`<status value="ready"/><intent value="order"/><input><type><text value="t"/></type><valueString value="a"/><valueBoolean value="true"/></input>`, "structure", "input[0].value"},
	{"unknown resourceType", "Taks", `"status":"ready","intent":"order"`,
		`<status value="ready"/><intent value="order"/>`, "structure", ""},
}

// A place a resource can stand: the resource itself, or inside another.
type nesting struct {
	name      string
	place     string // FHIRPath of the nested resource
	json, xml func(string) string
}

const ns = ` xmlns="http://hl7.org/fhir"`

var nestings = []nesting{
	{"root", "Task", func(r string) string { return r }, func(r string) string { return strings.Replace(r, ">", ns+">", 1) }},
	{"contained", "Task.contained[0]",
		func(r string) string {
			return `{"resourceType":"Task","contained":[` + r + `],"status":"ready","intent":"order"}`
		},
		func(r string) string {
			return `<Task` + ns + `><contained>` + r + `</contained><status value="ready"/><intent value="order"/></Task>`
		}},
	{"Bundle entry", "Bundle.entry[0].resource",
		func(r string) string {
			return `{"resourceType":"Bundle","type":"collection","entry":[{"resource":` + r + `}]}`
		},
		func(r string) string {
			return `<Bundle` + ns + `><type value="collection"/><entry><resource>` + r + `</resource></entry></Bundle>`
		}},
	{"Parameters", "Parameters.parameter[0].resource",
		func(r string) string {
			return `{"resourceType":"Parameters","parameter":[{"name":"t","resource":` + r + `}]}`
		},
		func(r string) string {
			return `<Parameters` + ns + `><parameter><name value="t"/><resource>` + r + `</resource></parameter></Parameters>`
		}},
}

// errorsAt lists the errors as "code expression", sorted.
func errorsAt(issues []Issue) []string {
	var out []string
	for _, is := range issues {
		if is.Severity == "error" {
			out = append(out, is.Code+" "+is.Expression)
		}
	}
	slices.Sort(out)
	return out
}

// The differential corpus: every defect, in every nesting, in both FHIR
// versions, read as JSON and as XML, gives the same errors — issue code
// and expression — and the expected one is among them.
func TestJSONAndXMLLocateAlike(t *testing.T) {
	for _, v := range []Version{R4, STU3} {
		vname := map[Version]string{R4: "R4", STU3: "STU3"}[v]
		p, err := NewParser(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range defects {
			for _, n := range nestings {
				t.Run(fmt.Sprintf("%s/%s/%s", vname, d.name, n.name), func(t *testing.T) {
					jsonDoc := n.json(`{"resourceType":"` + d.typ + `",` + d.json + `}`)
					xmlDoc := n.xml(`<` + d.typ + `>` + d.xml + `</` + d.typ + `>`)
					j := errorsAt(p.Check([]byte(jsonDoc), false, nil, nil).Base)
					x := errorsAt(p.Check([]byte(xmlDoc), true, nil, nil).Base)
					want := n.place
					if d.at != "" {
						want += "." + d.at
					} else if n.name == "root" {
						want = "resourceType"
					}
					if !slices.Equal(j, x) {
						t.Errorf("JSON %v\n XML %v", j, x)
					}
					if !slices.Contains(j, d.code+" "+want) {
						t.Errorf("JSON errors %v, want %s at %s", j, d.code, want)
					}
				})
			}
		}
	}
}
