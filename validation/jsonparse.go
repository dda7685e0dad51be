package validation

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	"google.golang.org/protobuf/proto"
)

// Version is a FHIR release.
type Version int

const (
	STU3 Version = iota + 1
	R4
)

func (v Version) String() string {
	switch v {
	case STU3:
		return "STU3"
	case R4:
		return "R4"
	}
	return fmt.Sprintf("Version(%d)", int(v))
}

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

// JSONParser parses FHIR JSON of one version into google/fhir protos and
// runs jsonformat's base validation (cardinality of required elements,
// primitive formats, references), returning every problem it reports as
// issues rather than stopping at the first.
type JSONParser struct {
	version Version
	u       *jsonformat.Unmarshaller
}

// NewJSONParser builds a parser; build it once and reuse it.
func NewJSONParser(v Version) (*JSONParser, error) {
	fv := fhirversion.STU3
	if v == R4 {
		fv = fhirversion.R4
	}
	u, err := jsonformat.NewUnmarshaller("UTC", fv)
	if err != nil {
		return nil, err
	}
	u.MaxNestingDepth = MaxJSONDepth
	return &JSONParser{version: v, u: u}, nil
}

// Parse returns the resource (a ContainedResource of the parser's version)
// and the issues found, sorted by location then text. The resource is nil
// when the input could not be read as that version's JSON (then an error
// issue says why); a resource that was read but breaks base rules (a
// missing required element) is returned with its error issues, so later
// checks can add theirs.
func (p *JSONParser) Parse(data []byte) (proto.Message, []Issue) {
	rep := &issueReporter{}
	res, err := p.u.UnmarshalWithErrorReporter(data, rep)
	issues := rep.issues
	if err != nil {
		issues = append(issues, unmarshalIssues(err)...)
		if !HasErrors(issues) {
			issues = append(issues, Issue{Severity: "error", Code: "structure", Text: "the resource could not be read"})
		}
		res = nil
	}
	sortIssues(issues)
	return res, issues
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
			return []Issue{{Severity: "error", Code: issueCode(details), Text: details, Diagnostics: diag, Expression: expression(path, details)}}
		}
	}
	return []Issue{{Severity: "error", Code: "structure", Text: "the resource could not be read", Diagnostics: err.Error()}}
}

// expression sharpens jsonformat's location: a missing required field is
// located at the field, an unknown resource type at resourceType.
func expression(path, details string) string {
	const missing = `missing required field "`
	if i := strings.Index(details, missing); i >= 0 {
		name := details[i+len(missing):]
		if j := strings.IndexByte(name, '"'); j > 0 && path != "" {
			return path + "." + name[:j]
		}
	}
	if details == "unknown resource type" {
		return "resourceType"
	}
	return path
}

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
