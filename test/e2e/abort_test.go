package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/test/legacysim/fachdienst"
	"github.com/golang-jwt/jwt/v5"
)

// The two deployments of the same route: the shipped routes.yaml in front
// of the JSON dialect, and a routes file of its own in front of the CGI
// dialect (form posts, XML answers, business errors inside HTTP 200).
var dialects = []struct {
	name, routes, dialect string
	addrs                 [3]string
}{
	{"rest", "../../routes.yaml", "rest", [3]string{"127.0.0.1:8080", "127.0.0.1:9090", "127.0.0.1:9101"}},
	{"cgi", "testdata/routes-cgi.yaml", "cgi", [3]string{"127.0.0.1:18080", "127.0.0.1:19090", "127.0.0.1:19101"}},
}

// Texts of spec erezept-abort §3.
const (
	txtDraft      = "Abort not expected for newly created Task"
	txtInProgress = "Task must not be in progress for users other than pharmacy, but is: in-progress"
	txtWorkflow   = "Abort for patient in workflow types 169 / 209 only allowed for completed Task"
	txtSecret     = "No or invalid secret provided for user pharmacy"
	txtAC         = "AccessCode mismatch"
	txtDeleted    = "Task has already been deleted"
	txtNotFound   = "Task not found for prescription id"
	txtBadID      = "Failed to parse prescription ID from URL parameter"
)

// expectation is one cell: "204", or "403|text", "410|text" …
type expectation struct {
	status int
	text   string
	brute  bool // VAU-Error-Code: brute_force
}

func cell(s string) expectation {
	switch {
	case s == "204":
		return expectation{status: 204}
	case s == "410":
		return expectation{status: 410, text: txtDeleted}
	case s == "draft":
		return expectation{status: 403, text: txtDraft}
	case s == "inprogress":
		return expectation{status: 403, text: txtInProgress}
	case s == "wf":
		return expectation{status: 403, text: txtWorkflow}
	case s == "secret":
		return expectation{status: 403, text: txtSecret, brute: true}
	case s == "ac":
		return expectation{status: 403, text: txtAC, brute: true}
	case strings.HasPrefix(s, "doctor:"):
		return expectation{status: 403, text: "Task must be ready for doctor, but is: " + s[7:]}
	case strings.HasPrefix(s, "pharmacy:"):
		return expectation{status: 403, text: "Task must be in progress for user pharmacy, is: " + s[9:]}
	}
	panic(s)
}

// matrix is spec erezept-abort §4, row by row, columns draft, ready,
// in-progress, completed, cancelled. The representative rows for
// flowtypes 169/209 are not in §4; they follow from §3 row 11 (any insured
// caller) before row 13d.
var matrix = map[string][5]string{
	"prescriber+AC":     {"draft", "204", "inprogress", "doctor:completed", "410"},
	"prescriber-AC":     {"draft", "ac", "inprogress", "doctor:completed", "410"},
	"pharmacy+secret":   {"draft", "pharmacy:ready", "204", "pharmacy:completed", "410"},
	"pharmacy-secret":   {"draft", "pharmacy:ready", "secret", "pharmacy:completed", "410"},
	"owner-160":         {"draft", "204", "inprogress", "204", "410"},
	"owner-169/209":     {"draft", "wf", "wf", "204", "410"},
	"representative+AC": {"draft", "204", "inprogress", "204", "410"},
	"representative-AC": {"draft", "ac", "inprogress", "ac", "410"},
	"rep169/209+AC":     {"draft", "wf", "wf", "204", "410"},
	"rep169/209-AC":     {"draft", "wf", "wf", "ac", "410"},
}

var statusColumn = map[string]int{"draft": 0, "ready": 1, "in-progress": 2, "completed": 3, "cancelled": 4}

// caller is one kind of client of the matrix.
type caller struct {
	name  string
	oids  []string // professionOIDs cycled through
	kind  string   // prescriber, pharmacy, owner, representative
	cred  string   // correct, wrong, wrong-malformed, missing
	isIns bool
}

