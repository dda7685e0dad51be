package pipeline

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/validation"
)

// resultParams are the search result parameters every search route
// understands.
var resultParams = map[string]bool{"_format": true, "_count": true, "_summary": true, "_pretty": true}

// search is what checkSearch learned about a search request: the page,
// the backend's sort, and the parameter an invalid_search answer names.
type search struct {
	count, offset int
	countGiven    bool
	sort          string // the backend's form: keys mapped, "-" kept, comma-separated
	clientSort    string // the request's _sort, known keys only, for the links
	param         string
}

// value answers ${search.count}, ${search.offset}, ${search.sort} and
// ${search.param}.
func (s *search) value(key string) (string, bool) {
	if s == nil {
		return "", false
	}
	switch key {
	case "count":
		return strconv.Itoa(s.count), s.count > 0
	case "offset":
		return strconv.Itoa(s.offset), s.count > 0
	case "sort":
		return s.sort, s.sort != ""
	case "param":
		return s.param, s.param != ""
	}
	return "", false
}

// checkSearch checks a search's parameters, in this order: a parameter
// the route does not declare is ignored (and left out of the links)
// unless the client asked for Prefer: handling=strict, which refuses it —
// FHIR's rule for unknown search parameters; declared parameters' values
// must be of their type (the route's invalid_search answer); _count and,
// with paging, the offset are whole numbers; _summary count or false;
// _sort keys the route does not know are ignored.
func (r *Route) checkSearch(x *Exchange) *outcome.Error {
	q := x.queryValues()
	cfg := r.cfg
	strict := preferStrict(x.r.Header.Values("Prefer"))
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		base, _, _ := strings.Cut(name, ":") // a modifier (identifier:of-type)
		switch {
		case resultParams[name]:
		case cfg.Paging != nil && name == cfg.Paging.Offset:
		case cfg.Sort != nil && name == "_sort":
		case cfg.SearchParams[base] != "":
		case strict:
			return outcome.New(http.StatusBadRequest, "not-supported", "unknown search parameter '"+name+"' (Prefer: handling=strict)").
				WithKind("query").WithExpression(name)
		}
	}
	s := &search{}
	x.search = s
	for _, name := range names {
		typ := cfg.SearchParams[name]
		for _, v := range q[name] {
			if !validSearchValue(typ, v) {
				s.param = name
				return x.answerError(cfg.InvalidSearch, "search")
			}
		}
	}
	if p := cfg.Paging; p != nil {
		s.count = p.DefaultCount
		if c, given := q["_count"]; given {
			n, e := x.wholeNumber("_count", c[0])
			if e != nil {
				return e
			}
			if n == 0 {
				return x.queryError("_count", "_count zero is not supported")
			}
			s.count, s.countGiven = min(n, p.MaxCount), true
		}
		if o, given := q[p.Offset]; given {
			n, e := x.wholeNumber(p.Offset, o[0])
			if e != nil {
				return e
			}
			s.offset = n
		}
	} else if c := q.Get("_count"); c != "" {
		if n, err := strconv.Atoi(c); err != nil || n < 0 {
			return x.queryError("_count", "_count must be a whole number of 0 or more")
		}
	}
	switch q.Get("_summary") {
	case "", "count", "false":
	default:
		return outcome.New(http.StatusBadRequest, "not-supported", "_summary supports count and false").WithKind("query").WithExpression("_summary")
	}
	if so := cfg.Sort; so != nil {
		given := q.Get("_sort")
		var backend, client []string
		for _, k := range strings.Split(given, ",") {
			name, desc := strings.CutPrefix(strings.TrimSpace(k), "-")
			key, ok := so.Keys[name]
			if !ok {
				continue
			}
			if desc {
				key = "-" + key
			}
			backend = append(backend, key)
			client = append(client, strings.TrimSpace(k))
		}
		if len(backend) == 0 && so.Default != "" {
			name, desc := strings.CutPrefix(so.Default, "-")
			key := so.Keys[name]
			if desc {
				key = "-" + key
			}
			backend = []string{key}
		}
		s.sort, s.clientSort = strings.Join(backend, ","), strings.Join(client, ",")
	}
	return nil
}

func (x *Exchange) queryError(param, text string) *outcome.Error {
	return outcome.New(http.StatusBadRequest, x.base.cfg.IssueCode(http.StatusBadRequest), text).WithKind("query").WithExpression(param)
}

// wholeNumber reads a paging argument as a 400 when it is none.
func (x *Exchange) wholeNumber(param, v string) (int, *outcome.Error) {
	n, problem := parseWholeNumber(param, v)
	if problem != "" {
		return 0, x.queryError(param, problem)
	}
	return n, nil
}

