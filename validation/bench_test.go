package validation

import (
	"os"
	"testing"

	"github.com/fhirgate/fhirgate/validation/fhirxml"
	"github.com/fhirgate/fhirgate/validation/profile"
	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
)

// The benchmark input: the Twiin notification Task (STU3), as the XML
// example and as the compact JSON the codec makes of it (~1.7 KB).
func benchInputs(b *testing.B) (xmlDoc, jsonDoc []byte, set *profile.Set) {
	xmlDoc, err := os.ReadFile("testdata/twiin/new-notification-task.stu3.xml")
	if err != nil {
		b.Fatal(err)
	}
	if jsonDoc, err = fhirxml.ToJSON(STU3, xmlDoc); err != nil {
		b.Fatal(err)
	}
	pkg, err := profile.LoadDir("../profiles/twiin")
	if err != nil {
		b.Fatal(err)
	}
	set = profile.NewSet()
	set.AddPackage(pkg)
	return xmlDoc, jsonDoc, set
}

var twiinAs = []string{"https://fhirgate.example/fhir/twiin/StructureDefinition/notification-task"}

// BenchmarkBareUnmarshal is the reference: jsonformat's unmarshal of the
// same Task (with its own primitive validation, as the gateway uses it).
func BenchmarkBareUnmarshal(b *testing.B) {
	_, jsonDoc, _ := benchInputs(b)
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.STU3)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(jsonDoc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := u.UnmarshalR3(jsonDoc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateJSON: parse + base validation + the Twiin profile.
func BenchmarkValidateJSON(b *testing.B) {
	_, jsonDoc, set := benchInputs(b)
	p, _ := NewParser(STU3)
	b.SetBytes(int64(len(jsonDoc)))
	b.ReportAllocs()
	for b.Loop() {
		_, issues := p.ValidateJSON(jsonDoc, set, twiinAs)
		if HasErrors(issues) {
			b.Fatal(issues)
		}
	}
}

// BenchmarkValidateXML: XML → JSON, then as BenchmarkValidateJSON.
func BenchmarkValidateXML(b *testing.B) {
	xmlDoc, _, set := benchInputs(b)
	p, _ := NewParser(STU3)
	b.SetBytes(int64(len(xmlDoc)))
	b.ReportAllocs()
	for b.Loop() {
		_, _, issues := p.ValidateXML(xmlDoc, set, twiinAs)
		if HasErrors(issues) {
			b.Fatal(issues)
		}
	}
}

// BenchmarkCheck is what the gateway runs per request body: Check, which
// takes the fast path (descriptor-model acceptance instead of jsonformat's
// proto) for a body it is sure of; the same Task in JSON and in XML.
func BenchmarkCheck(b *testing.B) {
	xmlDoc, jsonDoc, set := benchInputs(b)
	p, _ := NewParser(STU3)
	for _, c := range []struct {
		name string
		doc  []byte
		xml  bool
	}{{"json", jsonDoc, false}, {"xml", xmlDoc, true}} {
		b.Run(c.name, func(b *testing.B) {
			if _, fast := p.fastCheck(jsonDoc, set, twiinAs); !fast {
				b.Fatal("the benchmark Task does not take the fast path")
			}
			b.SetBytes(int64(len(c.doc)))
			b.ReportAllocs()
			for b.Loop() {
				checked := p.Check(c.doc, c.xml, set, twiinAs)
				if checked.Resource == nil || HasErrors(checked.Base) || HasErrors(checked.Profile) {
					b.Fatal(checked.Base, checked.Profile)
				}
			}
		})
	}
}
