// Package outcome is the gateway's one error type and its one renderer:
// every answer that is not a success is an *Error, rendered as a FHIR
// OperationOutcome in JSON or XML. No other package writes error bodies, so a
// client never sees a Go error string, an HTML page or an empty 500.
package outcome

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Issue is one OperationOutcome.issue.
type Issue struct {
	// Severity is fatal, error, warning or information. Default error.
	Severity string
	// Code is the IssueType code (invalid, forbidden, not-found …).
	Code string
	// Text is details.text: what a human reads.
	Text string
	// Diagnostics is extra technical detail; never a credential.
	Diagnostics string
	// Expression locates the problem as FHIRPath expressions.
	Expression []string
}

// Error stops a request: an HTTP status, the issues explaining it and the
// headers that go with it.
type Error struct {
	Status int
	Issues []Issue
	Header http.Header
	// Kind classifies the failure for metrics and logs (auth, route,
	// negotiate, check, backend, limit, internal).
	Kind string
}

// Error implements error with the first issue's text.
func (e *Error) Error() string {
	if len(e.Issues) == 0 {
		return http.StatusText(e.Status)
	}
	return e.Issues[0].Text
}

// New is an Error with one error-severity issue.
func New(status int, code, text string) *Error {
	return &Error{Status: status, Issues: []Issue{{Severity: "error", Code: code, Text: text}}}
}

// WithKind sets Kind and returns e.
func (e *Error) WithKind(kind string) *Error { e.Kind = kind; return e }

// WithExpression sets the first issue's expression and returns e.
func (e *Error) WithExpression(expr ...string) *Error {
	if len(e.Issues) > 0 {
		e.Issues[0].Expression = expr
	}
	return e
}

// Outcome is what the renderer needs besides the issues.
type Outcome struct {
	// Profile, when set, is written as meta.profile.
	Profile string
	Issues  []Issue
}

type jsonOutcome struct {
	ResourceType string      `json:"resourceType"`
	Meta         *jsonMeta   `json:"meta,omitempty"`
	Issue        []jsonIssue `json:"issue"`
}

type jsonMeta struct {
	Profile []string `json:"profile"`
}

type jsonIssue struct {
	Severity    string       `json:"severity"`
	Code        string       `json:"code"`
	Details     *jsonDetails `json:"details,omitempty"`
	Diagnostics string       `json:"diagnostics,omitempty"`
	Expression  []string     `json:"expression,omitempty"`
}

type jsonDetails struct {
	Text string `json:"text"`
}

// JSON renders the OperationOutcome as FHIR JSON.
func (o Outcome) JSON() []byte {
	out := jsonOutcome{ResourceType: "OperationOutcome", Issue: make([]jsonIssue, 0, len(o.Issues))}
	if o.Profile != "" {
		out.Meta = &jsonMeta{Profile: []string{o.Profile}}
	}
	for _, is := range o.Issues {
		ji := jsonIssue{Severity: severity(is), Code: is.Code, Diagnostics: is.Diagnostics, Expression: is.Expression}
		if is.Text != "" {
			ji.Details = &jsonDetails{Text: is.Text}
		}
		out.Issue = append(out.Issue, ji)
	}
	b, err := json.Marshal(out)
	if err != nil { // cannot happen: only strings and slices of strings
		panic(err)
	}
	return b
}

// XML renders the OperationOutcome as FHIR XML, elements in the order of the
// resource definition (identical for STU3 and R4 as far as used here).
func (o Outcome) XML() []byte {
	var b strings.Builder
	b.WriteString(`<OperationOutcome xmlns="http://hl7.org/fhir">`)
	if o.Profile != "" {
		b.WriteString(`<meta>`)
		valueElement(&b, "profile", o.Profile)
		b.WriteString(`</meta>`)
	}
	for _, is := range o.Issues {
		b.WriteString(`<issue>`)
		valueElement(&b, "severity", severity(is))
		valueElement(&b, "code", is.Code)
		if is.Text != "" {
			b.WriteString(`<details>`)
			valueElement(&b, "text", is.Text)
			b.WriteString(`</details>`)
		}
		if is.Diagnostics != "" {
			valueElement(&b, "diagnostics", is.Diagnostics)
		}
		for _, e := range is.Expression {
			valueElement(&b, "expression", e)
		}
		b.WriteString(`</issue>`)
	}
	b.WriteString(`</OperationOutcome>`)
	return []byte(b.String())
}

func severity(is Issue) string {
	if is.Severity == "" {
		return "error"
	}
	return is.Severity
}

// valueElement writes <name value="v"/>; FHIR allows no empty attributes, so
// an empty value writes nothing.
func valueElement(b *strings.Builder, name, v string) {
	if v == "" {
		return
	}
	b.WriteByte('<')
	b.WriteString(name)
	b.WriteString(` value="`)
	EscapeAttr(b, v)
	b.WriteString(`"/>`)
}

// EscapeAttr writes s as the content of a double-quoted XML attribute.
// Characters XML 1.0 cannot carry are replaced by U+FFFD; whitespace
// controls are written as character references so they survive
// attribute-value normalisation.
func EscapeAttr(b *strings.Builder, s string) {
	for _, r := range s {
		switch {
		case r == '&':
			b.WriteString("&amp;")
		case r == '<':
			b.WriteString("&lt;")
		case r == '>':
			b.WriteString("&gt;")
		case r == '"':
			b.WriteString("&quot;")
		case r == '\t':
			b.WriteString("&#x9;")
		case r == '\n':
			b.WriteString("&#xA;")
		case r == '\r':
			b.WriteString("&#xD;")
		case r < 0x20 || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
}
