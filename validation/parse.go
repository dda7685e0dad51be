package validation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/fhirgate/fhirgate/validation/fhirxml"
	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"google.golang.org/protobuf/proto"
)

// Version is a FHIR release (one definition, shared with the XML codec).
type Version = fhirxml.Version

// The releases the gateway serves.
const (
	STU3 = fhirxml.STU3
	R4   = fhirxml.R4
)

// ParseVersion reads STU3 or R4 (any case).
func ParseVersion(s string) (Version, error) {
	switch strings.ToUpper(s) {
	case "STU3", "R3":
		return STU3, nil
	case "R4":
		return R4, nil
	}
	return 0, fmt.Errorf("unknown FHIR version %q (STU3 or R4)", s)
}

// Issue is one finding about a resource. The gateway renders it as an
// OperationOutcome.issue; this package does not know HTTP.
type Issue struct {
	// Severity is error or warning.
	Severity string
	// Code is an IssueType code: structure, required, value, invalid …
	Code string
	// Text says what is wrong, for a human; it never quotes the
	// resource's content.
	Text string
	// Diagnostics may quote the offending input; it goes to the client,
	// never to logs.
	Diagnostics string
	// Expression locates the problem, e.g. Task.identifier[0].system.
	Expression string
}

// HasErrors reports whether any issue has error severity.
func HasErrors(issues []Issue) bool {
	for _, is := range issues {
		if is.Severity == "error" {
			return true
		}
	}
	return false
}

// MaxJSONDepth bounds nesting of a parsed resource; deeper input is an
// error issue instead of deep recursion.
const MaxJSONDepth = 64

// Parser parses FHIR JSON or XML of one version into google/fhir protos and
// runs jsonformat's base validation (required elements, primitive formats,
// codes, references), returning every problem as an issue rather than
// stopping at the first. XML is converted to JSON by the fhirxml codec
// first, so both formats take one validation path. A Parser is built once
// and shared.
type Parser struct {
	version Version
	u       *jsonformat.Unmarshaller
	// model answers Check's fast path (fhirxml.Model.Accepts).
	model *fhirxml.Model
}

// NewParser builds a parser; build it once and reuse it.
func NewParser(v Version) (*Parser, error) {
	fv := fhirversion.STU3
	if v == R4 {
		fv = fhirversion.R4
	}
	u, err := jsonformat.NewUnmarshaller("UTC", fv)
	if err != nil {
		return nil, err
	}
	u.MaxNestingDepth = MaxJSONDepth
	return &Parser{version: v, u: u, model: fhirxml.ModelFor(v)}, nil
}

// ParseJSON returns the resource (a ContainedResource of the parser's version)
// and the issues found, sorted by location then text. The resource is nil
// when the input could not be read as that version's JSON (then an error
// issue says why); a resource that was read but breaks base rules (a
// missing required element) is returned with its error issues, so later
// checks can add theirs.
func (p *Parser) ParseJSON(data []byte) (proto.Message, []Issue) {
	if p.version == R4 && bytes.Contains(data, []byte(`"Parameters"`)) {
		if res, issues, ok := p.parseParameters(data); ok {
			return res, issues
		}
	}
	return p.parseJSON(data, true)
}

// parseParameters works around google/fhir v0.7.4, whose R4 unmarshaller
// refuses every field of a resource in Parameters.parameter.resource: the
// nested resources are taken out, parsed on their own with this parser, and
// their issues located under their parameter. ok is false when data is not
// a Parameters resource with nested resources.
func (p *Parser) parseParameters(data []byte) (proto.Message, []Issue, bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if dec.Decode(&obj) != nil || obj["resourceType"] != "Parameters" {
		return nil, nil, false
	}
	var issues []Issue
	found := false
	var walk func(params []any, path string)
	walk = func(params []any, path string) {
		for i, item := range params {
			prm, ok := item.(map[string]any)
			if !ok {
				continue
			}
			at := fmt.Sprintf("%s[%d]", path, i)
			if r, ok := prm["resource"].(map[string]any); ok {
				found = true
				delete(prm, "resource")
				raw, _ := json.Marshal(r)
				_, sub := p.ParseJSON(raw)
				for _, is := range sub {
					is.Expression = nestedExpression(at+".resource", is.Expression, fmt.Sprint(r["resourceType"]))
					issues = append(issues, is)
				}
			}
			if parts, ok := prm["part"].([]any); ok {
				walk(parts, at+".part")
			}
		}
	}
	params, _ := obj["parameter"].([]any)
	walk(params, "Parameters.parameter")
	if !found {
		return nil, nil, false
	}
	// The outer document is parsed without its nested resources; its core
	// invariants ("a parameter has a value or a resource") are evaluated
	// on the document as sent.
	outer, _ := json.Marshal(obj)
	res, own := p.parseJSON(outer, false)
	issues = append(own, issues...)
	if res != nil {
		issues = append(issues, baseInvariantIssues(p.version, textOf(data), decodeJSON(data))...)
	}
	sortIssues(issues)
	return res, issues, true
}

