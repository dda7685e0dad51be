package validation

import (
	"strings"
	"testing"
)

// The ids of spec §5 (erezept-abort.md), plus edge cases of the format.
func TestValidPrescriptionID(t *testing.T) {
	cases := []struct {
		id   string
		want bool
		why  string
	}{
		{"160.123.456.789.123.58", true, "spec example"},
		{"160.000.033.491.280.78", true, "spec example"},
		{"169.000.011.663.672.53", true, "spec example, flowtype 169"},
		{"209.000.000.120.127.53", true, "spec example, flowtype 209"},
		{"200.000.002.425.335.36", true, "spec example, flowtype 200"},
		{"160.000.000.000.000.01", false, "bad checksum (the API docs' example)"},
		{"160.000.033.491.280.77", false, "check digits off by one"},
		{"165.000.033.491.280.78", false, "flowtype 165 is not accepted"},
		{"165" + "." + "000.000.000.000." + PrescriptionCheckDigits("165000000000000"), false, "165 even with valid check digits"},
		{"161." + "000.000.000.000." + PrescriptionCheckDigits("161000000000000"), false, "unknown flowtype with valid check digits"},
		{"162." + "000.000.000.001." + PrescriptionCheckDigits("162000000000001"), true, "flowtype 162"},
		{"166." + "000.000.000.001." + PrescriptionCheckDigits("166000000000001"), true, "flowtype 166"},
		{"16000003349128078", false, "no dots"},
		{"160-000-033-491-280-78", false, "wrong separators"},
		{"160.000.033.491.280.780", false, "too long"},
		{"160.000.033.491.28.078", false, "dot misplaced"},
		{"160.000.033.491.280.7a", false, "letter"},
		{"", false, "empty"},
		{"160.000.033.491.280.78 ", false, "trailing space"},
		{"１60.000.033.491.280.78", false, "non-ASCII digit"},
	}
	for _, c := range cases {
		t.Run(c.why, func(t *testing.T) {
			if got := ValidPrescriptionID(c.id); got != c.want {
				t.Errorf("ValidPrescriptionID(%q) = %v, want %v", c.id, got, c.want)
			}
		})
	}
}

func TestPrescriptionCheckDigitsAgreeWithSpecExamples(t *testing.T) {
	for _, id := range []string{"160.123.456.789.123.58", "160.000.033.491.280.78", "169.000.011.663.672.53", "209.000.000.120.127.53", "200.000.002.425.335.36"} {
		digits := strings.ReplaceAll(id, ".", "")
		if got := PrescriptionCheckDigits(digits[:15]); got != digits[15:] {
			t.Errorf("check digits of %s = %s, want %s", id, got, digits[15:])
		}
	}
}

func TestValidKVNR(t *testing.T) {
	for s, want := range map[string]bool{"X110465770": true, "A123456789": true, "a123456789": false, "X11046577": false, "X1104657701": false, "1110465770": false, "X11046577O": false} {
		if got := ValidKVNR(s); got != want {
			t.Errorf("ValidKVNR(%q) = %v, want %v", s, got, want)
		}
	}
}

// FuzzPrescriptionID checks the validator against a slow reference: the
// regular form, a known flowtype and the mod-97 sum over big digits.
func FuzzPrescriptionID(f *testing.F) {
	for _, s := range []string{"160.123.456.789.123.58", "160.000.000.000.000.01", "165.000.033.491.280.78", "", "999.999.999.999.999.99"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidPrescriptionID(s), referencePrescriptionID(s); got != want {
			t.Fatalf("ValidPrescriptionID(%q) = %v, reference says %v", s, got, want)
		}
	})
}

func referencePrescriptionID(s string) bool {
	groups := strings.Split(s, ".")
	if len(groups) != 6 {
		return false
	}
	for i, g := range groups {
		want := 3
		if i == 5 {
			want = 2
		}
		if len(g) != want || strings.Trim(g, "0123456789") != "" {
			return false
		}
	}
	switch groups[0] {
	case "160", "162", "166", "169", "200", "209":
	default:
		return false
	}
	digits := strings.Join(groups, "")
	rem := 0
	for _, c := range digits {
		rem = (rem*10 + int(c-'0')) % 97
	}
	return rem == 1
}
