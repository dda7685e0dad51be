package fachdienst

import (
	"sort"
	"strings"
)

// ReadRefusal is why a read was refused.
type ReadRefusal int

const (
	ReadOK ReadRefusal = iota
	ReadUnknown
	ReadWrongState    // State says which
	ReadBadAccessCode // representative or pharmacy (recovery secret)
	ReadBadSecret     // pharmacy (receipt again)
	ReadIdentityMix   // representative: one KVNR a test identity, the other not
	ReadFlowTypeLimit // representative: flowtype 169/209
	ReadNotOwner      // pharmacy: the Task is another pharmacy's
)

// ReadResult is a read's outcome: the Task on success.
type ReadResult struct {
	Refusal ReadRefusal
	State   string
	Task    Task
}

// Read applies the legacy system's read rules (spec erezept-task-read
// §3.1 rows 2–7, §3.2 rows 2–6): insured persons read their own Tasks,
// representatives with the AccessCode; a pharmacy or payer reads with
// the secret (receipt again; no status rule) or else the AccessCode
// (recovery: in-progress or completed, its own Tasks only).
func (s *Store) Read(id string, a Actor) ReadResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return ReadResult{Refusal: ReadUnknown}
	}
	state := ReadResult{Refusal: ReadWrongState, State: t.Status}
	if a.Kind == Insured {
		if t.Status == "draft" || t.Status == "cancelled" {
			return state
		}
		if a.ID != t.KVNR {
			if !equal(a.AccessCode, t.AccessCode) {
				return ReadResult{Refusal: ReadBadAccessCode}
			}
			if testIdentity(a.ID) != testIdentity(t.KVNR) {
				return ReadResult{Refusal: ReadIdentityMix}
			}
			if t.FlowType == "169" || t.FlowType == "209" {
				return ReadResult{Refusal: ReadFlowTypeLimit}
			}
		}
		return ReadResult{Task: *t}
	}
	if t.Status == "cancelled" {
		return state
	}
	if a.Secret != "" {
		if !equal(a.Secret, t.Secret) {
			return ReadResult{Refusal: ReadBadSecret}
		}
		return ReadResult{Task: *t}
	}
	if !equal(a.AccessCode, t.AccessCode) {
		return ReadResult{Refusal: ReadBadAccessCode}
	}
	if t.Status != "in-progress" && t.Status != "completed" {
		return state
	}
	if a.ID == "" || a.ID != t.Owner {
		return ReadResult{Refusal: ReadNotOwner}
	}
	return ReadResult{Task: *t}
}

// testIdentity: a KVNR of the test range, X0000 followed by 0001–5000.
func testIdentity(kvnr string) bool {
	if len(kvnr) != 10 || !strings.HasPrefix(kvnr, "X0000") {
		return false
	}
	n := 0
	for _, c := range kvnr[5:9] {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n >= 1 && n <= 5000
}

// Query selects an insured person's Tasks for the list.
type Query struct {
	KVNR   string
	Status []string // any of these; empty: every status
	// Dates maps a field (authoredOn, lastModified, expiryDate,
	// acceptDate) to comparisons: an optional prefix (eq, ne, gt, lt, ge,
	// le) and a date or dateTime, compared at the value's precision.
	Dates map[string][]string
	// Sort is a comma list of fields, "-" for descending; then by id.
	Sort          string
	Limit, Offset int
}

// List returns one page of the matching Tasks and the number of all
// matches. Drafts are never listed (they have no patient yet).
func (s *Store) List(q Query) (page []Task, total int) {
	s.mu.Lock()
	var all []Task
	for _, t := range s.tasks {
		if t.KVNR == q.KVNR && t.Status != "draft" && matches(*t, q) {
			all = append(all, *t)
		}
	}
	s.mu.Unlock()
	keys := strings.Split(q.Sort, ",")
	sort.Slice(all, func(i, j int) bool {
		for _, k := range keys {
			field, desc := strings.CutPrefix(k, "-")
			a, b := dateField(all[i], field), dateField(all[j], field)
			if a != b {
				return (a < b) != desc
			}
		}
		return all[i].ID < all[j].ID
	})
	total = len(all)
	if q.Offset >= total {
		return nil, total
	}
	end := total
	if q.Limit > 0 && q.Offset+q.Limit < total {
		end = q.Offset + q.Limit
	}
	return all[q.Offset:end], total
}

func matches(t Task, q Query) bool {
	if len(q.Status) > 0 {
		found := false
		for _, st := range q.Status {
			found = found || st == t.Status
		}
		if !found {
			return false
		}
	}
	for field, cmps := range q.Dates {
		v := dateField(t, field)
		for _, c := range cmps {
			if !compareDate(v, c) {
				return false
			}
		}
	}
	return true
}

func dateField(t Task, field string) string {
	switch field {
	case "authoredOn":
		return t.AuthoredOn
	case "lastModified":
		return t.LastModified
	case "expiryDate":
		return t.ExpiryDate
	case "acceptDate":
		return t.AcceptDate
	}
	return ""
}

// compareDate compares v, cut to the precision of the comparison's value.
func compareDate(v, cmp string) bool {
	op := "eq"
	if len(cmp) > 2 && cmp[0] >= 'a' && cmp[0] <= 'z' {
		op, cmp = cmp[:2], cmp[2:]
	}
	if v == "" {
		return op == "ne"
	}
	if len(v) > len(cmp) {
		v = v[:len(cmp)]
	}
	switch op {
	case "ne":
		return v != cmp
	case "gt":
		return v > cmp
	case "lt":
		return v < cmp
	case "ge":
		return v >= cmp
	case "le":
		return v <= cmp
	}
	return v == cmp
}