var callers = func() []caller {
	var cs []caller
	for _, cred := range []string{"correct", "wrong", "wrong-malformed", "missing"} {
		cs = append(cs,
			caller{name: "prescriber/" + cred, kind: "prescriber", cred: cred, oids: []string{"1.2.276.0.76.4.50", "1.2.276.0.76.4.51", "1.2.276.0.76.4.52", "1.2.276.0.76.4.53", "1.2.276.0.76.4.257"}},
			caller{name: "pharmacy/" + cred, kind: "pharmacy", cred: cred, oids: []string{"1.2.276.0.76.4.54", "1.2.276.0.76.4.55"}},
			caller{name: "owner/" + cred, kind: "owner", cred: cred, oids: []string{"1.2.276.0.76.4.49"}, isIns: true},
			caller{name: "representative/" + cred, kind: "representative", cred: cred, oids: []string{"1.2.276.0.76.4.49"}, isIns: true},
		)
	}
	return cs
}()

func (c caller) row(flowType string) string {
	ok := c.cred == "correct"
	wf169 := flowType == "169" || flowType == "209"
	switch c.kind {
	case "prescriber":
		return map[bool]string{true: "prescriber+AC", false: "prescriber-AC"}[ok]
	case "pharmacy":
		return map[bool]string{true: "pharmacy+secret", false: "pharmacy-secret"}[ok]
	case "owner":
		if wf169 {
			return "owner-169/209"
		}
		return "owner-160"
	}
	if wf169 {
		return map[bool]string{true: "rep169/209+AC", false: "rep169/209-AC"}[ok]
	}
	return map[bool]string{true: "representative+AC", false: "representative-AC"}[ok]
}

// formatVariant is one way of asking for a format; want "" means the
// role's default (XML for professionals, JSON for insured persons).
type formatVariant struct {
	name, query, accept, want string
}

var formatVariants = []formatVariant{
	{"default", "", "", ""},
	{"_format=json", "json", "", "json"},
	{"_format=xml", "xml", "", "xml"},
	{"Accept fhir+json", "", "application/fhir+json", "json"},
	{"Accept q-values prefer xml", "", "application/fhir+json;q=0.5, application/fhir+xml;q=0.9", "xml"},
	{"_format wins over Accept", "application/fhir+json", "application/fhir+xml", "json"},
	{"Accept */*", "", "*/*", ""},
	{"_format=application/fhir+xml", "application/fhir+xml", "application/json", "xml"},
}

// abortRequest builds POST /erp/Task/{id}/$abort.
type abortRequest struct {
	id, token, ac, acHeader, secret string
	format                          formatVariant
	method                          string
}

func (s *stack) request(t *testing.T, r abortRequest) *http.Request {
	t.Helper()
	q := url.Values{}
	if r.ac != "" {
		q.Set("ac", r.ac)
		s.sent[r.ac] = true
	}
	if r.secret != "" {
		q.Set("secret", r.secret)
		s.sent[r.secret] = true
	}
	if r.format.query != "" {
		q.Set("_format", r.format.query)
	}
	u := s.gw + "/erp/Task/" + r.id + "/$abort"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
		s.sent[r.token] = true
	}
	if r.acHeader != "" {
		req.Header.Set("X-AccessCode", r.acHeader)
		s.sent[r.acHeader] = true
	}
	if r.format.accept != "" {
		req.Header.Set("Accept", r.format.accept)
	}
	return req
}

var subjectSeq int

// callerToken signs a token for a caller on a task, with a subject of its
// own so that the matrix never trips the per-subject rate limit.
func callerToken(t *testing.T, c caller, task fachdienst.Task, i int) string {
	subjectSeq++
	id := "3-SMC-B-Testkarte-883110000116873"
	switch c.kind {
	case "owner":
		id = task.KVNR
	case "representative":
		id = "X999999999"
	}
	return token(t, jwt.MapClaims{"sub": fmt.Sprintf("subject-%d", subjectSeq), "professionOID": c.oids[i%len(c.oids)], "idNummer": id})
}

