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
		p.invariants = append(p.invariants, invariant{key: c.Key, severity: sev, human: c.Human, path: e.Path, expr: expr, lite: lite, names: RootNames(src)})
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
		if inv.path != p.Type && len(instancePathValues(resource, strings.TrimPrefix(inv.path, p.Type+"."))) == 0 {
			continue
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
