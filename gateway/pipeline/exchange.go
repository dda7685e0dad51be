package pipeline

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/fhirgate/fhirgate/gateway/auth"
	"github.com/fhirgate/fhirgate/gateway/backend"
	"github.com/fhirgate/fhirgate/gateway/negotiate"
	"github.com/fhirgate/fhirgate/template"
)

// exchange is one request on its way through the pipeline: what the stages
// learned so far. It is the template.Values of every template rendered for
// the request, so templates see exactly the sources config documents.
type Exchange struct {
	w       http.ResponseWriter
	r       *http.Request
	id      string
	start   time.Time
	table   *Table
	metrics *Metrics
	tracer  trace.Tracer
	proc    *Process
	span    trace.Span // the request's server span (noSpan when not recorded)
	// sc is the request's own span context: the recorded span's, or, when
	// nothing is recorded, a span id of its own under the client's trace.
	sc trace.SpanContext
	// hv backs the header values the exchange sets (headerValue): one
	// allocation with the exchange instead of one per header.
	hv    [4]string
	hvN   int
	base  *base
	route *Route
	// matched is the route the router matched, known before route is
	// set (which only the route's own handler does): for labels.
	matched *Route

	// audited is set once the audit record is written.
	audited bool
	// unmapping is set while a value map's unmapped answer is rendered.
	unmapping bool

	params    params
	query     url.Values
	principal *auth.Principal

	// format is the negotiated answer format; asked is what the client
	// asked for when it cannot be served.
	format     negotiate.Format
	negotiated bool
	asked      string
	missing    string

	// resource is the validated request body, decoded (routes with a
	// request section).
	resource map[string]any
	// Parsed once per request: the request's body format and one query
	// token (see requestFormat, queryToken).
	reqFormat      negotiate.Format
	reqFormatKnown bool
	tokenParam     string
	tokenParsed    bool
	token          token
	tokenOK        bool
	// search is what checkSearch learned (search routes).
	search *search

	resp          *backend.Response
	backendStatus int
	backendKind   string
	backendTime   time.Duration

	status       int
	capabilities bool   // a metadata request, answered before routing
	kind         string // failure class, for logs and metrics
	text         string // first issue text, for the log
}

// headerValue is v as a header's value list, taken from the exchange's
// own backing array while it lasts. Its capacity is 1, so an Add to the
// header copies instead of writing into the neighbour.
func (x *Exchange) headerValue(v string) []string {
	if x.hvN == len(x.hv) {
		return []string{v}
	}
	i := x.hvN
	x.hvN++
	x.hv[i] = v
	return x.hv[i : i+1 : i+1]
}

// Value implements template.Values.
func (x *Exchange) Value(r template.Ref) (string, bool) {
	switch r.Source {
	case "path":
		return x.params.get(r.Key)
	case "query":
		vs := x.queryValues()[r.Key]
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	case "header":
		vs := x.r.Header.Values(r.Key)
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	case "claim":
		return x.principal.Claim(r.Key)
	case "role":
		if x.principal == nil {
			return "", false
		}
		return x.principal.Role, x.principal.Role != ""
	case "subject":
		if x.principal == nil {
			return "", false
		}
		return x.principal.Subject, true
	case "request":
		switch r.Key {
		case "id":
			return x.id, true
		case "method":
			return x.r.Method, true
		case "base":
			return x.baseURL(), true
		case "content_type":
			ct := x.r.Header.Get("Content-Type")
			return ct, ct != ""
		}
	case "token":
		return x.tokenValue(r.Key)
	case "resource":
		return x.resourceValue(r.Key)
	case "format":
		return x.asked, true
	case "missing":
		return x.missing, true
	case "search":
		return x.search.value(r.Key)
	case "status":
		if x.resp == nil {
			return "", false
		}
		return strconv.Itoa(x.resp.Status), true
	case "body":
		if x.resp == nil {
			return "", false
		}
		return x.resp.Field(r.Key)
	case "response_header":
		if x.resp == nil {
			return "", false
		}
		v := x.resp.Header.Get(r.Key)
		return v, v != ""
	}
	return "", false
}

func (x *Exchange) queryValues() url.Values {
	if x.query == nil {
		x.query = x.r.URL.Query()
	}
	return x.query
}

// baseURL is the absolute URL of the FHIR base: the configured public_url,
// or as the client reached it.
func (x *Exchange) baseURL() string {
	if x.base != nil && x.base.cfg.PublicURL != "" {
		return x.base.cfg.PublicURL
	}
	scheme := "http"
	if x.r.TLS != nil {
		scheme = "https"
	}
	prefix := ""
	if x.base != nil {
		prefix = x.base.prefix
	}
	return scheme + "://" + x.r.Host + prefix
}

// role is the caller's mapped role, "" before authentication.
func (x *Exchange) role() string {
	if x.principal == nil {
		return ""
	}
	return x.principal.Role
}

// defaultFormat is the route's default for the caller's role, or the
// base's default before a route is known.
func (x *Exchange) defaultFormat() negotiate.Format {
	if x.route == nil {
		if x.base == nil {
			return negotiate.JSON
		}
		if x.base.cfg.DefaultFormat == "request" {
			if f := x.requestFormat(); f != negotiate.None {
				return f
			}
			return negotiate.JSON
		}
		return negotiate.Parse(x.base.cfg.DefaultFormat)
	}
	if f, ok := x.route.byRole[x.role()]; ok {
		return f
	}
	if x.route.formatFromRequest {
		// The request's own format, when it names one (FHIR: answer in
		// the format the client speaks).
		if f := x.requestFormat(); f != negotiate.None && x.route.offer.Has(f) {
			return f
		}
	}
	return x.route.format
}

// negotiate decides the answer format from _format, Accept and the default.
// It may run before the role is known (to answer early errors in the
// format the client asked for) and again after.
func (x *Exchange) negotiate() {
	offer := negotiate.Offer{JSON: true, XML: true}
	if x.route != nil {
		offer = x.route.offer
	}
	q := x.queryValues()
	fp, has := q["_format"]
	param := ""
	if has && len(fp) > 0 {
		param = fp[0]
	}
	x.format, x.asked = negotiate.Negotiate(param, has, x.r.Header.Get("Accept"), offer, x.defaultFormat())
	x.negotiated = true
}

// answerFormat is the format to render in: the negotiated one, or the
// default when the client asked for something that cannot be served.
func (x *Exchange) answerFormat() negotiate.Format {
	if !x.negotiated {
		x.negotiate()
	}
	if x.format == negotiate.None {
		return x.defaultFormat()
	}
	return x.format
}