// parseWholeNumber reads a paging argument; each way it can be wrong has
// its own text (the E-Rezept-Fachdienst's, which say precisely what is
// wrong), "" when it is a whole number of 0 or more.
func parseWholeNumber(param, v string) (int, string) {
	digits := 0
	for digits < len(v) && v[digits] >= '0' && v[digits] <= '9' {
		digits++
	}
	switch {
	case strings.HasPrefix(v, "-") && len(v) > 1 && strings.Trim(v[1:], "0123456789") == "":
		return 0, param + " can not be negative"
	case digits == 0:
		return 0, "invalid numeric format in " + param
	case digits < len(v):
		return 0, "trailing characters are not permitted in a numerical argument: " + param
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n > math.MaxInt32 {
		return 0, param + " value out of range"
	}
	return int(n), ""
}

var (
	searchDate   = regexp.MustCompile(`^(eq|ne|gt|lt|ge|le|sa|eb|ap)?[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T([01][0-9]|2[0-3]):[0-5][0-9](:([0-5][0-9]|60)(\.[0-9]+)?)?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?)?)?$`)
	searchNumber = regexp.MustCompile(`^(eq|ne|gt|lt|ge|le|sa|eb|ap)?-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)
)

// validSearchValue reports whether v is a value of a search parameter
// type; a comma separates alternatives (OR), each checked. Types without
// a form of their own (string, uri, reference …) take anything.
func validSearchValue(typ, v string) bool {
	var re *regexp.Regexp
	switch typ {
	case "date":
		re = searchDate
	case "number":
		re = searchNumber
	case "token":
		return strings.Trim(v, ",") != ""
	default:
		return true
	}
	for _, alt := range strings.Split(v, ",") {
		if !re.MatchString(alt) {
			return false
		}
	}
	return true
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
// (no entries), at most one page of entries, and the links. Each link is
// the base URL and the request path with the parameters used — declared
// ones, then _sort with the keys the route knows, then, on a paging
// route, _count and the offset (self carries them only when the request
// gave them); unknown parameters were ignored and are not in them. A
// paging route links first always, prev from any page but the first,
// next while matches remain, and last when there are any.
func (r *Route) finishSearchset(x *Exchange, bundle map[string]any, total string) *outcome.Error {
	entries, _ := bundle["entry"].([]any)
	n := len(entries)
	if total != "" {
		t, err := strconv.Atoi(total)
		if err != nil || t < 0 {
			return x.invalidResource(validation.Issue{Text: "the backend's total is not a whole number"})
		}
		n = t
	}
	bundle["total"] = json.Number(strconv.Itoa(n))
	q := x.queryValues()
	s := x.search
	pageSize := -1
	if r.cfg.Paging != nil {
		pageSize = s.count
	} else if c, err := strconv.Atoi(q.Get("_count")); err == nil {
		pageSize = c
	}
	if q.Get("_summary") == "count" || pageSize == 0 {
		delete(bundle, "entry")
	} else if pageSize > 0 && pageSize < len(entries) {
		bundle["entry"] = entries[:pageSize]
	}
	used := url.Values{}
	for k, vs := range q {
		base, _, _ := strings.Cut(k, ":")
		if r.cfg.SearchParams[base] != "" || k == "_summary" || r.cfg.Paging == nil && k == "_count" {
			used[k] = vs
		}
	}
	prefix := x.baseURL() + strings.TrimPrefix(x.r.URL.Path, x.base.prefix)
	filters := used.Encode()
	if s != nil && s.clientSort != "" {
		filters = joinQuery(filters, "_sort="+url.QueryEscape(s.clientSort))
	}
	link := func(rel, query string) any {
		u := prefix
		if query != "" {
			u += "?" + query
		}
		return map[string]any{"relation": rel, "url": u}
	}
	p := r.cfg.Paging
	if p == nil || q.Get("_summary") == "count" {
		bundle["link"] = []any{link("self", filters)}
		return nil
	}
	page := func(offset int) string {
		return joinQuery(filters, "_count="+strconv.Itoa(s.count)+"&"+url.QueryEscape(p.Offset)+"="+strconv.Itoa(offset))
	}
	self := filters
	if s.countGiven || s.offset > 0 {
		self = page(s.offset)
	}
	links := []any{link("self", self), link("first", page(0))}
	if s.offset > 0 {
		links = append(links, link("prev", page(max(0, s.offset-s.count))))
	}
	if s.offset+s.count < n {
		links = append(links, link("next", page(s.offset+s.count)))
	}
	if n > 0 {
		links = append(links, link("last", page((n-1)/s.count*s.count)))
	}
	bundle["link"] = links
	return nil
}

func joinQuery(a, b string) string {
	if a == "" {
		return b
	}
	return a + "&" + b
}
