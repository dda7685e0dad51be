package profile

import (
	"encoding/json"
	"strings"
	"sync"
)

// valueSet is the set of codes of one ValueSet, expanded once at load from
// the ValueSets and CodeSystems of the package.
type valueSet struct {
	url   string
	codes map[string]bool // "system|code" and "|code" (for bare codes)
}

func (vs *valueSet) has(system, code string) bool {
	if system == "" {
		return vs.codes["|"+code]
	}
	return vs.codes[system+"|"+code]
}

// terminology holds the raw definitions of a package until expansion.
type terminology struct {
	valueSets   map[string]json.RawMessage
	codeSystems map[string][]string // url → every code, nested concepts flattened
	// expanded caches expansions made on first use; requests validate
	// concurrently, so mu guards it (a reload's new table starts empty,
	// and its first requests all expand at once).
	mu       sync.Mutex
	expanded map[string]*valueSet
}

func newTerminology() *terminology {
	return &terminology{valueSets: map[string]json.RawMessage{}, codeSystems: map[string][]string{}, expanded: map[string]*valueSet{}}
}

type concept struct {
	Code    string    `json:"code"`
	Concept []concept `json:"concept"`
}

func (t *terminology) addCodeSystem(data []byte) {
	var cs struct {
		URL     string    `json:"url"`
		Content string    `json:"content"`
		Concept []concept `json:"concept"`
	}
	if json.Unmarshal(data, &cs) != nil || cs.URL == "" || (cs.Content != "" && cs.Content != "complete") {
		return
	}
	var codes []string
	var walk func([]concept)
	walk = func(cs []concept) {
		for _, c := range cs {
			codes = append(codes, c.Code)
			walk(c.Concept)
		}
	}
	walk(cs.Concept)
	t.codeSystems[cs.URL] = codes
}

func (t *terminology) addValueSet(data []byte) {
	var vs struct {
		URL string `json:"url"`
	}
	if json.Unmarshal(data, &vs) == nil && vs.URL != "" {
		t.valueSets[vs.URL] = data
	}
}

// valueSet expands a ValueSet by canonical URL (|version ignored): the
// concepts it lists, every code of a code system it includes whole, the
// ValueSets it imports; filters and excludes make it not expandable here.
// nil when it cannot be expanded from the package.
func (t *terminology) valueSet(url string) *valueSet {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expand(url)
}

// expand is valueSet with mu held; imports recurse here.
func (t *terminology) expand(url string) *valueSet {
	if i := strings.IndexByte(url, '|'); i >= 0 {
		url = url[:i]
	}
	if vs, ok := t.expanded[url]; ok {
		return vs
	}
	t.expanded[url] = nil // guards against import cycles
	raw, ok := t.valueSets[url]
	if !ok {
		return nil
	}
	var def struct {
		Compose struct {
			Include []struct {
				System   string                  `json:"system"`
				Concept  []struct{ Code string } `json:"concept"`
				Filter   []json.RawMessage       `json:"filter"`
				ValueSet []string                `json:"valueSet"`
			} `json:"include"`
			Exclude []json.RawMessage `json:"exclude"`
		} `json:"compose"`
		Expansion *struct {
			Contains []struct{ System, Code string } `json:"contains"`
		} `json:"expansion"`
	}
	if json.Unmarshal(raw, &def) != nil {
		return nil
	}
	vs := &valueSet{url: url, codes: map[string]bool{}}
	add := func(system, code string) {
		vs.codes[system+"|"+code] = true
		vs.codes["|"+code] = true
	}
	if def.Expansion != nil && len(def.Expansion.Contains) > 0 {
		for _, c := range def.Expansion.Contains {
			add(c.System, c.Code)
		}
		t.expanded[url] = vs
		return vs
	}
	if len(def.Compose.Exclude) > 0 {
		return nil
	}
	for _, inc := range def.Compose.Include {
		if len(inc.Filter) > 0 {
			return nil
		}
		for _, imp := range inc.ValueSet {
			sub := t.expand(imp)
			if sub == nil {
				return nil
			}
			for k := range sub.codes {
				vs.codes[k] = true
			}
		}
		if inc.System == "" {
			continue
		}
		if len(inc.Concept) > 0 {
			for _, c := range inc.Concept {
				add(inc.System, c.Code)
			}
			continue
		}
		codes, ok := t.codeSystems[inc.System]
		if !ok {
			return nil
		}
		for _, c := range codes {
			add(inc.System, c)
		}
	}
	t.expanded[url] = vs
	return vs
}
