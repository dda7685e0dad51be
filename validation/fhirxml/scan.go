package fhirxml

import (
	"bytes"
	"encoding/xml"
	"unicode/utf8"
)

// scanXML is parseXML for the FHIR XML requests are made of, without
// encoding/xml's tokenizer (most of the cost of an XML request): elements
// and attributes of the FHIR namespace, whitespace between elements,
// comments, the five predefined entities and an XML declaration. It is
// exact or declines: ok true means parseXML returns this very tree;
// anything outside that subset — a DOCTYPE, CDATA, character references,
// prefixed elements, narrative XHTML, text content, a control character,
// a document parseXML would refuse — returns ok false, and the caller
// takes parseXML, which gives the tree or the precise error. FuzzScanAgrees
// holds it to parseXML.
func scanXML(data []byte) (root *node, ok bool) {
	// Names and values are substrings of one string copy of the input,
	// not an allocation each.
	starts := bytes.Count(data, []byte{'<'}) - bytes.Count(data, []byte("</"))
	s := scanner{data: data, src: string(data), block: max(1, min(starts, nodeBlock))}
	if bytes.HasPrefix(data, []byte("<?xml")) && !s.declaration() {
		return nil, false
	}
	var stack []*node
	var nsStack []string // the default namespace in scope, per open element
	count := 0
	for {
		// Between elements: whitespace and comments only.
		s.space()
		if s.i >= len(data) {
			break
		}
		if data[s.i] != '<' {
			return nil, false
		}
		switch {
		case bytes.HasPrefix(data[s.i:], []byte("<!--")):
			if !s.comment() {
				return nil, false
			}
			continue
		case s.i+1 < len(data) && data[s.i+1] == '/':
			if len(stack) == 0 || !s.endTag(stack[len(stack)-1].name) {
				return nil, false
			}
			stack, nsStack = stack[:len(stack)-1], nsStack[:len(nsStack)-1]
			continue
		}
		if root != nil && len(stack) == 0 {
			return nil, false // a second root: parseXML's error
		}
		count++
		if count > MaxElements || len(stack) >= MaxDepth {
			return nil, false
		}
		parentNS := ""
		if len(nsStack) > 0 {
			parentNS = nsStack[len(nsStack)-1]
		}
		n, ns, empty, good := s.startTag(parentNS)
		if !good || ns != FHIRNamespace {
			return nil, false // narrative XHTML, other namespaces: parseXML
		}
		if len(stack) > 0 {
			p := stack[len(stack)-1]
			p.children = append(p.children, n)
		} else {
			root = n
		}
		if !empty {
			stack = append(stack, n)
			nsStack = append(nsStack, ns)
		}
	}
	if root == nil || len(stack) > 0 {
		return nil, false
	}
	return root, true
}

type scanner struct {
	data []byte
	src  string // data as a string, for substrings
	i    int

	// Nodes and attributes are carved from blocks, not allocated one by
	// one: a document's elements are hundreds of small objects. block is
	// the size of a block: one per start tag of the document (one per '<'
	// that is not '</'), at most nodeBlock.
	nodes []node
	attrs []xml.Attr
	block int
}

// nodeBlock is the most nodes (or attributes) one block holds.
const nodeBlock = 256

// newNode returns a node of the current block, starting one when full.
func (s *scanner) newNode(name string) *node {
	if len(s.nodes) == cap(s.nodes) {
		s.nodes = make([]node, 0, s.block)
	}
	s.nodes = append(s.nodes, node{name: name})
	return &s.nodes[len(s.nodes)-1]
}

// addAttr appends a to attrs, the attributes of the node being read —
// always the last ones of the current block — and returns them; a full
// block moves them to a new one, so that they stay contiguous.
func (s *scanner) addAttr(attrs []xml.Attr, a xml.Attr) []xml.Attr {
	if len(s.attrs) == cap(s.attrs) {
		s.attrs = append(make([]xml.Attr, 0, max(s.block, 2*len(attrs)+1)), attrs...)
	}
	s.attrs = append(s.attrs, a)
	n := len(s.attrs)
	return s.attrs[n-len(attrs)-1 : n : n]
}

