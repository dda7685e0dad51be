package pipeline

import "testing"

func TestParseWholeNumber(t *testing.T) {
	cases := []struct {
		in      string
		want    int
		problem string
	}{
		{"0", 0, ""},
		{"50", 50, ""},
		{"007", 7, ""},
		{"2147483647", 2147483647, ""},
		{"2147483648", 0, "_count value out of range"},
		{"99999999999999999999", 0, "_count value out of range"},
		{"-1", 0, "_count can not be negative"},
		{"-", 0, "invalid numeric format in _count"},
		{"", 0, "invalid numeric format in _count"},
		{"abc", 0, "invalid numeric format in _count"},
		{"+5", 0, "invalid numeric format in _count"},
		{" 5", 0, "invalid numeric format in _count"},
		{"5x", 0, "trailing characters are not permitted in a numerical argument: _count"},
		{"5 ", 0, "trailing characters are not permitted in a numerical argument: _count"},
		{"-5x", 0, "invalid numeric format in _count"},
	}
	for _, c := range cases {
		n, problem := parseWholeNumber("_count", c.in)
		if n != c.want || problem != c.problem {
			t.Errorf("%q → %d %q, want %d %q", c.in, n, problem, c.want, c.problem)
		}
	}
}

func TestValidSearchValue(t *testing.T) {
	cases := []struct {
		typ, v string
		ok     bool
	}{
		{"date", "2026", true},
		{"date", "2026-11", true},
		{"date", "ge2026-11-30", true},
		{"date", "lt2026-11-30T10:00", true},
		{"date", "2026-11-30T10:00:00.123+01:00", true},
		{"date", "eq2026-11-30T10:00:00Z", true},
		{"date", "sa2026-01-01,eb2027-01-01", true},
		{"date", "2026-13", false},
		{"date", "2026-11-31x", false},
		{"date", "xx2026", false},
		{"date", "", false},
		{"date", "NULL", false},
		{"date", "2026-11-30T25:00", false},
		{"number", "5", true},
		{"number", "gt-1.5e3", true},
		{"number", "01", false},
		{"number", "five", false},
		{"token", "ready", true},
		{"token", "http://s|v", true},
		{"token", "", false},
		{"token", ",", false},
		{"string", "", true},
		{"reference", "Patient/1", true},
	}
	for _, c := range cases {
		if got := validSearchValue(c.typ, c.v); got != c.ok {
			t.Errorf("%s %q → %v, want %v", c.typ, c.v, got, c.ok)
		}
	}
}
