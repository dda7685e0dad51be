package validation

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
)

// localReferences resolves, for FHIRPath's resolve() in invariants, the
// references that point inside the resource being validated: "#id" to a
// contained resource, and inside a Bundle an entry's fullUrl or its
// "Type/id". Nothing is fetched. A reference it cannot resolve (outside
// the resource, or ambiguous: two contained resources with one id in
// different containers) is remembered, so that an invariant that fails
// with it can be reported as not checked (a warning) instead of failed.
type localReferences struct {
	targets    map[string]map[string]any // reference → resource; nil value: ambiguous
	unresolved []string
}

var errUnresolvable = errors.New("reference does not resolve inside the resource")

func newLocalReferences(res map[string]any) *localReferences {
	l := &localReferences{targets: map[string]map[string]any{}}
	l.collect(res)
	return l
}

func (l *localReferences) add(ref string, res map[string]any) {
	if _, seen := l.targets[ref]; seen {
		l.targets[ref] = nil // ambiguous
		return
	}
	l.targets[ref] = res
}

// collect walks the tree: every contained resource under "#id", every
// Bundle entry under its fullUrl and Type/id.
func (l *localReferences) collect(v any) {
	switch x := v.(type) {
	case map[string]any:
		if contained, ok := x["contained"].([]any); ok {
			for _, c := range contained {
				if r, ok := c.(map[string]any); ok {
					if id, ok := r["id"].(string); ok && id != "" {
						l.add("#"+id, r)
					}
				}
			}
		}
		if x["resourceType"] == "Bundle" {
			if entries, ok := x["entry"].([]any); ok {
				for _, e := range entries {
					entry, _ := e.(map[string]any)
					r, _ := entry["resource"].(map[string]any)
					if r == nil {
						continue
					}
					if full, ok := entry["fullUrl"].(string); ok && full != "" {
						l.add(full, r)
					}
					typ, _ := r["resourceType"].(string)
					if id, ok := r["id"].(string); ok && typ != "" && id != "" {
						l.add(typ+"/"+id, r)
					}
				}
			}
		}
		for _, c := range x {
			l.collect(c)
		}
	case []any:
		for _, c := range x {
			l.collect(c)
		}
	}
}

// Resolve implements the FHIRPath engine's resolver. A versioned or
// absolute reference to a Bundle entry is matched by its Type/id tail
// when the entry was listed that way.
func (l *localReferences) Resolve(_ context.Context, ref string) ([]byte, error) {
	r, ok := l.targets[ref]
	if !ok && !strings.HasPrefix(ref, "#") {
		tail := ref
		if i := strings.Index(tail, "/_history/"); i >= 0 {
			tail = tail[:i]
		}
		if parts := strings.Split(tail, "/"); len(parts) >= 2 {
			r, ok = l.targets[parts[len(parts)-2]+"/"+parts[len(parts)-1]]
		}
	}
	if !ok || r == nil {
		l.unresolved = append(l.unresolved, ref)
		return nil, errUnresolvable
	}
	return json.Marshal(r)
}
