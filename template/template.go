// Package template compiles the small value templates of routes.yaml.
//
// Syntax: literal text with references `${source.key}`. A reference may list
// alternatives separated by `|`: `${query.ac|header.X-AccessCode}` takes the
// first one that is present and non-empty. `$$` is a literal `$`. A source
// without a key (`${role}`) names a single value. A reference may end with
// `-> map`: the value found is translated by the named value map
// (`${role -> legacy_roles}`); a value the map does not hold makes Render
// fail with *UnmappedError (an absent value stays absent).
//
// Templates are compiled once when the configuration is loaded; rendering does
// no parsing, and every substituted value goes through an escape function
// chosen by the caller for the place the value lands in (a path segment, a
// header, a body field), so a client value can only ever be data.
package template

import (
	"errors"
	"fmt"
	"strings"
)

// Ref names one value: Source is the namespace (path, query, header, claim,
// role, body …), Key the name inside it ("" for single-valued sources).
type Ref struct {
	Source string
	Key    string
}

func (r Ref) String() string {
	if r.Key == "" {
		return r.Source
	}
	return r.Source + "." + r.Key
}

// ParseRef splits "source.key" at the first dot.
func ParseRef(s string) Ref {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		return Ref{Source: s[:i], Key: s[i+1:]}
	}
	return Ref{Source: s}
}

// Values supplies the value of a reference; ok is false when it is absent.
type Values interface {
	Value(Ref) (value string, ok bool)
}

// Escape turns a substituted value into what may stand at its place, or
// refuses it. Literal text of the template is never escaped: it is trusted
// configuration and was checked at load.
type Escape func(string) (string, error)

// Template is a compiled template. The zero value renders "".
type Template struct {
	source string
	parts  []part
}

type part struct {
	literal string
	refs    []Ref // alternatives; empty for a literal part
	mapName string
	mapper  Mapper // translates the value found; nil: none
}

// Mapper translates one value (a value map): ok false when it holds no
// translation for it.
type Mapper interface {
	Map(value string) (mapped string, ok bool)
}

// UnmappedError is Render's error for a value a reference's map does not
// hold. It names the reference and the map, never the value (it may be a
// credential).
type UnmappedError struct {
	Ref Ref    // the alternative whose value was found
	Map string // the map's name as written
}

func (e *UnmappedError) Error() string {
	return fmt.Sprintf("the value of %s has no translation in value map %s", e.Ref, e.Map)
}

// Options are what Parse needs besides the text.
type Options struct {
	// Check, if not nil, is called for every reference and may refuse it
	// (for example a source not available where the template is used).
	Check func(Ref) error
	// Maps finds a value map by name; nil: `-> map` is refused.
	Maps func(name string) (Mapper, error)
	// When compiles the conditions of a tree's $when (reference →
	// condition, as written), each reference checked with check; nil:
	// $when is refused.
	When func(conditions map[string]any, check func(Ref) error) (func(Values) bool, error)
}

// Parse compiles s. check, if not nil, is called for every reference and may
// refuse it (for example a source not available where the template is used).
// Value maps are not available (ParseWith).
func Parse(s string, check func(Ref) error) (*Template, error) {
	return ParseWith(s, Options{Check: check})
}

// ParseWith compiles s with opts.
func ParseWith(s string, opts Options) (*Template, error) {
	check := opts.Check
	t := &Template{source: s}
	var lit strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i += 2
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			return nil, fmt.Errorf("template %q: '$' at offset %d must start ${…} or be doubled as $$", s, i)
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return nil, fmt.Errorf("template %q: unclosed ${ at offset %d", s, i)
		}
		body := s[i+2 : i+2+end]
		if body == "" {
			return nil, fmt.Errorf("template %q: empty reference ${} at offset %d", s, i)
		}
		var refs []Ref
		var mapName string
		var mapper Mapper
		if i := strings.Index(body, "->"); i >= 0 {
			mapName = strings.TrimSpace(body[i+2:])
			body = body[:i]
			if mapName == "" {
				return nil, fmt.Errorf("template %q: a value map name must follow ->", s)
			}
			if opts.Maps == nil {
				return nil, fmt.Errorf("template %q: value maps (-> %s) are not available here", s, mapName)
			}
			m, err := opts.Maps(mapName)
			if err != nil {
				return nil, fmt.Errorf("template %q: -> %s: %w", s, mapName, err)
			}
			mapper = m
		}
		for _, alt := range strings.Split(body, "|") {
			alt = strings.TrimSpace(alt)
			if alt == "" {
				return nil, fmt.Errorf("template %q: empty alternative in ${%s}", s, body)
			}
			r := ParseRef(alt)
			if check != nil {
				if err := check(r); err != nil {
					return nil, fmt.Errorf("template %q: ${%s}: %w", s, alt, err)
				}
			}
			refs = append(refs, r)
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{literal: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{refs: refs, mapName: mapName, mapper: mapper})
		i += 2 + end + 1
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{literal: lit.String()})
	}
	return t, nil
}

// MustParse is Parse for templates known at compile time; it panics on error.
func MustParse(s string) *Template {
	t, err := Parse(s, nil)
	if err != nil {
		panic(err)
	}
	return t
}

// Source returns the text the template was compiled from.
func (t *Template) Source() string {
	if t == nil {
		return ""
	}
	return t.source
}

// Refs lists every reference of the template, alternatives included.
func (t *Template) Refs() []Ref {
	if t == nil {
		return nil
	}
	var out []Ref
	for _, p := range t.parts {
		out = append(out, p.refs...)
	}
	return out
}

// IsLiteral reports whether the template contains no reference.
func (t *Template) IsLiteral() bool {
	if t == nil {
		return true
	}
	for _, p := range t.parts {
		if len(p.refs) > 0 {
			return false
		}
	}
	return true
}

// ErrRefused wraps an escape function's refusal.
var ErrRefused = errors.New("value refused")

// Render substitutes every reference through esc (nil: values as they are).
// A reference whose alternatives are all absent renders as "".
func (t *Template) Render(v Values, esc Escape) (string, error) {
	if t == nil || len(t.parts) == 0 {
		return "", nil
	}
	if len(t.parts) == 1 {
		// One literal or one reference (most backend fields): its value
		// is the result, without a builder's copy.
		return t.parts[0].render(v, esc)
	}
	var b strings.Builder
	for i := range t.parts {
		val, err := t.parts[i].render(v, esc)
		if err != nil {
			return "", err
		}
		b.WriteString(val)
	}
	return b.String(), nil
}

// render is one part's text: the literal, or the reference's value
// through its value map and esc.
func (p *part) render(v Values, esc Escape) (string, error) {
	if p.refs == nil {
		return p.literal, nil
	}
	val, found := lookupRef(v, p.refs)
	if p.mapper != nil && val != "" {
		mapped, ok := p.mapper.Map(val)
		if !ok {
			return "", &UnmappedError{Ref: found, Map: p.mapName}
		}
		val = mapped
	}
	if esc != nil && val != "" {
		e, err := esc(val)
		if err != nil {
			return "", fmt.Errorf("%w: ${%s}: %v", ErrRefused, p.refs[0], err)
		}
		val = e
	}
	return val, nil
}

// Lookup returns the first present, non-empty alternative.
func Lookup(v Values, refs ...Ref) (string, bool) {
	s, _ := lookupRef(v, refs)
	return s, s != ""
}

// lookupRef is Lookup that also says which alternative answered.
func lookupRef(v Values, refs []Ref) (string, Ref) {
	for _, r := range refs {
		if s, ok := v.Value(r); ok && s != "" {
			return s, r
		}
	}
	return "", Ref{}
}
