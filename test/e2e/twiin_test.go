package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/test/fixtures"
	"github.com/fhirgate/fhirgate/validation/fhirxml"
	"github.com/golang-jwt/jwt/v5"
)

// twiinStack is the gateway with the default routes.yaml in front of a GtK
// simulator (the Fachdienst is not started: the Twiin base does not use it).
type twiinStack struct {
	gw, sim         string
	gwProc, simProc *proc
	token           string
}

func startTwiin(t *testing.T, edits ...string) *twiinStack {
	t.Helper()
	gw, admin, sim := freeAddr(t), freeAddr(t), freeAddr(t)
	file := writeRoutes(t, "../../routes.yaml", append(edits, "127.0.0.1:8080", gw, "127.0.0.1:9090", admin, "127.0.0.1:9102", sim)...)
	s := &twiinStack{gw: "http://" + gw + "/twiin", sim: "http://" + sim}
	s.simProc = start(t, "legacysim", "gtk", "--listen", sim, "--idp-key", env.KeyFile)
	waitHTTP(t, s.sim+"/demo/jwks.json", s.simProc)
	s.gwProc = start(t, "fhirgate", "serve", "--config", file)
	waitHTTP(t, "http://"+admin+"/readyz", s.gwProc)
	s.token = twiinToken(t, nil)
	return s
}

// twiinToken signs an access token as the GtK's demo IDP would.
func twiinToken(t *testing.T, claims jwt.MapClaims) string {
	base := jwt.MapClaims{"iss": "https://twiin-idp.fhirgate.example", "aud": "https://gtk.fhirgate.example/", "sub": "sending-gtk-1", "scope": "tanp"}
	for k, v := range claims {
		base[k] = v
	}
	return token(t, base)
}

func (s *twiinStack) admin(t *testing.T, path string) {
	t.Helper()
	resp, err := http.Post(s.sim+path, "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST %s: %v %v", path, err, resp)
	}
	resp.Body.Close()
}

// gtkRecord is a record of the GtK simulator.
type gtkRecord struct {
	ID                     string
	Revision               int
	System, Value, Status  string
	PullCancelled          bool
	CancelledBeforeArrival bool
	Fields                 map[string]any
}

func (s *twiinStack) records(t *testing.T) []gtkRecord {
	t.Helper()
	resp, err := http.Get(s.sim + "/admin/notifications")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []gtkRecord
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// send makes a request with body in format ("json", "xml" or a literal
// Content-Type after "ct:").
func (s *twiinStack) send(t *testing.T, method, path string, body []byte, format string, header ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, s.gw+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case format == "json":
		req.Header.Set("Content-Type", "application/fhir+json")
	case format == "xml":
		req.Header.Set("Content-Type", "application/fhir+xml")
	case strings.HasPrefix(format, "ct:"):
		req.Header.Set("Content-Type", format[3:])
	}
	req.Header.Set("Authorization", "Bearer "+s.token)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	return do(t, req)
}

// Task bodies: the shared fixtures.
var (
	notification = fixtures.Notification
	cancellation = fixtures.Cancellation
)

// authBase is the authorization-base credential of every notification: it
// must reach the GtK and never a log.
const authBase = fixtures.AuthorizationBase

// encode writes a resource in format through the project's codec.
func encode(t *testing.T, res map[string]any, format string) []byte {
	t.Helper()
	j, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if format != "xml" {
		return j
	}
	x, err := fhirxml.ToXML(fhirxml.STU3, j)
	if err != nil {
		t.Fatalf("encoding the test body as XML: %v", err)
	}
	return x
}

// expectIssue asserts status, answer format and that some issue has the code
// and the expression.
func expectIssue(t *testing.T, a answer, status int, format, code, expression string) {
	t.Helper()
	if a.Status != status {
		t.Fatalf("status %d, want %d: %s", a.Status, status, a.Body)
	}
	if a.Format != format {
		t.Errorf("answer format %q, want %q", a.Format, format)
	}
	for _, is := range a.Issues {
		if is.Code != code {
			continue
		}
		if expression == "" {
			return
		}
		for _, e := range is.Expression {
			if e == expression {
				return
			}
		}
	}
	t.Errorf("no issue with code %q and expression %q: %s", code, expression, a.Body)
}

// expectCreated asserts a 201 with Location and ETag and no body.
func expectCreated(t *testing.T, s *twiinStack, a answer, id string, revision string) {
	t.Helper()
	if a.Status != http.StatusCreated {
		t.Fatalf("status %d, want 201: %s", a.Status, a.Body)
	}
	if got, want := a.Header.Get("Location"), s.gw+"/Task/"+id; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	if got, want := a.Header.Get("ETag"), `W/"`+revision+`"`; got != want {
		t.Errorf("ETag %q, want %q", got, want)
	}
	if len(a.Body) != 0 {
		t.Errorf("201 with a body: %s", a.Body)
	}
}

