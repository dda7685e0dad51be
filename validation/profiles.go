package validation

import (
	"bytes"
	"fmt"
	"unicode/utf8"

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
// as) from set — also when the base rules failed, so that a report lists
// everything. The document is decoded once for all of them.
func (p *Parser) ValidateJSON(data []byte, set *profile.Set, as []string) (proto.Message, []Issue) {
	msg, c := p.check(data, set, as, true)
	issues := append(c.Base, c.Profile...)
	sortIssues(issues)
	return msg, issues
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

// Checked is the validation of one request body, split the way a FHIR
// server answers it: Base problems (not parseable, invalid against the base
// specification) are a 400, Profile problems a 422.
type Checked struct {
	// Resource is the body decoded from JSON (numbers keep their digits);
	// nil when it did not parse.
	Resource map[string]any
	// Base holds parse errors, base rules and core invariants.
	Base []Issue
	// Profile holds the issues of the profiles; empty when Base has errors
	// (an invalid resource is not checked against profiles).
	Profile []Issue
}

// Check validates a request body given as JSON or (xml true) XML against
// the base specification and then, when that found no error, against the
// profiles it declares (or as).
func (p *Parser) Check(data []byte, xml bool, set *profile.Set, as []string) Checked {
	if !xml {
		if c, ok := p.fastCheck(data, set, as); ok {
			return c
		}
		_, c := p.check(data, set, as, false)
		return c
	}
	// The tree straight from the XML, when Tree is sure it is the one
	// decoding ToJSON's text gives: accepted by the model, it is checked
	// without the text ever being written; declined by the model, the
	// text would be declined too, so it goes to jsonformat's path at once.
	res, tree := p.xmlTree(data)
	if tree {
		if ok, holds := p.model.AcceptsHolding(res); ok {
			text := func() []byte {
				j, _ := fhirxml.ToJSON(p.version, data)
				return j
			}
			return p.checkAccepted(res, holds, text, set, as)
		}
	}
	j, err := fhirxml.ToJSON(p.version, data)
	if err != nil {
		return Checked{Base: xmlIssues(err)}
	}
	if !tree {
		if c, ok := p.fastCheck(j, set, as); ok {
			return c
		}
	}
	_, c := p.check(j, set, as, false)
	return c
}

// xmlTree is fhirxml.Tree with the fast path's conditions: ok only when
// fastAccepted, given ToJSON's text, would decode this very tree (it
// leaves R4 Parameters to ParseJSON).
func (p *Parser) xmlTree(data []byte) (map[string]any, bool) {
	avoid := ""
	if p.version == R4 {
		avoid = "Parameters"
	}
	return fhirxml.Tree(p.version, data, MaxJSONDepth, avoid)
}

// CheckProfiles validates a resource already known to be valid base FHIR
// and decoded by Check (an entry of a Bundle whose own Check passed,
// which covers the base rules and core invariants of every resource
// inside it) against the profiles it declares, or as.
func CheckProfiles(res map[string]any, set *profile.Set, as []string) []Issue {
	if res == nil || set == nil {
		return nil
	}
	issues := validateProfiles(set, res, as)
	sortIssues(issues)
	return issues
}

// fastAccepted decodes data when the fast path may take it (nil when
// not): UTF-8, one JSON object and nothing after it, no property twice,
// and the descriptor model accepts it. holds says whether the resource
// holds resources of its own (fhirxml.Model.AcceptsHolding).
func (p *Parser) fastAccepted(data []byte) (res map[string]any, holds bool) {
	if p.version == R4 && bytes.Contains(data, []byte(`"Parameters"`)) {
		return nil, false
	}
	if !utf8.Valid(data) {
		return nil, false
	}
	res = decodeJSONStrict(data)
	if res == nil {
		return nil, false
	}
	ok, holds := p.model.AcceptsHolding(res)
	if !ok {
		return nil, false
	}
	return res, holds
}

// fastCheck is Check for a body the descriptor model accepts as certainly
// valid base FHIR (see fhirxml.Model.Accepts): it skips jsonformat's proto
// building — most of a request's cost — and goes on to the same core
// invariants and profiles. A body it does not accept (ok false) takes
// jsonformat's path, which reports the precise issues. Bytes that are not
// UTF-8, trailing data after the resource and duplicate properties (which
// decoding would hide) always take that path.
func (p *Parser) fastCheck(data []byte, set *profile.Set, as []string) (Checked, bool) {
	res, holds := p.fastAccepted(data)
	if res == nil {
		return Checked{}, false
	}
	return p.checkAccepted(res, holds, textOf(data), set, as), true
}

// checkAccepted goes on from a resource the model accepted (res, whose
// JSON text text gives; holds: whether it holds resources of its own):
// core invariants, then — without errors — the profiles.
func (p *Parser) checkAccepted(res map[string]any, holds bool, text func() []byte, set *profile.Set, as []string) Checked {
	c := Checked{Resource: res, Base: invariantIssues(p.version, text, res, holds)}
	sortIssues(c.Base)
	if set != nil && !HasErrors(c.Base) {
		c.Profile = validateProfiles(set, res, as)
		sortIssues(c.Profile)
	}
	return c
}

// check is the one validation path of JSON: parse, base rules and core
// invariants, then profiles — after base errors only when always is set.
func (p *Parser) check(data []byte, set *profile.Set, as []string, always bool) (proto.Message, Checked) {
	var (
		c   Checked
		msg proto.Message
	)
	if p.version == R4 && bytes.Contains(data, []byte(`"Parameters"`)) {
		// google/fhir cannot unmarshal R4 Parameters.parameter.resource;
		// ParseJSON parses the nested resources on their own.
		msg, c.Base = p.ParseJSON(data)
		if msg != nil {
			c.Resource = decodeJSON(data)
		}
	} else {
		msg, c.Base = p.parseJSON(data, false)
		if msg != nil {
			c.Resource = decodeJSON(data)
			c.Base = append(c.Base, baseInvariantIssues(p.version, textOf(data), c.Resource)...)
			sortIssues(c.Base)
		}
	}
	if c.Resource != nil && set != nil && (always || !HasErrors(c.Base)) {
		c.Profile = validateProfiles(set, c.Resource, as)
		sortIssues(c.Profile)
	}
	return msg, c
}
