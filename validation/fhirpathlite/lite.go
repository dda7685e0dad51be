// Package fhirpathlite evaluates the small subset of FHIRPath that most
// invariants are written in — paths, exists/empty/not/count/hasValue,
// all/where/exists with criteria, =, !=, ordering comparisons, and, or,
// xor, implies — directly on a resource decoded by encoding/json.
//
// Contract: an expression either evaluates exactly or says it cannot
// (ok == false), and the caller then asks the full FHIRPath engine
// (gofhir/fhirpath). It never guesses. In particular it declines when
//   - a name is absent but a key begins with it and a capital letter (a
//     choice element such as value[x]: the full engine knows the suffixes);
//   - a primitive carries "_name" (id/extensions of a primitive);
//   - a boolean operator meets a non-boolean or a multi-item collection;
//   - strings that look like dates are compared for equality, or dates of
//     different precision are ordered;
//   - anything outside the grammar above appears.
//
// The reason it exists: the full engine resolves every absent member by
// scanning the raw JSON for ~50 choice suffixes, which made invariant
// checking cost more than parsing the resource. Here an absent member is
// one map lookup.
package fhirpathlite

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Expr is a compiled expression, safe for concurrent use.
type Expr struct{ root *node }

// Compile parses src; ok is false when src is outside the subset.
func Compile(src string) (e *Expr, ok bool) {
	p := &parser{toks: lex(src)}
	if p.toks == nil {
		return nil, false
	}
	n := p.expr(0)
	if n == nil || p.failed || p.pos != len(p.toks) {
		return nil, false
	}
	return &Expr{root: n}, true
}

// Holds evaluates the expression as an invariant on a resource: it holds
// unless the result is a single false (an empty result holds). ok is false
// when the expression cannot be evaluated exactly here.
func (e *Expr) Holds(resource map[string]any) (holds, ok bool) {
	ev := getEvaluator()
	defer putEvaluator(ev)
	out := ev.eval(e.root, ev.one(resource))
	if ev.declined {
		return false, false
	}
	if len(out) == 1 {
		if b, isBool := out[0].(bool); isBool && !b {
			return false, true
		}
	}
	return true, true
}

// Strings evaluates the expression on a resource for extraction: the
// values it selects, as FHIR writes them in JSON (numbers with their
// digits, booleans as true/false). ok is false when the expression cannot
// be evaluated exactly here or selects something that is not a primitive.
func (e *Expr) Strings(resource map[string]any) (values []string, ok bool) {
	return e.AppendStrings(nil, resource)
}

// AppendStrings is Strings appending to dst (returned as it was when ok
// is false): a caller that wants one value can pass a buffer on its
// stack.
func (e *Expr) AppendStrings(dst []string, resource map[string]any) (values []string, ok bool) {
	ev := getEvaluator()
	defer putEvaluator(ev)
	out := ev.eval(e.root, ev.one(resource))
	if ev.declined {
		return dst, false
	}
	values = dst
	if values == nil {
		values = make([]string, 0, len(out))
	}
	for _, v := range out {
		switch x := v.(type) {
		case string:
			values = append(values, x)
		case bool:
			values = append(values, strconv.FormatBool(x))
		case json.Number:
			values = append(values, string(x))
		case int64:
			values = append(values, strconv.FormatInt(x, 10))
		default:
			return dst, false
		}
	}
	return values, true
}

// node kinds
type kind int

const (
	kMember kind = iota // input.name
	kFunc               // input.fn(args)
	kBinary             // left op right
	kString
	kInt
	kBool
	kEmpty // {}
	kThis  // $this
)

type node struct {
	kind  kind
	name  string // member, function or operator
	ext   string // a member's primitive extension: "_" + name
	lit   any    // a string or integer literal's value, boxed once at compile time
	input *node  // nil: the focus ($this of the enclosing scope)
	args  []*node
	str   string
	num   int64
	bool  bool
}