const (
	rfc4122 = "https://tools.ietf.org/html/rfc4122"
	urnSys  = "urn:ietf:rfc:3986"
)

// TestTwiinDecisionTable runs every row of the spec's decision tables for
// Twiin-01 and Twiin-02, each with a JSON and an XML body, and checks the
// GtK's state after each.
func TestTwiinDecisionTable(t *testing.T) {
	s := startTwiin(t)
	for _, format := range []string{"json", "xml"} {
		t.Run(format, func(t *testing.T) {
			reset := func() { s.admin(t, "/admin/reset") }

			t.Run("01 notification persisted: 201 Location ETag", func(t *testing.T) {
				reset()
				a := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), format), format)
				expectCreated(t, s, a, "ntf-000001", "1")
				recs := s.records(t)
				if len(recs) != 1 || recs[0].Status != "active" || recs[0].Value != "n-1" || recs[0].System != rfc4122 {
					t.Fatalf("GtK state: %+v", recs)
				}
				f := recs[0].Fields
				want := map[string]any{"authorizationBase": authBase, "workflowTask": "true", "pullUntil": "2026-12-14T15:36:05+01:00",
					"read": []any{"Observation/123"}, "search": []any{"DocumentReference?status=current"}}
				for k, v := range want {
					if got, _ := json.Marshal(f[k]); string(got) != string(must(json.Marshal(v))) {
						t.Errorf("GtK field %s = %s, want %v", k, got, v)
					}
				}
				for path, want := range map[string]string{"receiver.value": "87654321", "sender.organization.value": "12345678", "sender.system.value": "sending-gtk", "patient.value": "172642863", "group.value": "urn:uuid:484639e6-e647-464c-8722-6e8a73cda4e0"} {
					if got := dig(f, path); got != want {
						t.Errorf("GtK field %s = %q, want %q", path, got, want)
					}
				}
			})
			t.Run("01 body not parseable: 400", func(t *testing.T) {
				reset()
				a := s.send(t, "POST", "/Task", []byte(`{"resourceType":"Task",`), format)
				if format == "xml" {
					a = s.send(t, "POST", "/Task", []byte(`<Task xmlns="http://hl7.org/fhir"><status value="requested"/>`), format)
				}
				expectIssue(t, a, 400, format, a.Code, "")
				if a.Code == "" || len(s.records(t)) != 0 {
					t.Errorf("code %q, records %v", a.Code, s.records(t))
				}
			})
			t.Run("01 invalid STU3 (TA original example shape): 400 naming the element", func(t *testing.T) {
				reset()
				body := []byte(`{"resourceType":"Task","identifier":{"system":"urn:ietf:rfc:3986","value":"x"},"status":"requested","intent":"proposal"}`)
				if format == "xml" {
					// an element out of the STU3 order
					body = []byte(`<Task xmlns="http://hl7.org/fhir"><status value="requested"/><identifier><value value="x"/></identifier><intent value="proposal"/></Task>`)
				}
				a := s.send(t, "POST", "/Task", body, format)
				expectIssue(t, a, 400, format, "structure", "Task.identifier")
			})
			t.Run("01 unsupported Content-Type: 415", func(t *testing.T) {
				reset()
				accept := map[string]string{"json": "application/fhir+json", "xml": "application/fhir+xml"}[format]
				a := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), format), "ct:text/plain", "Accept", accept)
				expectIssue(t, a, 415, format, "not-supported", "")
			})
			t.Run("01 valid STU3 violating the notification profile: 422", func(t *testing.T) {
				reset()
				for _, c := range []struct {
					edit       func(map[string]any)
					code, expr string
				}{
					{func(m map[string]any) { m["status"] = "draft" }, "value", "Task.status"},
					{func(m map[string]any) { m["intent"] = "order" }, "value", "Task.intent"},
					{func(m map[string]any) { delete(m, "owner") }, "required", "Task.owner"},
					{func(m map[string]any) { delete(m, "groupIdentifier") }, "required", "Task.groupIdentifier"},
				} {
					a := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", c.edit), format), format)
					expectIssue(t, a, 422, format, c.code, c.expr)
				}
				if n := len(s.records(t)); n != 0 {
					t.Errorf("%d records after refused notifications", n)
				}
			})
			t.Run("01 refused by the GtK (duplicate identifier): 422", func(t *testing.T) {
				reset()
				s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), format), format)
				a := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), format), format)
				expectIssue(t, a, 422, format, "duplicate", "Task.identifier")
			})
			t.Run("01 missing or invalid bearer token: 401", func(t *testing.T) {
				reset()
				body := encode(t, notification(rfc4122, "n-1", nil), format)
				for _, auth := range []string{"", "Basic abc", "Bearer " + twiinToken(t, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()})} {
					a := s.send(t, "POST", "/Task", body, format, "Authorization", auth)
					if a.Status != 401 || a.Header.Get("WWW-Authenticate") == "" {
						t.Errorf("Authorization %.12q: %d %s", auth, a.Status, a.Body)
					}
				}
				if n := len(s.records(t)); n != 0 {
					t.Errorf("%d records after unauthenticated notifications", n)
				}
			})

			t.Run("02 PUT on another resource type or unknown endpoint: 404", func(t *testing.T) {
				reset()
				for _, path := range []string{"/Patient?identifier=x", "/Task/abc/def?identifier=x"} {
					a := s.send(t, "PUT", path, encode(t, cancellation(rfc4122, "x", nil), format), format)
					expectIssue(t, a, 404, format, "not-found", "")
				}
			})
			t.Run("02 PUT /Task without a search parameter: 400", func(t *testing.T) {
				reset()
				for _, path := range []string{"/Task", "/Task?identifier=", "/Task?_format=" + format} {
					a := s.send(t, "PUT", path, encode(t, cancellation(rfc4122, "x", nil), format), format)
					expectIssue(t, a, 400, format, "invalid", "")
				}
			})
			t.Run("02 body not parseable, not a Task, invalid STU3, media type", func(t *testing.T) {
				reset()
				bad := map[string][]byte{"json": []byte(`{"resourceType":"Task"`), "xml": []byte(`<Task xmlns="http://hl7.org/fhir"><status value="cancelled"/>`)}[format]
				a := s.send(t, "PUT", "/Task?identifier=x", bad, format)
				expectIssue(t, a, 400, format, a.Code, "")
				if a.Code == "" {
					t.Errorf("unparseable body answered without an issue code: %s", a.Body)
				}
				patient := encode(t, map[string]any{"resourceType": "Patient", "active": true}, format)
				expectIssue(t, s.send(t, "PUT", "/Task?identifier=x", patient, format), 400, format, "invalid", "Patient")
				wrong := encode(t, cancellation(rfc4122, "x", func(m map[string]any) { m["status"] = "cancelled-ish" }), "json")
				expectIssue(t, s.send(t, "PUT", "/Task?identifier=x", wrong, "json", "Accept", "application/fhir+"+format), 400, format, "code-invalid", "Task.status")
				accept := "application/fhir+" + format
				expectIssue(t, s.send(t, "PUT", "/Task?identifier=x", encode(t, cancellation(rfc4122, "x", nil), format), "ct:application/x-www-form-urlencoded", "Accept", accept), 415, format, "not-supported", "")
			})
			t.Run("02 body identifier differs from the query identifier: 422", func(t *testing.T) {
				reset()
				for _, q := range []string{rfc4122 + "|other", "other", "|x", urnSys + "|x", urnSys + "|"} {
					a := s.send(t, "PUT", "/Task?identifier="+url.QueryEscape(q), encode(t, cancellation(rfc4122, "x", nil), format), format)
					expectIssue(t, a, 422, format, "processing", "Task.identifier")
				}
			})
			t.Run("02 status not cancelled: 422", func(t *testing.T) {
				reset()
				a := s.send(t, "PUT", "/Task?identifier=x", encode(t, cancellation(rfc4122, "x", func(m map[string]any) { m["status"] = "completed" }), format), format)
				expectIssue(t, a, 422, format, "value", "Task.status")
			})
			t.Run("02 exactly one match: cancelled, 201 Location ETag", func(t *testing.T) {
				reset()
				s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), "json"), "json")
				s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-2", nil), "json"), "json")
				a := s.send(t, "PUT", "/Task?identifier="+rfc4122+"%7Cn-1", encode(t, cancellation(rfc4122, "n-1", nil), format), format)
				expectCreated(t, s, a, "ntf-000001", "2")
				recs := s.records(t)
				if recs[0].Status != "cancelled" || !recs[0].PullCancelled || recs[1].Status != "active" {
					t.Errorf("GtK state: %+v", recs)
				}
			})
			t.Run("02 no match: stored as cancelled (201); a later notification does not revive it", func(t *testing.T) {
				reset()
				a := s.send(t, "PUT", "/Task?identifier="+url.QueryEscape(rfc4122+"|n-9"), encode(t, cancellation(rfc4122, "n-9", nil), format), format)
				expectCreated(t, s, a, "ntf-000001", "1")
				late := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-9", nil), format), format)
				expectIssue(t, late, 422, format, "business-rule", "Task.identifier")
				recs := s.records(t)
				if len(recs) != 1 || recs[0].Status != "cancelled" || !recs[0].CancelledBeforeArrival {
					t.Errorf("GtK state: %+v", recs)
				}
			})
			t.Run("02 several matches: 412", func(t *testing.T) {
				reset()
				s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "same", nil), "json"), "json")
				s.send(t, "POST", "/Task", encode(t, notification(urnSys, "same", nil), "json"), "json")
				a := s.send(t, "PUT", "/Task?identifier=same", encode(t, cancellation(rfc4122, "same", nil), format), format)
				expectIssue(t, a, 412, format, "conflict", "Task.identifier")
				if !strings.Contains(a.Text, "not selective enough") {
					t.Errorf("412 text: %q", a.Text)
				}
				for _, r := range s.records(t) {
					if r.Status != "active" {
						t.Errorf("a notification changed on 412: %+v", r)
					}
				}
			})
			t.Run("02 already cancelled: 200, nothing changes", func(t *testing.T) {
				reset()
				s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), "json"), "json")
				body := encode(t, cancellation(rfc4122, "n-1", nil), format)
				first := s.send(t, "PUT", "/Task?identifier="+rfc4122+"|n-1", body, format)
				before := s.records(t)
				again := s.send(t, "PUT", "/Task?identifier="+rfc4122+"|n-1", body, format)
				if first.Status != 201 || again.Status != 200 || len(again.Body) != 0 {
					t.Fatalf("first %d, again %d %s", first.Status, again.Status, again.Body)
				}
				if after := s.records(t); !equalJSON(before, after) {
					t.Errorf("state changed by a repeated cancellation:\n%+v\n%+v", before, after)
				}
			})
			t.Run("02 already pulled: 422 from the GtK", func(t *testing.T) {
				reset()
				s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), "json"), "json")
				s.admin(t, "/admin/pulled?id=ntf-000001")
				a := s.send(t, "PUT", "/Task?identifier=n-1", encode(t, cancellation(rfc4122, "n-1", nil), format), format)
				expectIssue(t, a, 422, format, "business-rule", "Task.identifier")
			})
			t.Run("accept-only GtK: 200 without Location", func(t *testing.T) {
				reset()
				s.admin(t, "/admin/persist?on=false")
				a := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), format), format)
				c := s.send(t, "PUT", "/Task?identifier=n-1", encode(t, cancellation(rfc4122, "n-1", nil), format), format)
				for _, x := range []answer{a, c} {
					if x.Status != 200 || x.Header.Get("Location") != "" || len(x.Body) != 0 {
						t.Errorf("accept-only answer %d Location=%q %s", x.Status, x.Header.Get("Location"), x.Body)
					}
				}
			})
		})
	}
	assertAbsentFromLogs(t, authBase, s.gwProc, s.simProc)
}