// TestAbortMatrix runs every cell of spec §4 for both dialects: every
// caller × credential variant × seeded Task (flowtypes 160, 169, 209 in
// every status) plus an unknown id, asserting status, issue code, exact
// text, headers and body format, and that the simulator's state matches
// what the client was told.
func TestAbortMatrix(t *testing.T) {
	seed := fachdienst.DefaultSeed()
	for _, d := range dialects {
		t.Run(d.name, func(t *testing.T) {
			s := startStack(t, d.routes, d.dialect, d.addrs)
			n := 0
			for _, task := range seed {
				if task.ID == "160.000.033.491.280.78" {
					continue // the README's demo Task; same shape as 160/ready
				}
				for _, c := range callers {
					n++
					i := n
					name := fmt.Sprintf("%s/%s/%s/%s", task.FlowType, task.Status, c.name, formatVariants[i%len(formatVariants)].name)
					t.Run(name, func(t *testing.T) {
						s.reset(t)
						want := cell(matrix[c.row(task.FlowType)][statusColumn[task.Status]])
						req := abortRequest{id: task.ID, token: callerToken(t, c, task, i), format: formatVariants[i%len(formatVariants)]}
						cred := map[string]string{"correct": task.AccessCode, "wrong": strings.Repeat("0", 64), "wrong-malformed": "fgdkjfgd"}[c.cred]
						if c.kind == "pharmacy" {
							cred = map[string]string{"correct": task.Secret, "wrong": strings.Repeat("a", 64), "wrong-malformed": "fgdkjfgd"}[c.cred]
							req.secret = cred
						} else if (i/len(formatVariants))%2 == 0 {
							req.ac = cred
						} else {
							req.acHeader = cred
						}
						got := do(t, s.request(t, req))
						assertAnswer(t, got, want, c.isIns, req.format)
						after := s.taskStatus(t, task.ID)
						if want.status == 204 && after != "cancelled" {
							t.Errorf("client was told 204 but the Task is %s", after)
						}
						if want.status != 204 && after != task.Status {
							t.Errorf("client was told %d but the Task changed %s → %s", got.Status, task.Status, after)
						}
					})
				}
			}
			t.Run("unknown id", func(t *testing.T) {
				for i, c := range callers[:4] {
					got := do(t, s.request(t, abortRequest{id: "160.000.000.000.999.67", token: callerToken(t, c, fachdienst.Task{KVNR: "X110000001"}, i), ac: strings.Repeat("0", 64), secret: strings.Repeat("0", 64), format: formatVariants[0]}))
					assertAnswer(t, got, expectation{status: 404, text: txtNotFound}, c.isIns, formatVariants[0])
				}
			})
			t.Run("abort twice", func(t *testing.T) {
				s.reset(t)
				task := seed[1] // 160 ready
				c := callers[0] // prescriber, correct AC
				for i, want := range []expectation{{status: 204}, {status: 410, text: txtDeleted}, {status: 410, text: txtDeleted}} {
					got := do(t, s.request(t, abortRequest{id: task.ID, token: callerToken(t, c, task, i), ac: task.AccessCode, format: formatVariants[0]}))
					assertAnswer(t, got, want, false, formatVariants[0])
				}
			})
			s.assertNoSecretsInLogs(t)
		})
	}
}

func assertAnswer(t *testing.T, got answer, want expectation, insured bool, f formatVariant) {
	t.Helper()
	if got.Status != want.status {
		t.Fatalf("status %d, want %d (%s)\n%s", got.Status, want.status, want.text, got.Body)
	}
	if got.Header.Get("X-Request-Id") == "" {
		t.Errorf("no X-Request-Id")
	}
	if want.status == 204 {
		if len(got.Body) != 0 || got.Header.Get("Content-Type") != "" {
			t.Errorf("204 with body or Content-Type: %q %q", got.Header.Get("Content-Type"), got.Body)
		}
		return
	}
	wantFormat := f.want
	if wantFormat == "" {
		wantFormat = map[bool]string{true: "json", false: "xml"}[insured]
	}
	if got.Format != wantFormat {
		t.Errorf("format %s, want %s", got.Format, wantFormat)
	}
	wantCode := map[int]string{400: "invalid", 401: "unknown", 403: "forbidden", 404: "not-found", 405: "not-supported", 410: "processing", 429: "transient"}[want.status]
	if wantCode == "" {
		wantCode = "processing"
	}
	if got.IssuesCount != 1 || got.Severity != "error" || got.Code != wantCode || got.Text != want.text {
		t.Errorf("issue (%d) %s/%s %q, want 1 error/%s %q", got.IssuesCount, got.Severity, got.Code, got.Text, wantCode, want.text)
	}
	if brute := got.Header.Get("VAU-Error-Code") == "brute_force"; brute != want.brute {
		t.Errorf("VAU-Error-Code brute_force present=%v, want %v", brute, want.brute)
	}
	if got.Status == 401 && got.Header.Get("WWW-Authenticate") != "Bearer realm='prescriptionserver.telematik', error='invalACCESS_TOKEN'" {
		t.Errorf("401 without the WWW-Authenticate header: %q", got.Header.Get("WWW-Authenticate"))
	}
}
