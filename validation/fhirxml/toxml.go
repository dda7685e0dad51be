package fhirxml

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ToXML converts a FHIR JSON resource to FHIR XML: elements in definition
// order, primitives as value attributes with their id and extensions,
// Element.id and Extension.url as attributes, resources in containers
// wrapped in an element named after their type, the narrative div verbatim.
// Every problem found is returned (as Errors).
func ToXML(v Version, data []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, Errors{{Msg: "not a JSON object: " + err.Error(), Structure: true}}
	}
	if dec.More() {
		return nil, Errors{{Msg: "data after the JSON object", Structure: true}}
	}
	c := &toXML{m: ModelFor(v)}
	c.resource(obj, "", true)
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	return c.out.Bytes(), nil
}

type toXML struct {
	m    *Model
	out  bytes.Buffer
	errs Errors
}

func (c *toXML) fail(path string, structure bool, format string, args ...any) {
	c.errs = append(c.errs, Error{Path: path, Msg: fmt.Sprintf(format, args...), Structure: structure})
}

func (c *toXML) resource(obj map[string]any, path string, root bool) {
	rt, _ := obj["resourceType"].(string)
	t := c.m.Resource(rt)
	if t == nil {
		c.fail(join(path, "resourceType"), true, "unknown or missing resourceType %q", rt)
		return
	}
	c.out.WriteString("<" + rt)
	if root {
		c.out.WriteString(` xmlns="` + FHIRNamespace + `"`)
	}
	c.out.WriteByte('>')
	c.children(obj, t, pathOr(path, rt), map[string]bool{"resourceType": true})
	c.out.WriteString("</" + rt + ">")
}

// complex writes <name attrs>children</name> for a complex value.
func (c *toXML) complex(name string, obj map[string]any, t *typeInfo, path string) {
	c.out.WriteString("<" + name)
	used := map[string]bool{}
	for _, e := range t.elements {
		if !e.attr {
			continue
		}
		if v, ok := obj[e.name]; ok {
			s, ok := v.(string)
			if !ok || s == "" {
				c.fail(join(path, e.name), true, "%s must be a non-empty string", e.name)
			} else {
				c.out.WriteString(" " + e.name + `="`)
				escapeAttr(&c.out, s)
				c.out.WriteByte('"')
			}
			used[e.name] = true
		}
	}
	c.out.WriteByte('>')
	c.children(obj, t, path, used)
	c.out.WriteString("</" + name + ">")
}

// children writes the elements of obj in t's order, then reports keys that
// belong to no element.
func (c *toXML) children(obj map[string]any, t *typeInfo, path string, used map[string]bool) {
	for _, e := range t.elements {
		if e.attr {
			continue
		}
		if e.typ != nil && e.typ.choices != nil {
			for _, suffix := range e.typ.choiceOrder {
				name := e.name + suffix
				if _, ok := obj[name]; ok || obj["_"+name] != nil {
					c.element(name, e, e.typ.choices[suffix], obj, path, used)
				}
			}
			continue
		}
		if _, ok := obj[e.name]; ok || obj["_"+e.name] != nil {
			c.element(e.name, e, e.typ, obj, path, used)
		}
	}
	var unknown []string
	for k := range obj {
		if !used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		c.fail(join(path, k), true, "unknown element %s", k)
	}
}

