package profile

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ConceptMap is a FHIR ConceptMap (STU3 or R4: the same group / element /
// target shape) reduced to what value translation needs: source code →
// target code, and what happens to a code no element lists.
type ConceptMap struct {
	URL, Name string
	codes     map[string]string
	// unmapped: "" (no translation), "provided" (the code itself) or
	// "fixed" (fixedCode).
	unmapped  string
	fixedCode string
}

// ParseConceptMap reads a ConceptMap. A source code is translated to the
// first target whose equivalence is not unmatched or disjoint (STU3, R4)
// — relationship not-related-to in later versions; the first group that
// lists a code wins. group.unmapped: provided and fixed are supported;
// other-map is refused (it would need a second map).
func ParseConceptMap(data []byte) (*ConceptMap, error) {
	var cm struct {
		ResourceType string `json:"resourceType"`
		URL, Name    string
		Group        []struct {
			Element []struct {
				Code   string
				Target []struct {
					Code         string
					Equivalence  string
					Relationship string
				}
			}
			Unmapped *struct {
				Mode, Code string
			}
		}
	}
	if err := json.Unmarshal(data, &cm); err != nil {
		return nil, err
	}
	if cm.ResourceType != "ConceptMap" {
		return nil, fmt.Errorf("not a ConceptMap but %q", cm.ResourceType)
	}
	m := &ConceptMap{URL: cm.URL, Name: cm.Name, codes: map[string]string{}}
	for gi, g := range cm.Group {
		for _, e := range g.Element {
			if _, seen := m.codes[e.Code]; seen || e.Code == "" {
				continue
			}
			for _, t := range e.Target {
				switch strings.ToLower(t.Equivalence + t.Relationship) {
				case "unmatched", "disjoint", "not-related-to":
					continue
				}
				if t.Code != "" {
					m.codes[e.Code] = t.Code
					break
				}
			}
		}
		if u := g.Unmapped; u != nil && m.unmapped == "" {
			switch u.Mode {
			case "provided":
				m.unmapped = "provided"
			case "fixed":
				if u.Code == "" {
					return nil, fmt.Errorf("ConceptMap %s: group[%d].unmapped fixed without a code", cm.URL, gi)
				}
				m.unmapped, m.fixedCode = "fixed", u.Code
			default:
				return nil, fmt.Errorf("ConceptMap %s: group[%d].unmapped mode %q is not supported (provided, fixed)", cm.URL, gi, u.Mode)
			}
		}
	}
	return m, nil
}

// Map translates code; ok is false when the map has no translation and no
// unmapped rule covers it.
func (m *ConceptMap) Map(code string) (string, bool) {
	if t, ok := m.codes[code]; ok {
		return t, true
	}
	switch m.unmapped {
	case "provided":
		return code, true
	case "fixed":
		return m.fixedCode, true
	}
	return "", false
}

// ConceptMap finds a ConceptMap of the set by canonical URL (|version
// ignored) or by name, or nil.
func (s *Set) ConceptMap(ref string) *ConceptMap {
	if i := strings.IndexByte(ref, '|'); i >= 0 {
		ref = ref[:i]
	}
	for _, pkg := range s.packages {
		if m := pkg.conceptMaps[ref]; m != nil {
			return m
		}
	}
	return nil
}
