package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/fhirgate/fhirgate/gateway/audit"
	"github.com/fhirgate/fhirgate/validation"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Split(strings.TrimSpace(l.b.String()), "\n")
}

// TestAuditRecords: one record per interaction, success or refusal, with
// a pseudonym in place of the subject and no credential anywhere.
func TestAuditRecords(t *testing.T) {
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "locked") {
			io.WriteString(w, `{"ok":false,"reason":"locked"}`)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}}
	be := httptest.NewServer(spy)
	defer be.Close()
	f := newFixture(t, be.URL, spy)
	var out lockedBuffer
	log := audit.New(&out, false, []byte("0123456789abcdef"))
	f.gw.Config.Handler.(*Gateway).SetAudit(log)

	f.post(t, "/fhir/Task/a1/$op?who=secret-value")
	f.post(t, "/fhir/Task/locked/$op")
	req, _ := http.NewRequest(http.MethodPost, f.gw.URL+"/fhir/Task/a2/$op", nil)
	req.Header.Set("Authorization", "Bearer not-a-jwt")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()

	type rec struct {
		RequestID                                                            string `json:"request_id"`
		Route, Interaction, Operation, Action, Actor, Role, Outcome, Failure string
		ResourceType                                                         string `json:"resource_type"`
		ResourceID                                                           string `json:"resource_id"`
		Status                                                               int
	}
	lines := out.lines()
	if len(lines) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var got []rec
	for _, l := range lines {
		var r rec
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
		if strings.Contains(l, f.token[:20]) || strings.Contains(l, "secret-value") || strings.Contains(l, `"s"`) {
			t.Errorf("a credential, query value or the raw subject in %s", l)
		}
	}
	pseudonym := log.Pseudonym("", "s")
	want := []rec{
		{Route: "op", Interaction: "operation", Operation: "op", Action: "E", Actor: pseudonym, Role: "prescriber", Outcome: "0", ResourceType: "Task", ResourceID: "a1", Status: 204},
		{Route: "op", Interaction: "operation", Operation: "op", Action: "E", Actor: pseudonym, Role: "prescriber", Outcome: "4", Failure: "backend_refusal", ResourceType: "Task", ResourceID: "locked", Status: 409},
		{Route: "op", Interaction: "operation", Operation: "op", Action: "E", Outcome: "4", Failure: "auth", ResourceType: "Task", ResourceID: "a2", Status: 401},
	}
	for i := range want {
		if got[i].RequestID == "" {
			t.Errorf("record %d has no request id", i)
		}
		want[i].RequestID = got[i].RequestID
		if got[i] != want[i] {
			t.Errorf("record %d\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if len(pseudonym) != 32 || pseudonym == log.Pseudonym("other-issuer", "s") {
		t.Errorf("pseudonym %q does not depend on the issuer", pseudonym)
	}
}

// TestAuditEventsValidate: the fhir format writes R4 AuditEvents that
// pass base validation.
func TestAuditEventsValidate(t *testing.T) {
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }}
	be := httptest.NewServer(spy)
	defer be.Close()
	f := newFixture(t, be.URL, spy)
	var out lockedBuffer
	f.gw.Config.Handler.(*Gateway).SetAudit(audit.New(&out, true, []byte("0123456789abcdef")))
	f.post(t, "/fhir/Task/a1/$op")
	resp, _ := http.Get(f.gw.URL + "/fhir/Task/a1/$op") // 405, unauthenticated
	resp.Body.Close()
	resp, _ = http.Get(f.gw.URL + "/fhir/metadata")
	resp.Body.Close()
	p, err := validation.NewParser(validation.R4)
	if err != nil {
		t.Fatal(err)
	}
	lines := out.lines()
	if len(lines) != 3 {
		t.Fatalf("%d AuditEvents, want 3", len(lines))
	}
	for _, l := range lines {
		if _, issues := p.ValidateJSON([]byte(l), nil, nil); len(issues) > 0 {
			t.Errorf("%+v\n%s", issues, l)
		}
	}
	if !strings.Contains(lines[2], `"code":"capabilities"`) || !strings.Contains(lines[0], `"reference":"Task/a1"`) {
		t.Errorf("content:\n%s", strings.Join(lines, "\n"))
	}
}
