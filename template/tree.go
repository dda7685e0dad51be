package template

import (
	"fmt"
	"sort"
)

// Tree is a JSON-shaped value — objects, lists, scalars — whose string
// leaves are templates: the shape of a FHIR resource an answer builds from
// a backend's answer. Rendering leaves out what comes out empty: a string
// leaf that renders "", then an object or list that is left with nothing,
// so optional elements whose backend values are absent disappear.
//
// A list entry of the form {$each: <reference>, $item: <tree>} stands for
// one entry per element of a repeated value (Lists.Items): inside $item
// the source "item" is that element (${item.code}), and items of items
// nest ($each: item.lines). With a third key, $when: {<reference>:
// <condition>, …} (conditions as a response rule's when.match writes
// them, compiled by Options.When), the entries are there only when every
// condition holds — what a caller may see can depend on the record
// ({$each: body.accessCode, $when: {body.flowType: {not: {any: ["169",
// "209"]}}}, $item: …}). An object with a $when key is there only when
// its conditions hold: {$when: {body.owner: "*"}, identifier: {system:
// …, value: "${body.owner}"}} leaves out an owner the record lacks,
// although its system is written literally.
//
// An object of the form {$copy: <reference>} stands for the value found
// there as it is (Copier.Copy): an object or list of the backend's JSON
// answer passed through unchanged — a document the legacy system holds —
// or nothing when absent.
type Tree struct {
	root node
}

type node struct {
	tmpl   *Template // a string leaf
	scalar any       // another leaf (bool, number) as written
	keys   []string  // an object's keys, sorted (rendering is deterministic)
	fields map[string]*node
	items  []*node           // a list
	each   Ref               // for kind 'e': the repeated value; for 'c': the value copied
	when   func(Values) bool // kinds 'e' and 'o': nil, or whether the entries / the object are there
	kind   byte              // 's' template, 'v' scalar, 'o' object, 'l' list, 'e' each, 'c' copy
}

// Lists is what Values implement to hold repeated values: Items returns
// one Values per element ref selects, answering the source "item" for
// that element and every other source as the parent.
type Lists interface {
	Items(ref Ref) []Values
}

// Copier is what Values implement to hand over a value as it is, for
// $copy: nil when absent, an error when it cannot be copied (an XML
// answer has no JSON value to pass through).
type Copier interface {
	Copy(ref Ref) (any, error)
}

// ItemSource is the source naming the current element inside $item.
const ItemSource = "item"

// CompileTree compiles every string of v (as decoded from YAML or JSON)
// with opts; err names the path of the first bad one.
func CompileTree(v any, opts Options) (*Tree, error) {
	n, err := compileNode(v, "", opts)
	if err != nil {
		return nil, err
	}
	return &Tree{root: *n}, nil
}

func compileNode(v any, path string, opts Options) (*node, error) {
	switch x := v.(type) {
	case string:
		t, err := ParseWith(x, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pathOrRoot(path), err)
		}
		return &node{kind: 's', tmpl: t}, nil
	case map[string]any:
		if c, ok := x["$copy"]; ok {
			ref, isString := c.(string)
			if !isString || ref == "" || len(x) != 1 {
				return nil, fmt.Errorf("%s: a copied value is {$copy: <source.path>} alone", pathOrRoot(path))
			}
			r := ParseRef(ref)
			if opts.Check != nil {
				if err := opts.Check(r); err != nil {
					return nil, fmt.Errorf("%s.$copy: %w", pathOrRoot(path), err)
				}
			}
			return &node{kind: 'c', each: r}, nil
		}
		n := &node{kind: 'o', fields: map[string]*node{}}
		if conds, ok := x["$when"]; ok {
			w, err := compileWhen(conds, path, opts)
			if err != nil {
				return nil, err
			}
			n.when = w
		}
		for k, c := range x {
			if k == "$when" {
				continue
			}
			cn, err := compileNode(c, path+"."+k, opts)
			if err != nil {
				return nil, err
			}
			n.keys = append(n.keys, k)
			n.fields[k] = cn
		}
		sort.Strings(n.keys)
		return n, nil
	case []any:
		n := &node{kind: 'l'}
		for i, c := range x {
			if m, ok := c.(map[string]any); ok {
				if each, ok := m["$each"]; ok {
					en, err := compileEach(m, each, fmt.Sprintf("%s[%d]", path, i), opts)
					if err != nil {
						return nil, err
					}
					n.items = append(n.items, en)
					continue
				}
			}
			cn, err := compileNode(c, fmt.Sprintf("%s[%d]", path, i), opts)
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, cn)
		}
		return n, nil
	case nil:
		return nil, fmt.Errorf("%s: an empty value (leave the element out instead)", pathOrRoot(path))
	default:
		return &node{kind: 'v', scalar: x}, nil
	}
}

