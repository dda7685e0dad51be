package fhirxml

import (
	"encoding/json"
	"strconv"
)

// TypeValues gives the primitive values of a resource built from text (a
// template's output: every leaf a string) their JSON types where the
// model says they are numbers or booleans: "true" becomes true, "5"
// becomes 5 (kept as written, json.Number). A value that is not of its
// type's form stays a string, for validation to report. Nested resources
// (contained, Bundle entries) are typed by their own resourceType.
func (m *Model) TypeValues(res map[string]any) {
	rt, _ := res["resourceType"].(string)
	if t := m.Resource(rt); t != nil {
		m.typeObject(res, t)
	}
}

func (m *Model) typeObject(obj map[string]any, t *typeInfo) {
	for key, v := range obj {
		if key == "resourceType" || key[0] == '_' {
			continue
		}
		e, ct, ok := t.choiceElement(key)
		if !ok {
			continue
		}
		if e.container {
			if nested, ok := v.(map[string]any); ok {
				m.TypeValues(nested)
			} else if list, ok := v.([]any); ok {
				for _, item := range list {
					if nested, ok := item.(map[string]any); ok {
						m.TypeValues(nested)
					}
				}
			}
			continue
		}
		if ct == nil {
			continue
		}
		switch x := v.(type) {
		case string:
			if ct.primitive {
				obj[key] = typed(x, ct.kind)
			}
		case map[string]any:
			m.typeObject(x, ct)
		case []any:
			for i, item := range x {
				switch y := item.(type) {
				case string:
					if ct.primitive {
						x[i] = typed(y, ct.kind)
					}
				case map[string]any:
					m.typeObject(y, ct)
				}
			}
		}
	}
}

func typed(s string, k jsonKind) any {
	switch k {
	case jsonBool:
		if b, err := strconv.ParseBool(s); err == nil && (s == "true" || s == "false") {
			return b
		}
	case jsonNumber:
		if json.Valid([]byte(s)) {
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				return json.Number(s)
			}
		}
	}
	return s
}
