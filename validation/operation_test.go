package validation

import (
	"os"
	"strings"
	"testing"
)

func abortDefinition(t *testing.T) *OperationDefinition {
	data, err := os.ReadFile("testdata/erezept/OperationDefinition-AbortOperation.json")
	if err != nil {
		t.Fatal(err)
	}
	od, err := LoadOperationDefinition(data)
	if err != nil {
		t.Fatal(err)
	}
	return od
}

// The $abort call of the E-Rezept against gematik's AbortOperation: ac and
// secret are optional strings, at most once each.
func TestAbortOperationQuery(t *testing.T) {
	od := abortDefinition(t)
	if od.Code != "abort" || len(od.params) != 2 {
		t.Fatalf("loaded %+v", od)
	}
	cases := []struct {
		name  string
		query map[string][]string
		code  string // "" no issue
		expr  string
	}{
		{"none", nil, "", ""},
		{"ac", map[string][]string{"ac": {"777bea0e13cc9c42ceec14aec3ddee2263325dc2c6c699db115f58fe423607ea"}}, "", ""},
		{"secret and _format", map[string][]string{"secret": {"x"}, "_format": {"json"}}, "", ""},
		{"ac twice", map[string][]string{"ac": {"a", "b"}}, "structure", "$abort.parameter('ac')"},
		{"unknown parameter", map[string][]string{"acc": {"a"}}, "not-supported", "$abort.parameter('acc')"},
		{"empty string", map[string][]string{"secret": {""}}, "value", "$abort.parameter('secret')"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			issues := od.CheckQuery(c.query)
			if c.code == "" {
				if len(issues) != 0 {
					t.Fatalf("issues %+v", issues)
				}
				return
			}
			if len(issues) != 1 || issues[0].Code != c.code || issues[0].Expression != c.expr {
				t.Fatalf("issues %+v, want %s at %s", issues, c.code, c.expr)
			}
		})
	}
}

func TestOperationParametersBodyAndRequired(t *testing.T) {
	od, err := LoadOperationDefinition([]byte(`{"resourceType":"OperationDefinition","code":"close","parameter":[
		{"name":"secret","use":"in","min":1,"max":"1","type":"string"},
		{"name":"count","use":"in","min":0,"max":"*","type":"integer"},
		{"name":"return","use":"out","min":1,"max":"1","type":"Bundle"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if is := od.CheckQuery(nil); len(is) != 1 || is[0].Code != "required" {
		t.Errorf("missing required: %+v", is)
	}
	if is := od.CheckParameters([]byte(`{"resourceType":"Parameters","parameter":[{"name":"secret","valueString":"s"},{"name":"count","valueInteger":2},{"name":"count","valueInteger":3}]}`)); len(is) != 0 {
		t.Errorf("valid body: %+v", is)
	}
	if is := od.CheckParameters([]byte(`{"resourceType":"Parameters","parameter":[{"name":"secret","valueString":"s"},{"name":"count","valueString":"x"}]}`)); len(is) != 1 || is[0].Code != "value" {
		t.Errorf("bad integer: %+v", is)
	}
	if is := od.CheckParameters([]byte(`{"resourceType":"Bundle"}`)); len(is) != 1 || is[0].Code != "structure" {
		t.Errorf("not Parameters: %+v", is)
	}
	if _, err := LoadOperationDefinition([]byte(`{"resourceType":"Patient"}`)); err == nil {
		t.Error("a Patient loaded as OperationDefinition")
	}
}

// The checks in Go answer as the FHIR regexes they stand for.
func TestPrimitiveChecksAgree(t *testing.T) {
	values := []string{"", "0", "-0", "00", "01", "1", "-1", "10", "-", "+1", "1.5", "1e5",
		"true", "false", "True", "a", " a", "a ", "a b", "a  b", "a\tb", "a\vb", "a\x00b", "\xff",
		"ab-.9Z", "a_b", strings.Repeat("a", 64), strings.Repeat("a", 65), "2026-11-30", "ü", "a\nb"}
	for typ, check := range primitiveChecks {
		for _, v := range values {
			if got, want := check(v), primitiveFormats[typ].MatchString(v); got != want {
				t.Errorf("%s %q: check %v, regex %v", typ, v, got, want)
			}
		}
	}
}

func FuzzPrimitiveChecksAgree(f *testing.F) {
	for _, v := range []string{"", "0", "-12", "a b", "a\f b", strings.Repeat("x", 64), "\xff\x00"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for typ, check := range primitiveChecks {
			if got, want := check(v), primitiveFormats[typ].MatchString(v); got != want {
				t.Errorf("%s %q: check %v, regex %v", typ, v, got, want)
			}
		}
	})
}
