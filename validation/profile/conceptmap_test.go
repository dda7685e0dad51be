package profile

import "testing"

func TestConceptMap(t *testing.T) {
	cases := []struct {
		name, json string
		in, want   []string // want "" with ok false: no translation
		err        bool
	}{
		{"STU3 equivalence, unmatched target skipped",
			`{"resourceType":"ConceptMap","url":"u","group":[{"element":[{"code":"a","target":[{"code":"x","equivalence":"unmatched"},{"code":"A","equivalence":"equivalent"}]},{"code":"b","target":[{"code":"B"}]}]}]}`,
			[]string{"a", "b", "c"}, []string{"A", "B", ""}, false},
		{"R4 two groups, first wins; unmapped provided",
			`{"resourceType":"ConceptMap","url":"u","group":[{"element":[{"code":"a","target":[{"code":"A1","equivalence":"equal"}]}]},{"element":[{"code":"a","target":[{"code":"A2"}]},{"code":"d","target":[{"code":"D"}]}],"unmapped":{"mode":"provided"}}]}`,
			[]string{"a", "d", "zz"}, []string{"A1", "D", "zz"}, false},
		{"unmapped fixed, relationship not-related-to skipped",
			`{"resourceType":"ConceptMap","url":"u","group":[{"element":[{"code":"a","target":[{"code":"N","relationship":"not-related-to"}]}],"unmapped":{"mode":"fixed","code":"OTHER"}}]}`,
			[]string{"a", "b"}, []string{"OTHER", "OTHER"}, false},
		{"other-map refused", `{"resourceType":"ConceptMap","url":"u","group":[{"unmapped":{"mode":"other-map","url":"v"}}]}`, nil, nil, true},
		{"not a ConceptMap", `{"resourceType":"ValueSet"}`, nil, nil, true},
	}
	for _, c := range cases {
		m, err := ParseConceptMap([]byte(c.json))
		if (err != nil) != c.err {
			t.Fatalf("%s: error %v", c.name, err)
		}
		for i, in := range c.in {
			got, ok := m.Map(in)
			if ok != (c.want[i] != "") || got != c.want[i] {
				t.Errorf("%s: %q → %q %v, want %q", c.name, in, got, ok, c.want[i])
			}
		}
	}
}
