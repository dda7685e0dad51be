package outcome

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"testing"
)

// The rendered OperationOutcomes equal gematik's published examples
// (semantically: same elements and values), in JSON and in XML.
func TestMatchesGematikExamples(t *testing.T) {
	o := Outcome{Issues: []Issue{{Code: "forbidden", Text: "Task must not be in progress for users other than pharmacy, but is: in-progress"}}}
	var got, want map[string]any
	json.Unmarshal(o.JSON(), &got)
	data, err := os.ReadFile("testdata/OperationOutcome-ExampleOperationAbortErrorPVS.json")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &want)
	delete(want, "id")
	if g, w := mustJSON(got), mustJSON(want); g != w {
		t.Errorf("JSON\n got %s\nwant %s", g, w)
	}
	type x struct {
		Issue []struct {
			Severity struct {
				V string `xml:"value,attr"`
			} `xml:"severity"`
			Code struct {
				V string `xml:"value,attr"`
			} `xml:"code"`
			Text struct {
				V string `xml:"value,attr"`
			} `xml:"details>text"`
		} `xml:"issue"`
	}
	var gx, wx x
	if err := xml.Unmarshal(o.XML(), &gx); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile("testdata/OperationOutcome-ExampleOperationAbortErrorPVS.xml")
	xml.Unmarshal(data, &wx)
	if mustJSON(gx) != mustJSON(wx) || len(gx.Issue) != 1 {
		t.Errorf("XML\n got %s\nwant %s", mustJSON(gx), mustJSON(wx))
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Golden renderings: profile, expression, escaping of every special
// character, including ones XML cannot carry.
func TestGolden(t *testing.T) {
	o := Outcome{Profile: "http://hl7.org/fhir/StructureDefinition/OperationOutcome", Issues: []Issue{
		{Code: "invalid", Text: `a<b & "c" > d` + "\n\x01", Expression: []string{"Task.identifier[0]"}},
		{Severity: "warning", Code: "informational", Diagnostics: "d"},
	}}
	wantJSON := `{"resourceType":"OperationOutcome","meta":{"profile":["http://hl7.org/fhir/StructureDefinition/OperationOutcome"]},"issue":[{"severity":"error","code":"invalid","details":{"text":"a\u003cb \u0026 \"c\" \u003e d\n\u0001"},"expression":["Task.identifier[0]"]},{"severity":"warning","code":"informational","diagnostics":"d"}]}`
	if got := string(o.JSON()); got != wantJSON {
		t.Errorf("JSON\n got %s\nwant %s", got, wantJSON)
	}
	wantXML := `<OperationOutcome xmlns="http://hl7.org/fhir"><meta><profile value="http://hl7.org/fhir/StructureDefinition/OperationOutcome"/></meta><issue><severity value="error"/><code value="invalid"/><details><text value="a&lt;b &amp; &quot;c&quot; &gt; d&#xA;` + "\uFFFD" + `"/></details><expression value="Task.identifier[0]"/></issue><issue><severity value="warning"/><code value="informational"/><diagnostics value="d"/></issue></OperationOutcome>`
	if got := string(o.XML()); got != wantXML {
		t.Errorf("XML\n got %s\nwant %s", got, wantXML)
	}
	var v any
	if err := xml.Unmarshal(o.XML(), &v); err != nil {
		t.Errorf("XML does not parse: %v", err)
	}
}
