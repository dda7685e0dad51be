package template

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

type tableMap map[string]string

func (m tableMap) Map(v string) (string, bool) { s, ok := m[v]; return s, ok }

var testMaps = Options{Maps: func(name string) (Mapper, error) {
	switch name {
	case "roles":
		return tableMap{"insured": "PAT", "prescriber": "DOC", "pharmacy": "PHA"}, nil
	case "http://example.org/ConceptMap/state":
		return tableMap{"in-progress": "2"}, nil
	}
	return nil, fmt.Errorf("no value map %q", name)
}}

// ${ref -> map} translates the value found (after alternatives), leaves
// an absent value absent, and refuses a value the map does not hold with
// an error naming the source and the map, never the value.
func TestValueMaps(t *testing.T) {
	v := values{"role": "prescriber", "header.X-AccessCode": "777bea0e13cc9c42ceec14aec3ddee2263325dc2c6c699db115f58fe423607ea", "body.state": "in-progress"}
	cases := []struct {
		tmpl, want string
		unmapped   string // the reference named by the error
	}{
		{"role=${role -> roles}", "role=DOC", ""},
		{"${query.missing|role->roles}", "DOC", ""},
		{"${query.missing -> roles}", "", ""},
		{"${body.state -> http://example.org/ConceptMap/state}", "2", ""},
		{"${header.X-AccessCode -> roles}", "", "header.X-AccessCode"},
	}
	for _, c := range cases {
		tm, err := ParseWith(c.tmpl, testMaps)
		if err != nil {
			t.Fatalf("%q: %v", c.tmpl, err)
		}
		got, err := tm.Render(v, nil)
		var u *UnmappedError
		switch {
		case c.unmapped == "" && (err != nil || got != c.want):
			t.Errorf("%q → %q, %v; want %q", c.tmpl, got, err, c.want)
		case c.unmapped != "" && (!errors.As(err, &u) || u.Ref.String() != c.unmapped || u.Map != "roles"):
			t.Errorf("%q: error %v, want unmapped %s in roles", c.tmpl, err, c.unmapped)
		case c.unmapped != "" && strings.Contains(err.Error(), "777bea"):
			t.Errorf("the error shows the value: %v", err)
		}
	}
	for _, bad := range []string{"${role -> }", "${role -> nosuch}", "${ -> roles}"} {
		if _, err := ParseWith(bad, testMaps); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
	if _, err := Parse("${role -> roles}", nil); err == nil {
		t.Error("a map compiled where no maps are available")
	}
}
