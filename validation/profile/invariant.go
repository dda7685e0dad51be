package profile

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/fhirgate/fhirgate/validation/fhirpathlite"
	"github.com/gofhir/fhirpath"
	"github.com/gofhir/fhirpath/funcs"
	"github.com/gofhir/fhirpath/types"
)

// A profile's invariant may call trace(), which gofhir/fhirpath writes to
// stderr by default: resource content — patient data — would reach the
// logs. Tracing is off for every evaluation in this process.
func init() { funcs.SetTraceLogger(funcs.NullTraceLogger{}) }

// invariant is one ElementDefinition.constraint, compiled once.
type invariant struct {
	key, severity, human, path string
	expr                       *fhirpath.Expression
	lite                       *fhirpathlite.Expr // nil: outside the subset
	names                      []string           // root names it can reach (nil: all)
	// native answers the invariant in Go on the decoded resource where
	// it can (ok false: ask the engines).
	native func(resource map[string]any, instances []any) (holds, ok bool)
}

// nativeInvariants are constraint expressions the subset evaluator
// declines and the FHIRPath engine evaluates slowly, on every resource
// of nearly every profile, answered in Go — exactly, or not at all (ok
// false). Keyed by the expression's text. Held to the engine by
// TestNativeProfileInvariants.
var nativeInvariants = map[string]func(resource map[string]any, instances []any) (bool, bool){
	// ext-1: declined by the subset evaluator for value[x], a choice.
	"extension.exists() != value.exists()": func(_ map[string]any, instances []any) (bool, bool) {
		for _, inst := range instances {
			ext, ok := inst.(map[string]any)
			if !ok {
				return false, false
			}
			hasValue := false
			for k := range ext {
				if len(k) > 5 && strings.HasPrefix(k, "value") && k[5] >= 'A' && k[5] <= 'Z' {
					hasValue = true
				}
			}
			if Present(ext["extension"]) == hasValue {
				return false, true
			}
		}
		return true, true
	},
}

// dom3 is the text dom-3 starts with; a resource without contained
// resources satisfies it (contained.where(…)….empty() of nothing is
// true), which is nearly every resource.
const dom3 = "contained.where("

// Present is FHIRPath's exists() of one decoded JSON value: not absent,
// not an empty list or object.
func Present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

type rawConstraint struct {
	Key        string `json:"key"`
	Severity   string `json:"severity"`
	Human      string `json:"human"`
	Expression string `json:"expression"`
}

// skippedInvariants are base invariants this gateway does not evaluate,
// each with the reason.
var skippedInvariants = map[string]string{
	// ele-1 (every element has a value or children) is what both parsers
	// already enforce: the XML codec refuses an element with neither, and
	// an empty JSON object carries no element. Evaluating it on every
	// element would cost one FHIRPath evaluation per element.
	"ele-1": "enforced by the parsers",
}

// compileInvariants turns the constraints of an element into invariants
// evaluated from the resource root: a constraint E on element path P is
// checked as P.all(E) — true when every instance of P satisfies E (and when
// there is none). Constraints on slices are not evaluated yet; they are
// listed in the profile's warnings. A constraint that does not compile is a
// warning too, never silently dropped.
func (p *Profile) compileInvariants(e *Element, raws []rawConstraint) {
	for _, c := range raws {
		if c.Expression == "" || skippedInvariants[c.Key] != "" {
			continue
		}
		if strings.Contains(e.ID, ":") {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s: constraint %s on a slice is not evaluated yet", e.ID, c.Key))
			continue
		}
		src := c.Expression
		if e.Path != p.Type {
			src = "(" + e.Path + ").all(" + c.Expression + ")"
		}
		expr, err := fhirpath.Compile(src)
		if err != nil {
			p.Warnings = append(p.Warnings, fmt.Sprintf("%s: constraint %s does not compile (%v); not evaluated", e.ID, c.Key, err))
			continue
		}
		sev := c.Severity
		if sev != "warning" {
			sev = "error"
		}
		lite, _ := fhirpathlite.Compile(src)
		inv := invariant{key: c.Key, severity: sev, human: c.Human, path: e.Path, expr: expr, lite: lite, names: RootNames(src)}
		inv.native = nativeInvariants[c.Expression]
		if e.Path == p.Type && strings.HasPrefix(c.Expression, dom3) && strings.HasSuffix(c.Expression, ".empty()") {
			inv.native = func(resource map[string]any, _ []any) (bool, bool) {
				if Present(resource["contained"]) {
					return false, false
				}
				return true, true
			}
		}
		p.invariants = append(p.invariants, inv)
	}
}

// checkInvariants evaluates every invariant on one parsed copy of the
// resource. A constraint that cannot be evaluated is a warning.
func (v *validator) checkInvariants(p *Profile, resource map[string]any) {
	if len(p.invariants) == 0 {
		return
	}
	var raw []byte
	full := func() []byte {
		if raw == nil {
			raw, _ = json.Marshal(resource)
		}
		return raw
	}
	for _, inv := range p.invariants {
		// P.all(E) holds when P has no instance: found on the decoded map
		// without asking the FHIRPath engine, whose member lookups scan the
		// JSON for every possible choice suffix of an absent element.
		var instances []any
		if inv.path != p.Type {
			if instances = instancePathValues(resource, strings.TrimPrefix(inv.path, p.Type+".")); len(instances) == 0 {
				continue
			}
		}
		if inv.native != nil {
			if holds, ok := inv.native(resource, instances); ok {
				if !holds {
					v.add(inv.severity, "invariant", inv.path, "constraint %s failed: %s", inv.key, inv.human)
				}
				continue
			}
		}
		// The subset evaluator answers most invariants exactly on the
		// decoded map; the full engine takes the rest.
		if inv.lite != nil {
			if holds, ok := inv.lite.Holds(resource); ok {
				if !holds {
					v.add(inv.severity, "invariant", inv.path, "constraint %s failed: %s", inv.key, inv.human)
				}
				continue
			}
		}
		res, err := inv.expr.EvaluateWithContext(PrunedContext(resource, inv.names, full))
		if err != nil {
			v.add("warning", "invariant", inv.path, "constraint %s could not be evaluated: %v", inv.key, err)
			continue
		}
		if Violated(res) {
			v.add(inv.severity, "invariant", inv.path, "constraint %s failed: %s", inv.key, inv.human)
		}
	}
}

// Violated reports an invariant's failure: it holds unless it evaluates
// to a single false (empty counts as holding).
func Violated(c types.Collection) bool {
	if len(c) != 1 {
		return false
	}
	b, ok := c[0].(types.Boolean)
	return ok && !b.Bool()
}