// compileEach compiles {$each: ref, $item: tree}; inside, the source item
// is allowed besides what opts allow.
func compileEach(m map[string]any, each any, path string, opts Options) (*node, error) {
	ref, ok := each.(string)
	_, hasWhen := m["$when"]
	if !ok || ref == "" || m["$item"] == nil || len(m) != 2 && !(len(m) == 3 && hasWhen) {
		return nil, fmt.Errorf("%s: a repeated entry is {$each: <source.path>, $item: <value>} and optionally $when: {<source.path>: <condition>}", pathOrRoot(path))
	}
	var when func(Values) bool
	if hasWhen {
		var err error
		if when, err = compileWhen(m["$when"], path, opts); err != nil {
			return nil, err
		}
	}
	r := ParseRef(ref)
	if r.Source != ItemSource && opts.Check != nil {
		if err := opts.Check(r); err != nil {
			return nil, fmt.Errorf("%s.$each: %w", pathOrRoot(path), err)
		}
	}
	inner := opts
	inner.Check = func(r Ref) error {
		if r.Source == ItemSource {
			return nil
		}
		if opts.Check != nil {
			return opts.Check(r)
		}
		return nil
	}
	item, err := compileNode(m["$item"], path+".$item", inner)
	if err != nil {
		return nil, err
	}
	return &node{kind: 'e', each: r, when: when, items: []*node{item}}, nil
}

// compileWhen compiles a $when: {<source.path>: <condition>, …}.
func compileWhen(v any, path string, opts Options) (func(Values) bool, error) {
	conds, isMap := v.(map[string]any)
	if !isMap || len(conds) == 0 {
		return nil, fmt.Errorf("%s.$when: conditions are {<source.path>: <condition>, …}", pathOrRoot(path))
	}
	if opts.When == nil {
		return nil, fmt.Errorf("%s.$when: conditions are not available here", pathOrRoot(path))
	}
	when, err := opts.When(conds, opts.Check)
	if err != nil {
		return nil, fmt.Errorf("%s.$when: %w", pathOrRoot(path), err)
	}
	return when, nil
}

func pathOrRoot(p string) string {
	if p == "" {
		return "(root)"
	}
	return p[1:]
}

// Render builds the value; nil when everything came out empty. Errors
// are those of the templates (an untranslatable value …).
func (t *Tree) Render(v Values) (any, error) {
	return t.root.render(v)
}

func (n *node) render(v Values) (any, error) {
	switch n.kind {
	case 's':
		s, err := n.tmpl.Render(v, nil)
		if err != nil || s == "" {
			return nil, err
		}
		return s, nil
	case 'v':
		return n.scalar, nil
	case 'c':
		c, ok := v.(Copier)
		if !ok {
			return nil, nil
		}
		return c.Copy(n.each)
	case 'o':
		if n.when != nil && !n.when(v) {
			return nil, nil
		}
		out := map[string]any{}
		for _, k := range n.keys {
			c, err := n.fields[k].render(v)
			if err != nil {
				return nil, err
			}
			if c != nil {
				out[k] = c
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	default:
		var out []any
		for _, it := range n.items {
			if it.kind == 'e' {
				l, ok := v.(Lists)
				if !ok || it.when != nil && !it.when(v) {
					continue
				}
				for _, iv := range l.Items(it.each) {
					c, err := it.items[0].render(iv)
					if err != nil {
						return nil, err
					}
					if c != nil {
						out = append(out, c)
					}
				}
				continue
			}
			c, err := it.render(v)
			if err != nil {
				return nil, err
			}
			if c != nil {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
}
