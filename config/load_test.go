package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// valid is a minimal complete file; the broken cases edit it.
const valid = `server:
  listen: 127.0.0.1:0
auth:
  idp:
    keys: {pem_file: key.pem}
    roles:
      claim: professionOID
      map: {1.2.276.0.76.4.50: prescriber}
backends:
  legacy:
    urls: [http://127.0.0.1:1]
bases:
  - path: /erp
    fhir_version: R4
    auth: idp
    routes:
      - name: abort
        interaction: operation
        method: POST
        path: /Task/{id}/$abort
        roles: [prescriber]
        checks:
          - value: ${path.id}
            format: prescription-id
            fail: {status: 404, text: bad id}
        call:
          backend: legacy
          path: /x/${path.id}
        responses:
          - when: {status: 200}
            answer: {status: 204}
`

func write(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/key.pem")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "key.pem"), data, 0o644)
	file := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestLoadValidAndDefaults(t *testing.T) {
	cfg, err := Load(write(t, valid))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.MaxBodyBytes != 1<<20 || cfg.Server.ShutdownGrace.D().Seconds() != 20 || cfg.Server.AdminListen != "127.0.0.1:9090" {
		t.Errorf("server defaults: %+v", cfg.Server)
	}
	if cfg.Log.FlushInterval == nil || cfg.Log.FlushInterval.D() != 100*time.Millisecond {
		t.Errorf("log.flush_interval default: %v", cfg.Log.FlushInterval)
	}
	if cfg, err := Load(write(t, strings.Replace(valid, "server:\n", "log:\n  flush_interval: 0s\nserver:\n", 1))); err != nil || cfg.Log.FlushInterval.D() != 0 {
		t.Errorf("log.flush_interval 0 must stay 0 (every line at once): %v", err)
	}
	p := cfg.Auth["idp"]
	if strings.Join(p.Algorithms, ",") != "RS256,PS256,ES256" || p.SubjectClaim != "sub" || p.ClockSkew.D().Seconds() != 30 || p.CacheSize != 10000 {
		t.Errorf("auth defaults: %+v", p)
	}
	if p.Errors.MissingHeader.Status != 400 || p.Errors.Expired.Text != "JWT expired" || p.Errors.Expired.Headers["WWW-Authenticate"] != "Bearer" {
		t.Errorf("auth error defaults: %+v", p.Errors.Expired)
	}
	r := cfg.Bases[0].Routes[0]
	if r.Auth != "idp" || r.Format.Default != "json" || r.Call.Method != "POST" || r.Checks[0].Fail.Code != "not-found" {
		t.Errorf("route defaults: auth %q format %q method %q code %q", r.Auth, r.Format.Default, r.Call.Method, r.Checks[0].Fail.Code)
	}
	if !filepath.IsAbs(p.Keys.PEMFile) {
		t.Errorf("pem_file not resolved against the file's directory: %s", p.Keys.PEMFile)
	}
}

// TestLoadErrors: each broken file is refused with a message naming the
// file, the line and the field.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name      string
		old, new  string
		line      int // 0: the line of the edit (its first line not in old); -1: not checked
		field     string
		msgSubstr string
	}{
		{"unknown top-level key", "server:\n", "servre:\n", 0, "servre", `unknown key "servre"`},
		{"unknown nested key", "  listen: 127.0.0.1:0\n", "  listen: 127.0.0.1:0\n  lisen: x\n", 0, "server.lisen", "unknown key"},
		{"wrong type", "  listen: 127.0.0.1:0\n", "  listen: 127.0.0.1:0\n  max_body_bytes: lots\n", 0, "server.max_body_bytes", "not a whole number"},
		{"bad duration", "  listen: 127.0.0.1:0\n", "  listen: 127.0.0.1:0\n  idle_timeout: 5 minutes\n", 0, "server.idle_timeout", "not a duration"},
		{"negative log flush interval", "server:\n", "log:\n  flush_interval: -1s\nserver:\n", 2, "log.flush_interval", "is not a duration"},
		{"unknown backend", "backend: legacy", "backend: legasy", 0, "bases[0].routes[0].call.backend", `unknown backend "legasy" (known: legacy)`},
		{"unknown auth profile", "    auth: idp\n", "    auth: ipd\n", 0, "bases[0].auth", `unknown auth profile "ipd"`},
		{"missing key file", "pem_file: key.pem", "pem_file: nokey.pem", 0, "auth.idp.keys.pem_file", "cannot read file"},
		{"HMAC not allowed", "    keys: {pem_file: key.pem}\n", "    algorithms: [HS256]\n    keys: {pem_file: key.pem}\n", 0, "auth.idp.algorithms[0]", "not an allowed algorithm"},
		{"bad template", "path: /x/${path.id}", "path: /x/${path.id", 0, "bases[0].routes[0].call.path", "unclosed ${"},
		{"unknown path parameter", "path: /x/${path.id}", "path: /x/${path.ident}", 0, "bases[0].routes[0].call.path", "no parameter {ident}"},
		{"unknown template source", "path: /x/${path.id}", "path: /x/${cookie.id}", 0, "bases[0].routes[0].call.path", `unknown source "cookie"`},
		{"body source in a request template", "path: /x/${path.id}", "path: /x/${body.id}", 0, "bases[0].routes[0].call.path", `unknown source "body"`},
		{"2xx answer without a 2xx backend status", "          - when: {status: 200}\n", "          - when: {status: 5xx}\n", 31, "bases[0].routes[0].responses[0].answer.status", "requires when.status to match only 2xx"},
		{"2xx answer on any status", "          - when: {status: 200}\n", "          - when: {}\n", 31, "bases[0].routes[0].responses[0].answer.status", "requires when.status"},
		{"bad status class", "{status: 200}", "{status: 2x}", 0, "bases[0].routes[0].responses[0].when.status", "not a status"},
		{"unknown role", "roles: [prescriber]", "roles: [doctor]", 0, "bases[0].routes[0].roles[0]", `role "doctor" is not produced`},
		{"bad fhir version", "fhir_version: R4", "fhir_version: R5", 0, "bases[0].fhir_version", `"R5" is not R4 or STU3`},
		{"bad check format", "format: prescription-id", "format: rx-id", 0, "bases[0].routes[0].checks[0].format", "not one of"},
		{"bad issue code", "fail: {status: 404, text: bad id}", "fail: {status: 404, code: nope, text: bad id}", 0, "bases[0].routes[0].checks[0].fail.code", "not an OperationOutcome issue code"},
		{"header injection in config", "          path: /x/${path.id}\n", "          path: /x/${path.id}\n          headers: {X-A: \"a\\r\\nB: c\"}\n", 0, "bases[0].routes[0].call.headers.X-A", "CR, LF or NUL"},
		{"backend URL with credentials", "http://127.0.0.1:1", "http://u:p@127.0.0.1:1", 0, "backends.legacy.urls[0]", "no credentials"},
		{"duplicate route path", "        responses:\n          - when: {status: 200}\n            answer: {status: 204}\n",
			"        responses:\n          - when: {status: 200}\n            answer: {status: 204}\n      - name: abort2\n        interaction: operation\n        method: POST\n        path: /Task/{x}/$abort\n        call: {backend: legacy, path: /y}\n        responses: [{when: {status: 200}, answer: {status: 204}}]\n",
			35, "bases[0].routes[1].path", `already routed by "abort"`},
		{"list expected", "roles: [prescriber]", "roles: prescriber", 0, "bases[0].routes[0].roles", "must be a list"},
		{"bad regular expression in a rule", "            answer: {status: 204}\n", "            answer: {status: 204}\n          - when: {status: 409, match: {body.rc: {regex: \"(\"}}}\n            answer: {status: 409, text: x}\n", 0, "bases[0].routes[0].responses[1].when.match.body.rc", "regex: error parsing regexp"},
		{"unknown rule condition", "            answer: {status: 204}\n", "            answer: {status: 204}\n          - when: {status: 409, match: {body.rc: {equals: 1}}}\n            answer: {status: 409, text: x}\n", 0, "bases[0].routes[0].responses[1].when.match.body.rc", `unknown condition "equals"`},
		{"router's own syntax in a literal segment", "path: /Task/{id}/$abort", "path: /Task/{id}/:abort", 0, "bases[0].routes[0].path", "must not start with"},
		{"invalid YAML", "bases:\n", "bases: [\n", -1, "", "invalid YAML"},
		{"paging on a non-search route", "        roles: [prescriber]\n", "        roles: [prescriber]\n        paging: {default_count: 5}\n", -1, "bases[0].routes[0]", "belong to a search route"},
		{"unknown check role", "            fail: {status: 404, text: bad id}\n", "            fail: {status: 404, text: bad id}\n            roles: [pharmacy]\n", 0, "bases[0].routes[0].checks[0].roles[0]", `role "pharmacy" is not produced`},
		{"search without default count", "            answer: {status: 204}\n", "            answer: {status: 204}\n      - name: list\n        interaction: search\n        method: GET\n        path: /Task\n        paging: {offset: __offset}\n        call: {backend: legacy, method: GET, path: /l}\n        responses: [{when: {status: 200}, answer: {status: 204}}]\n", -1, "bases[0].routes[1].paging.default_count", "must be 1 or more"},
		{"sort default not a key", "            answer: {status: 204}\n", "            answer: {status: 204}\n      - name: list\n        interaction: search\n        method: GET\n        path: /Task\n        sort: {keys: {date: d}, default: -status}\n        call: {backend: legacy, method: GET, path: /l}\n        responses: [{when: {status: 200}, answer: {status: 204}}]\n", -1, "bases[0].routes[1].sort.default", `"-status" is not among sort.keys`},
		{"bad $when condition in a resource", "          - when: {status: 200}\n            answer: {status: 204}\n", "          - when: {status: 200}\n            answer: {status: 200, resource: {resourceType: Task, status: ready, intent: order, owner: {$when: {body.o: {regex: \"(\"}}, display: x}}}\n", -1, "bases[0].routes[0].responses[0].answer.resource", "owner.$when: body.o: regex"},
		{"repeated query parameter of another source", "          path: /x/${path.id}\n", "          path: /x/${path.id}\n          query: {\"ids[]\": \"${path.id}\"}\n", 0, "bases[0].routes[0].call.query.ids[]", "exactly one ${query.…} reference"},
		{"resource source without request", "path: /x/${path.id}", "path: /x/${resource.id}", 0, "bases[0].routes[0].call.path", `unknown source "resource"`},
		{"request without resource type", "        roles: [prescriber]\n", "        roles: [prescriber]\n        request: {resource: task}\n", 0, "bases[0].routes[0].request.resource", "resource type"},
		{"unknown request profile", "        roles: [prescriber]\n", "        roles: [prescriber]\n        request: {resource: Task, profile: http://x/p}\n", 0, "bases[0].routes[0].request.profile", "not among the profiles"},
		{"FHIRPath outside the subset", "        checks:\n          - value: ${path.id}\n", "        request: {resource: Task}\n        checks:\n          - value: ${resource.identifier[0].value}\n", -1, "bases[0].routes[0].checks[0].value", "outside the FHIRPath subset"},
		{"token-match without matches", "format: prescription-id", "format: token-match", -1, "bases[0].routes[0].checks[0].matches", "needs matches"},
		{"unknown value map", "path: /x/${path.id}", "path: /x/${path.id -> ids}", 0, "bases[0].routes[0].call.path", `no value map "ids"`},
		{"value map with map and concept_map", "server:\n", "value_maps:\n  roles: {map: {a: b}, concept_map: http://x}\nserver:\n", 2, "value_maps.roles", "exactly one of map and concept_map"},
		{"ConceptMap not in the base's profiles", "path: /x/${path.id}", "path: /x/${path.id -> http://x/ConceptMap/ids}", 0, "bases[0].routes[0].call.path", "ConceptMap of that URL or name in the base's profiles"},
		{"limit store unknown", "      map: {1.2.276.0.76.4.50: prescriber}\n", "      map: {1.2.276.0.76.4.50: prescriber}\n    rate_limit: {requests: 1, store: shared}\n", 0, "auth.idp.rate_limit.store", "neither memory nor a name in limit_stores"},
		{"limit store password in URL", "server:\n", "limit_stores:\n  shared: {url: \"redis://u:pw@127.0.0.1:6379\"}\nserver:\n", 2, "limit_stores.shared.url", "must not hold a password"},
		{"limit store on_failure", "server:\n", "limit_stores:\n  shared: {url: \"redis://127.0.0.1:6379\", on_failure: open}\nserver:\n", 2, "limit_stores.shared.on_failure", "must be local or closed"},
		{"audit on_failure", "server:\n", "audit:\n  on_failure: ignore\nserver:\n", 2, "audit.on_failure", "must be refuse or continue"},
		{"resource answer not a 200", "            answer: {status: 204}\n", "            answer: {status: 201, resource: {resourceType: Task, id: x}}\n", 0, "bases[0].routes[0].responses[0].answer.status", "an answer with a resource is a 200"},
		{"resource answer of an unknown type", "            answer: {status: 204}\n", "            answer: {status: 200, resource: {resourceType: Tsk, id: x}}\n", 0, "bases[0].routes[0].responses[0].answer.resource.resourceType", `"Tsk" is not a R4 resource type`},
		{"resource answer with a bad template", "            answer: {status: 204}\n", "            answer: {status: 200, resource: {resourceType: Task, id: \"${cookie.x}\"}}\n", 0, "bases[0].routes[0].responses[0].answer.resource", `id: template`},
		{"bad token source key", "path: /x/${path.id}", "path: /x/${token.identifier}", 0, "bases[0].routes[0].call.path", "token.<query parameter>"},
		{"missing OperationDefinition", "        roles: [prescriber]\n", "        roles: [prescriber]\n        operation: {definition: nope.json}\n", 0, "bases[0].routes[0].operation.definition", "cannot read file"},
		{"missing profile directory", "    auth: idp\n", "    auth: idp\n    profiles: [nothing-here]\n", 0, "bases[0].profiles[0]", "cannot read file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(valid, c.old) {
				t.Fatalf("test case edits text not in the valid file: %q", c.old)
			}
			file := write(t, strings.Replace(valid, c.old, c.new, 1))
			_, err := Load(file)
			if err == nil {
				t.Fatal("loaded without error")
			}
			es, ok := err.(Errors)
			if !ok || len(es) == 0 {
				t.Fatalf("error is %T: %v", err, err)
			}
			for _, e := range es {
				if e.Field == c.field && strings.Contains(e.Msg, c.msgSubstr) {
					want := c.line
					if want == 0 {
						want = editLine(valid, c.old, c.new)
					}
					if want > 0 && e.Line != want {
						t.Errorf("line %d, want %d: %v", e.Line, c.line, e)
					}
					if !strings.HasPrefix(e.Error(), file+":") {
						t.Errorf("message does not start with the file name: %v", e)
					}
					return
				}
				if c.field == "" && strings.Contains(e.Msg, c.msgSubstr) {
					return
				}
			}
			t.Errorf("no error on %s containing %q; got:\n%v", c.field, c.msgSubstr, err)
		})
	}
}

// editLine is the 1-based line, in the edited file, of the first line of
// new that old does not have.
func editLine(file, old, new string) int {
	start := strings.Count(file[:strings.Index(file, old)], "\n") + 1
	oldLines := strings.Split(old, "\n")
	for i, l := range strings.Split(new, "\n") {
		if i >= len(oldLines) || l != oldLines[i] {
			return start + i
		}
	}
	return start
}

// The shipped configurations load.
func TestShippedFilesLoad(t *testing.T) {
	for _, f := range []string{"../routes.yaml", "../test/e2e/testdata/routes-cgi.yaml"} {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// FuzzParse: any input either loads or fails with Errors; never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	f.Add([]byte("server: {listen: x}\nbases: []\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("fuzz.yaml", data)
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error of type %T", err)
			}
		}
	})
}
