package validation

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/fhirgate/fhirgate/validation/jsontree"

	"github.com/fhirgate/fhirgate/validation/fhirpathlite"
	"github.com/fhirgate/fhirgate/validation/fhirxml"
	"github.com/fhirgate/fhirgate/validation/location"
	"github.com/fhirgate/fhirgate/validation/profile"
	"github.com/gofhir/fhirpath"
)

// The core definitions' invariants that google/fhir annotates on its
// messages but jsonformat does not evaluate (Period per-1, Task inv-1,
// RiskAssessment ras-2 …) are evaluated here for every element present.
// An invariant I on element path P is checked as P.all(I); compiled
// expressions are cached per (P, I), so steady traffic compiles nothing.

// FHIRPath trace() output is switched off by the profile package, which
// this package imports: it would print resource content.

// compiledExpr is a cached invariant: the expression (nil when it does not
// compile) and the root names it can reach (see profile.RootNames).
type compiledExpr struct {
	expr *fhirpath.Expression
	lite *fhirpathlite.Expr // nil: outside the subset
	// native, for a few Bundle invariants, is the expression in Go
	// (bundleinvariants.go).
	native func(map[string]any) bool
	names  []string
	// resolves: the expression calls resolve(), answered from the
	// resource itself (localReferences).
	resolves bool
}

var compiled sync.Map // invariantKey → *compiledExpr

// invariantKey is an invariant at a path: a struct, so a lookup builds no
// string.
type invariantKey struct{ path, expr string }

func compiledInvariant(path, expr string) *compiledExpr {
	key := invariantKey{path, expr}
	if e, ok := compiled.Load(key); ok {
		return e.(*compiledExpr)
	}
	src := expr
	if i := bytes.IndexByte([]byte(path), '.'); i >= 0 {
		src = "(" + path + ").all(" + expr + ")"
	}
	c := &compiledExpr{names: profile.RootNames(src), resolves: strings.Contains(src, "resolve(")}
	if e, err := fhirpath.Compile(src); err == nil {
		c.expr = e
		c.lite, _ = fhirpathlite.Compile(src)
		if path == "Bundle" {
			c.native = nativeInvariants[expr]
		}
	}
	// Copies: the path may be a substring of a request body, which the
	// cache would keep alive.
	compiled.Store(invariantKey{strings.Clone(path), strings.Clone(expr)}, c)
	return c
}

// decodeJSON decodes a resource keeping numbers' digits; nil when data is
// not a JSON object.
func decodeJSON(data []byte) map[string]any {
	v, err := jsontree.DecodeFirst(data)
	if err != nil {
		return nil
	}
	res, _ := v.(map[string]any)
	return res
}

// decodeJSONStrict is decodeJSON for the fast path: the same tree
// (jsontree is held to encoding/json by its fuzz target), but nothing may
// follow the object, it may nest at most MaxJSONDepth levels and no object
// may give a name twice (decoding would hide the first value).
func decodeJSONStrict(data []byte) map[string]any {
	res, err := jsontree.DecodeObjectUnique(data, MaxJSONDepth)
	if err != nil {
		return nil
	}
	return res
}

// baseInvariantIssues evaluates the core invariants of a resource given as
// JSON and decoded. An invariant the engine cannot evaluate is a warning.
// text gives the resource's JSON text, asked for only when an invariant
// needs the whole resource.
func baseInvariantIssues(v Version, text func() []byte, res map[string]any) []Issue {
	return invariantIssues(v, text, res, true)
}

// invariantIssues is baseInvariantIssues; holds false says res is known
// to hold no resource of its own (the model accepted it and met no
// resource container), so the walk looking for them is skipped.
func invariantIssues(v Version, text func() []byte, res map[string]any, holds bool) []Issue {
	if res == nil {
		return nil
	}
	var refs *localReferences // built when an invariant calls resolve()
	issues := resourceInvariantIssues(v, res, text, "", &refs, res)
	if !holds {
		return issues
	}
	// Resources inside this one (contained, Bundle entries, Parameters)
	// are checked against their own type's invariants; issues name them
	// by their place (Bundle.entry[1].resource.participant).
	eachNestedResource(res, rootType(res), func(place string, nested map[string]any) {
		full := func() []byte { b, _ := json.Marshal(nested); return b }
		issues = append(issues, resourceInvariantIssues(v, nested, full, place, &refs, res)...)
	})
	return issues
}

func rootType(res map[string]any) string {
	t, _ := res["resourceType"].(string)
	return t
}

