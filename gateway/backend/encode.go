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

// bodySizeHint is about the length of fields written without escapes —
// names, values and, for JSON, quotes, colons, commas and the brackets of
// nesting — so that a JSON or form body is written into one allocation.
func bodySizeHint(fields []Field) int {
	n := 2
	for _, f := range fields {
		n += len(f.Name) + 8
		if !f.IsList {
			n += len(f.Value)
			continue
		}
		for _, v := range f.Values {
			n += len(v) + 3
		}
	}
	return n
}

// EncodeBody writes fields as json (nested objects by dotted names), form
// (application/x-www-form-urlencoded, names as written) or xml (nested
// elements under root). Fields are written in name order, so the same call
// always produces the same bytes. It returns the body and its Content-Type.
func EncodeBody(encoding, root string, fields []Field) ([]byte, string) {
	if encoding == "json" || encoding == "" {
		// Written by hand, as encoding/json would write the nested objects
		// (keys sorted at every level, HTML-safe escaping), without its
		// reflection: the body of every call.
		slices.SortStableFunc(fields, func(a, b Field) int { return compareSegments(a.Name, b.Name) })
		return appendJSONFields(make([]byte, 0, bodySizeHint(fields)), fields), "application/json"
	}
	slices.SortStableFunc(fields, func(a, b Field) int { return strings.Compare(a.Name, b.Name) })
	switch encoding {
	case "form":
		return appendForm(make([]byte, 0, bodySizeHint(fields)), fields), "application/x-www-form-urlencoded"
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
	}
	return nil, ""
}

// appendForm writes fields, sorted by name, as url.Values.Encode would
// write them (names in order, the values of one name in the order given,
// each escaped by url.QueryEscape) without building the map: the body of
// every E-Rezept call. FuzzEncodeForm holds it to url.Values.
func appendForm(b []byte, fields []Field) []byte {
	for _, f := range fields {
		f.each(func(val string) {
			if len(b) > 0 {
				b = append(b, '&')
			}
			b = append(b, url.QueryEscape(f.Name)...)
			b = append(b, '=')
			b = append(b, url.QueryEscape(val)...)
		})
	}
	return b
}

// compareSegments orders dotted names segment by segment, a name before
// the names it is a prefix of: the order of keys at every level of the
// objects the names nest into.
func compareSegments(a, b string) int {
	for {
		sa, ra, moreA := strings.Cut(a, ".")
		sb, rb, moreB := strings.Cut(b, ".")
		if c := strings.Compare(sa, sb); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = ra, rb
	}
}

// segmentPrefix reports whether the dotted name a is b or an object b
// nests in ("a" of "a.b"): the two collide in one JSON object.
func segmentPrefix(a, b string) bool {
	return a == b || len(b) > len(a) && b[len(a)] == '.' && b[:len(a)] == a
}

// appendJSONFields writes fields, sorted by compareSegments, as nested
// JSON objects in one pass, opening and closing objects as the names'
// segments change — no tree of maps. Names that collide (a duplicate, or
// "a" beside "a.b": a later field wins) take the tree, which resolves
// them as it always did; the sorted order puts colliding names next to
// each other.
func appendJSONFields(b []byte, fields []Field) []byte {
	for i := 1; i < len(fields); i++ {
		if segmentPrefix(fields[i-1].Name, fields[i].Name) {
			return appendJSONValue(b, jsonTree(fields))
		}
	}
	var openStack [8]string // the names of the objects open below the root
	open := openStack[:0]
	var firstStack [9]bool // per open object: nothing written in it yet
	first := append(firstStack[:0], true)
	comma := func() {
		if !first[len(first)-1] {
			b = append(b, ',')
		}
		first[len(first)-1] = false
	}
	b = append(b, '{')
	for _, f := range fields {
		rest := f.Name
		level := 0
		for level < len(open) {
			seg, r, more := strings.Cut(rest, ".")
			if !more || seg != open[level] {
				break
			}
			level++
			rest = r
		}
		for len(open) > level {
			b = append(b, '}')
			open, first = open[:len(open)-1], first[:len(first)-1]
		}
		for {
			seg, r, more := strings.Cut(rest, ".")
			comma()
			b = jsontree.AppendString(b, seg, true)
			b = append(b, ':')
			if !more {
				if f.IsList {
					b = appendJSONValue(b, f.Values)
				} else {
					b = jsontree.AppendString(b, f.Value, true)
				}
				break
			}
			b = append(b, '{')
			open, first = append(open, seg), append(first, true)
			rest = r
		}
	}
	for range open {
		b = append(b, '}')
	}
	return append(b, '}')
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
