package validation

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// agreement checks the fast path's promises on one document: when the
// descriptor model accepts it for a version, jsonformat's parse and base
// validation of that version find no error, and the model's "holds
// resources of its own" is what the walk for nested resources finds (the
// fast path skips that walk when it is false). It reports whether the
// model accepted.
func agreement(t testing.TB, p *Parser, data []byte) bool {
	t.Helper()
	res, holds := p.fastAccepted(data)
	if res == nil {
		return false
	}
	nested := 0
	eachNestedResource(res, rootType(res), func(string, map[string]any) { nested++ })
	if holds != (nested > 0) {
		t.Errorf("accepted by the fast path (%v) holding resources %v, the walk finds %d: %.400s", p.version, holds, nested, data)
	}
	if _, issues := p.parseJSON(data, false); HasErrors(issues) {
		t.Errorf("accepted by the fast path, refused by jsonformat (%v): %+v\n%.400s", p.version, issues, data)
	}
	return true
}

// corpus is every JSON resource of the shared fixtures (gematik, Twiin,
// official examples, the conformance subset) and of the project's test
// data.
func corpus(t testing.TB) map[string][]byte {
	out := map[string][]byte{}
	for _, root := range []string{"../../shared/fixtures", "testdata", "../test/bench/testdata", "../test/e2e/testdata"} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
				return nil
			}
			data, err := os.ReadFile(path)
			if err == nil && json.Valid(data) && strings.Contains(string(data), `"resourceType"`) {
				out[path] = data
			}
			return nil
		})
	}
	return out
}

// TestFastPathAgreesOnCorpus holds the fast path to jsonformat on every
// resource at hand, valid and invalid, in both versions — and checks that
// it is taken for the bodies the gateway actually serves.
func TestFastPathAgreesOnCorpus(t *testing.T) {
	stu3, r4 := mustParser(t, STU3), mustParser(t, R4)
	docs := corpus(t)
	accepted := 0
	for _, data := range docs {
		for _, p := range []*Parser{stu3, r4} {
			if agreement(t, p, data) {
				accepted++
			}
		}
	}
	t.Logf("%d documents, %d (document, version) pairs accepted by the fast path", len(docs), accepted)
	// Nested resources are judged as resources of their own: a Bundle of
	// valid Tasks (the gateway's searchsets) takes the fast path.
	bundle := `{"resourceType":"Bundle","type":"searchset","total":1,"entry":[{"fullUrl":"urn:uuid:0f0e8b2e-3b1c-4a51-9a3e-5d0c7f7f2a10","resource":{"resourceType":"Task","id":"t1","status":"ready","intent":"order"},"search":{"mode":"match"}}]}`
	if !agreement(t, r4, []byte(bundle)) {
		t.Errorf("a searchset of one Task does not take the fast path")
	}
	for _, name := range []string{"twiin-01-notification.json", "twiin-02-cancellation.json"} {
		data, err := os.ReadFile("../test/bench/testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !agreement(t, stu3, data) {
			t.Errorf("%s does not take the fast path", name)
		}
	}
}

// TestFastPathDeclines: what the fast path must leave to jsonformat.
func TestFastPathDeclines(t *testing.T) {
	stu3 := mustParser(t, STU3)
	base, err := os.ReadFile("../test/bench/testdata/twiin-01-notification.json")
	if err != nil {
		t.Fatal(err)
	}
	edits := map[string][2]string{
		"unknown property":                         {`"intent": "proposal"`, `"intent": "proposal", "surprise": 1`},
		"code outside its value set":               {`"status": "requested"`, `"status": "Requested"`},
		"empty string":                             {`"value": "172642863"`, `"value": ""`},
		"control character":                        {`"value": "172642863"`, `"value": "17\u0001"`},
		"array for a single value":                 {`"status": "requested"`, `"status": ["requested"]`},
		"object for a list":                        {`"input": [`, `"input": {"x": [`},
		"primitive extension":                      {`"intent": "proposal"`, `"intent": "proposal", "_intent": {"id": "a"}`},
		"missing required element":                 {`"intent": "proposal", `, ``},
		"bad dateTime":                             {`"2026-11-20T15:01:54+01:00"`, `"2026-11-20T15:01:54"`},
		"impossible date":                          {`"2026-11-20T15:01:54+01:00"`, `"2026-02-30T15:01:54+01:00"`},
		"versioned reference":                      {`"reference": "Observation/123"`, `"reference": "Observation/123/_history/1"`},
		"reference to no resource type":            {`"reference": "Observation/123"`, `"reference": "Observatory/123"`},
		"trailing data":                            {"}\n", "} {}\n"},
		"two types of one choice":                  {`"valueBoolean": true`, `"valueBoolean": true, "valueString": "x"`},
		"unknown property in a contained resource": {`"intent": "proposal"`, `"intent": "proposal", "contained": [{"resourceType": "Patient", "surprise": 1}]`},
		"contained resource of no type":            {`"intent": "proposal"`, `"intent": "proposal", "contained": [{"resourceType": "Patience"}]`},
		"empty contained list":                     {`"intent": "proposal"`, `"intent": "proposal", "contained": []`},
	}
	for name, e := range edits {
		t.Run(name, func(t *testing.T) {
			data := strings.Replace(string(base), e[0], e[1], 1)
			if data == string(base) {
				t.Fatalf("edit %q does not apply", e[0])
			}
			if agreement(t, stu3, []byte(data)) {
				t.Errorf("the fast path accepted it")
			}
		})
	}
}

// FuzzFastPathAgrees: whatever the fast path accepts, jsonformat accepts.
func FuzzFastPathAgrees(f *testing.F) {
	for _, data := range corpus(f) {
		f.Add(data, false)
		f.Add(data, true)
	}
	stu3, r4 := mustParser(f, STU3), mustParser(f, R4)
	f.Fuzz(func(t *testing.T, data []byte, useR4 bool) {
		p := stu3
		if useR4 {
			p = r4
		}
		agreement(t, p, data)
	})
}