// eachNestedResource calls f for every resource below root (any object
// with a resourceType), with its FHIRPath place (rootPath, then
// .key and [i] steps), in place order. The walk allocates nothing until it
// finds one: places are written only for what it finds, as most bodies
// hold no nested resource.
func eachNestedResource(root map[string]any, rootPath string, f func(place string, res map[string]any)) {
	type found struct {
		place string
		res   map[string]any
	}
	var hits []found
	var stack []location.Step
	var walk func(obj map[string]any)
	visit := func(c any) {
		if o, ok := c.(map[string]any); ok {
			if _, ok := o["resourceType"].(string); ok {
				hits = append(hits, found{location.String(rootPath, stack, ""), o})
			}
			walk(o)
		}
	}
	walk = func(obj map[string]any) {
		for key, c := range obj {
			if key == "resourceType" || strings.HasPrefix(key, "_") {
				continue
			}
			switch y := c.(type) {
			case map[string]any:
				stack = append(stack, location.Step{Name: key, Index: -1})
				visit(y)
				stack = stack[:len(stack)-1]
			case []any:
				for i, item := range y {
					stack = append(stack, location.Step{Name: key, Index: i})
					visit(item)
					stack = stack[:len(stack)-1]
				}
			}
		}
	}
	walk(root)
	slices.SortFunc(hits, func(a, b found) int { return strings.Compare(a.place, b.place) })
	for _, h := range hits {
		f(h.place, h.res)
	}
}

// step is one element of a place: a key, and an index for a list item
// (-1 for none).
// resourceInvariantIssues evaluates one resource's core invariants; place
// is its location below the root ("" for the root itself), root the
// resource whose references resolve() may follow.
func resourceInvariantIssues(v Version, res map[string]any, full func() []byte, place string, refs **localReferences, root map[string]any) []Issue {
	var issues []Issue
	at := func(path string) string {
		if place == "" {
			return path
		}
		_, rest, _ := strings.Cut(path, ".")
		if rest == "" {
			return place
		}
		return place + "." + rest
	}
	fhirxml.ModelFor(v).Invariants(res, func(path string, exprs, ambiguous []string) {
		for _, expr := range exprs {
			c := compiledInvariant(path, expr)
			if c.expr == nil {
				continue
			}
			if c.native != nil {
				if !c.native(res) {
					issues = append(issues, Issue{Severity: "error", Code: "invariant", Expression: at(path), Text: "core invariant failed: " + expr})
				}
				continue
			}
			// The subset evaluator is exact where it answers (it declines
			// choice elements, so no sibling can be misread there).
			if c.lite != nil {
				if holds, ok := c.lite.Holds(res); ok {
					if !holds {
						issues = append(issues, Issue{Severity: "error", Code: "invariant", Expression: at(path), Text: "core invariant failed: " + expr})
					}
					continue
				}
			}
			ctx := profile.PrunedContext(res, c.names, full)
			var seen int // unresolved references before this evaluation
			if c.resolves {
				if *refs == nil {
					*refs = newLocalReferences(root)
				}
				seen = len((*refs).unresolved)
				ctx.SetResolver(*refs)
			}
			out, err := c.expr.EvaluateWithContext(ctx)
			switch {
			case err != nil:
				issues = append(issues, Issue{Severity: "warning", Code: "invariant", Expression: at(path), Text: "a core invariant could not be evaluated: " + expr})
			case profile.Violated(out):
				if c.resolves && len((*refs).unresolved) > seen {
					// resolve() found nothing for a reference that points
					// outside the resource: the invariant is not checked,
					// which is not a failure of the resource.
					issues = append(issues, Issue{Severity: "warning", Code: "invariant", Expression: at(path),
						Text: "core invariant not checked: reference " + (*refs).unresolved[seen] + " cannot be resolved inside the resource: " + expr})
					continue
				}
				if name := mentions(expr, ambiguous); name != "" {
					// gofhir/fhirpath resolves an absent element by trying
					// choice suffixes, so it may have read a sibling such
					// as responseCode as "response": not an error we can
					// stand behind.
					issues = append(issues, Issue{Severity: "warning", Code: "invariant", Expression: at(path),
						Text: "core invariant may have failed (not certain: the FHIRPath engine can read a sibling of " + name + " as " + name + "): " + expr})
					continue
				}
				issues = append(issues, Issue{Severity: "error", Code: "invariant", Expression: at(path), Text: "core invariant failed: " + expr})
			}
		}
	})
	return issues
}

// mentions returns the first name that expr uses as an identifier (not
// followed by a letter or digit), or "".
func mentions(expr string, names []string) string {
	for _, n := range names {
		for i := strings.Index(expr, n); i >= 0; {
			end := i + len(n)
			before := i == 0 || !isIdent(expr[i-1])
			after := end >= len(expr) || !isIdent(expr[end])
			if before && after {
				return n
			}
			next := strings.Index(expr[end:], n)
			if next < 0 {
				break
			}
			i = end + next
		}
	}
	return ""
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// textOf is a resource's JSON text held already.
func textOf(data []byte) func() []byte { return func() []byte { return data } }
