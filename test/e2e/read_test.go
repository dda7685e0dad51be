package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// get fetches a FHIR resource from the Twiin base with the stack's token.
func (s *twiinStack) get(t *testing.T, path, format string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.gw+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Accept", "application/fhir+"+format)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// validateWithCLI runs fhirgate validate on an answer body against the
// project's Twiin profiles (those it declares in meta.profile).
func validateWithCLI(t *testing.T, body []byte, ext string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "answer."+ext)
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(filepath.Join(env.BinDir, "fhirgate"), "validate", "--version", "stu3",
		"--profiles", "../../profiles/twiin", file).CombinedOutput()
	if err != nil {
		t.Errorf("fhirgate validate: %v\n%s\nbody: %s", err, out, body)
	}
}

// TestTwiinReads: the sending side reads its notification as a Task
// (JSON and XML) and searches it by identifier (a searchset Bundle),
// against the real GtK simulator; every answer is valid against the
// profile it declares (fhirgate validate), a cancelled notification reads
// as a cancellation Task, and the authorization base — a credential —
// is never read back.
func TestTwiinReads(t *testing.T) {
	s := startTwiin(t)
	created := s.send(t, "POST", "/Task", encode(t, notification(rfc4122, "read-1", nil), "json"), "json")
	expectCreated(t, s, created, "ntf-000001", "1")

	for _, format := range []string{"json", "xml"} {
		status, h, body := s.get(t, "/Task/ntf-000001", format)
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "application/fhir+"+format) || h.Get("ETag") != `W/"1"` {
			t.Fatalf("read (%s): %d %v %s", format, status, h, body)
		}
		if strings.Contains(string(body), authBase) || strings.Contains(string(body), "authorization-base") {
			t.Errorf("the authorization base was read back: %s", body)
		}
		for _, want := range []string{"read-1", "requested", "notification-task", "Observation/123", "DocumentReference?status=current", "get-workflow-task"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("read (%s) lacks %q: %s", format, want, body)
			}
		}
		validateWithCLI(t, body, format)
	}

	status, _, body := s.get(t, "/Task?identifier="+url.QueryEscape(rfc4122+"|read-1"), "json")
	var bundle struct {
		Type  string
		Total int
		Link  []struct{ Relation, URL string }
		Entry []struct {
			FullURL  string
			Resource map[string]any
		}
	}
	json.Unmarshal(body, &bundle)
	if status != 200 || bundle.Type != "searchset" || bundle.Total != 1 || len(bundle.Entry) != 1 ||
		bundle.Entry[0].FullURL != s.gw+"/Task/ntf-000001" || bundle.Entry[0].Resource["id"] != "ntf-000001" {
		t.Fatalf("search: %d %s", status, body)
	}
	if len(bundle.Link) != 1 || !strings.Contains(bundle.Link[0].URL, "identifier=") {
		t.Errorf("self link %+v", bundle.Link)
	}
	validateWithCLI(t, body, "json")

	// Cancelled: the same record reads as a cancellation Task.
	cancelled := s.send(t, "PUT", "/Task?identifier="+url.QueryEscape(rfc4122+"|read-1"), encode(t, cancellation(rfc4122, "read-1", nil), "json"), "json")
	if cancelled.Status != 201 {
		t.Fatalf("cancellation: %d %s", cancelled.Status, cancelled.Body)
	}
	status, h, body := s.get(t, "/Task/ntf-000001", "json")
	if status != 200 || !strings.Contains(string(body), `"status":"cancelled"`) || !strings.Contains(string(body), "cancellation-task") || h.Get("ETag") != `W/"2"` {
		t.Fatalf("read after cancellation: %d %v %s", status, h, body)
	}
	validateWithCLI(t, body, "json")

	// Unknown id: 404; no match: an empty searchset.
	if status, _, body := s.get(t, "/Task/ntf-999999", "json"); status != 404 || !strings.Contains(string(body), "OperationOutcome") {
		t.Errorf("unknown id: %d %s", status, body)
	}
	status, _, body = s.get(t, "/Task?identifier=nothing-here", "json")
	if status != 200 || !strings.Contains(string(body), `"total":0`) || strings.Contains(string(body), `"entry"`) {
		t.Errorf("no match: %d %s", status, body)
	}
}
