package fhirxml

import (
	"net/url"
	"regexp"
	"testing"
)

// The expressions the hand-written checks of accept.go replace.
var handChecks = []struct {
	name string
	re   *regexp.Regexp
	fn   func(string) bool
}{
	{"code", regexp.MustCompile(`^[^\s]+( [^\s]+)*$`), isCode},
	{"id", regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`), isID},
	{"type name", regexp.MustCompile(`^[A-Z][A-Za-z]+$`), isTypeName},
	{"no space", regexp.MustCompile(`^\S+$`), noSpace},
	{"date", datePattern, isDate},
	{"full dateTime", regexp.MustCompile(`^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)$`), isFullDateTime},
}

func TestHandChecksMatchTheirExpressions(t *testing.T) {
	samples := []string{"", " ", "a", "a b", "a  b", " a", "a ", "a\tb", "pull-notification", "Observation", "Ob", "O", "observation",
		"0f5f7c1e-8c2d-4a3b-9a51-2e6b5b0d7f11", "a.b-c", "a/b", "é", "2026-11-20T15:01:54+01:00", "2026-11-20T15:01:54Z",
		"2026-11-20T15:01:54.123456789Z", "2026-11-20T15:01:54.1234567890Z", "2026-11-20T15:01:54.Z", "2026-11-20T24:01:54Z",
		"0026-11-20T15:01:54Z", "2026-13-20T15:01:54Z", "2026-11-32T15:01:54Z", "2026-11-20T15:01:54+14:00", "2026-11-20T15:01:54+14:01",
		"2026-11-20T15:01:54+13:59", "2026-11-20T15:01:54-00:00", "2026-11-20T15:01:54+1:00", "2026-11-20T15:01:54", "2026-11-20",
		"2026", "0999", "2026-00", "2026-12", "2026-1", "2026-11-00", "2026-11-31", "2026-11-3a", "2026/11/20"}
	for _, c := range handChecks {
		for _, s := range samples {
			if got, want := c.fn(s), c.re.MatchString(s); got != want {
				t.Errorf("%s(%q) = %v, expression says %v", c.name, s, got, want)
			}
		}
	}
}

func FuzzHandChecks(f *testing.F) {
	f.Add("2026-11-20T15:01:54.5+01:00")
	f.Add("a b")
	f.Add("Observation")
	f.Add("2026-02")
	f.Add(" \v\u00a0")
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range handChecks {
			if got, want := c.fn(s), c.re.MatchString(s); got != want {
				t.Fatalf("%s(%q) = %v, expression says %v", c.name, s, got, want)
			}
		}
		if got, want := plainText(s), plainTextUnicode(s); got != want {
			t.Fatalf("plainText(%q) = %v, the full check says %v", s, got, want)
		}
	})
}

// What simpleURI takes without parsing, url.Parse takes.
func FuzzSimpleURIParses(f *testing.F) {
	for _, s := range []string{"urn:uuid:484639e6-e647-464c-8722-6e8a73cda4e0", "urn:oid:1.2.3", "http://fhir.nl/fhir/NamingSystem/bsn", "https://tools.ietf.org/html/rfc4122", "http://h", "https://x/", "urn:", "http:///x", "http://h:80/x", "http://h/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if simpleURI(s) {
			if _, err := url.Parse(s); err != nil {
				t.Fatalf("simpleURI(%q) but url.Parse: %v", s, err)
			}
		}
	})
}

func TestSimpleURI(t *testing.T) {
	for s, want := range map[string]bool{
		"urn:uuid:484639e6-e647-464c-8722-6e8a73cda4e0": true, "urn:oid:1.2.3": true,
		"http://fhir.nl/fhir/NamingSystem/bsn": true, "https://tools.ietf.org/html/rfc4122": true, "http://h": true,
		"urn:": false, "http:///x": false, "http://h:80/x": false, "http://h/%zz": false, "http://h/a?b": false,
		"ftp://h/x": false, "urn:a b": false,
	} {
		if got := simpleURI(s); got != want {
			t.Errorf("simpleURI(%q) = %v", s, got)
		}
	}
}
