package config

import (
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestConditions: each form of when.match, against values as the backend
// answer gives them (a JSON number's text, a boolean's, a string) and an
// absent field.
func TestConditions(t *testing.T) {
	type value struct {
		v       string
		present bool
	}
	absent, empty := value{"", false}, value{"", true}
	cases := []struct {
		yaml      string
		holds     []value
		holdsNot  []value
		printedAs string
	}{
		{`CANCELLED`, []value{{"CANCELLED", true}}, []value{{"cancelled", true}, absent}, `"CANCELLED"`},
		{`"31"`, []value{{"31", true}}, []value{{"31.0", true}, absent}, `"31"`},
		{`31`, []value{{"31", true}, {"31.0", true}, {"3.1e1", true}}, []value{{"32", true}, {"x", true}, absent}, `31`},
		{`0`, []value{{"0", true}, {"0.0", true}, {"-0", true}}, []value{{"", true}, absent}, `0`},
		{`true`, []value{{"true", true}}, []value{{"false", true}, {"1", true}, absent}, `true`},
		{`"*"`, []value{{"x", true}, {"0", true}}, []value{empty, absent}, `"*"`},
		{`""`, []value{empty, absent}, []value{{"x", true}}, `""`},
		{`~`, []value{empty, absent}, []value{{"x", true}}, `""`},
		{`{any: [31, 32, E_STATE]}`, []value{{"31", true}, {"32.0", true}, {"E_STATE", true}}, []value{{"33", true}, absent}, `{any: [31, 32, "E_STATE"]}`},
		{`{regex: "E_[A-Z]+"}`, []value{{"E_STATE", true}}, []value{{"xE_STATE", true}, {"E_state", true}, absent}, `{regex: "E_[A-Z]+"}`},
		{`{not: 0}`, []value{{"31", true}, {"x", true}, absent, empty}, []value{{"0", true}, {"0.00", true}}, `{not: 0}`},
		{`{present_not: 0}`, []value{{"31", true}, {"x", true}}, []value{{"0", true}, absent, empty}, `{present_not: 0}`},
		{`{not: {any: [OK, DONE]}}`, []value{{"FAIL", true}, absent}, []value{{"OK", true}, {"DONE", true}}, `{not: {any: ["OK", "DONE"]}}`},
		{`{present_not: {regex: "2.."}}`, []value{{"404", true}}, []value{{"200", true}, absent}, `{present_not: {regex: "2.."}}`},
	}
	for _, c := range cases {
		t.Run(c.yaml, func(t *testing.T) {
			var m map[string]Condition
			if err := yaml.Unmarshal([]byte("k: "+c.yaml), &m); err != nil {
				t.Fatal(err)
			}
			cond := m["k"]
			for _, v := range c.holds {
				if !cond.Holds(v.v, v.present) {
					t.Errorf("does not hold for %q (present %v)", v.v, v.present)
				}
			}
			for _, v := range c.holdsNot {
				if cond.Holds(v.v, v.present) {
					t.Errorf("holds for %q (present %v)", v.v, v.present)
				}
			}
			if got := cond.String(); got != c.printedAs {
				t.Errorf("printed as %s, want %s", got, c.printedAs)
			}
		})
	}
}

// TestConditionErrors: a malformed condition names what is wrong.
func TestConditionErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{regex: "("}`:            "regex: error parsing regexp",
		`{any: []}`:               "non-empty list",
		`{any: [{not: 1}]}`:       "each item is a value",
		`{equals: 1}`:             `unknown condition "equals"`,
		`{not: 1, any: [2]}`:      "exactly one key",
		`[1, 2]`:                  "a condition is a value",
		`{present_not: {any: 3}}`: "present_not: any: a non-empty list",
		`{regex: ""}`:             "regex: a regular expression is required",
	} {
		var m map[string]Condition
		err := yaml.Unmarshal([]byte("k: "+in), &m)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}
