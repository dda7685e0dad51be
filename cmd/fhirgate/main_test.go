package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const (
	gematikSrc   = "../../../shared/fixtures/conformance/gematik-erp-task/valmodule-erp/src/"
	gematikPkg   = gematikSrc + "main/resources/erp/package/de.gematik.erezept-workflow.r4-1.5.2.tgz"
	gematikTasks = gematikSrc + "test/resources/OtherProfiles/GEM_ERP_PR_Task/1.5/"
)

func TestCommands(t *testing.T) {
	const twiin = "../../validation/testdata/twiin/"
	cases := []struct {
		name   string
		args   []string
		rc     int
		stdout string // substring
		stderr string // substring
	}{
		{"no command", nil, 2, "", "usage"},
		{"unknown command", []string{"frobnicate"}, 2, "", "unknown command"},
		{"check ok", []string{"check", "../../routes.yaml"}, 0, "routes.yaml: ok", ""},
		{"check broken", []string{"check", "testdata/broken-routes.yaml"}, 1, "", "broken-routes.yaml:3: server.lisen: unknown key"},
		{"validate valid json", []string{"validate", "--version", "stu3", twiin + "new-notification-task.json"}, 0, "0 errors", ""},
		{"validate valid xml", []string{"validate", "--version", "stu3", twiin + "cancel-notification-task.stu3.xml"}, 0, "0 errors", ""},
		{"validate invalid", []string{"validate", "--version", "stu3", twiin + "new-notification-task.json", twiin + "original-new-notification-task.json"}, 1, `"expression":["Task.identifier"]`, ""},
		{"validate missing version", []string{"validate", twiin + "new-notification-task.json"}, 2, "", "--version"},
		{"validate unreadable", []string{"validate", "--version", "r4", "nope.json"}, 1, `"severity":"fatal"`, ""},
		{"convert xml to json", []string{"convert", "--version", "stu3", "--to", "json", twiin + "cancel-notification-task.stu3.xml"}, 0, `"status": "cancelled"`, ""},
		{"convert json to xml", []string{"convert", "--version", "stu3", "--to", "xml", twiin + "cancel-notification-task.json"}, 0, `<Task xmlns="http://hl7.org/fhir">`, ""},
		{"convert invalid", []string{"convert", "--version", "stu3", "--to", "xml", twiin + "original-cancel-notification-task.json"}, 1, "", `"resourceType":"OperationOutcome"`},
		{"validate against a package: invalid", []string{"validate", "--version", "r4", "--package", gematikPkg, gematikTasks + "invalid/invalid_Task-no-flowtype.xml"}, 1, "Task.extension:flowType: minimum required = 1", ""},
		{"validate against a package: valid, unavailable profile is a warning", []string{"validate", "--version", "r4", "--package", gematikPkg, gematikTasks + "valid/Task-09330307-16ce-4cdc-810a-ca24ef80dde3.xml"}, 0, "identifier-kvid-10 is not available", ""},
		{"validate --as a profile not loaded", []string{"validate", "--version", "stu3", "--as", "http://example.org/sd", twiin + "new-notification-task.json"}, 0, "profile http://example.org/sd is not available", ""},
		{"validate bad package", []string{"validate", "--version", "r4", "--package", "nope.tgz", twiin + "new-notification-task.json"}, 1, "", "nope.tgz"},
		{"convert invalid --force", []string{"convert", "--version", "stu3", "--to", "xml", "--force", "testdata/bad-status-task.json"}, 2, `<status value="bogus"/>`, `"resourceType":"OperationOutcome"`},
		{"convert invalid without --force", []string{"convert", "--version", "stu3", "--to", "xml", "testdata/bad-status-task.json"}, 1, "", `"resourceType":"OperationOutcome"`},
		{"convert invalid XML --force", []string{"convert", "--version", "stu3", "--to", "json", "--force", "testdata/unknown-element-task.stu3.xml"}, 2, `"resourceType": "Task"`, `Task.foo`},
		{"convert unparsable --force", []string{"convert", "--version", "stu3", "--to", "json", "--force", "testdata/broken-routes.yaml"}, 1, "", "nothing could be converted"},
		{"convert bad --to", []string{"convert", "--version", "stu3", "--to", "yaml", twiin + "cancel-notification-task.json"}, 2, "", "usage"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			rc := run(c.args, &out, &errb)
			if rc != c.rc || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
				t.Errorf("rc %d (want %d)\nstdout: %s\nstderr: %s", rc, c.rc, out.String(), errb.String())
			}
		})
	}
}

// validate prints one OperationOutcome per file, each a JSON document.
func TestValidateOutputIsOneOutcomePerLine(t *testing.T) {
	var out bytes.Buffer
	run([]string{"validate", "--version", "stu3", "../../validation/testdata/twiin/new-notification-task.json", "../../validation/testdata/twiin/original-new-notification-task.json"}, &out, &bytes.Buffer{})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		var oo struct{ ResourceType string }
		if err := json.Unmarshal([]byte(l), &oo); err != nil || oo.ResourceType != "OperationOutcome" {
			t.Errorf("not an OperationOutcome: %s", l)
		}
	}
}