// TestTwiinTokenForms: each token form, with | raw and as %7C, selects the
// one notification it names.
func TestTwiinTokenForms(t *testing.T) {
	s := startTwiin(t)
	forms := []struct{ query, system string }{
		{rfc4122 + "|n-1", rfc4122},
		{rfc4122 + "%7Cn-1", rfc4122},
		{rfc4122 + "%7cn-1", rfc4122},
		{"n-1", rfc4122},
		{"|n-1", ""},
		{"%7Cn-1", ""},
		{rfc4122 + "|", rfc4122},
		{url.QueryEscape(rfc4122 + "|"), rfc4122},
	}
	for _, f := range forms {
		t.Run(f.query, func(t *testing.T) {
			s.admin(t, "/admin/reset")
			if f.system == "" {
				// The notification profile requires identifier.system …
				n := notification(rfc4122, "n-1", func(m map[string]any) { m["identifier"] = []any{map[string]any{"value": "n-1"}} })
				a := s.send(t, "POST", "/Task", encode(t, n, "json"), "json")
				if a.Status != 422 {
					t.Fatalf("a notification without identifier.system: %d (the profile requires the system)", a.Status)
				}
				// A cancellation without system and without a match is
				// recorded under (no system, n-1); the form must select it.
				if first := s.send(t, "PUT", "/Task?identifier=%7Cn-1", encode(t, cancellation("", "n-1", nil), "json"), "json"); first.Status != 201 {
					t.Fatalf("recording a system-less cancellation: %d %s", first.Status, first.Body)
				}
				again := s.send(t, "PUT", "/Task?identifier="+f.query, encode(t, cancellation("", "n-1", nil), "json"), "json")
				if again.Status != 200 {
					t.Fatalf("repeat through %s: %d %s", f.query, again.Status, again.Body)
				}
				return
			}
			s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), "json"), "json")
			s.send(t, "POST", "/Task", encode(t, notification(urnSys, "n-2", nil), "json"), "json")
			a := s.send(t, "PUT", "/Task?identifier="+f.query, encode(t, cancellation(f.system, "n-1", nil), "json"), "json")
			expectCreated(t, s, a, "ntf-000001", "2")
			if recs := s.records(t); recs[0].Status != "cancelled" || recs[1].Status != "active" {
				t.Errorf("GtK state: %+v", recs)
			}
		})
	}
}