func (s *scanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// declaration takes exactly <?xml version="1.0"?> or with
// encoding="UTF-8" (or utf-8): the forms encoding/xml reads the same way.
func (s *scanner) declaration() bool {
	for _, d := range []string{
		`<?xml version="1.0" encoding="UTF-8"?>`, `<?xml version="1.0" encoding="utf-8"?>`, `<?xml version="1.0"?>`,
		`<?xml version='1.0' encoding='UTF-8'?>`, `<?xml version='1.0' encoding='utf-8'?>`, `<?xml version='1.0'?>`,
	} {
		if bytes.HasPrefix(s.data, []byte(d)) {
			s.i = len(d)
			return true
		}
	}
	return false
}

// comment takes <!-- … --> whose text has no "--" and does not end in "-"
// (what encoding/xml refuses), and only characters XML allows.
func (s *scanner) comment() bool {
	body := s.data[s.i+4:]
	end := bytes.Index(body, []byte("-->"))
	if end < 0 {
		return false
	}
	text := body[:end]
	if bytes.Contains(text, []byte("--")) || bytes.HasSuffix(text, []byte("-")) || !xmlChars(text) {
		return false
	}
	s.i += 4 + end + 3
	return true
}

// endTag takes </name> (whitespace allowed before >) closing name.
func (s *scanner) endTag(name string) bool {
	s.i += 2
	got, ok := s.name()
	if !ok || got != name {
		return false
	}
	s.space()
	if s.i >= len(s.data) || s.data[s.i] != '>' {
		return false
	}
	s.i++
	return true
}

// startTag reads <name attr="value" …> or its empty form />, returning the
// element, its default namespace (declared on it or inherited) and whether
// it closed itself.
func (s *scanner) startTag(parentNS string) (n *node, ns string, empty, ok bool) {
	s.i++ // <
	name, ok := s.name()
	if !ok {
		return nil, "", false, false
	}
	n = s.newNode(name)
	ns = parentNS
	for {
		sp := s.i
		s.space()
		if s.i >= len(s.data) {
			return nil, "", false, false
		}
		switch c := s.data[s.i]; {
		case c == '>':
			s.i++
			return n, ns, false, true
		case c == '/':
			if s.i+1 >= len(s.data) || s.data[s.i+1] != '>' {
				return nil, "", false, false
			}
			s.i += 2
			return n, ns, true, true
		case s.i == sp:
			return nil, "", false, false // attributes need whitespace before them
		}
		prefix, local, ok := s.attrName()
		if !ok {
			return nil, "", false, false
		}
		s.space()
		if s.i >= len(s.data) || s.data[s.i] != '=' {
			return nil, "", false, false
		}
		s.i++
		s.space()
		value, ok := s.attrValue()
		if !ok {
			return nil, "", false, false
		}
		switch {
		case prefix == "" && local == "xmlns":
			ns = value
		case prefix == "xmlns":
			// A prefix declared; no prefixed name is taken here.
		case prefix != "" || value == "":
			return nil, "", false, false // parseXML refuses both
		default:
			for _, a := range n.attrs {
				if a.Name.Local == local {
					return nil, "", false, false
				}
			}
			n.attrs = s.addAttr(n.attrs, xml.Attr{Name: xml.Name{Local: local}, Value: value})
		}
	}
}

// name reads an unprefixed ASCII XML name.
func (s *scanner) name() (string, bool) {
	start := s.i
	for s.i < len(s.data) && isNameByte(s.data[s.i], s.i == start) {
		s.i++
	}
	if s.i == start {
		return "", false
	}
	return s.src[start:s.i], true
}

// attrName reads name or prefix:name.
func (s *scanner) attrName() (prefix, local string, ok bool) {
	local, ok = s.name()
	if !ok {
		return "", "", false
	}
	if s.i < len(s.data) && s.data[s.i] == ':' {
		s.i++
		prefix = local
		if local, ok = s.name(); !ok {
			return "", "", false
		}
	}
	return prefix, local, true
}

func isNameByte(c byte, first bool) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		return true
	case c >= '0' && c <= '9', c == '-', c == '.':
		return !first
	}
	return false
}

// attrValue reads a quoted value, resolving the five predefined entities.
// Line breaks, tabs (which XML normalises), character references and
// anything encoding/xml refuses decline.
func (s *scanner) attrValue() (string, bool) {
	if s.i >= len(s.data) || (s.data[s.i] != '"' && s.data[s.i] != '\'') {
		return "", false
	}
	quote := s.data[s.i]
	s.i++
	start := s.i
	end := bytes.IndexByte(s.data[start:], quote)
	if end < 0 {
		return "", false
	}
	raw := s.data[start : start+end]
	s.i = start + end + 1
	if bytes.IndexByte(raw, '<') >= 0 || !xmlChars(raw) || bytes.ContainsAny(raw, "\t\n\r") {
		return "", false
	}
	if bytes.IndexByte(raw, '&') < 0 {
		return s.src[start : start+end], true
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); {
		if raw[i] != '&' {
			out = append(out, raw[i])
			i++
			continue
		}
		semi := bytes.IndexByte(raw[i:], ';')
		if semi < 0 {
			return "", false
		}
		switch string(raw[i+1 : i+semi]) {
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "amp":
			out = append(out, '&')
		case "apos":
			out = append(out, '\'')
		case "quot":
			out = append(out, '"')
		default:
			return "", false
		}
		i += semi + 1
	}
	return string(out), true
}

// xmlChars reports whether b is UTF-8 of characters XML allows (the
// check encoding/xml makes).
func xmlChars(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		if !(r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF) {
			return false
		}
		i += size
	}
	return true
}