// evaluator holds one evaluation's state; declined is set as soon as the
// subset cannot answer exactly.
type evaluator struct {
	declined bool
	// arena holds the collections of one evaluation: each is carved out
	// of it with its capacity fixed, so they never overlap and an
	// evaluation costs a few allocations rather than one per step.
	arena []any
}

// evaluators keeps evaluators with their arenas between evaluations: a
// request evaluates a template expression per backend field, and each
// would otherwise start a new arena.
var evaluators = sync.Pool{New: func() any { return new(evaluator) }}

func getEvaluator() *evaluator { return evaluators.Get().(*evaluator) }

// putEvaluator returns ev once nothing refers to its arena any more (the
// results have been copied out): the arena is cleared, so the pool keeps
// no resource alive.
func putEvaluator(ev *evaluator) {
	clear(ev.arena)
	ev.arena = ev.arena[:0]
	if cap(ev.arena) > maxKeptArena {
		ev.arena = nil
	}
	ev.declined = false
	evaluators.Put(ev)
}

// maxKeptArena is the largest arena (in items) an evaluator keeps in the
// pool: an evaluation of a resource with huge lists does not leave its
// arena behind.
const maxKeptArena = 4096

// make returns an empty collection with room for n items. A full arena
// is replaced by one twice its size, so that a pooled evaluator soon has
// one that holds a whole evaluation and evaluations allocate nothing.
func (ev *evaluator) make(n int) []any {
	if cap(ev.arena)-len(ev.arena) < n {
		ev.arena = make([]any, 0, max(32, 2*cap(ev.arena), n))
	}
	start := len(ev.arena)
	ev.arena = ev.arena[:start+n]
	return ev.arena[start : start : start+n]
}

// one returns the collection of the single item x.
func (ev *evaluator) one(x any) []any { return append(ev.make(1), x) }

func (ev *evaluator) decline() []any { ev.declined = true; return nil }

// eval evaluates n with focus as its implicit input.
func (ev *evaluator) eval(n *node, focus []any) []any {
	if ev.declined {
		return nil
	}
	switch n.kind {
	case kString, kInt:
		return ev.one(n.lit)
	case kBool:
		return ev.one(n.bool)
	case kEmpty:
		return nil
	case kThis:
		return focus
	case kMember:
		in := focus
		if n.input != nil {
			in = ev.eval(n.input, focus)
		} else if n.name[0] >= 'A' && n.name[0] <= 'Z' {
			// A type name at the start of a path selects the resource
			// when it is of that type; other type names are declined.
			if len(focus) == 1 {
				if m, ok := focus[0].(map[string]any); ok && m["resourceType"] == n.name {
					return focus
				}
			}
			return ev.decline()
		}
		return ev.member(in, n.name, n.ext)
	case kFunc:
		in := focus
		if n.input != nil {
			in = ev.eval(n.input, focus)
		}
		return ev.call(n, in)
	case kBinary:
		return ev.binary(n, focus)
	}
	return ev.decline()
}

// member navigates to name in every object of in.
func (ev *evaluator) member(in []any, name, extName string) []any {
	if name == "resourceType" {
		return ev.decline()
	}
	// First pass: what declines, and how many items there are. The values
	// of the first few objects are kept, so that the common focus of one
	// object is looked up once.
	var kept [4]any
	n := 0
	for i, item := range in {
		obj, ok := item.(map[string]any)
		if !ok {
			continue // a primitive has no members in JSON form
		}
		v, decline := memberValue(obj, name, extName)
		if decline {
			return ev.decline()
		}
		if i < len(kept) {
			kept[i] = v
		}
		switch x := v.(type) {
		case nil:
		case []any:
			n += len(x)
		default:
			n++
		}
	}
	if n == 0 {
		return nil
	}
	out := ev.make(n)
	for i, item := range in {
		var v any
		if i < len(kept) {
			v = kept[i]
		} else if obj, ok := item.(map[string]any); ok {
			v = obj[name]
		}
		switch x := v.(type) {
		case nil:
		case []any:
			out = append(out, x...)
		default:
			out = append(out, x)
		}
	}
	return out
}

