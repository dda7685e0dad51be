package pipeline

import (
	"errors"
	"mime"
	"net"
	"net/http"
	"strings"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/backend"
	"github.com/fhirgate/fhirgate/gateway/negotiate"
	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/validation"
	"github.com/fhirgate/fhirgate/validation/fhirpathlite"
	"github.com/fhirgate/fhirgate/validation/profile"
)

// requestBody is a route's compiled config.Request.
type requestBody struct {
	cfg      *config.Request
	json     bool
	xml      bool
	parser   *validation.Parser
	profiles *profile.Set
	as       []string
}

// resourcePaths compiles the ${resource.…} expressions of a route once.
type resourcePaths map[string]*fhirpathlite.Expr

func (rp resourcePaths) add(key string) {
	if _, ok := rp[key]; !ok {
		e, _ := fhirpathlite.Compile(key) // checked by config.Load
		rp[key] = e
	}
}

// bodyFormat is the FHIR format of the request's Content-Type: a media
// type (not a _format alias) whose charset, if given, is UTF-8.
func bodyFormat(contentType string) negotiate.Format {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.Contains(mt, "/") {
		return negotiate.None
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return negotiate.None
	}
	return negotiate.MediaType(mt)
}

// readResource is the body stage: the Content-Type must be an accepted FHIR
// format (415), the body must parse and be valid against the base
// specification and be of the configured type (400), and conform to the
// profiles (422). Each refusal carries every issue found, with its
// location. On success the decoded resource feeds ${resource.…}.
func (r *Route) readResource(x *Exchange) *outcome.Error {
	rb := r.request
	f := x.requestFormat()
	if f == negotiate.None || (f == negotiate.JSON && !rb.json) || (f == negotiate.XML && !rb.xml) {
		return x.answerError(rb.cfg.UnsupportedMedia, "media_type")
	}
	data, err := backend.ReadSized(x.r.Body, x.r.ContentLength, x.table.cfg.Server.MaxBodyBytes)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return outcome.New(http.StatusRequestEntityTooLarge, "too-costly", "the request body exceeds the limit").WithKind("limit")
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// server.read_timeout passed while the body trickled in.
			return outcome.New(http.StatusRequestTimeout, "timeout", "the request body did not arrive in time").WithKind("limit")
		}
		return outcome.New(http.StatusBadRequest, x.base.cfg.IssueCode(400), "the request body could not be read").WithKind("body")
	}
	if len(data) == 0 {
		return x.issuesError(rb.cfg.Invalid, "body", []validation.Issue{{Severity: "error", Code: "required",
			Text: "the request has no body; a " + rb.cfg.Resource + " resource is required", Expression: rb.cfg.Resource}})
	}
	checked := rb.parser.Check(data, f == negotiate.XML, rb.profiles, rb.as)
	if validation.HasErrors(checked.Base) {
		return x.issuesError(rb.cfg.Invalid, "body", checked.Base)
	}
	if rt, _ := checked.Resource["resourceType"].(string); rt != rb.cfg.Resource {
		return x.issuesError(rb.cfg.Invalid, "body", []validation.Issue{{Severity: "error", Code: "invalid",
			Text: "the body is a " + rt + " resource; this interaction takes a " + rb.cfg.Resource, Expression: rt}})
	}
	if validation.HasErrors(checked.Profile) {
		return x.issuesError(rb.cfg.ProfileViolation, "profile", checked.Profile)
	}
	x.resource = checked.Resource
	return nil
}

// issuesError is an answer whose issues are validation's (errors first,
// then warnings), after the configured text if there is one.
func (x *Exchange) issuesError(a *config.Answer, kind string, issues []validation.Issue) *outcome.Error {
	e := x.answerError(a, kind)
	if a.Text == "" {
		e.Issues = e.Issues[:0]
	}
	for _, sev := range []string{"fatal", "error", "warning", "information"} {
		for _, is := range issues {
			if is.Severity != sev {
				continue
			}
			oi := outcome.Issue{Severity: is.Severity, Code: is.Code, Text: is.Text, Diagnostics: is.Diagnostics}
			if is.Expression != "" {
				oi.Expression = []string{is.Expression}
			}
			e.Issues = append(e.Issues, oi)
		}
	}
	return e
}

