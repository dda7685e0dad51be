// Package audit writes the gateway's audit trail: one record per FHIR
// interaction, to a stream of its own (not the access log), as a flat JSON
// line or as a FHIR R4 AuditEvent.
//
// A record says who (role and a pseudonym of the token subject — never the
// subject itself, never a credential), did what (interaction, action,
// resource type and id), with which outcome, under which request and trace
// id. The pseudonym is an HMAC-SHA256 of issuer and subject under a secret
// key: stable across records and restarts when the key is configured, and
// not reversible without the key.
package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/validation/jsontree"
)

// Record is one FHIR interaction as the gateway saw it.
type Record struct {
	Time      time.Time
	RequestID string
	TraceID   string // "" when none
	Base      string // e.g. /erp
	Route     string // route name; "" when no route matched
	// Interaction is the route's FHIR interaction (create, operation …),
	// capabilities for metadata, "" when no route matched.
	Interaction  string
	Operation    string // operation name without $, for operations
	ResourceType string
	ResourceID   string
	// Issuer and Subject identify the caller; only their pseudonym is
	// written.
	Issuer, Subject string
	Role            string
	ClientAddress   string
	Status          int
	Failure         string // the gateway's failure class, "" on success
}

// Log writes records. It is safe for concurrent use; records of
// concurrent requests are written together (see commit.go), each line
// whole.
type Log struct {
	fhir bool
	key  []byte

	out    io.Writer
	syncer interface{ Sync() error } // set with audit.sync
	closer io.Closer
	// refuse is audit.on_failure: refuse.
	refuse bool

	group groupCommit

	// pseudonyms remembers the pseudonyms of recent actors: a client
	// sends many requests under one token, and the HMAC is a tenth of the
	// cost of a small request. Cleared when it holds maxPseudonyms.
	pseudonymMu sync.Mutex
	pseudonyms  map[actor]string
}

type actor struct{ issuer, subject string }

const maxPseudonyms = 4096

// Open opens the configured output. Output none returns a nil *Log, whose
// Write does nothing.
func Open(c config.Audit) (*Log, error) {
	l := &Log{fhir: c.Format == "fhir", refuse: c.OnFailure != "continue"}
	switch c.Output {
	case "none":
		return nil, nil
	case "", "stderr":
		l.out = os.Stderr
	case "stdout":
		l.out = os.Stdout
	default:
		f, err := os.OpenFile(c.Output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit.output: %w", err)
		}
		l.out, l.closer = f, f
		if c.Sync {
			l.syncer = f
		}
	}
	if c.PseudonymKeyFile != "" {
		key, err := os.ReadFile(c.PseudonymKeyFile)
		if err != nil {
			return nil, fmt.Errorf("audit.pseudonym_key_file: %w", err)
		}
		if len(key) < 16 {
			return nil, fmt.Errorf("audit.pseudonym_key_file: at least 16 bytes of key are needed, found %d", len(key))
		}
		l.key = key
	} else {
		l.key = make([]byte, 32)
		rand.Read(l.key)
	}
	l.group.init(l.write)
	return l, nil
}

// New writes to w with the given pseudonym key (tests, embedding), on
// failure as audit.on_failure: refuse.
func New(w io.Writer, fhir bool, key []byte) *Log {
	l := &Log{out: w, fhir: fhir, key: key, refuse: true}
	l.group.init(l.write)
	return l
}

// write hands one batch of whole lines to the output (and with audit.sync
// to stable storage). It returns how many bytes were written.
func (l *Log) write(b []byte) (int, error) {
	n, err := l.out.Write(b)
	if err == nil && l.syncer != nil {
		err = l.syncer.Sync()
	}
	return n, err
}

// Close writes what is retained (a last try) and closes a file output.
// Records that still cannot be written go to standard error, so that
// they are not lost with the process.
func (l *Log) Close() error {
	if l == nil {
		return nil
	}
	if left := l.group.close(); len(left) > 0 && l.out != os.Stderr {
		fmt.Fprintf(os.Stderr, "audit: %d bytes of records could not be written to the audit output; they follow\n", len(left))
		os.Stderr.Write(left)
	}
	if l.closer == nil {
		return nil
	}
	return l.closer.Close()
}

// Refusing reports whether requests must not reach a backend now:
// audit.on_failure is refuse and records are waiting to be written.
func (l *Log) Refusing() bool {
	return l != nil && l.refuse && l.group.failing.Load()
}

// Stats returns the trail's counters for metrics.
func (l *Log) Stats() Stats {
	if l == nil {
		return Stats{}
	}
	return l.group.stats()
}

// Pseudonym is the actor id written for issuer and subject: 32 hex
// characters of HMAC-SHA256(key, issuer "\n" subject); "" without subject.
func (l *Log) Pseudonym(issuer, subject string) string {
	if subject == "" {
		return ""
	}
	a := actor{issuer, subject}
	l.pseudonymMu.Lock()
	p, ok := l.pseudonyms[a]
	l.pseudonymMu.Unlock()
	if ok {
		return p
	}
	p = l.pseudonym(issuer, subject)
	l.pseudonymMu.Lock()
	if l.pseudonyms == nil || len(l.pseudonyms) >= maxPseudonyms {
		l.pseudonyms = make(map[actor]string)
	}
	l.pseudonyms[a] = p
	l.pseudonymMu.Unlock()
	return p
}

