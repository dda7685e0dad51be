package backend

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"

	"github.com/fhirgate/fhirgate/gateway/outcome"
)

// Field is one rendered body field; Name may be dotted to nest.
type Field struct {
	Name  string
	Value string
	// IsList makes the field a list of Values (a JSON array, repeated form
	// fields or repeated XML elements); Value is then unused.
	IsList bool
	Values []string
}

// each calls fn for every value of the field.
func (f Field) each(fn func(string)) {
	if !f.IsList {
		fn(f.Value)
		return
	}
	for _, v := range f.Values {
		fn(v)
	}
}

// EncodeBody writes fields as json (nested objects by dotted names), form
// (application/x-www-form-urlencoded, names as written) or xml (nested
// elements under root). Fields are written in name order, so the same call
// always produces the same bytes. It returns the body and its Content-Type.
func EncodeBody(encoding, root string, fields []Field) ([]byte, string) {
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].Name < fields[j].Name })
	switch encoding {
	case "form":
		v := url.Values{}
		for _, f := range fields {
			f.each(func(val string) { v.Add(f.Name, val) })
		}
		return []byte(v.Encode()), "application/x-www-form-urlencoded"
	case "xml":
		var b strings.Builder
		b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
		b.WriteString("<" + root + ">")
		var open []string
		for _, f := range fields {
			path := strings.Split(f.Name, ".")
			// Close elements not shared with this field's path.
			common := 0
			for common < len(open) && common < len(path)-1 && open[common] == path[common] {
				common++
			}
			for i := len(open) - 1; i >= common; i-- {
				b.WriteString("</" + open[i] + ">")
			}
			open = open[:common]
			for _, p := range path[common : len(path)-1] {
				b.WriteString("<" + p + ">")
				open = append(open, p)
			}
			leaf := path[len(path)-1]
			f.each(func(val string) {
				b.WriteString("<" + leaf + ">")
				escapeText(&b, val)
				b.WriteString("</" + leaf + ">")
			})
		}
		for i := len(open) - 1; i >= 0; i-- {
			b.WriteString("</" + open[i] + ">")
		}
		b.WriteString("</" + root + ">")
		return []byte(b.String()), "application/xml; charset=utf-8"
	default:
		obj := map[string]any{}
		for _, f := range fields {
			m := obj
			path := strings.Split(f.Name, ".")
			for _, p := range path[:len(path)-1] {
				sub, ok := m[p].(map[string]any)
				if !ok {
					sub = map[string]any{}
					m[p] = sub
				}
				m = sub
			}
			if f.IsList {
				m[path[len(path)-1]] = f.Values
			} else {
				m[path[len(path)-1]] = f.Value
			}
		}
		data, _ := json.Marshal(obj) // map keys are written sorted
		return data, "application/json"
	}
}

// escapeText escapes XML character data (same rules as attributes).
func escapeText(b *strings.Builder, s string) { outcome.EscapeAttr(b, s) }
