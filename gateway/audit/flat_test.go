package audit

import (
	"encoding/json"
	"testing"
	"time"
)

// flatReference is the flat record as encoding/json writes it: the
// hand-written encoder must produce the same bytes.
type flatReference struct {
	Time          string `json:"time"`
	RequestID     string `json:"request_id"`
	TraceID       string `json:"trace_id,omitempty"`
	Base          string `json:"base"`
	Route         string `json:"route,omitempty"`
	Interaction   string `json:"interaction,omitempty"`
	Operation     string `json:"operation,omitempty"`
	Action        string `json:"action"`
	ResourceType  string `json:"resource_type,omitempty"`
	ResourceID    string `json:"resource_id,omitempty"`
	Actor         string `json:"actor,omitempty"`
	Role          string `json:"role,omitempty"`
	ClientAddress string `json:"client_address,omitempty"`
	Status        int    `json:"status"`
	Outcome       string `json:"outcome"`
	Failure       string `json:"failure,omitempty"`
}

func checkFlat(t *testing.T, l *Log, r *Record) {
	t.Helper()
	want, err := json.Marshal(flatReference{
		Time: r.Time.UTC().Format(time.RFC3339Nano), RequestID: r.RequestID, TraceID: r.TraceID,
		Base: r.Base, Route: r.Route, Interaction: r.Interaction, Operation: r.Operation,
		Action: Action(r.Interaction), ResourceType: r.ResourceType, ResourceID: r.ResourceID,
		Actor: l.Pseudonym(r.Issuer, r.Subject), Role: r.Role, ClientAddress: r.ClientAddress,
		Status: r.Status, Outcome: Outcome(r.Status), Failure: r.Failure,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.appendFlat(nil, r); string(got) != string(want) {
		t.Errorf("flat record\n got %s\nwant %s", got, want)
	}
}

func TestFlatRecordAsEncodingJSON(t *testing.T) {
	l := New(nil, false, []byte("0123456789abcdef"))
	at := time.Date(2026, 11, 30, 16, 0, 0, 123456789, time.FixedZone("CET", 3600))
	for _, r := range []*Record{
		{Time: at, RequestID: "r1", Base: "/erp", Status: 204},
		{Time: at, RequestID: "r2", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Base: "/erp", Route: "abort-task",
			Interaction: "operation", Operation: "abort", ResourceType: "Task", ResourceID: "160.000.000.000.000.01",
			Issuer: "https://idp", Subject: "X110", Role: "insured", ClientAddress: "10.0.0.1", Status: 403, Failure: "auth"},
		{Time: at, RequestID: "<&>\u2028\u2029\x01\"\\é\xff", Base: "/twiin", Interaction: "create", Status: 502, Failure: "backend_5xx"},
		{Time: time.Time{}, Status: 0},
	} {
		checkFlat(t, l, r)
	}
}

func FuzzFlatRecordAgrees(f *testing.F) {
	f.Add("r1", "/erp", "abort", "Task", "id-1", "sub", "insured", "10.0.0.1", "auth", 403)
	f.Add("<&>\u2028", "", "", "", "\xff\x00", "", "", "", "", 0)
	l := New(nil, false, []byte("0123456789abcdef"))
	f.Fuzz(func(t *testing.T, id, base, op, typ, rid, sub, role, addr, failure string, status int) {
		checkFlat(t, l, &Record{Time: time.Unix(1700000000, 5), RequestID: id, Base: base, Operation: op, Interaction: op,
			ResourceType: typ, ResourceID: rid, Subject: sub, Role: role, ClientAddress: addr, Failure: failure, Status: status})
	})
}
