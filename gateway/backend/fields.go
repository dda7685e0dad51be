package backend

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"github.com/fhirgate/fhirgate/validation/jsontree"
	"io"
	"strconv"
	"strings"
)

// Limits of a backend XML answer: an answer beyond them has no fields.
const (
	maxXMLDepth    = 64
	maxXMLElements = 10000
)

type fields struct {
	parsed bool
	json   any
	xml    *xmlNode
}

// Field returns a field of the answer's body by dotted path, parsing the body
// once on first use. JSON: object keys and array indexes (items.0.code);
// numbers as written, booleans as true/false, null and objects absent.
// XML: the path starts below the root element; a segment @name is an
// attribute; an element's value is its trimmed text. The body is JSON or XML
// by its Content-Type; without one (or text/plain, octet-stream) by its first
// non-space byte. Other types have no fields.
func (r *Response) Field(path string) (string, bool) {
	if !r.fields.parsed {
		r.fields.parsed = true
		r.parseBody()
	}
	switch {
	case r.fields.json != nil:
		return jsonField(r.fields.json, path)
	case r.fields.xml != nil:
		return r.fields.xml.field(path)
	}
	return "", false
}

func (r *Response) parseBody() {
	ct := strings.ToLower(r.Header.Get("Content-Type"))
	isJSON := strings.Contains(ct, "json")
	isXML := strings.Contains(ct, "xml")
	// Only an undeclared or generic body (none, text/plain, octet-stream:
	// what legacy systems send) is sniffed; any other declared type (an
	// HTML error page from a proxy, say) has no fields, so it can never
	// match a rule and confirm a success by accident.
	if ct == "" || strings.HasPrefix(ct, "text/plain") || strings.HasPrefix(ct, "application/octet-stream") {
		trimmed := bytes.TrimLeft(r.Body, " \t\r\n")
		isJSON = len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
		isXML = len(trimmed) > 0 && trimmed[0] == '<'
	}
	switch {
	case isJSON:
		if v, err := jsontree.DecodeFirst(r.Body); err == nil {
			r.fields.json = v
		}
	case isXML:
		if n, err := parseXML(r.Body); err == nil {
			r.fields.xml = n
		}
	}
}

func jsonField(v any, path string) (string, bool) {
	switch x := jsonValue(v, path).(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

type xmlNode struct {
	name     string
	attrs    []xml.Attr
	text     strings.Builder
	children []*xmlNode
}

func (n *xmlNode) field(path string) (string, bool) {
	cur := n
	for _, seg := range strings.Split(path, ".") {
		if strings.HasPrefix(seg, "@") {
			for _, a := range cur.attrs {
				if a.Name.Local == seg[1:] {
					return a.Value, true
				}
			}
			return "", false
		}
		if cur = cur.child(seg); cur == nil {
			return "", false
		}
	}
	return strings.TrimSpace(cur.text.String()), true
}

var errXMLRefused = errors.New("XML answer refused")

// parseXML reads a backend XML answer into a tree. DOCTYPE (and with it
// every entity declaration) is refused; encoding/xml expands only the five
// predefined entities, so nothing is fetched or blown up.
func parseXML(data []byte) (*xmlNode, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var stack []*xmlNode
	var root *xmlNode
	count := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			if count > maxXMLElements || len(stack) >= maxXMLDepth {
				return nil, errXMLRefused
			}
			n := &xmlNode{name: t.Name.Local, attrs: t.Attr}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root == nil {
				root = n
			} else {
				return nil, errXMLRefused
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		case xml.Directive:
			return nil, errXMLRefused
		}
	}
	if root == nil {
		return nil, errXMLRefused
	}
	return root, nil
}

// Item is one of the repeated elements of an answer (Response.Items).
type Item struct {
	json any
	xml  *xmlNode
}

// Field returns a field of the item by dotted path, as Response.Field
// does for the body ("" the item's own value).
func (it Item) Field(path string) (string, bool) {
	switch {
	case it.xml != nil:
		if path == "" {
			return strings.TrimSpace(it.xml.text.String()), true
		}
		return it.xml.field(path)
	}
	return jsonField(it.json, path)
}

// Items returns the items of a list field: in JSON every element of the
// array at path (an object or value there is one item); in XML every
// element named by the path's last segment under the element the rest
// selects (body.tasks.task: each <task> of <tasks>). Items of an item are
// selected the same way from the item.
func (r *Response) Items(path string) []Item {
	if !r.fields.parsed {
		r.fields.parsed = true
		r.parseBody()
	}
	return Item{json: r.fields.json, xml: r.fields.xml}.Items(path)
}

// Items is Response.Items below the item.
func (it Item) Items(path string) []Item {
	switch {
	case it.xml != nil:
		parent, name := it.xml, path
		if i := strings.LastIndexByte(path, '.'); i >= 0 {
			parent = it.xml.node(path[:i])
			name = path[i+1:]
		}
		if parent == nil {
			return nil
		}
		var out []Item
		for _, c := range parent.children {
			if c.name == name {
				out = append(out, Item{xml: c})
			}
		}
		return out
	case it.json != nil:
		v := jsonValue(it.json, path)
		switch x := v.(type) {
		case nil:
			return nil
		case []any:
			out := make([]Item, 0, len(x))
			for _, e := range x {
				out = append(out, Item{json: e})
			}
			return out
		default:
			return []Item{{json: x}}
		}
	}
	return nil
}

// jsonValue is the value at a dotted path, nil when absent.
func jsonValue(v any, path string) any {
	if path == "" {
		return v
	}
	for rest, more := path, true; more; {
		var seg string
		seg, rest, more = strings.Cut(rest, ".")
		switch x := v.(type) {
		case map[string]any:
			v = x[seg]
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// node is the element a path of element names selects, nil if none.
func (n *xmlNode) node(path string) *xmlNode {
	cur := n
	for _, seg := range strings.Split(path, ".") {
		if cur = cur.child(seg); cur == nil {
			return nil
		}
	}
	return cur
}

// child is the first child element named name, nil if none.
func (n *xmlNode) child(name string) *xmlNode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

// ErrNotJSON is Copy's error for an answer that is not JSON: an XML
// element has no FHIR JSON form to pass through.
var ErrNotJSON = errors.New("only a JSON answer's values can be passed through as they are")

// Copy returns the JSON value at path as decoded (an object, a list or a
// scalar), nil when absent; the caller may keep and change it.
func (r *Response) Copy(path string) (any, error) {
	if !r.fields.parsed {
		r.fields.parsed = true
		r.parseBody()
	}
	return Item{json: r.fields.json, xml: r.fields.xml}.Copy(path)
}

// Copy is Response.Copy below the item.
func (it Item) Copy(path string) (any, error) {
	switch {
	case it.xml != nil:
		if it.xml.node(path) == nil && path != "" {
			return nil, nil
		}
		return nil, ErrNotJSON
	case it.json != nil:
		return jsonValue(it.json, path), nil
	}
	return nil, nil
}
