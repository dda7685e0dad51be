package pipeline

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/validation"
)

// defaultTable builds the repository's routes.yaml.
func defaultTable(t *testing.T) *Table {
	t.Helper()
	cfg, err := config.Load("../../routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	table, err := Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return table
}

// TestCapabilityStatementsValidate: each base's generated statement, in
// JSON and XML, passes base validation of its FHIR version with no issue.
func TestCapabilityStatementsValidate(t *testing.T) {
	for _, b := range defaultTable(t).bases {
		t.Run(b.prefix, func(t *testing.T) {
			if b.capability == nil {
				t.Fatal("no CapabilityStatement")
			}
			v, _ := validation.ParseVersion(b.cfg.FHIRVersion)
			p, err := validation.NewParser(v)
			if err != nil {
				t.Fatal(err)
			}
			if _, issues := p.ValidateJSON(b.capability.json, nil, nil); len(issues) > 0 {
				t.Errorf("JSON: %+v\n%s", issues, b.capability.json)
			}
			if _, _, issues := p.ValidateXML(b.capability.xml, nil, nil); len(issues) > 0 {
				t.Errorf("XML: %+v\n%s", issues, b.capability.xml)
			}
			// The validator does see a broken statement: without status
			// (1..1, written last: keys are in order).
			broken := strings.Replace(string(b.capability.json), `,"status":"active"`, "", 1)
			if broken == string(b.capability.json) {
				t.Fatal("status not found")
			}
			if _, issues := p.ValidateJSON([]byte(broken), nil, nil); len(issues) == 0 {
				t.Errorf("a statement without status passes: %s", broken)
			}
		})
	}
}

// TestCapabilityStatementContent: the statement lists exactly what
// routes.yaml routes.
func TestCapabilityStatementContent(t *testing.T) {
	want := map[string]struct {
		version string
		task    string // the Task entry, as JSON
		restOps string
	}{
		"/erp":   {"4.0.1", `{"interaction":[{"code":"read"},{"code":"search-type"}],"operation":[{"definition":"https://gematik.de/fhir/erp/OperationDefinition/AbortOperationDefinition","name":"abort"}],"searchParam":[{"name":"accept-date","type":"date"},{"name":"authored-on","type":"date"},{"name":"expiry-date","type":"date"},{"name":"modified","type":"date"},{"name":"status","type":"token"}],"type":"Task"}`, ""},
		"/twiin": {"3.0.2", `{"conditionalUpdate":true,"interaction":[{"code":"read"},{"code":"update"},{"code":"create"},{"code":"search-type"}],"profile":{"reference":"https://fhirgate.example/fhir/twiin/StructureDefinition/notification-task"},"searchParam":[{"name":"identifier","type":"token"}],"type":"Task"}`, ""},
	}
	for _, b := range defaultTable(t).bases {
		w, ok := want[b.prefix]
		if !ok {
			t.Fatalf("unexpected base %s", b.prefix)
		}
		var cs struct {
			FHIRVersion string `json:"fhirVersion"`
			Kind        string
			Rest        []struct {
				Resource  []json.RawMessage
				Operation []json.RawMessage
				Security  map[string]any
			}
		}
		if err := json.Unmarshal(b.capability.json, &cs); err != nil {
			t.Fatal(err)
		}
		if cs.FHIRVersion != w.version || cs.Kind != "instance" || len(cs.Rest) != 1 || len(cs.Rest[0].Resource) != 1 || cs.Rest[0].Security == nil {
			t.Errorf("%s: %s", b.prefix, b.capability.json)
			continue
		}
		if got := string(cs.Rest[0].Resource[0]); got != w.task {
			t.Errorf("%s Task entry\n got %s\nwant %s", b.prefix, got, w.task)
		}
	}
}
