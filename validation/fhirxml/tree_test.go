package fhirxml

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/validation/jsontree"
)

// treeDepth is the nesting limit the validator decodes JSON with.
const treeDepth = 64

// treeAgrees holds Tree to decoding ToJSON's text: a tree Tree gives is
// the decoded one; a document whose text converts and decodes without a
// doubt (no error, no name twice, no U+FFFD for bytes that are not UTF-8,
// within the depth) is one Tree gives; with avoid, a document whose text
// holds it is declined. It reports whether Tree gave a tree.
func treeAgrees(t *testing.T, v Version, data []byte, avoid string) bool {
	t.Helper()
	tree, ok := Tree(v, data, treeDepth, avoid)
	j, err := ToJSON(v, data)
	var decoded map[string]any
	var derr error = jsontree.ErrSyntax
	if err == nil {
		decoded, derr = jsontree.DecodeObjectUnique(j, treeDepth)
	}
	if ok {
		if err != nil || derr != nil {
			t.Fatalf("Tree gave a tree; ToJSON %v, decoding %v\n%s", err, derr, data)
		}
		if !reflect.DeepEqual(tree, decoded) {
			t.Fatalf("Tree and decoded ToJSON differ\nxml  %s\njson %s\ntree %#v", data, j, tree)
		}
		if avoid != "" && bytes.Contains(j, []byte(avoid)) {
			t.Fatalf("Tree gave a tree whose text holds %q\n%s", avoid, j)
		}
		return true
	}
	if _, scanned := scanXML(data); scanned && err == nil && derr == nil && !bytes.Contains(j, []byte(`\ufffd`)) &&
		(avoid == "" || !bytes.Contains(j, []byte(avoid))) {
		t.Fatalf("Tree declined a document that converts and decodes\n%s\n%s", data, j)
	}
	return false
}

// xmlFixtures is every XML document under the shared fixtures and the
// project's own bench bodies; the test is skipped when the shared
// fixtures are not beside the checkout.
func xmlFixtures(t *testing.T) []string {
	var files []string
	filepath.WalkDir("../../../shared/fixtures", func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".xml") {
			files = append(files, p)
		}
		return nil
	})
	own, _ := filepath.Glob("../../test/bench/testdata/*.xml")
	files = append(files, own...)
	if len(files) < 50 {
		t.Skipf("only %d XML fixtures (../shared beside the checkout?)", len(files))
	}
	return files
}

// TestTreeAgrees: over every XML fixture in both versions, as given and
// mutated (invalid values, ids on extensions and on primitives, a name
// given twice, bytes that are not UTF-8), Tree agrees with decoding
// ToJSON, and gives a tree for most of them.
func TestTreeAgrees(t *testing.T) {
	files := xmlFixtures(t)
	mutations := []func([]byte) []byte{
		func(b []byte) []byte { return b },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`value="`), []byte(`value="x`), 3) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`<extension`), []byte(`<extension id="e1"`), 2) },
		func(b []byte) []byte { return bytes.Replace(b, []byte(`<id value`), []byte(`<id id="i" value`), 1) },
		func(b []byte) []byte {
			return bytes.Replace(b, []byte(`<extension url="`), []byte(`<extension url="a" url="`), 1)
		},
		func(b []byte) []byte { return bytes.Replace(b, []byte(`value="`), []byte("value=\"\xff"), 1) },
	}
	gave, total := 0, 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []Version{STU3, R4} {
			for _, m := range mutations {
				total++
				if treeAgrees(t, v, m(data), "") {
					gave++
				}
				treeAgrees(t, v, m(data), "Parameters")
			}
		}
	}
	t.Logf("%d files: Tree gave %d trees of %d conversions", len(files), gave, total)
	if gave < total/3 {
		t.Errorf("Tree gave only %d trees of %d conversions", gave, total)
	}
}

// TestTreeDeclines: the documents Tree must leave to ToJSON.
func TestTreeDeclines(t *testing.T) {
	const task = `<Task xmlns="http://hl7.org/fhir">%s<status value="ready"/><intent value="order"/></Task>`
	for _, c := range []struct{ name, xml, avoid string }{
		{"unknown element", strings.Replace(task, "%s", `<nope value="x"/>`, 1), ""},
		{"invalid boolean", `<Patient xmlns="http://hl7.org/fhir"><active value="yes"/></Patient>`, ""},
		{"not UTF-8", strings.Replace(task, "%s", "<id value=\"a\xffb\"/>", 1), ""},
		{"avoided string", strings.Replace(task, "%s", `<id value="Parameters"/>`, 1), "Parameters"},
		{"avoided name", `<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="a"/></parameter></Parameters>`, "Parameters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, ok := Tree(R4, []byte(c.xml), treeDepth, c.avoid); ok {
				t.Errorf("Tree gave a tree for %s", c.xml)
			}
			treeAgrees(t, R4, []byte(c.xml), c.avoid)
		})
	}
	deep := `<Patient xmlns="http://hl7.org/fhir"><extension url="u">` + strings.Repeat(`<extension url="u">`, 40) +
		`<valueString value="v"/>` + strings.Repeat(`</extension>`, 41) + `</Patient>`
	if _, ok := Tree(R4, []byte(deep), treeDepth, ""); ok {
		t.Error("Tree gave a tree deeper than the limit")
	}
	treeAgrees(t, R4, []byte(deep), "")
}

// FuzzTreeAgrees: any XML, either version, with and without a string to
// avoid: Tree agrees with decoding ToJSON (treeAgrees).
func FuzzTreeAgrees(f *testing.F) {
	for _, file := range []string{"../../test/bench/testdata/twiin-02-cancellation.xml", filepath.Join(officialExamples, "r4/xml/task-example1.xml")} {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data, true, false)
		}
	}
	f.Add([]byte(`<Patient xmlns="http://hl7.org/fhir"><name><given value="a"/><given id="x"><extension url="u"><valueString value="v"/></extension></given></name></Patient>`), false, false)
	f.Add([]byte(`<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="p"/><valueDecimal value="1.50"/></parameter></Parameters>`), true, true)
	f.Fuzz(func(t *testing.T, data []byte, r4, avoid bool) {
		v := STU3
		if r4 {
			v = R4
		}
		a := ""
		if avoid {
			a = "Parameters"
		}
		treeAgrees(t, v, data, a)
	})
}
