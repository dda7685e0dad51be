package pipeline

import "testing"

func TestParseToken(t *testing.T) {
	cases := []struct {
		in                  string
		ok                  bool
		system, value, mode string
	}{
		{"abc", true, "", "abc", "any-system"},
		{"urn:ietf:rfc:3986|urn:uuid:1", true, "urn:ietf:rfc:3986", "urn:uuid:1", "exact"},
		{"|abc", true, "", "abc", "no-system"},
		{"https://x|", true, "https://x", "", "system-only"},
		{"|", false, "", "", ""},
		{"", false, "", "", ""},
		{`a\|b`, true, "", "a|b", "any-system"},
		{`s|a|b`, true, "s", "a|b", "exact"},
		{`s\|t|v`, true, "s|t", "v", "exact"},
	}
	for _, c := range cases {
		tok, ok := parseToken(c.in)
		if ok != c.ok || ok && (tok.system != c.system || tok.value != c.value || tok.mode != c.mode) {
			t.Errorf("%q: %+v %v, want %q %q %q %v", c.in, tok, ok, c.system, c.value, c.mode, c.ok)
		}
	}
}

func TestTokenSelects(t *testing.T) {
	cases := []struct {
		token, system, value string
		want                 bool
	}{
		{"s|v", "s", "v", true},
		{"s|v", "s", "w", false},
		{"s|v", "t", "v", false},
		{"v", "s", "v", true},
		{"v", "", "v", true},
		{"|v", "", "v", true},
		{"|v", "s", "v", false},
		{"s|", "s", "anything", true},
		{"s|", "t", "anything", false},
	}
	for _, c := range cases {
		tok, _ := parseToken(c.token)
		if got := tok.selects(c.system, c.value); got != c.want {
			t.Errorf("%q selects (%q, %q) = %v", c.token, c.system, c.value, got)
		}
	}
}

// FuzzParseToken: no panic; an accepted token names a system or a value,
// and selects the identifier it spells (for the exact form).
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{"a", "s|v", "|v", "s|", `a\|b`, `\`, `|\|`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, ok := parseToken(s)
		if !ok {
			return
		}
		if tok.system == "" && tok.value == "" {
			t.Fatalf("%q accepted with neither system nor value", s)
		}
		if tok.mode == "exact" && !tok.selects(tok.system, tok.value) {
			t.Fatalf("%q does not select its own identifier", s)
		}
	})
}
