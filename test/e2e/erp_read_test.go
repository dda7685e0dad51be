package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/test/legacysim/fachdienst"
	"github.com/fhirgate/fhirgate/test/procs"
	"github.com/golang-jwt/jwt/v5"
)

// The OIDs of spec erezept-task-read §1 and the Telematik-ID that owns the
// seeded in-progress and completed Tasks.
const (
	oidInsured    = "1.2.276.0.76.4.49"
	oidPharmacy   = "1.2.276.0.76.4.54"
	oidHospital   = "1.2.276.0.76.4.55"
	oidPayer      = "1.2.276.0.76.4.59"
	oidPrescriber = "1.2.276.0.76.4.50"
	ownerPharmacy = "3-SMC-B-Testkarte-883110000116873"
	listInsured   = "X110000100" // the seeded person with Tasks in every status
)

// erpToken is a token of a fresh subject (no rate limit shared between
// cases).
func erpToken(t *testing.T, oid, idNummer string) string {
	subjectSeq++
	return token(t, jwt.MapClaims{"sub": fmt.Sprintf("reader-%d", subjectSeq), "professionOID": oid, "idNummer": idNummer})
}

// seedTask finds a seeded Task by id.
func seedTask(t *testing.T, id string) fachdienst.Task {
	for _, task := range fachdienst.DefaultSeed() {
		if task.ID == id {
			return task
		}
	}
	t.Fatalf("no seeded Task %s", id)
	return fachdienst.Task{}
}

func erpGet(t *testing.T, s *stack, tok, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.gw+"/erp"+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := []byte(readAll(resp))
	return resp, body
}

// erpBundle is the part of a Bundle the tests look at.
type erpBundle struct {
	ResourceType, ID, Type, Timestamp string
	Total                             *int
	Link                              []struct{ Relation, URL string }
	Entry                             []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   *struct{ Mode string }
	}
}

// erpTask is the part of a Task the tests look at.
type erpTask struct {
	ID         string
	Status     string
	Identifier []struct{ System, Value string }
	Owner      *struct{ Identifier struct{ Value string } }
	Extension  []struct{ URL string }
	Input      []erpTaskDoc
	Output     []erpTaskDoc
}

type erpTaskDoc struct {
	Type           struct{ Coding []struct{ Code string } }
	ValueReference struct{ Reference string }
}

func (tk erpTask) identifier(kind string) string {
	for _, id := range tk.Identifier {
		if strings.HasSuffix(id.System, "GEM_ERP_NS_"+kind) {
			return id.Value
		}
	}
	return ""
}

func (tk erpTask) hasExtension(name string) bool {
	for _, e := range tk.Extension {
		if strings.HasSuffix(e.URL, name) {
			return true
		}
	}
	return false
}

func docRefs(docs []erpTaskDoc) []string {
	var out []string
	for _, d := range docs {
		out = append(out, d.Type.Coding[0].Code+":"+d.ValueReference.Reference)
	}
	return out
}

// validateERezept runs fhirgate validate on a whole answer and on each of
// its entries alone, against the project's copy of the gematik profiles:
// a Bundle's own check holds its entries to the base specification, the
// entry's own check to the profile it declares (GEM_ERP_PR_Task|1.5).
func validateERezept(t *testing.T, body []byte, ext string) {
	t.Helper()
	dir := t.TempDir()
	files := []string{filepath.Join(dir, "answer."+ext)}
	os.WriteFile(files[0], body, 0o644)
	if ext == "json" {
		var b erpBundle
		json.Unmarshal(body, &b)
		for i, e := range b.Entry {
			f := filepath.Join(dir, fmt.Sprintf("entry%d.json", i))
			os.WriteFile(f, e.Resource, 0o644)
			files = append(files, f)
		}
	}
	for _, f := range files {
		out, err := exec.Command(filepath.Join(env.BinDir, "fhirgate"), "validate", "--version", "r4",
			"--profiles", "../../profiles/erezept/workflow-1.5.2", f).CombinedOutput()
		if err != nil {
			t.Errorf("fhirgate validate %s: %v\n%s\nbody: %.2000s", filepath.Base(f), err, out, body)
		}
	}
	if ext == "json" && !strings.Contains(string(body), "GEM_ERP_PR_Task|1.5") {
		t.Errorf("the answer declares no GEM_ERP_PR_Task|1.5: %.500s", body)
	}
}

