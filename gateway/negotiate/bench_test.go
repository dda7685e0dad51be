package negotiate

import "testing"

func BenchmarkNegotiate(b *testing.B) {
	cases := []struct{ name, param, accept string }{
		{"no preference", "", ""},
		{"Accept with q-values", "", "application/fhir+xml;q=0.9, application/fhir+json;fhirVersion=4.0, */*;q=0.1"},
		{"_format", "json", "application/xml"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Negotiate(c.param, c.param != "", c.accept, Offer{JSON: true, XML: true}, XML)
			}
		})
	}
}
