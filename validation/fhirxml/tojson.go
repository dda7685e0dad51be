package fhirxml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/fhirgate/fhirgate/validation/location"
)

// Namespaces of FHIR XML and of the narrative.
const (
	FHIRNamespace  = "http://hl7.org/fhir"
	XHTMLNamespace = "http://www.w3.org/1999/xhtml"
)

// Limits of an XML document; beyond them it is refused, not parsed.
const (
	MaxDepth    = 64
	MaxElements = 100000
)

// Error is one problem of a document, located by a FHIRPath-like path.
type Error struct {
	Path string
	Msg  string
	// Structure is true for problems of form (order, unknown element,
	// stray text); false for a value that is not of its type.
	Structure bool
}

func (e Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem found.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

// node is one parsed XML element.
type node struct {
	name     string
	attrs    []xml.Attr
	children []*node
	raw      []byte // the verbatim XHTML of a narrative div
}

// parseXML reads a FHIR XML document into a tree. It refuses DOCTYPE (and
// so every entity declaration), processing instructions other than the
// XML declaration, elements outside the FHIR namespace (except the XHTML
// div, kept verbatim), empty attributes, non-whitespace text between
// elements, and documents deeper than MaxDepth or with more than
// MaxElements elements.
func parseXML(data []byte) (*node, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var stack []*node
	var root *node
	count := 0
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, Error{Msg: "not well-formed XML: " + trimXMLError(err), Structure: true}
		}
		switch t := tok.(type) {
		case xml.ProcInst:
			if t.Target != "xml" || root != nil {
				return nil, Error{Msg: "processing instructions are not allowed", Structure: true}
			}
		case xml.Directive:
			return nil, Error{Msg: "DOCTYPE and entity declarations are not allowed", Structure: true}
		case xml.Comment:
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				path := ""
				if len(stack) > 0 {
					path = stack[len(stack)-1].name
				}
				return nil, Error{Path: path, Msg: "text content is not allowed in FHIR XML (values go in a value attribute)", Structure: true}
			}
		case xml.StartElement:
			count++
			if count > MaxElements || len(stack) >= MaxDepth {
				return nil, Error{Msg: fmt.Sprintf("the document exceeds %d elements or %d levels", MaxElements, MaxDepth), Structure: true}
			}
			n := &node{name: t.Name.Local}
			if t.Name.Space == XHTMLNamespace && t.Name.Local == "div" && len(stack) > 0 {
				raw, err := narrativeDiv(dec, t, data, start)
				if err != nil {
					return nil, Error{Msg: "not well-formed XML: " + trimXMLError(err), Structure: true}
				}
				n.raw = raw
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
				continue
			}
			if t.Name.Space != FHIRNamespace {
				return nil, Error{Path: t.Name.Local, Msg: fmt.Sprintf("element <%s> is not in the FHIR namespace %s", t.Name.Local, FHIRNamespace), Structure: true}
			}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				if a.Name.Space != "" {
					return nil, Error{Path: t.Name.Local, Msg: fmt.Sprintf("attribute %s:%s is not allowed", a.Name.Space, a.Name.Local), Structure: true}
				}
				if a.Value == "" {
					return nil, Error{Path: t.Name.Local, Msg: fmt.Sprintf("attribute %s is empty; FHIR XML has no empty attributes", a.Name.Local), Structure: true}
				}
				n.attrs = append(n.attrs, a)
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root == nil {
				root = n
			} else {
				return nil, Error{Msg: "more than one root element", Structure: true}
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if root == nil {
		return nil, Error{Msg: "no root element", Structure: true}
	}
	return root, nil
}

// narrativeDiv reads a narrative div whose start tag dec has just returned
// (at offset from of data) and returns it as FHIR JSON
// carries it: XHTML with the XHTML namespace as the default namespace of
// the div. A div written that way is kept byte for byte. A div whose
// elements carry a prefix (<h:div xmlns:h="…">, or the prefix declared on
// an ancestor) is written again without prefixes — copied verbatim it
// would be XHTML without its namespace binding.
func narrativeDiv(dec *xml.Decoder, start xml.StartElement, data []byte, from int64) ([]byte, error) {
	if !prefixedElements(data[from:]) {
		if err := dec.Skip(); err != nil {
			return nil, err
		}
		return bytes.TrimSpace(data[from:dec.InputOffset()]), nil
	}
	var b bytes.Buffer
	writeStart := func(e xml.StartElement, root bool) {
		b.WriteByte('<')
		b.WriteString(e.Name.Local)
		if root || e.Name.Space != XHTMLNamespace {
			b.WriteString(` xmlns="`)
			xml.EscapeText(&b, []byte(e.Name.Space))
			b.WriteByte('"')
		}
		for _, a := range e.Attr {
			if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
				continue
			}
			b.WriteByte(' ')
			switch a.Name.Space {
			case "":
			case "http://www.w3.org/XML/1998/namespace", "xml":
				b.WriteString("xml:")
			default:
				continue // an attribute of another namespace has no place in XHTML narrative
			}
			b.WriteString(a.Name.Local)
			b.WriteString(`="`)
			xml.EscapeText(&b, []byte(a.Value))
			b.WriteByte('"')
		}
		b.WriteByte('>')
	}
	writeStart(start, true)
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			writeStart(t, false)
		case xml.EndElement:
			depth--
			b.WriteString("</")
			b.WriteString(t.Name.Local)
			b.WriteByte('>')
		case xml.CharData:
			xml.EscapeText(&b, t)
		}
	}
	return b.Bytes(), nil
}

