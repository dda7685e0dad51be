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
type Tree struct {
	root node
}

type node struct {
	tmpl   *Template // a string leaf
	scalar any       // another leaf (bool, number) as written
	keys   []string  // an object's keys, sorted (rendering is deterministic)
	fields map[string]*node
	items  []*node // a list
	kind   byte    // 's' template, 'v' scalar, 'o' object, 'l' list
}

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
		n := &node{kind: 'o', fields: map[string]*node{}}
		for k, c := range x {
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
	case 'o':
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
