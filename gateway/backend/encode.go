package backend

import (
	"net/url"
	"sort"
	"strings"
	"unicode/utf8"

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
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
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
			b = appendJSONString(b, s)
		}
		return append(b, ']')
	case string:
		return appendJSONString(b, v)
	}
	return append(b, "null"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as encoding/json does with HTML escaping: <, >
// and & as \u003c, \u003e, \u0026, U+2028 and U+2029 escaped, invalid
// UTF-8 as \ufffd, control characters as \n, \r, \t, \b, \f or \u00XX.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// escapeText escapes XML character data (same rules as attributes).
func escapeText(b *strings.Builder, s string) { outcome.EscapeAttr(b, s) }
