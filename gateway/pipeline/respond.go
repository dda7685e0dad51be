package pipeline

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/negotiate"
	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/template"
)

type configAnswer = config.Answer

// answerError turns a configured answer into an error, rendering its text,
// expression and headers against the request. A header value that would
// carry a control character is left out rather than sent.
func (x *Exchange) answerError(a *config.Answer, kind string) *outcome.Error {
	text, err := a.TextT.Render(x, nil)
	if e := x.unmappedError(err); e != nil {
		return e
	}
	code := a.Code
	if code == "" {
		code = x.base.cfg.IssueCode(a.Status)
	}
	e := outcome.New(a.Status, code, text)
	e.Kind = kind
	expr, err := a.ExpressionT.Render(x, nil)
	if e := x.unmappedError(err); e != nil {
		return e
	}
	if expr != "" {
		e.Issues[0].Expression = []string{expr}
	}
	e.Header = x.answerHeaders(a)
	return e
}

func (x *Exchange) answerHeaders(a *config.Answer) http.Header {
	if len(a.HeaderT) == 0 {
		return nil
	}
	h := make(http.Header, len(a.HeaderT))
	for _, nt := range a.HeaderT {
		v, err := nt.T.Render(x, escapeHeaderValue)
		if err != nil && !errors.Is(err, template.ErrRefused) {
			// An untranslatable value: the answer goes without the header,
			// as with a value that cannot be a header.
			x.proc.Log.Warn("answer header left out", "request_id", x.id, "header", nt.Name, "reason", err.Error())
			continue
		}
		if err == nil && v != "" {
			h[nt.Name] = []string{v}
		}
	}
	return h
}

// fail writes e as an OperationOutcome in the negotiated format (or the
// default when the client asked for one that cannot be served). It is the
// only place an error body is written.
func (x *Exchange) fail(e *outcome.Error) {
	x.status, x.kind = e.Status, e.Kind
	if len(e.Issues) > 0 {
		x.text = trimmed(e.Issues[0].Text)
	}
	o := outcome.Outcome{Issues: e.Issues}
	if x.base != nil {
		o.Profile = x.base.cfg.OutcomeProfile
	}
	f := x.answerFormat()
	var body []byte
	if f == negotiate.XML {
		body = o.XML()
	} else {
		body = o.JSON()
	}
	h := x.w.Header()
	for k, vs := range e.Header {
		h[k] = vs
	}
	h.Set("Content-Type", f.ContentType())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	x.w.WriteHeader(e.Status)
	if x.r.Method != http.MethodHead {
		x.w.Write(body)
	}
}

// succeed writes a success answer the backend confirmed: status and headers,
// no body.
func (x *Exchange) succeed(a *config.Answer) {
	x.status = a.Status
	h := x.w.Header()
	for k, vs := range x.answerHeaders(a) {
		h[k] = vs
	}
	if a.Status != http.StatusNoContent {
		h.Set("Content-Length", "0")
	}
	x.w.WriteHeader(a.Status)
}
