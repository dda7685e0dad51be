package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"

	"github.com/fhirgate/fhirgate/template"
	"gopkg.in/yaml.v3"
)

// Condition is what one reference (a field of the backend's answer, the
// role, a header …) must be for a response rule to match. In routes.yaml,
// as the value of a when.match entry:
//
//	CANCELLED        equal. Written as a string it compares as text; as a
//	31, 0.5          number, numerically with a number in the answer (JSON
//	true, false      31 and 31.0 are equal, "31" too); as a boolean, with a
//	                 JSON boolean or the text true/false
//	"*"              present and not empty
//	""               absent or empty
//	{any: [a, b]}    equal to one of the values (each typed as above)
//	{regex: "E_.*"}  present and matching the expression as a whole
//	{not: c}         c does not hold: {not: 0} is "absent, or anything but 0"
//	{present_not: 0} present, not empty, and not equal: "rc ≠ 0"
//
// An empty value (YAML null) is "" : absent or empty.
type Condition struct {
	kind   conditionKind
	text   string   // equal: the value as text; regex: the expression as written
	num    *float64 // equal: set when the value was a YAML number
	isBool bool     // equal: the value was a YAML boolean (text is "true"/"false")
	any    []Condition
	re     *regexp.Regexp
	inner  *Condition
}

type conditionKind int

const (
	condNone conditionKind = iota
	condEqual
	condPresent // "*"
	condAbsent  // ""
	condAny
	condRegex
	condNot
	condPresentNot
)

// Holds applies the condition to a value; present says whether the
// reference had one at all.
func (c Condition) Holds(v string, present bool) bool {
	switch c.kind {
	case condEqual:
		return present && c.equal(v)
	case condPresent:
		return present && v != ""
	case condAbsent:
		return !present || v == ""
	case condAny:
		for _, a := range c.any {
			if a.Holds(v, present) {
				return true
			}
		}
		return false
	case condRegex:
		return present && c.re.MatchString(v)
	case condNot:
		return !c.inner.Holds(v, present)
	case condPresentNot:
		return present && v != "" && !c.inner.Holds(v, present)
	}
	return !present || v == "" // condNone: an empty value in the file
}

func (c Condition) equal(v string) bool {
	switch {
	case c.num != nil:
		f, err := strconv.ParseFloat(v, 64)
		return err == nil && f == *c.num
	case c.isBool:
		return v == c.text
	}
	return v == c.text
}

// String is the condition as routes.yaml writes it (for messages).
func (c Condition) String() string {
	switch c.kind {
	case condEqual:
		if c.num != nil || c.isBool {
			return c.text
		}
		return strconv.Quote(c.text)
	case condPresent:
		return `"*"`
	case condAbsent, condNone:
		return `""`
	case condAny:
		s := "{any: ["
		for i, a := range c.any {
			if i > 0 {
				s += ", "
			}
			s += a.String()
		}
		return s + "]}"
	case condRegex:
		return "{regex: " + strconv.Quote(c.text) + "}"
	case condNot:
		return "{not: " + c.inner.String() + "}"
	case condPresentNot:
		return "{present_not: " + c.inner.String() + "}"
	}
	return `""`
}

// UnmarshalYAML reads one of the forms in Condition's comment.
func (c *Condition) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return c.scalar(n, true)
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return fmt.Errorf("a condition mapping has exactly one key: any, regex, not or present_not")
		}
		key, val := n.Content[0].Value, n.Content[1]
		switch key {
		case "any":
			if val.Kind != yaml.SequenceNode || len(val.Content) == 0 {
				return fmt.Errorf("any: a non-empty list of values is required")
			}
			c.kind = condAny
			for _, it := range val.Content {
				var a Condition
				if it.Kind != yaml.ScalarNode {
					return fmt.Errorf("any: each item is a value")
				}
				if err := a.scalar(it, false); err != nil {
					return err
				}
				c.any = append(c.any, a)
			}
		case "regex":
			if val.Kind != yaml.ScalarNode || val.Value == "" {
				return fmt.Errorf("regex: a regular expression is required")
			}
			re, err := regexp.Compile("^(?:" + val.Value + ")$")
			if err != nil {
				return fmt.Errorf("regex: %v", err)
			}
			c.kind, c.re, c.text = condRegex, re, val.Value
		case "not", "present_not":
			var inner Condition
			if err := inner.UnmarshalYAML(val); err != nil {
				return fmt.Errorf("%s: %v", key, err)
			}
			c.kind, c.inner = condNot, &inner
			if key == "present_not" {
				c.kind = condPresentNot
			}
		default:
			return fmt.Errorf("unknown condition %q (any, regex, not, present_not)", key)
		}
		return nil
	}
	return fmt.Errorf("a condition is a value, \"*\", \"\", or one of {any: […]}, {regex: …}, {not: …}, {present_not: …}")
}

// scalar reads a typed value; wildcards ("*", "") only at the top level.
func (c *Condition) scalar(n *yaml.Node, wildcards bool) error {
	c.kind, c.text = condEqual, n.Value
	switch n.Tag {
	case "!!int", "!!float":
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", n.Value)
		}
		c.num = &f
	case "!!bool":
		b, err := strconv.ParseBool(n.Value)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true, false)", n.Value)
		}
		c.isBool, c.text = true, strconv.FormatBool(b)
	case "!!null":
		c.kind = condAbsent
	default:
		if wildcards && n.Value == "*" {
			c.kind = condPresent
		} else if wildcards && n.Value == "" {
			c.kind = condAbsent
		}
	}
	return nil
}

// treeConditions compiles a resource template's $when: every reference
// must hold its condition (the forms of a response rule's when.match).
func treeConditions(conds map[string]any, check func(template.Ref) error) (func(template.Values) bool, error) {
	type cond struct {
		ref  template.Ref
		want Condition
	}
	var cs []cond
	for _, k := range slices.Sorted(maps.Keys(conds)) {
		ref := template.ParseRef(k)
		if check != nil {
			if err := check(ref); err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
		}
		var n yaml.Node
		if err := n.Encode(conds[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		var c Condition
		if err := c.UnmarshalYAML(&n); err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		cs = append(cs, cond{ref, c})
	}
	return func(v template.Values) bool {
		for _, c := range cs {
			val, present := v.Value(c.ref)
			if !c.want.Holds(val, present) {
				return false
			}
		}
		return true
	}, nil
}