// memberValue is obj's value for name (nil when absent), or decline when
// the subset cannot say exactly: the name carries a primitive extension,
// it is absent but a choice element may stand for it, or it holds null.
func memberValue(obj map[string]any, name, extName string) (v any, decline bool) {
	if _, ext := obj[extName]; ext {
		return nil, true
	}
	v, ok := obj[name]
	if !ok {
		for k := range obj {
			if len(k) > len(name) && strings.HasPrefix(k, name) && k[len(name)] >= 'A' && k[len(name)] <= 'Z' {
				return nil, true
			}
		}
		return nil, false
	}
	if list, isList := v.([]any); isList {
		for _, x := range list {
			if x == nil {
				return nil, true
			}
		}
		return v, false
	}
	return v, v == nil
}

func (ev *evaluator) call(n *node, in []any) []any {
	switch n.name {
	case "exists":
		if len(n.args) == 1 {
			in = ev.where(n.args[0], in)
		}
		return ev.one(len(in) > 0)
	case "empty":
		return ev.one(len(in) == 0)
	case "count":
		return ev.one(int64(len(in)))
	case "not":
		b, ok := ev.boolean(in)
		if !ok {
			return nil
		}
		return ev.one(!b)
	case "hasValue":
		// The specification says false for several items; the full
		// engine says true when any has a value: declined.
		switch {
		case len(in) == 0:
			return ev.one(false)
		case len(in) > 1:
			return ev.decline()
		}
		_, complex := in[0].(map[string]any)
		return ev.one(!complex)
	case "where":
		return ev.where(n.args[0], in)
	case "all":
		one := ev.make(1)[:1]
		for _, item := range in {
			one[0] = item
			r := ev.eval(n.args[0], one)
			if len(r) == 0 {
				return ev.one(false)
			}
			b, isBool := r[0].(bool)
			if !isBool {
				return ev.decline()
			}
			if !b {
				return ev.one(false)
			}
		}
		return ev.one(true)
	}
	return ev.decline()
}

// where keeps the items for which criteria is a single true.
func (ev *evaluator) where(criteria *node, in []any) []any {
	out := ev.make(len(in))
	one := ev.make(1)[:1]
	for _, item := range in {
		// The criteria only read their focus: one collection serves
		// every item.
		one[0] = item
		r := ev.eval(criteria, one)
		if len(r) == 0 {
			continue
		}
		if len(r) != 1 {
			return ev.decline()
		}
		b, isBool := r[0].(bool)
		if !isBool {
			return ev.decline()
		}
		if b {
			out = append(out, item)
		}
	}
	return out
}

// boolean is FHIRPath's singleton evaluation restricted to what the subset
// answers exactly: empty → (false, false) without declining; one boolean →
// its value; anything else declines.
func (ev *evaluator) boolean(c []any) (value, present bool) {
	if len(c) == 0 {
		return false, false
	}
	if len(c) == 1 {
		if b, ok := c[0].(bool); ok {
			return b, true
		}
	}
	ev.decline()
	return false, false
}

func (ev *evaluator) binary(n *node, focus []any) []any {
	l := ev.eval(n.args[0], focus)
	switch n.name {
	case "and", "or", "implies", "xor":
		return ev.logic(n, l, focus)
	}
	r := ev.eval(n.args[1], focus)
	if ev.declined {
		return nil
	}
	if len(l) == 0 || len(r) == 0 {
		return nil
	}
	if len(l) != 1 || len(r) != 1 {
		return ev.decline()
	}
	switch n.name {
	case "=", "!=":
		eq, ok := equal(l[0], r[0])
		if !ok {
			return ev.decline()
		}
		return ev.one(eq == (n.name == "="))
	default:
		c, ok := compare(l[0], r[0])
		if !ok {
			return ev.decline()
		}
		switch n.name {
		case "<":
			return ev.one(c < 0)
		case "<=":
			return ev.one(c <= 0)
		case ">":
			return ev.one(c > 0)
		default: // ">="
			return ev.one(c >= 0)
		}
	}
}

