package negotiate

import "testing"

func TestNegotiate(t *testing.T) {
	both := Offer{JSON: true, XML: true}
	cases := []struct {
		name      string
		format    string
		hasFormat bool
		accept    string
		offer     Offer
		def       Format
		want      Format
		asked     string
	}{
		{"nothing: default xml", "", false, "", both, XML, XML, ""},
		{"nothing: default json", "", false, "", both, JSON, JSON, ""},
		{"_format json", "json", true, "", both, XML, JSON, ""},
		{"_format xml", "xml", true, "", both, JSON, XML, ""},
		{"_format application/fhir+json", "application/fhir+json", true, "", both, XML, JSON, ""},
		{"_format fhir+json (E-Rezept short form)", "fhir+json", true, "", both, XML, JSON, ""},
		{"_format fhir+xml", "fhir+xml", true, "application/fhir+json", both, JSON, XML, ""},
		{"_format application/json", "application/json", true, "", both, XML, JSON, ""},
		{"_format text/xml", "text/xml", true, "", both, JSON, XML, ""},
		{"_format old application/json+fhir", "application/json+fhir", true, "", both, XML, JSON, ""},
		{"_format old application/xml+fhir", "application/xml+fhir", true, "", both, JSON, XML, ""},
		{"_format with parameters", "application/fhir+xml; fhirVersion=4.0", true, "", both, JSON, XML, ""},
		{"_format upper case", "Application/FHIR+JSON", true, "", both, XML, JSON, ""},
		{"_format wins over Accept", "json", true, "application/fhir+xml", both, XML, JSON, ""},
		{"_format unsupported", "html", true, "application/fhir+json", both, XML, None, "html"},
		{"_format empty is unsupported", "", true, "", both, XML, None, ""},
		{"_format not offered", "xml", true, "", Offer{JSON: true}, JSON, None, "xml"},
		{"Accept fhir+json", "", false, "application/fhir+json", both, XML, JSON, ""},
		{"Accept with charset", "", false, "application/fhir+xml;charset=utf-8", both, JSON, XML, ""},
		{"Accept q-values", "", false, "application/fhir+json;q=0.4, application/fhir+xml;q=0.8", both, JSON, XML, ""},
		{"Accept q=0 refuses", "", false, "application/fhir+json;q=0, */*", both, JSON, XML, ""},
		{"Accept */* keeps default", "", false, "*/*", both, XML, XML, ""},
		{"Accept */* keeps json default", "", false, "*/*", both, JSON, JSON, ""},
		{"Accept application/* keeps default", "", false, "application/*", both, JSON, JSON, ""},
		{"Accept specific beats wildcard at equal q", "", false, "*/*, application/fhir+json", both, XML, JSON, ""},
		{"browser Accept", "", false, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", both, JSON, XML, ""},
		{"Accept only unsupported", "", false, "text/html", both, JSON, None, "text/html"},
		{"Accept garbage q ignored", "", false, "application/fhir+json;q=abc", both, XML, JSON, ""},
		{"Accept text/* gives xml", "", false, "text/*", both, JSON, XML, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, asked := Negotiate(c.format, c.hasFormat, c.accept, c.offer, c.def)
			if got != c.want || asked != c.asked {
				t.Errorf("got %v %q, want %v %q", got, asked, c.want, c.asked)
			}
		})
	}
}

func TestContentType(t *testing.T) {
	if JSON.ContentType() != "application/fhir+json;charset=utf-8" || XML.ContentType() != "application/fhir+xml;charset=utf-8" {
		t.Error(JSON.ContentType(), XML.ContentType())
	}
}

// FuzzNegotiate: never panics, and answers None exactly when it names what
// was asked for, and otherwise a format on offer.
func FuzzNegotiate(f *testing.F) {
	f.Add("json", true, "", false)
	f.Add("", false, "application/fhir+xml;q=0.5, */*;q=0.1", true)
	f.Add("", false, ",,;q=;,*/*;q=2", true)
	f.Fuzz(func(t *testing.T, format string, has bool, accept string, jsonDefault bool) {
		def := XML
		if jsonDefault {
			def = JSON
		}
		got, asked := Negotiate(format, has, accept, Offer{JSON: true, XML: true}, def)
		if got != None && asked != "" {
			t.Fatalf("format %v with asked %q", got, asked)
		}
		if got == None && !has && accept == "" {
			t.Fatal("None without any request")
		}
	})
}
