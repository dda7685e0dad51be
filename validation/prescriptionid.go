package validation

// PrescriptionID flowtypes the E-Rezept-Fachdienst accepts (gemSpec_DM_eRp;
// 165 was withdrawn and is refused).
var prescriptionFlowTypes = [...]string{"160", "162", "166", "169", "200", "209"}

// ValidPrescriptionID reports whether s is an E-Rezept PrescriptionID:
// six dot-separated groups ddd.ddd.ddd.ddd.ddd.dd, a known flowtype as the
// first group, and ISO 7064 MOD 97-10 check digits as the last group, i.e.
// the 17 digits read as one number are ≡ 1 (mod 97).
//
// It allocates nothing, so it can run on every request.
func ValidPrescriptionID(s string) bool {
	const n = len("160.000.033.491.280.78")
	if len(s) != n {
		return false
	}
	rem := 0
	for i := 0; i < n; i++ {
		c := s[i]
		if i%4 == 3 {
			if c != '.' {
				return false
			}
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
		rem = (rem*10 + int(c-'0')) % 97
	}
	if rem != 1 {
		return false
	}
	for _, ft := range prescriptionFlowTypes {
		if s[:3] == ft {
			return true
		}
	}
	return false
}

// PrescriptionCheckDigits returns the two check digits that complete the 15
// digits of a PrescriptionID (flowtype and number, without dots), so that the
// whole is ≡ 1 (mod 97) as ISO 7064 MOD 97-10 requires.
func PrescriptionCheckDigits(digits15 string) string {
	rem := 0
	for i := 0; i < len(digits15); i++ {
		rem = (rem*10 + int(digits15[i]-'0')) % 97
	}
	check := (98 - rem*100%97) % 97
	return string([]byte{byte('0' + check/10), byte('0' + check%10)})
}

// ValidKVNR reports whether s is a KVNR (insurance number): an upper-case
// letter followed by nine digits.
func ValidKVNR(s string) bool {
	if len(s) != 10 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < 10; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
