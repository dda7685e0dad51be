// Package gtk simulates a legacy Receiving GtK (Twiin Notified Pull): a
// system that knows nothing of FHIR, stores pull notifications under their
// business identifier and cancels them, with its own JSON API and error
// codes. The gateway's routes.yaml turns Twiin-01/Twiin-02 into its calls.
//
// Business rules (each refusal has its own error code, see api.go):
//   - a notification identifier (system, value) is registered once; a second
//     registration is refused as a duplicate;
//   - an identifier that was cancelled — even before its notification
//     arrived — stays cancelled: a later notification is refused, never
//     revives it;
//   - a cancellation selects notifications by token: exact (system and
//     value), any-system (value only, so several systems can match),
//     no-system (value, no system) or system-only (every value of a system);
//     several matches are refused as not selective enough;
//   - cancelling a notification cancels the pull it announced; one that was
//     already pulled cannot be cancelled;
//   - cancelling a cancelled notification changes nothing (idempotent);
//   - no match: the cancellation is stored as a cancelled record.
//
// Persist mode (default on) decides whether the GtK stores what it accepts
// and reports id and revision, or only accepts it (queued, no id).
package gtk

import (
	"fmt"
	"sort"
	"sync"
)

// Notification is one stored notification (or cancellation record).
type Notification struct {
	ID       string `json:"id"`
	Revision int    `json:"revision"`
	System   string `json:"system"`
	Value    string `json:"value"`
	// Status is active, cancelled or pulled.
	Status string `json:"status"`
	// PullCancelled records that the intended pull was called off.
	PullCancelled bool `json:"pullCancelled"`
	// CancelledBeforeArrival marks a record created by a cancellation.
	CancelledBeforeArrival bool `json:"cancelledBeforeArrival"`
	// Fields are the registration's fields as received.
	Fields map[string]any `json:"fields,omitempty"`
}

// Store is the GtK's state, safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	persist bool
	next    int
	byID    map[string]*Notification
	order   []string
}

// NewStore returns an empty store in persist mode.
func NewStore() *Store {
	s := &Store{}
	s.Reset()
	return s
}

// Reset empties the store and restores persist mode.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.persist, s.next, s.byID, s.order = true, 0, map[string]*Notification{}, nil
}

// SetPersist switches between storing (true) and accept-only (false).
func (s *Store) SetPersist(on bool) {
	s.mu.Lock()
	s.persist = on
	s.mu.Unlock()
}

// Snapshot returns copies of all records in creation order.
func (s *Store) Snapshot() []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Notification, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, *s.byID[id])
	}
	return out
}

// MarkPulled records that the receiver pulled the data of a notification.
func (s *Store) MarkPulled(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.byID[id]
	if n == nil || n.Status != "active" {
		return false
	}
	n.Status, n.Revision = "pulled", n.Revision+1
	return true
}

// Result is the answer to a registration or cancellation.
type Result struct {
	Outcome string // STORED, QUEUED, CANCELLED, CANCEL_QUEUED, ALREADY_CANCELLED, STORED_AS_CANCELLED
	Refusal string // an error code (GTK-E-…), "" when accepted
	Message string
	Record  *Notification // the record concerned, when there is one
	Matches int
	Persist bool
}

func (s *Store) create(system, value, status string, fields map[string]any) *Notification {
	s.next++
	n := &Notification{ID: fmt.Sprintf("ntf-%06d", s.next), Revision: 1, System: system, Value: value, Status: status, Fields: fields}
	s.byID[n.ID] = n
	s.order = append(s.order, n.ID)
	return n
}

// find returns the records an identifier token selects.
func (s *Store) find(mode, system, value string) []*Notification {
	var out []*Notification
	for _, id := range s.order {
		n := s.byID[id]
		var hit bool
		switch mode {
		case "exact":
			hit = n.System == system && n.Value == value
		case "any-system":
			hit = n.Value == value
		case "no-system":
			hit = n.System == "" && n.Value == value
		case "system-only":
			hit = n.System == system
		}
		if hit {
			out = append(out, n)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Register stores a notification.
func (s *Store) Register(system, value string, fields map[string]any) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		return Result{Refusal: "GTK-E-100", Message: "field id.value is missing"}
	}
	if existing := s.find("exact", system, value); len(existing) > 0 {
		if existing[0].Status == "cancelled" {
			return Result{Refusal: "GTK-E-107", Message: "the notification was cancelled before it arrived", Record: existing[0]}
		}
		return Result{Refusal: "GTK-E-108", Message: "a notification with this identifier is already registered", Record: existing[0]}
	}
	n := s.create(system, value, "active", fields)
	if !s.persist {
		return Result{Outcome: "QUEUED", Record: n}
	}
	return Result{Outcome: "STORED", Record: n}
}

// Cancel cancels the notification a token (mode, system, value) selects;
// with no match it records the cancellation under its own identifier
// (recordSystem, recordValue) so that the notification cannot arrive later.
func (s *Store) Cancel(mode, system, value, recordSystem, recordValue string) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch mode {
	case "exact", "any-system", "no-system", "system-only":
	default:
		return Result{Refusal: "GTK-E-100", Message: "match.mode must be exact, any-system, no-system or system-only"}
	}
	hits := s.find(mode, system, value)
	switch {
	case len(hits) > 1:
		return Result{Refusal: "GTK-E-130", Message: fmt.Sprintf("%d notifications match", len(hits)), Matches: len(hits)}
	case len(hits) == 0:
		if recordValue == "" {
			return Result{Refusal: "GTK-E-132", Message: "nothing matches and the cancellation has no identifier value to be recorded under"}
		}
		n := s.create(recordSystem, recordValue, "cancelled", nil)
		n.CancelledBeforeArrival = true
		if !s.persist {
			return Result{Outcome: "CANCEL_QUEUED", Record: n}
		}
		return Result{Outcome: "STORED_AS_CANCELLED", Record: n}
	}
	n := hits[0]
	switch n.Status {
	case "cancelled":
		return Result{Outcome: "ALREADY_CANCELLED", Record: n}
	case "pulled":
		return Result{Refusal: "GTK-E-131", Message: "the data of this notification has already been pulled", Record: n}
	}
	n.Status, n.PullCancelled, n.Revision = "cancelled", true, n.Revision+1
	if !s.persist {
		return Result{Outcome: "CANCEL_QUEUED", Record: n}
	}
	return Result{Outcome: "CANCELLED", Record: n}
}

// Get returns a copy of the record with id.
func (s *Store) Get(id string) (Notification, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.byID[id]
	if n == nil {
		return Notification{}, false
	}
	return *n, true
}

// Search returns copies of the records a token selects (modes as Cancel;
// "" is exact), in id order.
func (s *Store) Search(mode, system, value string) ([]Notification, bool) {
	if mode == "" {
		mode = "exact"
	}
	switch mode {
	case "exact", "any-system", "no-system", "system-only":
	default:
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Notification
	for _, n := range s.find(mode, system, value) {
		out = append(out, *n)
	}
	return out, true
}
