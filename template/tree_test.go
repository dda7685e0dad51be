package template

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// treeValues is a backend answer as a tree: values by dotted path,
// repeated elements and copies from the decoded JSON.
type treeValues struct {
	body any
	item any // the current $each element, if any
}

func lookup(v any, path string) any {
	if path == "" {
		return v
	}
	for _, seg := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[seg]
	}
	return v
}

func (tv treeValues) at(r Ref) any {
	switch r.Source {
	case "body":
		return lookup(tv.body, r.Key)
	case ItemSource:
		return lookup(tv.item, r.Key)
	}
	return nil
}

func (tv treeValues) Value(r Ref) (string, bool) {
	switch x := tv.at(r).(type) {
	case string:
		return x, true
	case nil:
		return "", false
	default:
		b, _ := json.Marshal(x)
		return string(b), true
	}
}

func (tv treeValues) Items(r Ref) []Values {
	switch x := tv.at(r).(type) {
	case nil:
		return nil
	case []any:
		out := make([]Values, len(x))
		for i, e := range x {
			out[i] = treeValues{body: tv.body, item: e}
		}
		return out
	default:
		return []Values{treeValues{body: tv.body, item: x}}
	}
}

func (tv treeValues) Copy(r Ref) (any, error) {
	if r.Key == "xml" {
		return nil, errors.New("not JSON")
	}
	return tv.at(r), nil
}

// conditions for $when in these tests: ref → literal value, "*" present.
func testWhen(conds map[string]any, check func(Ref) error) (func(Values) bool, error) {
	return func(v Values) bool {
		for k, want := range conds {
			got, ok := v.Value(ParseRef(k))
			if want == "*" && (!ok || got == "") || want != "*" && got != want {
				return false
			}
		}
		return true
	}, nil
}

func TestTreeRender(t *testing.T) {
	body := map[string]any{
		"id": "t1", "owner": "", "code": "X", "flow": "169",
		"doc":   map[string]any{"uuid": "u1", "bundle": map[string]any{"resourceType": "Bundle", "type": "document", "entry": []any{map[string]any{"n": json.Number("1")}}}},
		"lines": []any{map[string]any{"n": "a"}, map[string]any{"n": "b"}},
	}
	cases := []struct {
		name, tree, want string
	}{
		{"empty leaves drop their object", `{"a": "${body.owner}", "b": {"c": "${body.none}"}, "d": "${body.id}"}`, `{"d":"t1"}`},
		{"literal keeps an object", `{"owner": {"system": "s", "value": "${body.owner}"}}`, `{"owner":{"system":"s"}}`},
		{"$when drops an object", `{"owner": {"$when": {"body.owner": "*"}, "system": "s", "value": "${body.owner}"}}`, `null`},
		{"$when keeps an object", `{"x": {"$when": {"body.code": "X"}, "system": "s"}}`, `{"x":{"system":"s"}}`},
		{"$each over a list", `{"l": [{"$each": "body.lines", "$item": {"v": "${item.n}"}}]}`, `{"l":[{"v":"a"},{"v":"b"}]}`},
		{"$each over one value", `{"l": [{"$each": "body.code", "$item": {"url": "u", "v": "${item}"}}]}`, `{"l":[{"url":"u","v":"X"}]}`},
		{"$each over nothing", `{"l": [{"$each": "body.none", "$item": {"url": "u", "v": "${item}"}}]}`, `null`},
		{"$each with $when false", `{"l": [{"$each": "body.code", "$when": {"body.flow": "160"}, "$item": {"v": "${item}"}}]}`, `null`},
		{"$each with $when true", `{"l": [{"$each": "body.code", "$when": {"body.flow": "169"}, "$item": {"v": "${item}"}}]}`, `{"l":[{"v":"X"}]}`},
		{"$copy passes a subtree through", `{"r": {"$copy": "body.doc.bundle"}}`, `{"r":{"entry":[{"n":1}],"resourceType":"Bundle","type":"document"}}`},
		{"$copy inside $each", `{"e": [{"$each": "body.doc", "$item": {"fullUrl": "urn:uuid:${item.uuid}", "resource": {"$copy": "item.bundle"}}}]}`, `{"e":[{"fullUrl":"urn:uuid:u1","resource":{"entry":[{"n":1}],"resourceType":"Bundle","type":"document"}}]}`},
		{"$copy of nothing", `{"r": {"$copy": "body.none"}, "k": "v"}`, `{"k":"v"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(c.tree), &v); err != nil {
				t.Fatal(err)
			}
			tr, err := CompileTree(v, Options{When: testWhen})
			if err != nil {
				t.Fatal(err)
			}
			out, err := tr.Render(treeValues{body: body})
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(out)
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	// A value that cannot be copied fails the render.
	tr, _ := CompileTree(map[string]any{"r": map[string]any{"$copy": "body.xml"}}, Options{})
	if _, err := tr.Render(treeValues{body: body}); err == nil {
		t.Error("a failed copy rendered")
	}
}

func TestTreeCompileErrors(t *testing.T) {
	cases := []struct{ tree, want string }{
		{`{"r": {"$copy": "body.a", "x": "y"}}`, "{$copy: <source.path>} alone"},
		{`{"r": {"$copy": 5}}`, "{$copy: <source.path>} alone"},
		{`{"l": [{"$each": "body.a", "$item": {}, "$other": 1}]}`, "a repeated entry is"},
		{`{"l": [{"$each": "body.a", "$item": {}, "$when": "x"}]}`, "$when: conditions are"},
		{`{"o": {"$when": {}, "a": "b"}}`, "$when: conditions are"},
		{`{"o": {"$when": {"cookie.x": "*"}, "a": "b"}}`, "no cookies"},
	}
	check := func(r Ref) error {
		if r.Source == "cookie" {
			return errors.New("no cookies")
		}
		return nil
	}
	when := func(conds map[string]any, check func(Ref) error) (func(Values) bool, error) {
		for k := range conds {
			if err := check(ParseRef(k)); err != nil {
				return nil, err
			}
		}
		return testWhen(conds, check)
	}
	for _, c := range cases {
		var v any
		json.Unmarshal([]byte(c.tree), &v)
		_, err := CompileTree(v, Options{Check: check, When: when})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.tree, err, c.want)
		}
	}
	// Without Options.When, $when is refused.
	if _, err := CompileTree(map[string]any{"o": map[string]any{"$when": map[string]any{"body.a": "*"}}}, Options{}); err == nil {
		t.Error("$when compiled without Options.When")
	}
}
