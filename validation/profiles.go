package validation

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/fhirgate/fhirgate/validation/profile"
)

// ValidateProfiles checks a parsed resource's JSON against the profiles it
// declares in meta.profile, or against as when it declares none. A declared
// profile that is not in the set is a warning: the resource may conform,
// but it cannot be checked here.
func ValidateProfiles(set *profile.Set, resourceJSON []byte, as []string) []Issue {
	dec := json.NewDecoder(bytes.NewReader(resourceJSON))
	dec.UseNumber()
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		return []Issue{{Severity: "error", Code: "structure", Text: "the resource is not a JSON object"}}
	}
	urls := as
	if meta, ok := res["meta"].(map[string]any); ok && len(as) == 0 {
		if ps, ok := meta["profile"].([]any); ok {
			for _, p := range ps {
				if s, ok := p.(string); ok {
					urls = append(urls, s)
				}
			}
		}
	}
	var issues []Issue
	for _, u := range urls {
		p := set.Profile(u)
		if p == nil {
			issues = append(issues, Issue{Severity: "warning", Code: "not-supported", Text: fmt.Sprintf("profile %s is not available; the resource was not checked against it", u), Expression: "meta.profile"})
			continue
		}
		for _, is := range p.Validate(res) {
			issues = append(issues, Issue{Severity: is.Severity, Code: is.Code, Text: is.Text, Expression: is.Expression})
		}
	}
	return issues
}