func sha(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// TestERezeptTaskRead runs spec erezept-task-read §3 against the real
// Fachdienst simulator: the check order and texts of §3.1 (insured,
// representative) and §3.2 (pharmacy, payer; ?secret and ?ac), and for
// every 200 the Bundle of §3.3 with what §3.4 lets each caller see —
// every answer and every entry valid against the gematik profiles.
func TestERezeptTaskRead(t *testing.T) {
	s := startStack(t, "../../routes.yaml", "rest", dialects[0].addrs)
	const (
		ready      = "160.000.000.000.201.36"
		inProgress = "160.000.000.000.202.33"
		completed  = "160.000.000.000.203.30"
		cancelled  = "160.000.000.000.204.27"
		direct     = "169.000.000.000.205.32" // flowtype 169, ready
		draft      = "160.000.000.000.206.21"
	)
	ac := func(id string) string { return seedTask(t, id).AccessCode }
	secret := func(id string) string { return seedTask(t, id).Secret }

	errors := []struct {
		name, oid, idNummer, path string
		header                    []string
		status                    int
		code, text                string
		bruteForce                bool
	}{
		{"insured/malformed id", oidInsured, listInsured, "/Task/160.000.000.000.201.37", nil, 404, "not-found", "Failed to parse prescription ID from URL parameter", false},
		{"insured/unknown", oidInsured, listInsured, "/Task/160.000.000.000.999.67", nil, 404, "not-found", "Task not found in DB", false},
		{"insured/draft", oidInsured, listInsured, "/Task/" + draft, nil, 403, "forbidden", "Status draft is not allowed for this operation", false},
		{"insured/cancelled", oidInsured, listInsured, "/Task/" + cancelled, nil, 410, "processing", "Task has already been deleted", false},
		{"representative/no AccessCode", oidInsured, "X999999999", "/Task/" + ready, nil, 403, "forbidden", "AccessCode mismatch", true},
		{"representative/wrong AccessCode", oidInsured, "X999999999", "/Task/" + ready + "?ac=" + strings.Repeat("0", 64), nil, 403, "forbidden", "AccessCode mismatch", true},
		{"representative/test identity", oidInsured, "X000000012", "/Task/" + ready + "?ac=" + ac(ready), nil, 400, "invalid", "KVNR verification identities may not access information from insurants and vice versa", false},
		{"representative/169", oidInsured, "X999999999", "/Task/" + direct + "?ac=" + ac(direct), nil, 403, "forbidden", "Insurant representatives may not access directly assigned tasks", false},
		{"pharmacy/no credential before id", oidPharmacy, ownerPharmacy, "/Task/160.000.000.000.201.37", nil, 403, "forbidden", "Neither AccessCode(ac) nor secret provided as URI-Parameter.", false},
		{"pharmacy/malformed id", oidPharmacy, ownerPharmacy, "/Task/160.000.000.000.201.37?secret=x", nil, 404, "not-found", "Failed to parse prescription ID from URL parameter", false},
		{"pharmacy/unknown", oidPharmacy, ownerPharmacy, "/Task/160.000.000.000.999.67?secret=x", nil, 404, "not-found", "Task not found in DB", false},
		{"pharmacy/cancelled before secret", oidPharmacy, ownerPharmacy, "/Task/" + cancelled + "?secret=x", nil, 410, "processing", "Task has already been deleted", false},
		{"pharmacy/wrong secret", oidPharmacy, ownerPharmacy, "/Task/" + inProgress + "?secret=" + strings.Repeat("0", 64), nil, 403, "forbidden", "No or invalid secret provided for user pharmacy", true},
		{"pharmacy/secret of a ready Task", oidPharmacy, ownerPharmacy, "/Task/" + ready + "?secret=" + ac(ready), nil, 403, "forbidden", "No or invalid secret provided for user pharmacy", true},
		{"pharmacy/wrong AccessCode", oidPharmacy, ownerPharmacy, "/Task/" + inProgress + "?ac=" + strings.Repeat("0", 64), nil, 403, "forbidden", "AccessCode mismatch", true},
		{"pharmacy/recovery of a ready Task", oidPharmacy, ownerPharmacy, "/Task/" + ready + "?ac=" + ac(ready), nil, 412, "processing", "Task must be in-progress or completed.", false},
		{"pharmacy/recovery by another pharmacy", oidHospital, "3-SMC-B-Testkarte-other", "/Task/" + inProgress, []string{"X-AccessCode", ac(inProgress)}, 412, "processing", "Task.owner doesn't match idNumberClaim in ACCESS_TOKEN", false},
		{"payer/no credential", oidPayer, "8-payer", "/Task/" + inProgress, nil, 403, "forbidden", "Neither AccessCode(ac) nor secret provided as URI-Parameter.", false},
		{"prescriber", oidPrescriber, "1-doctor", "/Task/" + ready, nil, 403, "forbidden", "endpoint is forbidden for professionOID " + oidPrescriber, false},
	}
	for _, c := range errors {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.gw+"/erp"+c.path, nil)
			req.Header.Set("Authorization", "Bearer "+erpToken(t, c.oid, c.idNummer))
			for i := 0; i+1 < len(c.header); i += 2 {
				req.Header.Set(c.header[i], c.header[i+1])
			}
			a := do(t, req)
			want := "xml"
			if c.oid == oidInsured {
				want = "json"
			}
			if a.Status != c.status || a.Code != c.code || a.Text != c.text || a.Format != want || a.IssuesCount != 1 {
				t.Errorf("got %d %s %q (%s, %d issues), want %d %s %q (%s)", a.Status, a.Code, a.Text, a.Format, a.IssuesCount, c.status, c.code, c.text, want)
			}
			if got := a.Header.Get("VAU-Error-Code") == "brute_force"; got != c.bruteForce {
				t.Errorf("VAU-Error-Code: brute_force present %v, want %v", got, c.bruteForce)
			}
		})
	}

	type view struct {
		name, oid, idNummer, path string
		format                    string   // answer format
		accessCode, secret, owner bool     // Task elements present
		dispense                  bool     // lastMedicationDispense extension
		input, output             []string // code:reference
		entries                   int
		second                    string // resourceType of the second entry
	}
	docUUID := func(id string, kind int) string {
		// Read the uuid back from the simulator's documents.
		d := fachdienst.DocumentsOf(seedTask(t, id))
		switch kind {
		case 1:
			return d.QES.UUID
		case 2:
			return d.Prescription.UUID
		}
		return d.Receipt.UUID
	}
	views := []view{
		{"insured owner, completed", oidInsured, listInsured, "/Task/" + completed, "json", true, false, true, true, []string{"2:" + docUUID(completed, 2)}, nil, 2, "Bundle"},
		{"insured owner, wrong AccessCode ignored", oidInsured, listInsured, "/Task/" + ready + "?ac=" + strings.Repeat("0", 64), "json", true, false, false, false, []string{"2:" + docUUID(ready, 2)}, nil, 2, "Bundle"},
		{"insured owner, 169: no AccessCode", oidInsured, listInsured, "/Task/" + direct, "json", false, false, false, false, []string{"2:" + docUUID(direct, 2)}, nil, 2, "Bundle"},
		{"representative with AccessCode", oidInsured, "X999999999", "/Task/" + ready + "?ac=" + ac(ready), "json", true, false, false, false, []string{"2:" + docUUID(ready, 2)}, nil, 2, "Bundle"},
		{"pharmacy secret, completed: receipt", oidPharmacy, ownerPharmacy, "/Task/" + completed + "?secret=" + secret(completed), "xml", false, true, true, true, nil, []string{"3:" + docUUID(completed, 3)}, 2, "Bundle"},
		{"pharmacy secret, in-progress: Task only", oidPharmacy, ownerPharmacy, "/Task/" + inProgress + "?secret=" + secret(inProgress), "xml", false, true, true, false, nil, nil, 1, ""},
		{"pharmacy recovery secret: QES data", oidPharmacy, ownerPharmacy, "/Task/" + inProgress + "?ac=" + ac(inProgress), "xml", false, true, true, false, []string{"1:" + docUUID(inProgress, 1)}, nil, 2, "Binary"},
		{"payer secret", oidPayer, "8-payer", "/Task/" + completed + "?secret=" + secret(completed), "xml", false, true, true, true, nil, []string{"3:" + docUUID(completed, 3)}, 2, "Bundle"},
	}
	for _, v := range views {
		t.Run(v.name, func(t *testing.T) {
			resp, body := erpGet(t, s, erpToken(t, v.oid, v.idNummer), v.path)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+"+v.format) {
				t.Fatalf("%d %s: %.1000s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			validateERezept(t, body, v.format)
			// The same read in JSON, to look inside.
			sep := "?"
			if strings.Contains(v.path, "?") {
				sep = "&"
			}
			resp, body = erpGet(t, s, erpToken(t, v.oid, v.idNummer), v.path+sep+"_format=fhir%2Bjson")
			if resp.StatusCode != 200 {
				t.Fatalf("JSON: %d %.500s", resp.StatusCode, body)
			}
			validateERezept(t, body, "json")
			var b erpBundle
			if err := json.Unmarshal(body, &b); err != nil {
				t.Fatal(err)
			}
			id := strings.TrimPrefix(strings.SplitN(v.path, "?", 2)[0], "/Task/")
			self := s.gw + "/erp/Task/" + id
			if b.Type != "collection" || b.ID == "" || b.Timestamp == "" || b.Total != nil || len(b.Link) != 1 || b.Link[0].Relation != "self" || b.Link[0].URL != self {
				t.Errorf("Bundle: type %s id %q timestamp %q total %v links %+v", b.Type, b.ID, b.Timestamp, b.Total, b.Link)
			}
			if len(b.Entry) != v.entries || b.Entry[0].FullURL != self {
				t.Fatalf("entries %d (want %d), first fullUrl %s", len(b.Entry), v.entries, b.Entry[0].FullURL)
			}
			var task erpTask
			json.Unmarshal(b.Entry[0].Resource, &task)
			task0 := seedTask(t, id)
			if task.ID != id || task.identifier("PrescriptionId") != id {
				t.Errorf("Task %s / identifier %s", task.ID, task.identifier("PrescriptionId"))
			}
			if got := task.identifier("AccessCode"); (got != "") != v.accessCode || got != "" && got != task0.AccessCode {
				t.Errorf("AccessCode %q, want present %v", got, v.accessCode)
			}
			if got := task.identifier("Secret"); (got != "") != v.secret || got != "" && got != task0.Secret {
				t.Errorf("Secret %q, want present %v", got, v.secret)
			}
			if (task.Owner != nil) != v.owner {
				t.Errorf("owner %+v, want present %v", task.Owner, v.owner)
			}
			if task.hasExtension("LastMedicationDispense") != v.dispense {
				t.Errorf("lastMedicationDispense present %v, want %v", !v.dispense, v.dispense)
			}
			if fmt.Sprint(docRefs(task.Input)) != fmt.Sprint(v.input) || fmt.Sprint(docRefs(task.Output)) != fmt.Sprint(v.output) {
				t.Errorf("input %v output %v, want %v %v", docRefs(task.Input), docRefs(task.Output), v.input, v.output)
			}
			if v.entries > 1 {
				e := b.Entry[1]
				var r struct{ ResourceType, ID string }
				json.Unmarshal(e.Resource, &r)
				ref := append(v.input, v.output...)[0][2:]
				if r.ResourceType != v.second || e.FullURL != "urn:uuid:"+ref || r.ID != ref {
					t.Errorf("second entry %s %s at %s, want %s %s", r.ResourceType, r.ID, e.FullURL, v.second, ref)
				}
			}
			// The documents pass through as the legacy system holds them.
			if v.second == "Bundle" {
				d := fachdienst.DocumentsOf(task0)
				want := d.Prescription.Bundle
				if v.output != nil {
					want = d.Receipt.Bundle
				}
				var got, exp any
				json.Unmarshal(b.Entry[1].Resource, &got)
				wb, _ := json.Marshal(want)
				json.Unmarshal(wb, &exp)
				if fmt.Sprint(got) != fmt.Sprint(exp) {
					t.Errorf("document changed on the way:\n got %v\nwant %v", got, exp)
				}
			}
		})
	}
	s.assertNoSecretsInLogs(t)
}

