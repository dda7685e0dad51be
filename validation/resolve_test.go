package validation

import (
	"fmt"
	"strings"
	"testing"
)

// careTeam is the shape of the official STU3 careteam-example: a
// participant whose member is a contained Practitioner, on behalf of an
// organization — ctm-1 "onBehalfOf.exists() implies (member.resolve() is
// Practitioner)" must resolve the member.
func careTeam(member, bundleWrap string) string {
	team := fmt.Sprintf(`{"resourceType":"CareTeam","id":"example",
 "contained":[{"resourceType":"Practitioner","id":"pr1","name":[{"family":"Dietician","given":["Dorothy"]}]},
              {"resourceType":"Organization","id":"org1","name":"Clinic"}],
 "status":"active",
 "participant":[{"member":{"reference":%q,"display":"Dorothy Dietician"},
                 "onBehalfOf":{"reference":"Organization/f001"}}]}`, member)
	if bundleWrap == "" {
		return team
	}
	return fmt.Sprintf(`{"resourceType":"Bundle","type":"collection","entry":[
 {"fullUrl":"http://example.org/fhir/Practitioner/p7","resource":{"resourceType":"Practitioner","id":"p7"}},
 {"fullUrl":"urn:uuid:6f0c0a5e-7d53-4c1a-9b0f-1c9f3a7b2d11","resource":{"resourceType":"Organization","id":"o9"}},
 {"fullUrl":"http://example.org/fhir/CareTeam/example","resource":%s}]}`, team)
}

// resolve() in core invariants: contained (#id) and Bundle-internal
// references resolve; a reference that points outside the resource makes
// the invariant a warning that says so, never an error; a reference that
// resolves to the wrong type is a real failure.
func TestResolveInInvariants(t *testing.T) {
	p, err := NewParser(STU3)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, body string
		want       string // "" no ctm-1 issue, "warning", "error"
	}{
		{"contained Practitioner", careTeam("#pr1", ""), ""},
		{"contained Organization", careTeam("#org1", ""), "error"},
		{"external reference", careTeam("Practitioner/p7", ""), "warning"},
		{"missing contained id", careTeam("#nope", ""), "warning"},
		{"Bundle entry by Type/id", careTeam("Practitioner/p7", "bundle"), ""},
		{"Bundle entry by fullUrl", careTeam("http://example.org/fhir/Practitioner/p7", "bundle"), ""},
		{"Bundle entry of the wrong type", careTeam("urn:uuid:6f0c0a5e-7d53-4c1a-9b0f-1c9f3a7b2d11", "bundle"), "error"},
		{"contained inside a Bundle entry", careTeam("#pr1", "bundle"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := p.Check([]byte(c.body), false, nil, nil)
			var ctm []Issue
			for _, is := range append(got.Base, got.Profile...) {
				if strings.Contains(is.Text, "member.resolve()") {
					ctm = append(ctm, is)
				}
			}
			switch {
			case c.want == "" && len(ctm) > 0:
				t.Errorf("ctm-1 reported: %+v", ctm)
			case c.want != "" && (len(ctm) != 1 || ctm[0].Severity != c.want):
				t.Errorf("ctm-1 issues %+v, want one %s (all: %+v)", ctm, c.want, got.Base)
			case c.want == "warning" && !strings.Contains(ctm[0].Text, "cannot be resolved inside the resource"):
				t.Errorf("warning does not say why: %s", ctm[0].Text)
			}
			for _, is := range got.Base {
				if is.Severity == "error" && c.want != "error" {
					t.Errorf("unexpected error %+v", is)
				}
			}
		})
	}
}