func (c *toXML) element(name string, e *element, t *typeInfo, obj map[string]any, path string, used map[string]bool) {
	used[name], used["_"+name] = true, true
	val, extra := obj[name], obj["_"+name]
	items := func(v any) ([]any, bool) {
		if v == nil {
			return nil, true
		}
		if !e.list {
			return []any{v}, true
		}
		arr, ok := v.([]any)
		return arr, ok
	}
	vals, ok1 := items(val)
	extras, ok2 := items(extra)
	if !ok1 || !ok2 {
		c.fail(join(path, name), true, "%s repeats: an array is required", name)
		return
	}
	n := len(vals)
	if len(extras) > n {
		n = len(extras)
	}
	for i := 0; i < n; i++ {
		p := join(path, name)
		if e.list {
			p += "[" + strconv.Itoa(i) + "]"
		}
		var v, x any
		if i < len(vals) {
			v = vals[i]
		}
		if i < len(extras) {
			x = extras[i]
		}
		switch {
		case e.container:
			r, ok := v.(map[string]any)
			if !ok {
				c.fail(p, true, "%s must hold a resource", name)
				continue
			}
			c.out.WriteString("<" + name + ">")
			c.resource(r, p, false)
			c.out.WriteString("</" + name + ">")
		case t.primitive:
			c.primitive(name, t, v, x, p)
		default:
			o, ok := v.(map[string]any)
			if !ok {
				c.fail(p, true, "%s must be an object", name)
				continue
			}
			c.complex(name, o, t, p)
		}
	}
}

func (c *toXML) primitive(name string, t *typeInfo, v, extra any, path string) {
	if t.xhtml {
		s, ok := v.(string)
		if !ok || !strings.HasPrefix(strings.TrimSpace(s), "<div") {
			c.fail(path, true, "the narrative div must be an XHTML <div> string")
			return
		}
		c.out.WriteString(s)
		return
	}
	c.out.WriteString("<" + name)
	var ext map[string]any
	if extra != nil {
		var ok bool
		if ext, ok = extra.(map[string]any); !ok {
			c.fail(path, true, "_%s must be an object", name)
		}
	}
	if id, ok := ext["id"]; ok {
		s, _ := id.(string)
		c.out.WriteString(` id="`)
		escapeAttr(&c.out, s)
		c.out.WriteByte('"')
	}
	if v != nil {
		s, err := primitiveXML(t, v)
		if err != nil {
			c.fail(path, false, "%v", err)
		} else {
			c.out.WriteString(` value="`)
			escapeAttr(&c.out, s)
			c.out.WriteByte('"')
		}
	}
	exts, _ := ext["extension"].([]any)
	for k := range ext {
		if k != "id" && k != "extension" {
			c.fail(join(path, k), true, "unknown element %s", k)
		}
	}
	if len(exts) == 0 {
		c.out.WriteString("/>")
		return
	}
	c.out.WriteByte('>')
	et := t.byName["extension"].typ
	for i, x := range exts {
		o, ok := x.(map[string]any)
		if !ok {
			c.fail(fmt.Sprintf("%s.extension[%d]", path, i), true, "extension must be an object")
			continue
		}
		c.complex("extension", o, et, fmt.Sprintf("%s.extension[%d]", path, i))
	}
	c.out.WriteString("</" + name + ">")
}

// primitiveXML renders a JSON value as a value attribute, checking that its
// JSON kind fits the primitive type.
func primitiveXML(t *typeInfo, v any) (string, error) {
	switch x := v.(type) {
	case bool:
		if t.kind != jsonBool {
			return "", fmt.Errorf("a boolean where a %s is required", t.name)
		}
		return strconv.FormatBool(x), nil
	case json.Number:
		if t.kind != jsonNumber {
			return "", fmt.Errorf("a number where a %s is required", t.name)
		}
		return x.String(), nil
	case string:
		if t.kind != jsonString {
			return "", fmt.Errorf("a string where a %s is required", t.name)
		}
		if x == "" {
			return "", fmt.Errorf("empty string; FHIR has no empty values")
		}
		return x, nil
	}
	return "", fmt.Errorf("a %s value is required", t.name)
}

// escapeAttr writes s as the content of a double-quoted attribute.
func escapeAttr(b *bytes.Buffer, s string) {
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\t':
			b.WriteString("&#x9;")
		case '\n':
			b.WriteString("&#xA;")
		case '\r':
			b.WriteString("&#xD;")
		default:
			b.WriteRune(r)
		}
	}
}