// TestERezeptTaskList runs spec erezept-task-read §2.1: the insured
// person's Tasks (no drafts), without AccessCode, secret, owner or
// documents; search parameters, _sort, paging and its links, and the
// production texts for bad arguments.
func TestERezeptTaskList(t *testing.T) {
	s := startStack(t, "../../routes.yaml", "rest", dialects[0].addrs)
	list := func(t *testing.T, query string, header ...string) (erpBundle, []byte) {
		t.Helper()
		resp, body := erpGet(t, s, erpToken(t, oidInsured, listInsured), "/Task"+query, header...)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") {
			t.Fatalf("%s: %d %.1000s", query, resp.StatusCode, body)
		}
		var b erpBundle
		if err := json.Unmarshal(body, &b); err != nil {
			t.Fatal(err)
		}
		if b.Type != "searchset" || b.ID == "" || b.Timestamp == "" || b.Total == nil {
			t.Errorf("%s: type %s id %q timestamp %q total %v", query, b.Type, b.ID, b.Timestamp, b.Total)
		}
		return b, body
	}
	ids := func(b erpBundle) []string {
		var out []string
		for _, e := range b.Entry {
			var task erpTask
			json.Unmarshal(e.Resource, &task)
			out = append(out, task.ID)
			if e.FullURL != s.gw+"/erp/Task/"+task.ID || e.Search == nil || e.Search.Mode != "match" {
				t.Errorf("entry %s: fullUrl %s search %+v", task.ID, e.FullURL, e.Search)
			}
			if task.identifier("AccessCode") != "" || task.identifier("Secret") != "" || task.Owner != nil || task.Input != nil || task.Output != nil || task.hasExtension("LastMedicationDispense") {
				t.Errorf("list entry %s shows more than §3.4 allows: %s", task.ID, e.Resource)
			}
		}
		return out
	}
	links := func(b erpBundle) map[string]string {
		m := map[string]string{}
		for _, l := range b.Link {
			m[l.Relation] = strings.TrimPrefix(l.URL, s.gw+"/erp/Task")
		}
		return m
	}

	// Default: every status but draft, authored-on ascending.
	b, body := list(t, "")
	validateERezept(t, body, "json")
	want := []string{"160.000.000.000.201.36", "160.000.000.000.203.30", "169.000.000.000.205.32", "200.000.000.000.207.32", "160.000.000.000.204.27", "160.000.000.000.202.33"}
	if fmt.Sprint(ids(b)) != fmt.Sprint(want) || *b.Total != 6 {
		t.Errorf("list %v total %d, want %v", ids(b), *b.Total, want)
	}
	if got := links(b); fmt.Sprint(got) != fmt.Sprint(map[string]string{"self": "", "first": "?_count=50&__offset=0", "last": "?_count=50&__offset=0"}) {
		t.Errorf("links %v", got)
	}

	// A page in the middle, newest first: total stays all matches.
	b, _ = list(t, "?_sort=-authored-on&_count=2&__offset=2&unknown=1")
	if fmt.Sprint(ids(b)) != fmt.Sprint([]string{"200.000.000.000.207.32", "169.000.000.000.205.32"}) || *b.Total != 6 {
		t.Errorf("page %v total %d", ids(b), *b.Total)
	}
	wantLinks := map[string]string{
		"self": "?_sort=-authored-on&_count=2&__offset=2", "first": "?_sort=-authored-on&_count=2&__offset=0",
		"prev": "?_sort=-authored-on&_count=2&__offset=0", "next": "?_sort=-authored-on&_count=2&__offset=4",
		"last": "?_sort=-authored-on&_count=2&__offset=4",
	}
	if got := links(b); fmt.Sprint(got) != fmt.Sprint(wantLinks) {
		t.Errorf("links %v\nwant %v", got, wantLinks)
	}
	// Following next reaches the last page.
	b, _ = list(t, wantLinks["next"])
	if fmt.Sprint(ids(b)) != fmt.Sprint([]string{"160.000.000.000.203.30", "160.000.000.000.201.36"}) || links(b)["next"] != "" {
		t.Errorf("last page %v links %v", ids(b), links(b))
	}
	// _count above the maximum is cut to 50.
	if b, _ = list(t, "?_count=500"); links(b)["self"] != "?_count=50&__offset=0" {
		t.Errorf("_count=500: links %v", links(b))
	}

	filters := []struct{ query, want string }{
		{"?status=cancelled", "[160.000.000.000.204.27]"},
		{"?status=ready,in-progress&_sort=modified", "[160.000.000.000.201.36 160.000.000.000.202.33 169.000.000.000.205.32 200.000.000.000.207.32]"},
		{"?authored-on=ge2026-09-11&_sort=authored-on", "[200.000.000.000.207.32 160.000.000.000.204.27 160.000.000.000.202.33]"},
		{"?expiry-date=lt2026-12-13", "[160.000.000.000.201.36 160.000.000.000.203.30 160.000.000.000.202.33]"},
		{"?modified=2026-11-03", "[160.000.000.000.203.30]"},
		{"?authored-on=ge2026-09-07&authored-on=le2026-09-11", "[160.000.000.000.203.30 169.000.000.000.205.32 200.000.000.000.207.32]"},
	}
	for _, f := range filters {
		b, _ := list(t, f.query)
		if got := fmt.Sprint(ids(b)); got != f.want || *b.Total != len(b.Entry) {
			t.Errorf("%s: %s (total %d), want %s", f.query, got, *b.Total, f.want)
		}
	}

	refused := []struct {
		query, text, expression string
		header                  []string
	}{
		{"?_count=0", "_count zero is not supported", "_count", nil},
		{"?_count=-1", "_count can not be negative", "_count", nil},
		{"?_count=abc", "invalid numeric format in _count", "_count", nil},
		{"?_count=5x", "trailing characters are not permitted in a numerical argument: _count", "_count", nil},
		{"?_count=99999999999", "_count value out of range", "_count", nil},
		{"?__offset=-3", "__offset can not be negative", "__offset", nil},
		{"?authored-on=gt2026-13", "Unable to add search argument authored-on", "authored-on", nil},
		{"?status=ready,foo", "Invalid value for status search parameter: ready,foo", "status", nil},
		{"?foo=1", "unknown search parameter 'foo' (Prefer: handling=strict)", "foo", []string{"Prefer", "handling=strict"}},
	}
	for _, c := range refused {
		req, _ := http.NewRequest(http.MethodGet, s.gw+"/erp/Task"+c.query, nil)
		req.Header.Set("Authorization", "Bearer "+erpToken(t, oidInsured, listInsured))
		for i := 0; i+1 < len(c.header); i += 2 {
			req.Header.Set(c.header[i], c.header[i+1])
		}
		a := do(t, req)
		if a.Status != 400 || a.Text != c.text || len(a.Issues) != 1 || fmt.Sprint(a.Issues[0].Expression) != "["+c.expression+"]" {
			t.Errorf("%s: %d %q %v, want 400 %q at %s", c.query, a.Status, a.Text, a.Issues, c.text, c.expression)
		}
	}

	// Another insured person sees only their own; a malformed KVNR claim
	// and a pharmacy (the eGK list of §2.2 is not served) are refused.
	resp, body := erpGet(t, s, erpToken(t, oidInsured, "X110000002"), "/Task")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"total":1`) || !strings.Contains(string(body), "160.000.000.000.102.42") {
		t.Errorf("other insured: %d %.600s", resp.StatusCode, body)
	}
	for _, c := range []struct{ oid, id, text string }{
		{oidInsured, "x12", "Invalid KVNR"},
		{oidPharmacy, ownerPharmacy, "endpoint is forbidden for professionOID " + oidPharmacy},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.gw+"/erp/Task", nil)
		req.Header.Set("Authorization", "Bearer "+erpToken(t, c.oid, c.id))
		if a := do(t, req); a.Text != c.text || a.Status/100 != 4 {
			t.Errorf("%s: %d %q, want %q", c.id, a.Status, a.Text, c.text)
		}
	}
}

// TestERezeptInconsistentRecord: a legacy record the gateway cannot turn
// into a valid GEM_ERP_PR_Task — a flow type the contract does not know,
// a status that is no Task status — is a 502 naming the problem; the
// client gets no part of the record, in the read and in the list.
func TestERezeptInconsistentRecord(t *testing.T) {
	seed := []fachdienst.Task{
		{ID: "160.000.000.000.301.27", FlowType: "161", Status: "ready", KVNR: "X110000200", AccessCode: sha("a"), AuthoredOn: "2026-10-01T10:00:00.000+00:00"},
		{ID: "160.000.000.000.302.24", FlowType: "160", Status: "ready", KVNR: "X110000201", AccessCode: sha("b"), AuthoredOn: "2026-10-01T10:00:00.000+00:00", ExpiryDate: "2026-02-30"},
	}
	data, _ := json.Marshal(seed)
	file := filepath.Join(t.TempDir(), "seed.json")
	os.WriteFile(file, data, 0o644)
	s := startSeededStack(t, "../../routes.yaml", "rest", file, dialects[0].addrs)

	cases := []struct{ name, kvnr, path, want string }{
		{"read, unknown flow type", "X110000200", "/Task/160.000.000.000.301.27", "cannot translate"},
		{"list, unknown flow type", "X110000200", "/Task", "cannot translate"},
		{"read, impossible date", "X110000201", "/Task/160.000.000.000.302.24", "expected date (at Bundle.entry[0].resource.extension[1].valueDate)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.gw+"/erp"+c.path, nil)
			req.Header.Set("Authorization", "Bearer "+erpToken(t, oidInsured, c.kvnr))
			a := do(t, req)
			if a.Status != 502 || !strings.Contains(a.Text, c.want) {
				t.Errorf("%d %q, want 502 naming %q", a.Status, a.Text, c.want)
			}
			for _, leaked := range []string{sha("a"), sha("b"), "X11000020"} {
				if strings.Contains(string(a.Body), leaked) {
					t.Errorf("the answer carries part of the record (%s): %s", leaked, a.Body)
				}
			}
		})
	}
	if v, _ := procs.Sample(procs.Scrape(t, s.admin), `fhirgate_invalid_resources_total{route="erp-task-read"}`); v != "1" {
		t.Errorf("invalid resources counted for erp-task-read: %q, want 1", v)
	}
}
