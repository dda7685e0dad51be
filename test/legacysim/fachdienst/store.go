// Package fachdienst simulates a legacy E-Rezept-Fachdienst: Tasks in
// memory, the production abort rules of spec erezept-abort §3 rows 8–14,
// and two non-FHIR wire dialects of its own (see api.go), so that the
// gateway's routes.yaml mapping is exercised for real.
package fachdienst

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Task is the legacy record of one prescription's workflow.
type Task struct {
	ID         string `json:"id"`
	FlowType   string `json:"flowType"`
	Status     string `json:"status"` // draft, ready, in-progress, completed, cancelled
	KVNR       string `json:"kvnr"`
	AccessCode string `json:"accessCode,omitempty"`
	Secret     string `json:"secret,omitempty"`
	// Owner is the Telematik-ID of the pharmacy that accepted the Task.
	Owner string `json:"owner,omitempty"`
	// AuthoredOn and LastModified are dateTimes (ms and offset);
	// ExpiryDate and AcceptDate dates, set once activated;
	// LastMedicationDispense an instant, once dispensed.
	AuthoredOn             string `json:"authoredOn,omitempty"`
	LastModified           string `json:"lastModified,omitempty"`
	ExpiryDate             string `json:"expiryDate,omitempty"`
	AcceptDate             string `json:"acceptDate,omitempty"`
	LastMedicationDispense string `json:"lastMedicationDispense,omitempty"`
}

//go:embed seed.json
var defaultSeed []byte

// DefaultSeed returns the embedded seed Tasks: flowtypes 160, 169 and 209
// in every status, plus the spec's example id as a ready 160 Task.
func DefaultSeed() []Task {
	tasks, err := ParseSeed(defaultSeed)
	if err != nil {
		panic(err)
	}
	return tasks
}

// ParseSeed reads a seed file: a JSON array of Tasks.
func ParseSeed(data []byte) ([]Task, error) {
	var tasks []Task
	if err := json.Unmarshal(data, &tasks); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	for _, t := range tasks {
		switch t.Status {
		case "draft", "ready", "in-progress", "completed", "cancelled":
		default:
			return nil, fmt.Errorf("seed: task %s has unknown status %q", t.ID, t.Status)
		}
	}
	return tasks, nil
}

// Store holds the Tasks. It is safe for concurrent use.
type Store struct {
	mu    sync.Mutex
	seed  []Task
	tasks map[string]*Task
}

// NewStore returns a store seeded with tasks.
func NewStore(seed []Task) *Store {
	s := &Store{seed: seed}
	s.Reset()
	return s
}

// Reset restores the seed state.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tasks = make(map[string]*Task, len(s.seed))
	for _, t := range s.seed {
		t := t
		s.tasks[t.ID] = &t
	}
}

// Get returns a copy of a Task.
func (s *Store) Get(id string) (Task, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return Task{}, false
	}
	return *t, true
}

// All returns copies of every Task, by id.
func (s *Store) All() []Task {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Task, 0, len(s.tasks))
	for _, t := range s.tasks {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Actor is who asks for the abort, in the simulator's own vocabulary.
type Actor struct {
	Kind       ActorKind
	ID         string // KVNR of an insured person, Telematik-ID otherwise
	AccessCode string
	Secret     string
}

// ActorKind is the legacy system's notion of a caller.
type ActorKind int

const (
	Prescriber ActorKind = iota + 1
	Pharmacy
	Insured
)

// Refusal is why an abort was refused.
type Refusal int

const (
	Accepted      Refusal = iota
	UnknownTask           // no Task with this id
	WrongState            // the Task's status does not allow it (State says which)
	FlowTypeLimit         // insured person, flowtype 169/209, Task not completed
	BadSecret             // pharmacy: secret missing or wrong
	BadAccessCode         // prescriber or representative: AccessCode missing or wrong
)

// Result of an abort.
type Result struct {
	Refusal  Refusal
	State    string // the Task's status when refused for its state
	FlowType string
}

// Abort applies the production rules in their order (spec §3 rows 8–14):
// exists, not cancelled, not draft, the 169/209 rule for insured persons,
// then per role the status rule before the credential rule. An insured
// owner (KVNR equal) needs no AccessCode, and a wrong one does not matter.
// On success the Task is cancelled and its AccessCode and secret deleted.
func (s *Store) Abort(id string, a Actor) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tasks[id]
	if !ok {
		return Result{Refusal: UnknownTask}
	}
	state := func() Result { return Result{Refusal: WrongState, State: t.Status, FlowType: t.FlowType} }
	switch t.Status {
	case "cancelled", "draft":
		return state()
	}
	if a.Kind == Insured && (t.FlowType == "169" || t.FlowType == "209") && t.Status != "completed" {
		return Result{Refusal: FlowTypeLimit, State: t.Status, FlowType: t.FlowType}
	}
	if a.Kind == Pharmacy {
		if t.Status != "in-progress" {
			return state()
		}
		if !equal(a.Secret, t.Secret) {
			return Result{Refusal: BadSecret, State: t.Status, FlowType: t.FlowType}
		}
	} else {
		if t.Status == "in-progress" {
			return state()
		}
		owner := a.Kind == Insured && a.ID != "" && a.ID == t.KVNR
		if !owner {
			if a.Kind == Prescriber && t.Status != "ready" {
				return state()
			}
			if !equal(a.AccessCode, t.AccessCode) {
				return Result{Refusal: BadAccessCode, State: t.Status, FlowType: t.FlowType}
			}
		}
	}
	t.Status = "cancelled"
	t.AccessCode, t.Secret = "", ""
	t.LastModified = now()
	return Result{Refusal: Accepted, State: t.Status, FlowType: t.FlowType}
}

// now is the legacy system's timestamp format: ms and offset.
func now() string { return time.Now().UTC().Format("2006-01-02T15:04:05.000-07:00") }

// equal compares credentials in constant time; an empty expected value
// never matches.
func equal(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
