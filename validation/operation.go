package validation

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// OperationDefinition is what the gateway checks of an operation call: its
// code and its input parameters. Compiled once from the resource's JSON.
type OperationDefinition struct {
	URL    string
	Code   string
	params map[string]*OperationParameter
	order  []string
}

// OperationParameter is one "in" parameter.
type OperationParameter struct {
	Name string
	Min  int
	Max  int // -1: unbounded
	Type string
}

// LoadOperationDefinition reads an OperationDefinition (JSON).
func LoadOperationDefinition(data []byte) (*OperationDefinition, error) {
	var raw struct {
		ResourceType string `json:"resourceType"`
		URL          string `json:"url"`
		Code         string `json:"code"`
		Parameter    []struct {
			Name string `json:"name"`
			Use  string `json:"use"`
			Min  int    `json:"min"`
			Max  string `json:"max"`
			Type string `json:"type"`
		} `json:"parameter"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("OperationDefinition: %w", err)
	}
	if raw.ResourceType != "OperationDefinition" || raw.Code == "" {
		return nil, fmt.Errorf("not an OperationDefinition with a code")
	}
	od := &OperationDefinition{URL: raw.URL, Code: raw.Code, params: map[string]*OperationParameter{}}
	for _, p := range raw.Parameter {
		if p.Use != "in" {
			continue
		}
		max := -1
		if p.Max != "*" {
			n, err := strconv.Atoi(p.Max)
			if err != nil {
				return nil, fmt.Errorf("parameter %s: max %q", p.Name, p.Max)
			}
			max = n
		}
		od.params[p.Name] = &OperationParameter{Name: p.Name, Min: p.Min, Max: max, Type: p.Type}
		od.order = append(od.order, p.Name)
	}
	return od, nil
}

// primitiveFormats are the FHIR regexes of the types a query parameter can
// carry (FHIR R4 datatypes.html); other types are not checked here.
var primitiveFormats = map[string]*regexp.Regexp{
	"boolean":     regexp.MustCompile(`^(true|false)$`),
	"integer":     regexp.MustCompile(`^-?([0]|([1-9][0-9]*))$`),
	"decimal":     regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`),
	"date":        regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$`),
	"code":        regexp.MustCompile(`^[^\s]+(\s[^\s]+)*$`),
	"id":          regexp.MustCompile(`^[A-Za-z0-9\-\.]{1,64}$`),
	"positiveInt": regexp.MustCompile(`^[1-9][0-9]*$`),
	"string":      regexp.MustCompile(`^[\s\S]+$`),
}

// primitiveChecks answer what primitiveFormats' regexes answer, in Go for
// the types whose expression is a plain character scan (the operation's
// query is checked on every call: a regexp run per value was a sixtieth
// of an $abort). TestPrimitiveChecksAgree and FuzzPrimitiveChecksAgree
// hold each to its regex; the others run the regex.
var primitiveChecks = map[string]func(string) bool{
	"string":      func(v string) bool { return v != "" },
	"boolean":     func(v string) bool { return v == "true" || v == "false" },
	"integer":     isFHIRInteger,
	"positiveInt": func(v string) bool { return len(v) > 0 && v[0] != '0' && allDigits(v) },
	"id":          isFHIRId,
	"code":        isFHIRCode,
	"decimal":     primitiveFormats["decimal"].MatchString,
	"date":        primitiveFormats["date"].MatchString,
}

func allDigits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// isFHIRInteger: an optional minus, then 0 or digits without a leading 0.
func isFHIRInteger(v string) bool {
	v = strings.TrimPrefix(v, "-")
	return v == "0" || (len(v) > 0 && v[0] != '0' && allDigits(v))
}

// isFHIRId: 1 to 64 of A–Z, a–z, 0–9, '-' and '.'.
func isFHIRId(v string) bool {
	if len(v) == 0 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isFHIRCode: words of non-space characters separated by single spaces,
// where a space is what Go's \s is (tab, newline, form feed, carriage
// return, space), nothing before the first word or after the last.
func isFHIRCode(v string) bool {
	if v == "" {
		return false
	}
	space := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }
	for i := 0; i < len(v); i++ {
		if space(v[i]) && (i == 0 || i == len(v)-1 || space(v[i-1])) {
			return false
		}
	}
	return true
}

// CheckQuery checks the query parameters of a call: every name is a known
// in-parameter (parameters starting with "_", such as _format, belong to
// FHIR's HTTP layer and are passed over), no more values than max, every
// required one present, values of the declared primitive type.
func (od *OperationDefinition) CheckQuery(query map[string][]string) []Issue {
	// The names and texts are built only for an issue: a valid call (the
	// hot path) allocates nothing here.
	var issues []Issue
	op := func() string { return "$" + od.Code }
	expr := func(name string) string { return op() + ".parameter('" + name + "')" }
	var onStack [8]string
	names := onStack[:0]
	for name := range query {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if len(name) > 0 && name[0] == '_' {
			continue
		}
		p, ok := od.params[name]
		if !ok {
			issues = append(issues, Issue{Severity: "error", Code: "not-supported", Text: fmt.Sprintf("unknown parameter %s of operation %s", name, op()), Expression: expr(name)})
			continue
		}
		vals := query[name]
		if p.Max >= 0 && len(vals) > p.Max {
			issues = append(issues, Issue{Severity: "error", Code: "structure", Text: fmt.Sprintf("parameter %s given %d times, at most %d allowed", name, len(vals), p.Max), Expression: expr(name)})
		}
		if valid := primitiveChecks[p.Type]; valid != nil {
			for _, v := range vals {
				if !valid(v) {
					issues = append(issues, Issue{Severity: "error", Code: "value", Text: fmt.Sprintf("parameter %s is not a valid %s", name, p.Type), Expression: expr(name)})
					break
				}
			}
		}
	}
	for _, name := range od.order {
		p := od.params[name]
		if p.Min > 0 && len(query[name]) < p.Min {
			issues = append(issues, Issue{Severity: "error", Code: "required", Text: fmt.Sprintf("parameter %s is required by operation %s", name, op()), Expression: expr(name)})
		}
	}
	return issues
}

// CheckParameters checks a Parameters resource (JSON) sent as the body of
// the call the same way; values are counted per parameter name.
func (od *OperationDefinition) CheckParameters(data []byte) []Issue {
	var params struct {
		ResourceType string                       `json:"resourceType"`
		Parameter    []map[string]json.RawMessage `json:"parameter"`
	}
	if err := json.Unmarshal(data, &params); err != nil || params.ResourceType != "Parameters" {
		return []Issue{{Severity: "error", Code: "structure", Text: "the body of an operation call must be a Parameters resource", Expression: "Parameters"}}
	}
	query := map[string][]string{}
	for _, p := range params.Parameter {
		var name string
		json.Unmarshal(p["name"], &name)
		value := ""
		for k, raw := range p {
			if len(k) > 5 && k[:5] == "value" {
				var s any
				json.Unmarshal(raw, &s)
				value = fmt.Sprint(s)
			}
		}
		query[name] = append(query[name], value)
	}
	return od.CheckQuery(query)
}
