// Package e2e runs the real binaries — the gateway and the legacy
// simulators — as separate processes over loopback and talks to them as a
// FHIR client would.
package e2e

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/test/procs"
	"github.com/golang-jwt/jwt/v5"
)

// env holds the built binaries and the demo IDPs' signing key.
var env *procs.Env

// TestMain builds the binaries once and makes the signing key the demo IDP
// of every simulator started here uses, so tests can sign good and bad tokens.
func TestMain(m *testing.M) {
	os.Exit(procs.Main(m, "fhirgate-e2e-", &env))
}

// The process helpers live in test/procs, shared with the chaos and
// security suites.
type proc = procs.Proc

// start runs one of the built binaries; it is stopped with SIGTERM at
// cleanup.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return procs.Start(t, filepath.Join(env.BinDir, name), args...)
}

func freeAddr(t *testing.T) string { return procs.FreeAddr(t) }

func waitHTTP(t *testing.T, url string, p *proc) { procs.WaitHTTP(t, url, p) }

// stack is a gateway in front of one simulator.
type stack struct {
	gw, admin, sim  string // base URLs
	gwProc, simProc *proc
	sent            map[string]bool // credentials sent, to search the logs for
}

// startStack starts a simulator in the given dialect and the gateway with
// routesFile, its addresses replaced by free ones. from lists the gateway,
// admin and simulator addresses as written in the file; edits are further
// old, new pairs applied to the file.
func startStack(t *testing.T, routesFile, dialect string, from [3]string, edits ...string) *stack {
	t.Helper()
	return startSeededStack(t, routesFile, dialect, "", from, edits...)
}

// startSeededStack is startStack with the simulator seeded from seedFile
// ("" the embedded seed).
func startSeededStack(t *testing.T, routesFile, dialect, seedFile string, from [3]string, edits ...string) *stack {
	t.Helper()
	to := [3]string{freeAddr(t), freeAddr(t), freeAddr(t)}
	pairs := []string{from[0], to[0], from[1], to[1], from[2], to[2]}
	file := writeRoutes(t, routesFile, append(pairs, edits...)...)
	s := &stack{gw: "http://" + to[0], admin: "http://" + to[1], sim: "http://" + to[2], sent: map[string]bool{}}
	args := []string{"fachdienst", "--listen", to[2], "--dialect", dialect, "--idp-key", env.KeyFile}
	if seedFile != "" {
		args = append(args, "--seed", seedFile)
	}
	s.simProc = start(t, "legacysim", args...)
	waitHTTP(t, s.sim+"/demo/jwks.json", s.simProc)
	s.gwProc = start(t, "fhirgate", "serve", "--config", file)
	waitHTTP(t, s.admin+"/readyz", s.gwProc)
	return s
}

func (s *stack) reset(t *testing.T) {
	t.Helper()
	resp, err := http.Post(s.sim+"/admin/reset", "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("reset simulator: %v %v", err, resp)
	}
	resp.Body.Close()
}

// taskStatus reads a Task's status from the simulator's admin API.
func (s *stack) taskStatus(t *testing.T, id string) string {
	t.Helper()
	resp, err := http.Get(s.sim + "/admin/tasks/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var task struct{ Status string }
	json.NewDecoder(resp.Body).Decode(&task)
	return task.Status
}

// assertNoSecretsInLogs searches both processes' output for every
// credential sent in the run.
func (s *stack) assertNoSecretsInLogs(t *testing.T) {
	t.Helper()
	logs := s.gwProc.Out.String() + s.simProc.Out.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatalf("the gateway wrote no access log lines; the search below would prove nothing")
	}
	for secret := range s.sent {
		if len(secret) >= 8 && strings.Contains(logs, secret) {
			t.Errorf("a credential sent by the test appears in the logs: %.12s…", secret)
		}
	}
}

// claims for a test token; exp one hour ahead unless set.
func token(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	base := jwt.MapClaims{
		"iss": "https://idp.fhirgate.example", "aud": "https://erp.fhirgate.example/",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
			continue
		}
		base[k] = v
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, base).SignedString(env.Key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// answer is a parsed gateway response.
type answer struct {
	Status      int
	Header      http.Header
	Body        []byte
	Format      string // json, xml or "" without body
	Severity    string
	Code        string
	Text        string
	IssuesCount int
	Issues      []issue // every issue, in order
}

// issue is one OperationOutcome issue, as the tests look at it.
type issue struct {
	Severity, Code, Text string
	Expression           []string
}

type xmlOutcome struct {
	XMLName xml.Name `xml:"http://hl7.org/fhir OperationOutcome"`
	Issue   []struct {
		Severity struct {
			Value string `xml:"value,attr"`
		} `xml:"severity"`
		Code struct {
			Value string `xml:"value,attr"`
		} `xml:"code"`
		Details struct {
			Text struct {
				Value string `xml:"value,attr"`
			} `xml:"text"`
		} `xml:"details"`
		Expression []struct {
			Value string `xml:"value,attr"`
		} `xml:"expression"`
	} `xml:"issue"`
}

type jsonOutcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity string `json:"severity"`
		Code     string `json:"code"`
		Details  struct {
			Text string `json:"text"`
		} `json:"details"`
		Expression []string `json:"expression"`
	} `json:"issue"`
}

// do sends a request and parses an OperationOutcome answer by its
// Content-Type, failing the test when the body is not one.
func do(t *testing.T, req *http.Request) answer {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if len(body) == 0 {
		return a
	}
	switch ct := resp.Header.Get("Content-Type"); ct {
	case "application/fhir+json;charset=utf-8":
		a.Format = "json"
		var o jsonOutcome
		if err := json.Unmarshal(body, &o); err != nil || o.ResourceType != "OperationOutcome" {
			t.Fatalf("not an OperationOutcome in JSON: %v\n%s", err, body)
		}
		a.IssuesCount = len(o.Issue)
		if len(o.Issue) > 0 {
			a.Severity, a.Code, a.Text = o.Issue[0].Severity, o.Issue[0].Code, o.Issue[0].Details.Text
		}
		for _, is := range o.Issue {
			a.Issues = append(a.Issues, issue{is.Severity, is.Code, is.Details.Text, is.Expression})
		}
	case "application/fhir+xml;charset=utf-8":
		a.Format = "xml"
		var o xmlOutcome
		if err := xml.Unmarshal(body, &o); err != nil {
			t.Fatalf("not an OperationOutcome in XML: %v\n%s", err, body)
		}
		a.IssuesCount = len(o.Issue)
		if len(o.Issue) > 0 {
			a.Severity, a.Code, a.Text = o.Issue[0].Severity.Value, o.Issue[0].Code.Value, o.Issue[0].Details.Text.Value
		}
		for _, is := range o.Issue {
			var exprs []string
			for _, e := range is.Expression {
				exprs = append(exprs, e.Value)
			}
			a.Issues = append(a.Issues, issue{is.Severity.Value, is.Code.Value, is.Details.Text.Value, exprs})
		}
	default:
		t.Fatalf("answer with body has Content-Type %q:\n%s", ct, body)
	}
	return a
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// writeRoutes is procs.WriteRoutes: src with old, new pairs replaced and
// profile paths made absolute.
func writeRoutes(t *testing.T, src string, pairs ...string) string {
	t.Helper()
	return procs.WriteRoutes(t, src, pairs...)
}
