package fhirxml

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/fhirgate/fhirgate/validation/jsontree"
)

// emitter receives the JSON a conversion produces, one token at a time,
// and either writes it as text (ToJSON) or builds the tree jsontree would
// decode from that text (Tree) — one walk of the XML, two outputs, so the
// two cannot disagree on structure.
//
// Text: commas are the emitter's (needComma: a value or a name follows a
// complete value). Tree: a stack of the open containers; a name given
// twice in one object, a string that is not UTF-8 (the text would carry
// U+FFFD instead) or nesting deeper than maxDepth clears exact, and the
// caller then takes the text path, which decides such documents.
type emitter struct {
	tree bool

	// text
	out       []byte
	needComma bool

	// tree
	stack    []frame
	root     any
	maxDepth int
	exact    bool
	// avoid: a string containing it clears exact (see Tree).
	avoid string
}

// frame is an open object or array of the tree.
type frame struct {
	obj map[string]any
	arr []any
	key string // the name the next value of obj goes under
}

func (e *emitter) comma() {
	if e.needComma {
		e.out = append(e.out, ',')
	}
}

// beginObject opens an object expected to hold about size names.
func (e *emitter) beginObject(size int) {
	e.open('{', func() frame { return frame{obj: make(map[string]any, size)} })
}

// beginArray opens an array of n values.
func (e *emitter) beginArray(n int) {
	e.open('[', func() frame { return frame{arr: make([]any, 0, n)} })
}

func (e *emitter) endObject() { e.close('}') }
func (e *emitter) endArray()  { e.close(']') }

// open writes the opening bracket, or pushes the frame made new makes.
func (e *emitter) open(bracket byte, new func() frame) {
	if !e.tree {
		e.comma()
		e.out = append(e.out, bracket)
		e.needComma = false
		return
	}
	if len(e.stack) >= e.maxDepth {
		e.exact = false
	}
	e.stack = append(e.stack, new())
}

// close writes the closing bracket, or places the finished container.
func (e *emitter) close(bracket byte) {
	if !e.tree {
		e.out = append(e.out, bracket)
		e.needComma = true
		return
	}
	f := e.stack[len(e.stack)-1]
	e.stack = e.stack[:len(e.stack)-1]
	if f.obj != nil {
		e.value(f.obj)
	} else {
		e.value(f.arr)
	}
}

// key names the next value of the open object.
func (e *emitter) key(name string) {
	if !e.tree {
		e.comma()
		e.out = jsontree.AppendString(e.out, name, false)
		e.out = append(e.out, ':')
		e.needComma = false
		return
	}
	e.checkString(name)
	f := &e.stack[len(e.stack)-1]
	if _, dup := f.obj[name]; dup {
		e.exact = false
	}
	f.key = name
}

// value places a finished value (tree) in the open container, or as the
// root.
func (e *emitter) value(v any) {
	if len(e.stack) == 0 {
		e.root = v
		return
	}
	f := &e.stack[len(e.stack)-1]
	if f.obj != nil {
		f.obj[f.key] = v
	} else {
		f.arr = append(f.arr, v)
	}
}

func (e *emitter) str(s string) {
	if !e.tree {
		e.comma()
		e.out = jsontree.AppendString(e.out, s, false)
		e.needComma = true
		return
	}
	e.checkString(s)
	e.value(s)
}

// number writes digits already held to the JSON number grammar.
func (e *emitter) number(digits string) {
	if !e.tree {
		e.comma()
		e.out = append(e.out, digits...)
		e.needComma = true
		return
	}
	e.value(json.Number(digits))
}

func (e *emitter) boolean(b bool) {
	if !e.tree {
		e.comma()
		if b {
			e.out = append(e.out, "true"...)
		} else {
			e.out = append(e.out, "false"...)
		}
		e.needComma = true
		return
	}
	e.value(b)
}

func (e *emitter) null() {
	if !e.tree {
		e.comma()
		e.out = append(e.out, "null"...)
		e.needComma = true
		return
	}
	e.value(nil)
}

// adopt returns what sub, made by e.sub, produced (one value: its text,
// or the value of the tree) for a later embed, and takes on its
// exactness.
func (e *emitter) adopt(sub *emitter) any {
	e.exact = e.exact && sub.exact
	if !e.tree {
		return sub.out
	}
	return sub.root
}

// embed places a value a sub-emitter of the same kind finished.
func (e *emitter) embed(v any) {
	if !e.tree {
		e.comma()
		e.out = append(e.out, v.([]byte)...)
		e.needComma = true
		return
	}
	e.value(v)
}

// sub is a new emitter of the same kind, for a value produced apart and
// embedded later, levels containers below the ones open now.
func (e *emitter) sub(levels int) emitter {
	return emitter{tree: e.tree, maxDepth: e.maxDepth - len(e.stack) - levels, exact: true, avoid: e.avoid}
}

func (e *emitter) checkString(s string) {
	if !utf8.ValidString(s) || (e.avoid != "" && strings.Contains(s, e.avoid)) {
		e.exact = false
	}
}
