package profile

import (
	"encoding/json"
	"strings"

	"github.com/gofhir/fhirpath/eval"
)

// Pruning the resource an invariant is evaluated on.
//
// gofhir/fhirpath resolves a member it does not find directly by trying
// every choice-type suffix against the raw JSON of the object, so each
// absent element costs ~50 key scans of the whole object — for a root-level
// invariant, of the whole resource. An expression can only reach the root
// properties it names, so evaluating it on a copy holding just those (and
// resourceType) gives the same answer on a few bytes. Expressions that can
// reach everything (%resource, %context, descendants(), children(),
// repeat(), resolve(), …) get the whole resource.

// wholeTree marks expressions that may reach properties they do not name.
var wholeTree = []string{"%", "descendants", "children", "repeat", "resolve", "allFields", "trace", "$this", "conformsTo", "memberOf"}

// keywords of FHIRPath that look like identifiers.
var keywords = map[string]bool{"and": true, "or": true, "xor": true, "implies": true, "is": true, "as": true,
	"div": true, "mod": true, "in": true, "contains": true, "true": true, "false": true}

// RootNames returns the identifiers an expression uses (candidates for
// root properties), or nil when the expression may reach the whole tree.
func RootNames(src string) []string {
	for _, w := range wholeTree {
		if strings.Contains(src, w) {
			return nil
		}
	}
	var names []string
	seen := map[string]bool{}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\'':
			// string literal: skip to the closing quote
			j := i + 1
			for j < len(src) && src[j] != '\'' {
				if src[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1
		case c == '`':
			j := strings.IndexByte(src[i+1:], '`')
			if j < 0 {
				return nil
			}
			name := src[i+1 : i+1+j]
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
			i += j + 2
		case c == '@':
			// date/time literal
			j := i + 1
			for j < len(src) && (isIdentByte(src[j]) || strings.IndexByte(":-+.TZ", src[j]) >= 0) {
				j++
			}
			i = j
		case isIdentByte(c) && !(c >= '0' && c <= '9'):
			j := i
			for j < len(src) && isIdentByte(src[j]) {
				j++
			}
			name := src[i:j]
			if !keywords[name] && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
			i = j
		default:
			i++
		}
	}
	return names
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// PrunedContext returns an evaluation context holding only the root
// properties of resource that names can reach (a name reaches the property
// of that name and, for choice types, name+Suffix); names nil means the
// whole resource, given as full (its JSON).
func PrunedContext(resource map[string]any, names []string, full func() []byte) *eval.Context {
	if names == nil {
		return eval.NewContext(full())
	}
	small := map[string]any{"resourceType": resource["resourceType"]}
	for key, v := range resource {
		base := strings.TrimPrefix(key, "_")
		for _, n := range names {
			if base == n || (strings.HasPrefix(base, n) && len(base) > len(n) && base[len(n)] >= 'A' && base[len(n)] <= 'Z') {
				small[key] = v
				break
			}
		}
	}
	raw, _ := json.Marshal(small)
	return eval.NewContext(raw)
}