// parseJSON parses with jsonformat and adds the base checks it lacks;
// invariants false leaves the core invariants to the caller.
func (p *Parser) parseJSON(data []byte, invariants bool) (proto.Message, []Issue) {
	rep := &issueReporter{}
	res, err := p.u.UnmarshalWithErrorReporter(data, rep)
	issues := append(rep.issues, emptyArrayIssues(data)...)
	issues = append(issues, duplicateKeyIssues(data)...)
	if err != nil {
		issues = append(issues, unmarshalIssues(err)...)
		if !HasErrors(issues) {
			issues = append(issues, Issue{Severity: "error", Code: "structure", Text: "the resource could not be read"})
		}
		res = nil
	} else {
		issues = append(issues, resourceIDIssues(res)...)
		if invariants {
			issues = append(issues, baseInvariantIssues(p.version, textOf(data), decodeJSON(data))...)
		}
	}
	sortIssues(issues)
	return res, issues
}

// ParseXML converts FHIR XML to JSON and parses that; XML problems (order,
// unknown elements, namespaces, DOCTYPE …) are issues like any other. It
// also returns the JSON, for a backend that wants the canonical form.
func (p *Parser) ParseXML(data []byte) (proto.Message, []byte, []Issue) {
	j, err := fhirxml.ToJSON(p.version, data)
	if err != nil {
		return nil, nil, xmlIssues(err)
	}
	res, issues := p.ParseJSON(j)
	return res, j, issues
}

// xmlIssues turns the codec's errors into issues.
func xmlIssues(err error) []Issue {
	var out []Issue
	es, ok := err.(fhirxml.Errors)
	if !ok {
		return []Issue{{Severity: "error", Code: "structure", Text: err.Error()}}
	}
	for _, e := range es {
		code := "value"
		if e.Structure {
			code = "structure"
		}
		out = append(out, Issue{Severity: "error", Code: code, Text: e.Msg, Expression: e.Path})
	}
	sortIssues(out)
	return out
}

func sortIssues(issues []Issue) {
	sort.SliceStable(issues, func(i, j int) bool {
		if issues[i].Expression != issues[j].Expression {
			return issues[i].Expression < issues[j].Expression
		}
		return issues[i].Text < issues[j].Text
	})
}

// issueReporter collects jsonformat's validation findings.
type issueReporter struct{ issues []Issue }

func (r *issueReporter) ReportValidationError(path string, err error) error {
	r.issues = append(r.issues, validationIssue("error", path, err))
	return nil
}

func (r *issueReporter) ReportValidationWarning(path string, err error) error {
	r.issues = append(r.issues, validationIssue("warning", path, err))
	return nil
}

func validationIssue(severity, path string, err error) Issue {
	is := unmarshalIssues(err)[0]
	is.Severity = severity
	if is.Expression == "" {
		is.Expression = path
	}
	return is
}

