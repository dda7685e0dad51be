package backend

import (
	"net/url"
	"slices"
	"strings"

	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/validation/jsontree"
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
	slices.SortStableFunc(fields, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
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
		// Written by hand, as encoding/json would (keys sorted, HTML-safe
		// escaping), without its reflection: the body of every call.
		return appendJSONValue(make([]byte, 0, 256), jsonTree(fields)), "application/json"
	}
}

// jsonTree nests fields (in order; a later field wins a conflict) into
// objects by their dotted names.
func jsonTree(fields []Field) map[string]any {
	obj := map[string]any{}
	for _, f := range fields {
		m := obj
		seg, rest, more := strings.Cut(f.Name, ".")
		for more {
			sub, ok := m[seg].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[seg] = sub
			}
			m = sub
			seg, rest, more = strings.Cut(rest, ".")
		}
		if f.IsList {
			m[seg] = f.Values
		} else {
			m[seg] = f.Value
		}
	}
	return obj
}

// appendJSONValue writes the tree EncodeBody builds: objects, strings and
// string lists (a nil list is null, as encoding/json writes it).
func appendJSONValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case map[string]any:
		var onStack [16]string // the keys of a usual object, without an allocation
		keys := onStack[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsontree.AppendString(b, k, true)
			b = append(b, ':')
			b = appendJSONValue(b, v[k])
		}
		return append(b, '}')
	case []string:
		if v == nil {
			return append(b, "null"...)
		}
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsontree.AppendString(b, s, true)
		}
		return append(b, ']')
	case string:
		return jsontree.AppendString(b, v, true)
	}
	return append(b, "null"...)
}

// escapeText escapes XML character data (same rules as attributes).
func escapeText(b *strings.Builder, s string) { outcome.EscapeAttr(b, s) }
