// Package jsontree decodes a JSON document into the generic tree
// encoding/json builds with UseNumber — map[string]any, []any, string,
// json.Number, bool, nil — for a JSON object at the top, without
// reflection. It is as strict as encoding/json (RFC 8259: no leading
// zeros, no trailing commas, no unescaped control characters, nothing but
// whitespace after the value) and gives the same tree for every input
// encoding/json accepts: invalid UTF-8 and lone surrogates become U+FFFD,
// a repeated name keeps its last value. A fuzz target holds it to
// encoding/json.
package jsontree

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrSyntax is any input encoding/json would refuse, or nesting deeper
// than the limit.
var ErrSyntax = errors.New("jsontree: invalid JSON")

// ErrDuplicate is a name given twice in one object (DecodeObjectUnique).
var ErrDuplicate = errors.New("jsontree: a name is given twice in one object")

// DecodeObject decodes data, which must hold one JSON object, nested at
// most maxDepth levels.
func DecodeObject(data []byte, maxDepth int) (map[string]any, error) {
	return decodeObject(data, maxDepth, false)
}

// DecodeObjectUnique is DecodeObject refusing, with ErrDuplicate, an
// object that gives a name twice (compared after unescaping: "a" and
// "\u0061" are the same name), which decoding would otherwise hide by
// keeping the last value.
func DecodeObjectUnique(data []byte, maxDepth int) (map[string]any, error) {
	return decodeObject(data, maxDepth, true)
}

func decodeObject(data []byte, maxDepth int, unique bool) (map[string]any, error) {
	// One copy of the input as a string: every string, name and number
	// without escapes is then a substring of it, not an allocation of its
	// own. The tree keeps the copy alive as long as any of them is used.
	d := decoder{data: data, src: string(data), maxDepth: maxDepth, unique: unique}
	d.space()
	if d.i >= len(d.data) || d.data[d.i] != '{' {
		return nil, ErrSyntax
	}
	v, ok := d.value(0)
	if !ok {
		if d.duplicate {
			return nil, ErrDuplicate
		}
		return nil, ErrSyntax
	}
	d.space()
	if d.i != len(d.data) {
		return nil, ErrSyntax
	}
	return v.(map[string]any), nil
}

type decoder struct {
	data     []byte
	src      string // data as a string, for substrings
	i        int
	maxDepth int
	// unique refuses a repeated name; duplicate says that was the reason
	// the decoding stopped.
	unique, duplicate bool
	// stack holds the items of the arrays being read, a nested array's
	// above its parent's; a finished array is copied out of it into slab,
	// a block the document's arrays are carved from (each with its
	// capacity fixed, so an append to one never reaches another): a few
	// allocations a document rather than one or more an array.
	stack []any
	slab  []any
}

// carve returns a slice of n items out of the slab, a new block when it is
// full: twice the last one's size (16 to 256 items), or n when larger.
func (d *decoder) carve(n int) []any {
	if cap(d.slab)-len(d.slab) < n {
		d.slab = make([]any, 0, max(n, min(2*cap(d.slab), 256), 16))
	}
	start := len(d.slab)
	d.slab = d.slab[:start+n]
	return d.slab[start : start+n : start+n]
}