func (l *Log) pseudonym(issuer, subject string) string {
	m := hmac.New(sha256.New, l.key)
	io.WriteString(m, issuer)
	m.Write([]byte{'\n'})
	io.WriteString(m, subject)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// Write writes one record and returns when it has been handed to the
// output (audit.sync: reached stable storage) or, when the output fails,
// is retained for the next try. The request it describes is answered
// either way: its backend may already have acted. An output that fails is
// reported to standard error once per failure spell.
func (l *Log) Write(r *Record) {
	if l == nil {
		return
	}
	bp := linePool.Get().(*[]byte)
	line := (*bp)[:0]
	if l.fhir {
		b, err := json.Marshal(l.auditEvent(r))
		if err != nil {
			return
		}
		line = append(line, b...)
	} else {
		line = l.appendFlat(line, r)
	}
	line = append(line, '\n')
	l.group.commit(line, !l.refuse || r.Failure == FailureAuditUnavailable)
	*bp = line
	linePool.Put(bp)
}

// FailureAuditUnavailable is the failure class of a request refused
// because the trail could not be written. Its own record is the one the
// retained memory may drop when full (it describes no action).
const FailureAuditUnavailable = "audit_unavailable"

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Action is the AuditEvent action code of an interaction: C create, R
// read, U update, D delete, E execute (operations and anything else).
func Action(interaction string) string {
	switch interaction {
	case "create":
		return "C"
	case "read", "search", "capabilities":
		return "R"
	case "update", "conditional-update":
		return "U"
	case "delete":
		return "D"
	}
	return "E"
}

// Outcome is the AuditEvent outcome code of an HTTP status: 0 success, 4
// minor failure (the client's request was refused), 8 serious failure (the
// backend failed or was unreachable), 12 major failure (the gateway
// itself failed).
func Outcome(status int) string {
	switch {
	case status < 400:
		return "0"
	case status < 500:
		return "4"
	case status == 500:
		return "12"
	}
	return "8"
}

// appendFlat appends the flat JSON record: the fields in a fixed order,
// empty optional ones left out, strings quoted as encoding/json does.
func (l *Log) appendFlat(b []byte, r *Record) []byte {
	b = append(b, `{"time":`...)
	// RFC 3339 holds nothing JSON escapes: written in place, unquoted
	// by hand.
	b = append(b, '"')
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendField(b, "request_id", r.RequestID, true)
	b = appendField(b, "trace_id", r.TraceID, false)
	b = appendField(b, "base", r.Base, true)
	b = appendField(b, "route", r.Route, false)
	b = appendField(b, "interaction", r.Interaction, false)
	b = appendField(b, "operation", r.Operation, false)
	b = appendField(b, "action", Action(r.Interaction), true)
	b = appendField(b, "resource_type", r.ResourceType, false)
	b = appendField(b, "resource_id", r.ResourceID, false)
	b = appendField(b, "actor", l.Pseudonym(r.Issuer, r.Subject), false)
	b = appendField(b, "role", r.Role, false)
	b = appendField(b, "client_address", r.ClientAddress, false)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(r.Status), 10)
	b = appendField(b, "outcome", Outcome(r.Status), true)
	b = appendField(b, "failure", r.Failure, false)
	return append(b, '}')
}

func appendField(b []byte, name, value string, always bool) []byte {
	if value == "" && !always {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return jsontree.AppendString(b, value, true)
}

// auditEvent renders a FHIR R4 AuditEvent (type rest, subtype the
// restful interaction; the requesting agent with its pseudonym, role and
// network address; the gateway as observer; the resource and the request
// id as entities).
func (l *Log) auditEvent(r *Record) map[string]any {
	interaction := r.Interaction
	if interaction == "conditional-update" {
		interaction = "update"
	}
	if interaction == "search" {
		interaction = "search-type"
	}
	ev := map[string]any{
		"resourceType": "AuditEvent",
		"type":         map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
		"action":       Action(r.Interaction),
		"recorded":     r.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		"outcome":      Outcome(r.Status),
		"outcomeDesc":  "HTTP " + strconv.Itoa(r.Status) + failureSuffix(r.Failure),
		"source": map[string]any{
			"site":     r.Base,
			"observer": map[string]any{"display": "fhirgate"},
			"type":     []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "3", "display": "Web Server"}},
		},
	}
	if interaction != "" {
		ev["subtype"] = []any{map[string]any{"system": "http://hl7.org/fhir/restful-interaction", "code": interaction}}
	}
	agent := map[string]any{"requestor": true}
	if p := l.Pseudonym(r.Issuer, r.Subject); p != "" {
		agent["who"] = map[string]any{"identifier": map[string]any{"system": "urn:fhirgate:actor-pseudonym", "value": p}}
	} else {
		agent["who"] = map[string]any{"display": "unauthenticated client"}
	}
	if r.Role != "" {
		agent["role"] = []any{map[string]any{"text": r.Role}}
	}
	if r.ClientAddress != "" {
		agent["network"] = map[string]any{"address": r.ClientAddress, "type": "2"}
	}
	ev["agent"] = []any{agent}
	var entities []any
	if r.ResourceType != "" {
		what := map[string]any{"type": r.ResourceType}
		if r.ResourceID != "" {
			what["reference"] = r.ResourceType + "/" + r.ResourceID
		}
		e := map[string]any{"what": what, "type": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}}
		if r.Operation != "" {
			e["detail"] = []any{map[string]any{"type": "operation", "valueString": r.Operation}}
		}
		entities = append(entities, e)
	}
	req := map[string]any{"what": map[string]any{"identifier": map[string]any{"system": "urn:fhirgate:request-id", "value": r.RequestID}}, "name": "request"}
	if r.TraceID != "" {
		req["detail"] = []any{map[string]any{"type": "trace-id", "valueString": r.TraceID}}
	}
	ev["entity"] = append(entities, req)
	return ev
}

func failureSuffix(f string) string {
	if f == "" {
		return ""
	}
	return " (" + f + ")"
}
