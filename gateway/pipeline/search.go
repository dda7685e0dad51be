package pipeline

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/gateway/outcome"
)

// resultParams are the search result parameters every search route
// understands.
var resultParams = map[string]bool{"_format": true, "_count": true, "_summary": true, "_pretty": true}

// checkSearch checks a search's parameters: _count a whole number ≥ 0,
// _summary count or false; a parameter the route does not declare is
// ignored (and left out of the self link) unless the client asked for
// Prefer: handling=strict, which refuses it — FHIR's rule for unknown
// search parameters.
func (r *Route) checkSearch(x *Exchange) *outcome.Error {
	q := x.queryValues()
	strict := preferStrict(x.r.Header.Values("Prefer"))
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	}) {
		base, _, _ := strings.Cut(name, ":") // a modifier (identifier:of-type)
		switch {
		case resultParams[name]:
		case r.cfg.SearchParams[base] != "":
		case strict:
			return outcome.New(http.StatusBadRequest, "not-supported", "unknown search parameter '"+name+"' (Prefer: handling=strict)").
				WithKind("query").WithExpression(name)
		}
	}
	if c := q.Get("_count"); c != "" {
		if n, err := strconv.Atoi(c); err != nil || n < 0 {
			return outcome.New(http.StatusBadRequest, "invalid", "_count must be a whole number of 0 or more").WithKind("query").WithExpression("_count")
		}
	}
	switch q.Get("_summary") {
	case "", "count", "false":
	default:
		return outcome.New(http.StatusBadRequest, "not-supported", "_summary supports count and false").WithKind("query").WithExpression("_summary")
	}
	return nil
}

func preferStrict(values []string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ";") {
			for _, p := range strings.Split(part, ",") {
				if strings.EqualFold(strings.ReplaceAll(strings.TrimSpace(p), " ", ""), "handling=strict") {
					return true
				}
			}
		}
	}
	return false
}

// finishSearchset completes a built searchset Bundle: total (the backend's
// when the answer says it, else the number of entries), _summary=count
// (no entries), _count (at most that many entries), and the self link:
// the base URL, the request path and the parameters used — declared ones
// and _count/_summary; unknown ones were ignored and are not in it.
func (r *Route) finishSearchset(x *Exchange, bundle map[string]any, total string) {
	entries, _ := bundle["entry"].([]any)
	n := len(entries)
	if total != "" {
		if _, err := strconv.Atoi(total); err == nil {
			bundle["total"] = json.Number(total)
		}
	} else {
		bundle["total"] = json.Number(strconv.Itoa(n))
	}
	q := x.queryValues()
	if q.Get("_summary") == "count" {
		delete(bundle, "entry")
	} else if c, err := strconv.Atoi(q.Get("_count")); err == nil && c < len(entries) {
		if c == 0 {
			delete(bundle, "entry")
		} else {
			bundle["entry"] = entries[:c]
		}
	}
	used := url.Values{}
	for k, vs := range q {
		base, _, _ := strings.Cut(k, ":")
		if r.cfg.SearchParams[base] != "" || k == "_count" || k == "_summary" {
			used[k] = vs
		}
	}
	self := x.baseURL() + strings.TrimPrefix(x.r.URL.Path, x.base.prefix)
	if enc := used.Encode(); enc != "" {
		self += "?" + enc
	}
	bundle["link"] = []any{map[string]any{"relation": "self", "url": self}}
}