func (d *decoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, bool) {
	if d.i >= len(d.data) {
		return nil, false
	}
	switch c := d.data[d.i]; {
	case c == '{':
		if depth >= d.maxDepth {
			return nil, false
		}
		return d.object(depth + 1)
	case c == '[':
		if depth >= d.maxDepth {
			return nil, false
		}
		return d.array(depth + 1)
	case c == '"':
		s, ok := d.string()
		return s, ok
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, false
}

func (d *decoder) literal(word string) bool {
	if len(d.data)-d.i < len(word) || string(d.data[d.i:d.i+len(word)]) != word {
		return false
	}
	d.i += len(word)
	return true
}

func (d *decoder) object(depth int) (any, bool) {
	d.i++ // {
	m := map[string]any{}
	d.space()
	if d.i < len(d.data) && d.data[d.i] == '}' {
		d.i++
		return m, true
	}
	for {
		d.space()
		if d.i >= len(d.data) || d.data[d.i] != '"' {
			return nil, false
		}
		k, ok := d.string()
		if !ok {
			return nil, false
		}
		d.space()
		if d.i >= len(d.data) || d.data[d.i] != ':' {
			return nil, false
		}
		d.i++
		d.space()
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		// A name given before replaces its value and leaves the count as
		// it was: one hash of the name, not a lookup and then a store.
		before := len(m)
		m[k] = v
		if d.unique && len(m) == before {
			d.duplicate = true
			return nil, false
		}
		d.space()
		if d.i >= len(d.data) {
			return nil, false
		}
		switch d.data[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return m, true
		default:
			return nil, false
		}
	}
}

func (d *decoder) array(depth int) (any, bool) {
	d.i++ // [
	d.space()
	if d.i < len(d.data) && d.data[d.i] == ']' {
		d.i++
		return []any{}, true
	}
	if d.stack == nil {
		d.stack = make([]any, 0, 16)
	}
	base := len(d.stack)
	for {
		d.space()
		v, ok := d.value(depth)
		if !ok {
			return nil, false
		}
		d.stack = append(d.stack, v)
		d.space()
		if d.i >= len(d.data) {
			return nil, false
		}
		switch d.data[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			a := d.carve(len(d.stack) - base)
			copy(a, d.stack[base:])
			clear(d.stack[base:])
			d.stack = d.stack[:base]
			return a, true
		default:
			return nil, false
		}
	}
}

// number reads the JSON number grammar exactly: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *decoder) number() (any, bool) {
	start := d.i
	if d.data[d.i] == '-' {
		d.i++
	}
	digits := func() int {
		n := 0
		for d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.i >= len(d.data) {
		return nil, false
	}
	if d.data[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return nil, false
	}
	if d.i < len(d.data) && d.data[d.i] == '.' {
		d.i++
		if digits() == 0 {
			return nil, false
		}
	}
	if d.i < len(d.data) && (d.data[d.i] == 'e' || d.data[d.i] == 'E') {
		d.i++
		if d.i < len(d.data) && (d.data[d.i] == '+' || d.data[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	return json.Number(d.src[start:d.i]), true
}

// string reads a quoted string; the common case (no escape, valid UTF-8)
// is a substring of the input, no allocation.
func (d *decoder) string() (string, bool) {
	d.i++ // "
	start := d.i
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			s := d.src[start:d.i]
			d.i++
			return s, true
		case c == '\\':
			return d.slowString(start)
		case c >= utf8.RuneSelf:
			if r, size := utf8.DecodeRune(d.data[d.i:]); r != utf8.RuneError || size != 1 {
				d.i += size
				continue
			}
			return d.slowString(start)
		case c < 0x20:
			return "", false
		}
		d.i++
	}
	return "", false
}

// slowString decodes escapes and repairs invalid UTF-8 as encoding/json
// does.
func (d *decoder) slowString(start int) (string, bool) {
	b := make([]byte, 0, d.i-start+16)
	b = append(b, d.data[start:d.i]...)
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			return string(b), true
		case c < 0x20:
			return "", false
		case c == '\\':
			d.i++
			if d.i >= len(d.data) {
				return "", false
			}
			e := d.data[d.i]
			if r, ok := simpleEscapes[e]; ok {
				b = append(b, r)
				d.i++
				continue
			}
			if e != 'u' {
				return "", false
			}
			r, ok := d.hex4(d.i + 1)
			if !ok {
				return "", false
			}
			d.i += 5
			if utf16.IsSurrogate(r) {
				// A pair makes one rune; anything else is U+FFFD.
				if r2, ok := d.pairLow(); ok {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						b = utf8.AppendRune(b, dec)
						d.i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		case c < utf8.RuneSelf:
			b = append(b, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.data[d.i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, d.data[d.i:d.i+size]...)
			}
			d.i += size
		}
	}
	return "", false
}

// simpleEscapes are the one-character escapes after a backslash.
var simpleEscapes = map[byte]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// pairLow reads a following \uXXXX, if there is one.
func (d *decoder) pairLow() (rune, bool) {
	if d.i+1 < len(d.data) && d.data[d.i] == '\\' && d.data[d.i+1] == 'u' {
		return d.hex4(d.i + 2)
	}
	return 0, false
}

func (d *decoder) hex4(at int) (rune, bool) {
	if at+4 > len(d.data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.data[at:at+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// MaxDepth is encoding/json's own nesting limit.
const MaxDepth = 10000

// DecodeFirst reads the first JSON value of data exactly as encoding/json's
// Decoder with UseNumber does — bytes after it are not looked at — taking
// the reflection-free path whenever data is one object and nothing else
// (the usual case), encoding/json otherwise.
func DecodeFirst(data []byte) (any, error) {
	if obj, err := DecodeObject(data, MaxDepth); err == nil {
		return obj, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