// prefixedElements reports whether an element name in the XML that
// starts rest (up to the end of the document) carries a namespace prefix.
// It errs towards true: a false positive only costs a rewrite.
func prefixedElements(rest []byte) bool {
	for i := 0; i+1 < len(rest); i++ {
		if rest[i] != '<' {
			continue
		}
		j := i + 1
		if rest[j] == '/' {
			j++
		}
		for ; j < len(rest); j++ {
			c := rest[j]
			if c == ':' {
				return true
			}
			if c == ' ' || c == '>' || c == '/' || c == '\t' || c == '\n' || c == '\r' || c == '!' || c == '?' {
				break
			}
		}
	}
	return false
}

func trimXMLError(err error) string {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("line %d: %s", se.Line, se.Msg)
	}
	return err.Error()
}

// ToJSON converts a FHIR XML resource to FHIR JSON. Every problem found is
// returned (as Errors); the JSON is only valid when there is none.
func ToJSON(v Version, data []byte) ([]byte, error) {
	out, err := ToJSONPartial(v, data)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ToJSONPartial is ToJSON that also returns, with the errors, the JSON of
// what could be converted (what an element or attribute the model does
// not know is left out of) — for `fhirgate convert --force`. It is nil
// when the XML itself could not be read. The JSON is not valid FHIR when
// there are errors.
func ToJSONPartial(v Version, data []byte) ([]byte, error) {
	root, ok := scanXML(data)
	if !ok {
		var err error
		if root, err = parseXML(data); err != nil {
			return nil, Errors{err.(Error)}
		}
	}
	c := &toJSON{m: ModelFor(v)}
	c.e.out = make([]byte, 0, len(data)) // the JSON of a resource is shorter than its XML
	c.resource(root)
	if len(c.errs) > 0 {
		return c.e.out, c.errs
	}
	return c.e.out, nil
}

// Tree converts a FHIR XML resource straight to the tree that
// jsontree.DecodeObjectUnique(ToJSON(v, data), maxDepth) gives — without
// writing and reading the JSON text. ok is false, and the tree nil,
// whenever that decoding would not give a tree or Tree cannot be sure it
// gives the same one: the XML has a problem (ToJSON reports it), the
// JSON would give a name twice in one object, carry U+FFFD for bytes that
// are not UTF-8, nest deeper than maxDepth, or (avoid not empty) hold a
// string containing avoid. Such documents take ToJSON's path.
func Tree(v Version, data []byte, maxDepth int, avoid string) (res map[string]any, ok bool) {
	root, ok := scanXML(data)
	if !ok {
		return nil, false
	}
	c := &toJSON{m: ModelFor(v), e: emitter{tree: true, maxDepth: maxDepth, exact: true, avoid: avoid}}
	c.resource(root)
	if len(c.errs) > 0 || !c.e.exact {
		return nil, false
	}
	res, ok = c.e.root.(map[string]any)
	return res, ok
}

// toJSON is one conversion: the walk of the XML tree against the model,
// its output through e (JSON text or the decoded tree).
type toJSON struct {
	m    *Model
	e    emitter
	errs Errors
	at   []location.Step // the current location (push, pop)
}

func (c *toJSON) fail(structure bool, format string, args ...any) {
	c.errs = append(c.errs, Error{Path: c.where(), Msg: fmt.Sprintf(format, args...), Structure: structure})
}

// failAt is fail located at the child name (index ≥ 0: name[index]) of
// the current place.
func (c *toJSON) failAt(name string, index int, structure bool, format string, args ...any) {
	c.push(name, index)
	c.fail(structure, format, args...)
	c.pop()
}

// push and pop move the current location (c.at), which is turned into
// text (Task.input[0].type) only for an error: converting allocates no
// path.
func (c *toJSON) push(name string, index int) {
	c.at = append(c.at, location.Step{Name: name, Index: index})
}
func (c *toJSON) pop() { c.at = c.at[:len(c.at)-1] }

func (c *toJSON) where() string { return location.String("", c.at, "") }

// resource converts a resource element at the current location: the
// root's members are located under its type name (Task.input), a nested
// resource's under its place (Task.contained[0]).
func (c *toJSON) resource(n *node) {
	t := c.m.Resource(n.name)
	if t == nil {
		// Located at the resource's place, or for the root at
		// resourceType, as the JSON reader locates it.
		if len(c.at) == 0 {
			c.failAt("resourceType", -1, true, "unknown resource type %s", n.name)
		} else {
			c.fail(true, "unknown resource type %s", n.name)
		}
		c.e.null()
		return
	}
	root := len(c.at) == 0
	if root {
		c.push(n.name, -1)
		defer c.pop()
	}
	if len(n.attrs) > 0 {
		if root {
			c.fail(true, "a resource element has no attributes")
		} else {
			c.failAt(n.name, -1, true, "a resource element has no attributes")
		}
	}
	c.e.beginObject(1 + properties(n))
	c.e.key("resourceType")
	c.e.str(n.name)
	c.members(n, t)
	c.e.endObject()
}

func pathOr(path, name string) string {
	if path == "" {
		return name
	}
	return path
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// group is a run of children standing for one element.
type group struct {
	name  string // the XML/JSON name (valueString for a choice)
	el    *element
	typ   *typeInfo
	nodes []*node
	// start and end: nodes is n.children[start:end] while the run is
	// contiguous; start is -1 once it is not (nodes is then a copy).
	start, end int
}

// members writes the properties of a complex node into the open object,
// checking attributes and element order.
func (c *toJSON) members(n *node, t *typeInfo) {
	for _, a := range n.attrs {
		e, ok := t.byName[a.Name.Local]
		if !ok || !e.attr {
			c.fail(true, "attribute %s is not allowed here", a.Name.Local)
			continue
		}
		c.e.key(a.Name.Local)
		c.e.str(a.Value)
	}
	// A group's nodes are a run of n.children (a child that is refused
	// ends the run, as it did when the nodes were collected one by one).
	var onStack [8]group // the groups of a usual element, without an allocation
	groups := onStack[:0]
	last := -1
	for i, ch := range n.children {
		e, ct, ok := t.choiceElement(ch.name)
		if !ok || e.attr {
			c.failAt(ch.name, -1, true, "unknown element %s", ch.name)
			continue
		}
		idx := indexOf(t, e)
		if len(groups) > 0 && groups[len(groups)-1].name == ch.name {
			g := &groups[len(groups)-1]
			if !e.list {
				c.failAt(ch.name, -1, true, "element %s appears more than once but repeats at most once", ch.name)
				continue
			}
			if g.start >= 0 && g.end == i {
				g.nodes = n.children[g.start : i+1]
				g.end = i + 1
			} else {
				// The run was broken: the nodes are copied from here on.
				g.nodes = append(g.nodes[:len(g.nodes):len(g.nodes)], ch)
				g.start = -1
			}
			continue
		}
		if idx == last && e.typ != nil && e.typ.choices != nil && len(groups) > 0 && groups[len(groups)-1].el == e {
			// A choice element under a second type (valueString, then
			// valueBoolean): located at the choice, as in JSON.
			c.failAt(e.name, -1, true, "element %s[x] is given as %s and as %s", e.name, groups[len(groups)-1].name, ch.name)
			continue
		}
		if idx < last || (idx == last) {
			c.failAt(ch.name, -1, true, "element %s is out of order or repeated apart", ch.name)
			continue
		}
		last = idx
		groups = append(groups, group{name: ch.name, el: e, typ: ct, nodes: n.children[i : i+1], start: i, end: i + 1})
	}
	for i := range groups {
		c.group(&groups[i])
	}
}

// properties is about how many properties n's object will have: its
// attributes and its runs of children of one name (a primitive with
// extensions adds one more, _name).
func properties(n *node) int {
	count := len(n.attrs)
	for i, ch := range n.children {
		if i == 0 || n.children[i-1].name != ch.name {
			count++
		}
	}
	return count
}

func indexOf(t *typeInfo, e *element) int {
	for i, x := range t.elements {
		if x == e {
			return i
		}
	}
	return -1
}

// pushElement makes a group's i-th node the current location: name,
// with [i] when the element repeats.
func (c *toJSON) pushElement(g *group, i int) {
	if g.el.list {
		c.push(g.name, i)
	} else {
		c.push(g.name, -1)
	}
}

func (c *toJSON) group(g *group) {
	switch {
	case g.el.container:
		c.e.key(g.name)
		c.list(g.el.list, len(g.nodes), func(i int) {
			n := g.nodes[i]
			c.pushElement(g, i)
			defer c.pop()
			if len(n.attrs) > 0 || len(n.children) != 1 || n.children[0].raw != nil {
				c.fail(true, "%s must hold exactly one resource", g.name)
				c.e.null()
				return
			}
			c.resource(n.children[0])
		})
	case g.typ.primitive:
		c.primitives(g)
	default:
		c.e.key(g.name)
		c.list(g.el.list, len(g.nodes), func(i int) {
			n := g.nodes[i]
			c.pushElement(g, i)
			if n.raw != nil {
				c.fail(true, "unexpected XHTML")
			}
			c.e.beginObject(properties(n))
			c.members(n, g.typ)
			c.e.endObject()
			c.pop()
		})
	}
}

// list writes n values (each writes the i-th) as an array when isList,
// or the one value.
func (c *toJSON) list(isList bool, n int, each func(i int)) {
	if !isList {
		each(0)
		return
	}
	c.e.beginArray(n)
	for i := 0; i < n; i++ {
		each(i)
	}
	c.e.endArray()
}

// primitives writes a primitive element: values under its name, id and
// extensions under _name, arrays aligned with null where a side is absent.
func (c *toJSON) primitives(g *group) {
	var onStack [4]primitiveParts
	parts := onStack[:0]
	anyValue, anyExtra := false, false
	for i, n := range g.nodes {
		c.pushElement(g, i)
		p := c.primitive(g, n)
		c.pop()
		parts = append(parts, p)
		anyValue = anyValue || p.kind != absent
		anyExtra = anyExtra || p.extras != nil
	}
	if anyValue {
		c.e.key(g.name)
		c.list(g.el.list, len(parts), func(i int) { c.primitiveValue(parts[i]) })
	}
	if anyExtra {
		c.e.key("_" + g.name)
		c.list(g.el.list, len(parts), func(i int) {
			if parts[i].extras == nil {
				c.e.null()
				return
			}
			c.e.embed(parts[i].extras)
		})
	}
}

// primitiveParts is one node of a primitive element: its value (kind and
// text) and its id and extensions as the object of _name (made by a
// sub-emitter; nil when it has neither).
type primitiveParts struct {
	kind   valueKind
	value  string
	extras any
}

type valueKind uint8

const (
	absent valueKind = iota
	stringValue
	numberValue
	boolValue
)

func (c *toJSON) primitiveValue(p primitiveParts) {
	switch p.kind {
	case absent:
		c.e.null()
	case numberValue:
		c.e.number(p.value)
	case boolValue:
		c.e.boolean(p.value == "true")
	default:
		c.e.str(p.value)
	}
}

// primitive converts one node of a primitive element at the current
// location.
func (c *toJSON) primitive(g *group, n *node) (p primitiveParts) {
	if g.typ.xhtml {
		if n.raw == nil {
			c.fail(true, "the narrative div must be XHTML in the namespace %s", XHTMLNamespace)
			return p
		}
		return primitiveParts{kind: stringValue, value: string(n.raw)}
	}
	var id string
	hasID := false
	for _, a := range n.attrs {
		switch a.Name.Local {
		case "value":
			kind, err := primitiveKind(g.typ, a.Value)
			if err != nil {
				c.fail(false, "%v", err)
				continue
			}
			p.kind, p.value = kind, a.Value
		case "id":
			id, hasID = a.Value, true
		default:
			c.fail(true, "attribute %s is not allowed on a primitive", a.Name.Local)
		}
	}
	exts := 0
	badChild := false
	for _, ch := range n.children {
		if ch.name != "extension" {
			c.failAt(ch.name, -1, true, "a primitive holds only extensions, not %s", ch.name)
			badChild = true
			continue
		}
		exts++
	}
	if hasID || exts > 0 {
		// The object of _name is written after the values: it is made
		// now (its errors in document order), at this location, by an
		// emitter of its own, one level below the array of _name.
		levels := 0
		if g.el.list {
			levels = 1
		}
		// sub's location starts at c's and may grow into the spare
		// capacity of c.at: c does not move until sub is done, and an
		// error's location is text from the moment it is recorded.
		sub := &toJSON{m: c.m, at: c.at, e: c.e.sub(levels)}
		sub.e.beginObject(2)
		if hasID {
			sub.e.key("id")
			sub.e.str(id)
		}
		if exts > 0 {
			ext := g.typ.byName["extension"]
			sub.e.key("extension")
			sub.e.beginArray(exts)
			j := 0
			for _, x := range n.children {
				if x.name != "extension" {
					continue
				}
				sub.e.beginObject(properties(x))
				sub.push("extension", j)
				sub.members(x, ext.typ)
				sub.pop()
				sub.e.endObject()
				j++
			}
			sub.e.endArray()
		}
		sub.e.endObject()
		c.errs = append(c.errs, sub.errs...)
		p.extras = c.e.adopt(&sub.e)
	}
	if p.kind == absent && p.extras == nil && !badChild {
		c.fail(true, "element %s has neither a value nor extensions", g.name)
	}
	return p
}

var (
	decimalRe = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
	integerRe = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)
)

// primitiveKind is how a value attribute is written in JSON: numbers
// keep their exact digits, booleans are true/false, everything else a
// string.
func primitiveKind(t *typeInfo, v string) (valueKind, error) {
	switch t.kind {
	case jsonBool:
		if v != "true" && v != "false" {
			return absent, fmt.Errorf("%q is not a boolean", v)
		}
		return boolValue, nil
	case jsonNumber:
		re := integerRe
		if t.name == "decimal" {
			re = decimalRe
		}
		if !re.MatchString(v) {
			return absent, fmt.Errorf("%q is not a valid %s", v, t.name)
		}
		return numberValue, nil
	}
	return stringValue, nil
}
