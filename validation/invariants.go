package validation

import (
	"bytes"
	"github.com/fhirgate/fhirgate/validation/jsontree"
	"strings"
	"sync"

	"github.com/fhirgate/fhirgate/validation/fhirpathlite"
	"github.com/fhirgate/fhirgate/validation/fhirxml"
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
	expr  *fhirpath.Expression
	lite  *fhirpathlite.Expr // nil: outside the subset
	names []string
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
	c := &compiledExpr{names: profile.RootNames(src)}
	if e, err := fhirpath.Compile(src); err == nil {
		c.expr = e
		c.lite, _ = fhirpathlite.Compile(src)
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
func baseInvariantIssues(v Version, data []byte, res map[string]any) []Issue {
	if res == nil {
		return nil
	}
	var issues []Issue
	full := func() []byte { return data }
	fhirxml.ModelFor(v).Invariants(res, func(path string, exprs, ambiguous []string) {
		for _, expr := range exprs {
			c := compiledInvariant(path, expr)
			if c.expr == nil {
				continue
			}
			// The subset evaluator is exact where it answers (it declines
			// choice elements, so no sibling can be misread there).
			if c.lite != nil {
				if holds, ok := c.lite.Holds(res); ok {
					if !holds {
						issues = append(issues, Issue{Severity: "error", Code: "invariant", Expression: path, Text: "core invariant failed: " + expr})
					}
					continue
				}
			}
			out, err := c.expr.EvaluateWithContext(profile.PrunedContext(res, c.names, full))
			switch {
			case err != nil:
				issues = append(issues, Issue{Severity: "warning", Code: "invariant", Expression: path, Text: "a core invariant could not be evaluated: " + expr})
			case profile.Violated(out):
				if name := mentions(expr, ambiguous); name != "" {
					// gofhir/fhirpath resolves an absent element by trying
					// choice suffixes, so it may have read a sibling such
					// as responseCode as "response": not an error we can
					// stand behind.
					issues = append(issues, Issue{Severity: "warning", Code: "invariant", Expression: path,
						Text: "core invariant may have failed (not certain: the FHIRPath engine can read a sibling of " + name + " as " + name + "): " + expr})
					continue
				}
				issues = append(issues, Issue{Severity: "error", Code: "invariant", Expression: path, Text: "core invariant failed: " + expr})
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
