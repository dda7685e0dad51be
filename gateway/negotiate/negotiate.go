// Package negotiate decides the FHIR format of an answer: the _format query
// parameter wins over the Accept header, which wins over the route's default
// (FHIR R4 http.html#mime, §3.1.0.1.8). It knows every MIME type and alias
// FHIR defines for JSON and XML, the old DSTU2 ones included.
package negotiate

import (
	"strconv"
	"strings"
)

// Format is a FHIR serialisation.
type Format uint8

const (
	// None is no format: nothing acceptable was found.
	None Format = iota
	JSON
	XML
)

// String returns json or xml.
func (f Format) String() string {
	switch f {
	case JSON:
		return "json"
	case XML:
		return "xml"
	}
	return "none"
}

// ContentType is the Content-Type the gateway answers with.
func (f Format) ContentType() string {
	if f == XML {
		return "application/fhir+xml;charset=utf-8"
	}
	return "application/fhir+json;charset=utf-8"
}

// Parse reads json or xml (configuration values).
func Parse(s string) Format {
	switch s {
	case "json":
		return JSON
	case "xml":
		return XML
	}
	return None
}

// mimeFormats maps every accepted MIME type and _format alias.
var mimeFormats = map[string]Format{
	"json": JSON, "application/json": JSON, "application/fhir+json": JSON, "application/json+fhir": JSON, "text/json": JSON,
	"xml": XML, "application/xml": XML, "text/xml": XML, "application/fhir+xml": XML, "application/xml+fhir": XML,
}

// formatAliases are _format values that are no media type: the short
// forms the E-Rezept-Fachdienst accepts (and its clients send).
var formatAliases = map[string]Format{"fhir+json": JSON, "fhir+xml": XML}

// MediaType returns the format of one MIME type or alias, parameters such as
// charset or fhirVersion ignored, case-insensitively.
func MediaType(s string) Format {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if f, ok := mimeFormats[s]; ok {
		return f
	}
	return mimeFormats[strings.ToLower(s)]
}

// Offer is the set of formats a route can serve.
type Offer struct{ JSON, XML bool }

// Has reports whether the offer includes f.
func (o Offer) Has(f Format) bool { return f == JSON && o.JSON || f == XML && o.XML }

// Negotiate picks the answer format. formatParam is the _format value
// (hasFormat false when the parameter is absent), accept the Accept header.
// When nothing acceptable can be served it returns None and the value the
// client asked for, for the 406 text.
func Negotiate(formatParam string, hasFormat bool, accept string, offer Offer, def Format) (Format, string) {
	if hasFormat {
		f := MediaType(formatParam)
		if f == None {
			f = formatAliases[strings.ToLower(strings.TrimSpace(formatParam))]
		}
		if !offer.Has(f) {
			return None, formatParam
		}
		return f, ""
	}
	if strings.TrimSpace(accept) == "" {
		return def, ""
	}
	f := fromAccept(accept, offer, def)
	if f == None {
		return None, accept
	}
	return f, ""
}

// fromAccept weighs each offered format by the best-matching media range:
// an exact type beats type/* beats */*, and q=0 refuses. Among equal
// weights the default wins, so `*/*` keeps the route's (or role's) default.
func fromAccept(accept string, offer Offer, def Format) Format {
	type score struct {
		q           float64
		specificity int
	}
	var best [3]score
	for len(accept) > 0 {
		var rng string
		if i := strings.IndexByte(accept, ','); i >= 0 {
			rng, accept = accept[:i], accept[i+1:]
		} else {
			rng, accept = accept, ""
		}
		mt, params, _ := strings.Cut(rng, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt == "" {
			continue
		}
		q := 1.0
		for params != "" {
			var p string
			p, params, _ = strings.Cut(params, ";")
			k, v, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && x >= 0 && x <= 1 {
					q = x
				}
			}
		}
		for _, f := range [...]Format{JSON, XML} {
			if !offer.Has(f) {
				continue
			}
			spec := 0
			switch {
			case mimeFormats[mt] == f:
				spec = 3
			case mt == "application/*" || (mt == "text/*" && f == XML):
				spec = 2
			case mt == "*/*" || mt == "*":
				spec = 1
			default:
				continue
			}
			// The most specific matching range decides the weight (RFC 9110 §12.5.1).
			if spec > best[f].specificity {
				best[f] = score{q: q, specificity: spec}
			}
		}
	}
	pick := None
	for _, f := range [...]Format{JSON, XML} {
		s := best[f]
		if s.specificity == 0 || s.q == 0 {
			continue
		}
		if pick == None || s.q > best[pick].q || (s.q == best[pick].q && (s.specificity > best[pick].specificity || s.specificity == best[pick].specificity && f == def)) {
			pick = f
		}
	}
	return pick
}
