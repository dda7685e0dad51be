package validation

import (
	"bytes"
	"fmt"

	"github.com/fhirgate/fhirgate/validation/fhirxml"
	"google.golang.org/protobuf/proto"

	"github.com/fhirgate/fhirgate/validation/profile"
)

// ValidateProfiles checks a parsed resource's JSON against the profiles it
// declares in meta.profile, or against as when it declares none. A declared
// profile that is not in the set is a warning: the resource may conform,
// but it cannot be checked here.
func ValidateProfiles(set *profile.Set, resourceJSON []byte, as []string) []Issue {
	res := decodeJSON(resourceJSON)
	if res == nil {
		return []Issue{{Severity: "error", Code: "structure", Text: "the resource is not a JSON object"}}
	}
	return validateProfiles(set, res, as)
}

func validateProfiles(set *profile.Set, res map[string]any, as []string) []Issue {
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

// ValidateJSON is the whole validation of a JSON resource in one pass:
// parse, base rules, core invariants, then the profiles it declares (or
// as) from set. The document is decoded once for all of them.
func (p *Parser) ValidateJSON(data []byte, set *profile.Set, as []string) (proto.Message, []Issue) {
	if p.version == R4 && bytes.Contains(data, []byte(`"Parameters"`)) {
		res, issues := p.ParseJSON(data)
		if res != nil {
			issues = append(issues, ValidateProfiles(set, data, as)...)
		}
		return res, issues
	}
	res, issues := p.parseJSON(data, false)
	if res == nil {
		return nil, issues
	}
	decoded := decodeJSON(data)
	issues = append(issues, baseInvariantIssues(p.version, data, decoded)...)
	if set != nil && decoded != nil {
		issues = append(issues, validateProfiles(set, decoded, as)...)
	}
	sortIssues(issues)
	return res, issues
}

// ValidateXML converts XML to JSON and validates that as ValidateJSON; it
// also returns the JSON.
func (p *Parser) ValidateXML(data []byte, set *profile.Set, as []string) (proto.Message, []byte, []Issue) {
	j, err := fhirxml.ToJSON(p.version, data)
	if err != nil {
		return nil, nil, xmlIssues(err)
	}
	res, issues := p.ValidateJSON(j, set, as)
	return res, j, issues
}
