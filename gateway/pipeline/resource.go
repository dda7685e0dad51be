package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/negotiate"
	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/validation"
	"github.com/fhirgate/fhirgate/validation/fhirxml"
)

// answerResource builds the answer's resource from the backend's answer,
// validates it — the base specification and the answer's profile, with
// the base's packages — and sends it (200) in the negotiated format. What
// the gateway built is never sent unless valid: an invalid result is a 502
// OperationOutcome naming the first problem, counted
// (fhirgate_invalid_resources_total) and logged with the route; the
// client gets no part of it.
func (x *Exchange) answerResource(a *config.Answer) {
	v, err := a.ResourceT.Render(x)
	if err != nil {
		x.fail(x.renderFailure(err))
		return
	}
	res, _ := v.(map[string]any)
	b := x.base
	fhirxml.ModelFor(b.version).TypeValues(res)
	data, err := resourceJSON(res)
	if err != nil {
		x.fail(x.invalidResource(validation.Issue{Text: err.Error()}))
		return
	}
	var as []string
	if a.Profile != "" {
		as = []string{a.Profile}
	}
	checked := b.parser.Check(data, false, b.cfg.ProfileSet, as)
	for _, is := range append(checked.Base, checked.Profile...) {
		if is.Severity == "error" || is.Severity == "fatal" {
			x.fail(x.invalidResource(is))
			return
		}
	}
	body := data
	f := x.answerFormat()
	if f == negotiate.XML {
		if body, err = fhirxml.ToXML(b.version, data); err != nil {
			x.fail(x.invalidResource(validation.Issue{Text: "not writable as XML: " + err.Error()}))
			return
		}
	}
	x.status = a.Status
	h := x.w.Header()
	for k, vs := range x.answerHeaders(a) {
		h[k] = vs
	}
	h.Set("Content-Type", f.ContentType())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(a.Status)
	if x.r.Method != http.MethodHead {
		x.w.Write(body)
	}
}

// resourceJSON writes a built resource with resourceType first, as FHIR
// JSON is conventionally read; the other elements sorted by name.
func resourceJSON(res map[string]any) ([]byte, error) {
	if res == nil {
		return nil, errNoResource
	}
	rt, _ := res["resourceType"].(string)
	rest := make(map[string]any, len(res))
	for k, v := range res {
		if k != "resourceType" {
			rest[k] = v
		}
	}
	body, err := json.Marshal(rest)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString(`{"resourceType":`)
	t, _ := json.Marshal(rt)
	out.Write(t)
	if len(body) > 2 {
		out.WriteByte(',')
		out.Write(body[1:])
	} else {
		out.WriteByte('}')
	}
	return out.Bytes(), nil
}

var errNoResource = errors.New("the backend's answer gave no value for the resource")

// invalidResource is the 502 for a built resource that is not valid FHIR.
func (x *Exchange) invalidResource(is validation.Issue) *outcome.Error {
	route := "unmatched"
	if x.route != nil {
		route = x.route.cfg.Name
	}
	x.metrics.invalidResources.WithLabelValues(route).Inc()
	x.proc.Log.Error("built resource is not valid FHIR; answered 502", "route", route, "request_id", x.id,
		"expression", is.Expression, "issue", is.Text)
	text := "the gateway could not build a valid resource from the backend's answer: " + is.Text
	if is.Expression != "" {
		text += " (at " + is.Expression + ")"
	}
	return outcome.New(http.StatusBadGateway, "exception", text).WithKind("invalid_resource")
}