// token is a FHIR token search value split into its parts.
type token struct {
	system, value string
	// mode: exact (system|value), any-system (value), no-system (|value),
	// system-only (system|).
	mode string
}

// parseToken splits a token search value at its first unescaped '|'
// (FHIR search: "\|" is a literal bar). ok is false when it names neither
// a system nor a value.
func parseToken(s string) (token, bool) {
	cut := -1
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '|' {
			cut = i
			break
		}
	}
	unescape := func(v string) string {
		if strings.IndexByte(v, '\\') < 0 {
			return v
		}
		return tokenUnescaper.Replace(v)
	}
	if cut < 0 {
		t := token{value: unescape(s), mode: "any-system"}
		return t, t.value != ""
	}
	t := token{system: unescape(s[:cut]), value: unescape(s[cut+1:])}
	switch {
	case t.system == "" && t.value == "":
		return t, false
	case t.system == "":
		t.mode = "no-system"
	case t.value == "":
		t.mode = "system-only"
	default:
		t.mode = "exact"
	}
	return t, true
}

// tokenUnescaper undoes FHIR search escaping (\| \, \$ \\).
var tokenUnescaper = strings.NewReplacer(`\|`, `|`, `\,`, `,`, `\$`, `$`, `\\`, `\`)

// selects reports whether the token selects the identifier (system, value).
func (t token) selects(system, value string) bool {
	switch t.mode {
	case "exact":
		return system == t.system && value == t.value
	case "any-system":
		return value == t.value
	case "no-system":
		return system == "" && value == t.value
	case "system-only":
		return system == t.system
	}
	return false
}

// tokenValue is ${token.<param>.<part>}.
func (x *Exchange) tokenValue(key string) (string, bool) {
	i := strings.LastIndexByte(key, '.')
	if i < 0 {
		return "", false
	}
	t, ok := x.queryToken(key[:i])
	if !ok {
		return "", false
	}
	switch key[i+1:] {
	case "system":
		return t.system, t.system != ""
	case "value":
		return t.value, t.value != ""
	case "mode":
		return t.mode, true
	}
	return "", false
}

// queryToken parses the token in query parameter param once per request
// (a route's templates usually read system, value and mode of one token).
func (x *Exchange) queryToken(param string) (token, bool) {
	if x.tokenParam != param || !x.tokenParsed {
		x.tokenParam, x.tokenParsed = param, true
		x.token, x.tokenOK = token{}, false
		if vs := x.queryValues()[param]; len(vs) > 0 {
			x.token, x.tokenOK = parseToken(vs[0])
		}
	}
	return x.token, x.tokenOK
}

// requestFormat is the FHIR format of the request's Content-Type (None when
// it names none), parsed once per request.
func (x *Exchange) requestFormat() negotiate.Format {
	if !x.reqFormatKnown {
		x.reqFormat, x.reqFormatKnown = bodyFormat(x.r.Header.Get("Content-Type")), true
	}
	return x.reqFormat
}

// resourceValues evaluates ${resource.<expr>} on the request body: nil
// when there is none, or the expression cannot be evaluated or selects
// something that is not a primitive.
func (x *Exchange) resourceValues(key string) []string {
	return x.appendResourceValues(nil, key)
}

// resourceValue is the first value ${resource.<expr>} selects (a
// single-valued template takes the first), read through a buffer on the
// stack.
func (x *Exchange) resourceValue(key string) (value string, found bool) {
	var buf [4]string
	if vs := x.appendResourceValues(buf[:0], key); len(vs) > 0 {
		return vs[0], true
	}
	return "", false
}

// appendResourceValues is resourceValues appending to dst.
func (x *Exchange) appendResourceValues(dst []string, key string) []string {
	if x.resource == nil || x.route == nil {
		return nil
	}
	e := x.route.resourceExprs[key]
	if e == nil {
		return nil
	}
	vs, ok := e.AppendStrings(dst, x.resource)
	if !ok {
		return nil
	}
	return vs
}