// logic is FHIRPath's three-valued and/or/xor/implies.
func (ev *evaluator) logic(n *node, l, focus []any) []any {
	lv, lok := ev.boolean(l)
	if ev.declined {
		return nil
	}
	// Decided by the left operand alone.
	switch {
	case n.name == "and" && lok && !lv, n.name == "or" && lok && lv:
		return ev.one(lv)
	case n.name == "implies" && lok && !lv:
		return ev.one(true)
	}
	rv, rok := ev.boolean(ev.eval(n.args[1], focus))
	if ev.declined {
		return nil
	}
	switch n.name {
	case "and":
		if rok && !rv {
			return ev.one(false)
		}
		if lok && rok {
			return ev.one(true)
		}
	case "or":
		if rok && rv {
			return ev.one(true)
		}
		if lok && rok {
			return ev.one(false)
		}
	case "xor":
		if lok && rok {
			return ev.one(lv != rv)
		}
	case "implies":
		if lok { // left is true here
			if rok {
				return ev.one(rv)
			}
			return nil
		}
		if rok && rv {
			return ev.one(true)
		}
	}
	return nil
}

// equal compares two singletons; ok is false where the full engine's typing
// (dates recognised from strings, decimals) could answer differently.
func equal(a, b any) (eq, ok bool) {
	switch x := a.(type) {
	case bool:
		y, isBool := b.(bool)
		return x == y, isBool
	case string:
		y, isString := b.(string)
		if !isString || looksTemporal(x) || looksTemporal(y) {
			return false, false
		}
		return x == y, true
	}
	xi, ok1 := integer(a)
	yi, ok2 := integer(b)
	return xi == yi, ok1 && ok2
}

// compare orders two integers, or two dates/dateTimes of the same precision.
func compare(a, b any) (int, bool) {
	if xi, ok := integer(a); ok {
		if yi, ok := integer(b); ok {
			switch {
			case xi < yi:
				return -1, true
			case xi > yi:
				return 1, true
			}
			return 0, true
		}
		return 0, false
	}
	xs, ok1 := a.(string)
	ys, ok2 := b.(string)
	if !ok1 || !ok2 {
		return 0, false
	}
	xt, xp := temporal(xs)
	yt, yp := temporal(ys)
	if xp == 0 || xp != yp {
		return 0, false
	}
	return xt.Compare(yt), true
}

func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return 0, false
		}
		i, err := strconv.ParseInt(string(x), 10, 64)
		return i, err == nil
	}
	return 0, false
}

// looksTemporal: strings the full engine may read as a date or dateTime
// (it tries those that begin with a four-digit year).
func looksTemporal(s string) bool {
	if len(s) < 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) == 4 || s[4] == '-' || s[4] == 'T'
}

var (
	fhirDate     = regexp.MustCompile(`^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$`)
	fhirDateTime = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`)
)

// temporal parses a FHIR date or dateTime; precision 0 when it is neither,
// 1 year, 2 month, 3 day, 4 seconds (fractions are the same precision).
func temporal(s string) (time.Time, int) {
	// time.Parse is lenient (one-digit hours …): only FHIR's own lexical
	// forms are read here; anything else is left to the full engine.
	if !fhirDate.MatchString(s) && !fhirDateTime.MatchString(s) {
		return time.Time{}, 0
	}
	layouts := []struct {
		layout    string
		precision int
	}{{"2006", 1}, {"2006-01", 2}, {"2006-01-02", 3}, {time.RFC3339Nano, 4}}
	for _, l := range layouts {
		if l.precision < 4 && len(s) != len(l.layout) {
			continue
		}
		if t, err := time.Parse(l.layout, s); err == nil {
			return t, l.precision
		}
	}
	return time.Time{}, 0
}