// TestTwiinNoSuccessWithoutConfirmation: every way the GtK can fail ends in
// a 5xx OperationOutcome, and the GtK's state shows nothing happened —
// what the client was told.
func TestTwiinNoSuccessWithoutConfirmation(t *testing.T) {
	s := startTwiin(t, "  gtk:\n    urls: [http://127.0.0.1:9102]\n    timeout: 5s", "  gtk:\n    urls: [http://127.0.0.1:9102]\n    timeout: 1s")
	faults := []struct {
		mode   string
		status int
	}{
		{"delay", 504}, {"status500", 502}, {"garbage", 502}, {"wrong-type", 502},
		{"half", 502}, {"error-in-200", 502}, {"close", 502},
	}
	for _, f := range faults {
		for _, format := range []string{"json", "xml"} {
			t.Run(f.mode+"/"+format, func(t *testing.T) {
				s.admin(t, "/admin/reset")
				s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), "json"), "json")
				before := s.records(t)
				// Three faults: one for the notification (never retried:
				// a create), two for the cancellation (a conditional
				// update: its broken attempt is retried once).
				s.admin(t, "/admin/fault?mode="+f.mode+"&count=3&delay=3s")
				n := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-2", nil), format), format)
				c := s.send(t, "PUT", "/Task?identifier=n-1", encode(t, cancellation(rfc4122, "n-1", nil), format), format)
				for _, a := range []answer{n, c} {
					if a.Status != f.status || a.Format != format || a.IssuesCount == 0 {
						t.Errorf("%s: %d (%s) %s, want %d OperationOutcome", f.mode, a.Status, a.Format, a.Body, f.status)
					}
				}
				if f.mode == "delay" {
					time.Sleep(2500 * time.Millisecond) // let the GtK see the callers gone
				}
				if after := s.records(t); !equalJSON(before, after) {
					t.Errorf("GtK state changed although the client was told %d:\n%+v\n%+v", f.status, before, after)
				}
			})
		}
	}
	// One broken answer: the create is not repeated (502, nothing stored);
	// the conditional update is, and its second attempt's confirmation is
	// what the client gets.
	t.Run("an idempotent cancellation is retried once", func(t *testing.T) {
		s.admin(t, "/admin/reset")
		s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-1", nil), "json"), "json")
		s.admin(t, "/admin/fault?mode=close&count=1")
		if n := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-2", nil), "json"), "json"); n.Status != 502 {
			t.Errorf("notification after a broken answer: %d", n.Status)
		}
		s.admin(t, "/admin/fault?mode=close&count=1")
		c := s.send(t, "PUT", "/Task?identifier=n-1", encode(t, cancellation(rfc4122, "n-1", nil), "json"), "json")
		recs := s.records(t)
		if c.Status != 201 || len(recs) != 1 || recs[0].Status != "cancelled" {
			t.Errorf("cancellation after one broken answer: %d %s, records %+v", c.Status, c.Body, recs)
		}
	})
	t.Run("refused connection", func(t *testing.T) {
		s.simProc.Stop(t)
		a := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "n-3", nil), "json"), "json")
		if a.Status != 502 || a.IssuesCount == 0 {
			t.Errorf("GtK down: %d %s", a.Status, a.Body)
		}
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func equalJSON(a, b any) bool {
	return string(must(json.Marshal(a))) == string(must(json.Marshal(b)))
}

// dig reads a dotted path of nested JSON objects.
func dig(m map[string]any, path string) string {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = obj[k]
	}
	s, _ := cur.(string)
	return s
}

// assertAbsentFromLogs fails when secret appears in a process's output.
func assertAbsentFromLogs(t *testing.T, secret string, ps ...*proc) {
	t.Helper()
	for _, p := range ps {
		if strings.Contains(p.Out.String(), secret) {
			t.Errorf("the authorization-base token appears in the output of %s", p.Cmd.Path)
		}
	}
}
