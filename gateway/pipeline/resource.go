package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/backend"
	"github.com/fhirgate/fhirgate/gateway/negotiate"
	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/template"
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
		x.fail(x.buildFailure(err))
		return
	}
	res, _ := v.(map[string]any)
	b := x.base
	isBundle := res != nil && res["resourceType"] == "Bundle"
	if isBundle {
		if a.Bundle != nil && a.Bundle.Type == "searchset" {
			total := ""
			if a.Bundle.TotalT != nil {
				if total, err = a.Bundle.TotalT.Render(x, nil); err != nil {
					x.fail(x.buildFailure(err))
					return
				}
			}
			if e := x.route.finishSearchset(x, res, total); e != nil {
				x.fail(e)
				return
			}
		}
		stampBundle(res, x.start, b.version)
	}
	fhirxml.ModelFor(b.version).TypeValues(res)
	data, err := resourceJSON(res)
	if err != nil {
		x.fail(x.invalidResource(validation.Issue{Text: err.Error()}))
		return
	}
	// The answer's profile is the resource's, or, for a bundle answer,
	// each entry's.
	var as, entryAs []string
	if a.Profile != "" {
		as = []string{a.Profile}
	}
	if a.Bundle != nil {
		as, entryAs = nil, as
	}
	checked := b.parser.Check(data, false, b.cfg.ProfileSet, as)
	if is, bad := firstError(checked); bad {
		x.fail(x.invalidResource(is))
		return
	}
	if isBundle && b.cfg.ProfileSet != nil {
		// Each entry, as the Bundle's check decoded it, against the
		// profiles it declares (meta.profile) or the bundle answer's
		// profile: the Bundle's own check covered the base specification
		// and core invariants of every entry, not their profiles.
		entries, _ := checked.Resource["entry"].([]any)
		for i, e := range entries {
			em, _ := e.(map[string]any)
			r, _ := em["resource"].(map[string]any)
			if r == nil {
				continue
			}
			if is, bad := firstError(validation.Checked{Profile: validation.CheckProfiles(r, b.cfg.ProfileSet, entryAs)}); bad {
				is.Expression = nestedPlace("Bundle.entry["+strconv.Itoa(i)+"].resource", is.Expression)
				x.fail(x.invalidResource(is))
				return
			}
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

// buildFailure is the answer to a resource template that could not be
// built from the backend's answer: a value no map translates, or one that
// cannot be passed through ($copy of an XML answer) — 502 either way,
// the backend said something the contract cannot express.
func (x *Exchange) buildFailure(err error) *outcome.Error {
	if e := x.unmappedError(err); e != nil {
		return e
	}
	return x.invalidResource(validation.Issue{Text: err.Error()})
}

// stampBundle gives a built Bundle what identifies this answer when the
// template did not: a new id (a random UUID) and, from R4 on (STU3's
// Bundle has none), the time the request arrived as its timestamp.
func stampBundle(res map[string]any, now time.Time, v validation.Version) {
	if res["id"] == nil {
		res["id"] = uuid.NewString()
	}
	if res["timestamp"] == nil && v != validation.STU3 {
		res["timestamp"] = now.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
}

// firstError is the first error of a validation, if any.
func firstError(c validation.Checked) (validation.Issue, bool) {
	for _, is := range append(c.Base, c.Profile...) {
		if is.Severity == "error" || is.Severity == "fatal" {
			return is, true
		}
	}
	return validation.Issue{}, false
}

// nestedPlace puts an entry resource's issue location (Task.status) under
// its place in the Bundle.
func nestedPlace(place, expr string) string {
	if _, rest, ok := strings.Cut(expr, "."); ok {
		return place + "." + rest
	}
	return place
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

// Items implements template.Lists: the repeated elements of the backend's
// answer (${body.…}) for a resource template's $each.
func (x *Exchange) Items(ref template.Ref) []template.Values {
	if ref.Source != "body" || x.resp == nil {
		return nil
	}
	return itemValues(x, x.resp.Items(ref.Key))
}

// itemScope answers the source item for one repeated element and every
// other source as its parent.
type itemScope struct {
	parent template.Values
	item   backend.Item
}

func itemValues(parent template.Values, items []backend.Item) []template.Values {
	out := make([]template.Values, len(items))
	for i, it := range items {
		out[i] = itemScope{parent: parent, item: it}
	}
	return out
}

func (s itemScope) Value(r template.Ref) (string, bool) {
	if r.Source == template.ItemSource {
		return s.item.Field(r.Key)
	}
	return s.parent.Value(r)
}

// Items: items of the item ($each: item.lines), or of the parent.
func (s itemScope) Items(r template.Ref) []template.Values {
	if r.Source == template.ItemSource {
		return itemValues(s, s.item.Items(r.Key))
	}
	if l, ok := s.parent.(template.Lists); ok {
		return l.Items(r)
	}
	return nil
}

// Copy implements template.Copier: a value of the backend's JSON answer
// (${body.…}) as it is, for a resource template's $copy.
func (x *Exchange) Copy(ref template.Ref) (any, error) {
	if ref.Source != "body" || x.resp == nil {
		return nil, nil
	}
	return x.resp.Copy(ref.Key)
}

// Copy: a value of the item ($copy: item.document), or of the parent.
func (s itemScope) Copy(r template.Ref) (any, error) {
	if r.Source == template.ItemSource {
		return s.item.Copy(r.Key)
	}
	if c, ok := s.parent.(template.Copier); ok {
		return c.Copy(r)
	}
	return nil, nil
}