// unmarshalIssues turns jsonformat's parse error into issues. Its error
// types live in an internal package, so their exported fields (Path,
// Details, Diagnostics) are read by reflection; a list is walked element
// by element. Anything else becomes one structure issue.
func unmarshalIssues(err error) []Issue {
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Slice {
		var out []Issue
		for i := 0; i < v.Len(); i++ {
			if e, ok := v.Index(i).Interface().(error); ok {
				out = append(out, unmarshalIssues(e)...)
			}
		}
		return out
	}
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		path, details, diag := field(v, "Path"), field(v, "Details"), field(v, "Diagnostics")
		if details != "" {
			code, expr := issueCode(details), expression(path, details, diag)
			if strings.HasPrefix(details, "cannot accept multiple values for ") {
				// A choice element under two types: a structure problem,
				// located at the choice (Task.input[0].value), as the XML
				// reader locates it.
				code = "structure"
			}
			return []Issue{{Severity: "error", Code: code, Text: details, Diagnostics: diag, Expression: expr}}
		}
	}
	return []Issue{{Severity: "error", Code: "structure", Text: "the resource could not be read", Diagnostics: err.Error()}}
}

// nestedExpression places an issue of a resource parsed on its own (at
// its root, "Task.status" or "resourceType") under place.
func nestedExpression(place, expr, typ string) string {
	switch {
	case expr == "" || expr == "resourceType" || expr == typ:
		return place
	case strings.HasPrefix(expr, typ+"."):
		return place + strings.TrimPrefix(expr, typ)
	}
	return place + "." + expr
}

// expression sharpens jsonformat's location to the FHIRPath the XML reader
// reports for the same problem (the differential corpus in
// locations_test.go holds the two together): a missing required field and
// an unknown field are located at the field, a choice under two types at
// the choice, an unknown resource type at resourceType (of the root) or at
// the nested resource's place (Task.contained[0]); and jsonformat's type segment after a
// nested resource's place (Task.contained[0].Patient) is dropped.
func expression(path, details, diag string) string {
	path = nestedTypeSegment.ReplaceAllString(path, "$1")
	const missing = `missing required field "`
	if i := strings.Index(details, missing); i >= 0 {
		name := details[i+len(missing):]
		if j := strings.IndexByte(name, '"'); j > 0 && path != "" {
			return path + "." + name[:j]
		}
	}
	quoted := strings.Trim(diag, `"`)
	switch {
	case details == "unknown resource type":
		if !strings.Contains(path, ".") { // the root: jsonformat says its type
			return "resourceType"
		}
		return path
	case details == "unknown field" && path != "" && quoted != "" && !strings.ContainsAny(quoted, `" .`):
		return path + "." + quoted
	case strings.HasPrefix(details, "cannot accept multiple values for ") && strings.HasSuffix(details, " field") && path != "":
		return path + "." + strings.TrimSuffix(strings.TrimPrefix(details, "cannot accept multiple values for "), " field")
	}
	return path
}

// nestedTypeSegment is the resource type jsonformat puts after a nested
// resource's place.
var nestedTypeSegment = regexp.MustCompile(`(\.contained\[\d+\]|\.resource)\.[A-Z][A-Za-z]*`)

func field(v reflect.Value, name string) string {
	f := v.FieldByName(name)
	if !f.IsValid() || f.Kind() != reflect.String {
		return ""
	}
	return f.String()
}

// issueCode classifies jsonformat's messages into IssueType codes.
func issueCode(text string) string {
	t := strings.ToLower(text)
	switch {
	case strings.Contains(t, "missing required"), strings.Contains(t, "required field"):
		return "required"
	case strings.Contains(t, "code type mismatch"):
		return "code-invalid"
	case strings.Contains(t, "unknown field"), strings.Contains(t, "invalid json"), strings.Contains(t, "nesting depth"),
		strings.Contains(t, "resource type"), strings.Contains(t, "expected array"), strings.Contains(t, "expected object"),
		strings.Contains(t, "expected string"), strings.Contains(t, "expected number"), strings.Contains(t, "expected boolean"):
		// The JSON shape is wrong.
		return "structure"
	case strings.Contains(t, "expected"):
		// The shape is right but the value is not of the primitive's
		// format (a date that is no date).
		return "value"
	case strings.Contains(t, "invalid"), strings.Contains(t, "out of range"), strings.Contains(t, "does not match"):
		return "value"
	}
	return "invalid"
}

// KnownResourceType reports whether name is a resource type of FHIR
// version v.
func KnownResourceType(v Version, name string) bool {
	return name != "" && fhirxml.ModelFor(v).Resource(name) != nil
}
