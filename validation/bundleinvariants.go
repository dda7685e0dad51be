package validation

import "github.com/fhirgate/fhirgate/validation/profile"

// Native forms of the Bundle invariants whose FHIRPath the general engine
// evaluates slowly (it types every entry's resource to walk entry.all(…)):
// ~2 ms each for a Bundle of a few entries, most of a built searchset's
// validation. Each function is the invariant's expression, exactly, over
// the decoded Bundle; keyed by the expression's text, so a version whose
// text differs takes the general engine. Held to the engine's answers by
// TestNativeBundleInvariants.
var nativeInvariants = map[string]func(bundle map[string]any) bool{
	// bdl-3
	"entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or %resource.type = 'history'))": func(b map[string]any) bool {
		return everyEntry(b, func(e map[string]any) bool {
			return profile.Present(e["request"]) == bundleTypeIn(b, "batch", "transaction", "history")
		})
	},
	// bdl-4
	"entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = 'transaction-response' or %resource.type = 'history'))": func(b map[string]any) bool {
		return everyEntry(b, func(e map[string]any) bool {
			return profile.Present(e["response"]) == bundleTypeIn(b, "batch-response", "transaction-response", "history")
		})
	},
	// bdl-7: fullUrl and versionId together unique (a string
	// concatenation: an absent versionId is "").
	"(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()": func(b map[string]any) bool {
		if bundleTypeIn(b, "history") {
			return true
		}
		seen := map[string]bool{}
		distinct := true
		everyEntry(b, func(e map[string]any) bool {
			u, ok := e["fullUrl"].(string)
			if !ok {
				return true
			}
			key := u + "\x00"
			if r, ok := e["resource"].(map[string]any); ok {
				if m, ok := r["meta"].(map[string]any); ok {
					if v, ok := m["versionId"].(string); ok {
						key += v
					}
				}
			}
			if seen[key] {
				distinct = false
			}
			seen[key] = true
			return true
		})
		return distinct
	},
	// bdl-11
	"type = 'document' implies entry.first().resource.is(Composition)": func(b map[string]any) bool {
		return !bundleTypeIn(b, "document") || firstEntryIs(b, "Composition")
	},
	// bdl-12
	"type = 'message' implies entry.first().resource.is(MessageHeader)": func(b map[string]any) bool {
		return !bundleTypeIn(b, "message") || firstEntryIs(b, "MessageHeader")
	},
}

func bundleTypeIn(b map[string]any, types ...string) bool {
	t, _ := b["type"].(string)
	for _, x := range types {
		if t == x {
			return true
		}
	}
	return false
}

// everyEntry is entry.all(f): true for no entries.
func everyEntry(b map[string]any, f func(map[string]any) bool) bool {
	entries, _ := b["entry"].([]any)
	for _, e := range entries {
		m, _ := e.(map[string]any)
		if m != nil && !f(m) {
			return false
		}
	}
	return true
}

// firstEntryIs is entry.first().resource.is(T), with FHIRPath's empty
// propagation: no first entry or no resource is empty, which implies
// treats as not false.
func firstEntryIs(b map[string]any, resourceType string) bool {
	entries, _ := b["entry"].([]any)
	if len(entries) == 0 {
		return true
	}
	m, _ := entries[0].(map[string]any)
	r, _ := m["resource"].(map[string]any)
	if r == nil {
		return true
	}
	return r["resourceType"] == resourceType
}
