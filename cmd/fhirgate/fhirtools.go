package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/validation"
	"github.com/fhirgate/fhirgate/validation/fhirxml"
	"github.com/fhirgate/fhirgate/validation/profile"
)

// validate prints one OperationOutcome (JSON, one line) per file and exits
// 0 when no file has an error-level issue, 1 otherwise.
func validate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ver := fs.String("version", "", "FHIR version: stu3 or r4 (required)")
	var packages, dirs, profiles, as listFlag
	fs.Var(&packages, "package", "FHIR package (.tgz) with profiles, ValueSets, CodeSystems (repeatable)")
	fs.Var(&dirs, "profiles", "directory of conformance resources (JSON), as a base's profiles in routes.yaml (repeatable)")
	fs.Var(&profiles, "profile", "StructureDefinition file with a snapshot (repeatable)")
	fs.Var(&as, "as", "profile URL to validate against when the instance declares none in meta.profile (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, code := parserFor(*ver, stderr)
	if p == nil {
		return code
	}
	set := profile.NewSet()
	for _, f := range packages {
		pkg, err := profile.LoadPackage(f)
		if err != nil {
			fmt.Fprintln(stderr, "fhirgate validate:", err)
			return 1
		}
		set.AddPackage(pkg)
	}
	for _, d := range dirs {
		pkg, err := profile.LoadDir(d)
		if err != nil {
			fmt.Fprintln(stderr, "fhirgate validate:", err)
			return 1
		}
		set.AddPackage(pkg)
	}
	for _, f := range profiles {
		data, err := os.ReadFile(f)
		if err == nil {
			var sd *profile.Profile
			if sd, err = profile.Load(data); err == nil {
				set.AddProfile(sd)
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "fhirgate validate: %s: %v\n", f, err)
			return 1
		}
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "fhirgate validate: no file given")
		return 2
	}
	rc := 0
	for _, file := range fs.Args() {
		issues, err := parseFile(p, set, file, as)
		if err != nil {
			issues = []validation.Issue{{Severity: "fatal", Code: "exception", Text: err.Error()}}
		}
		if validation.HasErrors(issues) || err != nil {
			rc = 1
		}
		errs, warns := 0, 0
		for _, is := range issues {
			switch is.Severity {
			case "error", "fatal":
				errs++
			case "warning":
				warns++
			}
		}
		summary := outcome.Issue{Severity: "information", Code: "informational",
			Text: fmt.Sprintf("%s: %d errors, %d warnings", file, errs, warns)}
		stdout.Write(append(outcome.Outcome{Issues: append([]outcome.Issue{summary}, toOutcome(issues)...)}.JSON(), '\n'))
	}
	return rc
}

// convert prints a resource in the other format; on invalid input it
// prints an OperationOutcome on stderr and exits 1.
func convert(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ver := fs.String("version", "", "FHIR version: stu3 or r4 (required)")
	to := fs.String("to", "", "output format: json or xml (required)")
	force := fs.Bool("force", false, "convert whatever parses although it is invalid: the issues go to stderr and the exit code is 2")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	p, code := parserFor(*ver, stderr)
	if p == nil {
		return code
	}
	if fs.NArg() != 1 || (*to != "json" && *to != "xml") {
		fmt.Fprintln(stderr, "usage: fhirgate convert --version stu3|r4 --to json|xml FILE")
		return 2
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var jsonData []byte
	var issues []validation.Issue
	if isXML(fs.Arg(0), data) {
		_, jsonData, issues = p.ParseXML(data)
	} else {
		jsonData = data
		_, issues = p.ParseJSON(data)
	}
	forced := false
	if validation.HasErrors(issues) {
		stderr.Write(append(outcome.Outcome{Issues: toOutcome(issues)}.JSON(), '\n'))
		if !*force {
			return 1
		}
		if jsonData == nil && isXML(fs.Arg(0), data) {
			// The XML codec refused part of the document: take what it
			// converted.
			v, _ := validation.ParseVersion(*ver)
			jsonData, _ = fhirxml.ToJSONPartial(v, data)
		}
		if jsonData == nil || !json.Valid(jsonData) {
			fmt.Fprintln(stderr, "fhirgate: nothing could be converted")
			return 1
		}
		forced = true
	}
	out := jsonData
	if *to == "xml" {
		v, _ := validation.ParseVersion(*ver)
		if out, err = fhirxml.ToXML(v, jsonData); err != nil {
			stderr.Write(append(outcome.Outcome{Issues: []outcome.Issue{{Code: "structure", Text: err.Error()}}}.JSON(), '\n'))
			return 1
		}
	} else {
		var b bytes.Buffer
		if json.Indent(&b, jsonData, "", "  ") == nil {
			out = b.Bytes()
		}
	}
	stdout.Write(append(out, '\n'))
	if forced {
		return 2
	}
	return 0
}

func parserFor(ver string, stderr io.Writer) (*validation.Parser, int) {
	v, err := validation.ParseVersion(ver)
	if err != nil {
		fmt.Fprintln(stderr, "fhirgate: --version stu3|r4 is required")
		return nil, 2
	}
	p, err := validation.NewParser(v)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, 1
	}
	return p, 0
}

// parseFile parses and base-validates a file, then checks the profiles it
// declares (or those of --as) when it could be read.
func parseFile(p *validation.Parser, set *profile.Set, file string, as []string) ([]validation.Issue, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var issues []validation.Issue
	jsonData := data
	var res any
	if isXML(file, data) {
		res, jsonData, issues = p.ParseXML(data)
	} else {
		res, issues = p.ParseJSON(data)
	}
	if res == nil || jsonData == nil {
		return issues, nil
	}
	return append(issues, validation.ValidateProfiles(set, jsonData, as)...), nil
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// isXML decides the input format: by extension, else by the first byte.
func isXML(file string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".xml":
		return true
	case ".json":
		return false
	}
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte("<"))
}

func toOutcome(issues []validation.Issue) []outcome.Issue {
	out := make([]outcome.Issue, 0, len(issues))
	for _, is := range issues {
		oi := outcome.Issue{Severity: is.Severity, Code: is.Code, Text: is.Text, Diagnostics: is.Diagnostics}
		if is.Expression != "" {
			oi.Expression = []string{is.Expression}
		}
		out = append(out, oi)
	}
	return out
}
