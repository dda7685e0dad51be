package fhirxml

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// scanAgrees fails when scanXML takes a document parseXML refuses or reads
// differently.
func scanAgrees(t *testing.T, data []byte) (scanned bool) {
	t.Helper()
	fast, ok := scanXML(data)
	if !ok {
		return false
	}
	slow, err := parseXML(data)
	if err != nil {
		t.Fatalf("scanXML took what parseXML refuses (%v):\n%s", err, data)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("trees differ for\n%s", data)
	}
	return true
}

// Every XML document of the shared fixtures and the project's own: those
// scanXML takes, it reads as parseXML does; the Twiin requests (the hot
// path) are among those it takes.
func TestScanAgreesOnFixtures(t *testing.T) {
	files := xmlFixtures(t)
	scanned := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if scanAgrees(t, data) {
			scanned++
		}
	}
	own, _ := filepath.Glob("../../test/bench/testdata/*.xml")
	for _, f := range own {
		data, _ := os.ReadFile(f)
		if _, ok := scanXML(data); !ok {
			t.Errorf("%s: the benchmark's request takes the slow path", f)
		}
	}
	t.Logf("%d of %d XML documents scanned, all as parseXML reads them", scanned, len(files))
	if scanned == 0 {
		t.Fatal("scanXML took no document: the comparison proves nothing")
	}
}

func TestScanDeclines(t *testing.T) {
	const task = `<Task xmlns="http://hl7.org/fhir"><status value="ready"/></Task>`
	if _, ok := scanXML([]byte(task)); !ok {
		t.Fatal("the plain Task must be scanned")
	}
	for name, doc := range map[string]string{
		"doctype":             `<!DOCTYPE Task><Task xmlns="http://hl7.org/fhir"/>`,
		"character reference": `<Task xmlns="http://hl7.org/fhir"><status value="&#114;eady"/></Task>`,
		"unknown entity":      `<Task xmlns="http://hl7.org/fhir"><status value="&nbsp;"/></Task>`,
		"text content":        `<Task xmlns="http://hl7.org/fhir"><status>ready</status></Task>`,
		"cdata":               `<Task xmlns="http://hl7.org/fhir"><![CDATA[x]]></Task>`,
		"prefixed element":    `<f:Task xmlns:f="http://hl7.org/fhir"/>`,
		"other namespace":     `<Task xmlns="urn:other"/>`,
		"no namespace":        `<Task/>`,
		"narrative":           `<Task xmlns="http://hl7.org/fhir"><text><div xmlns="http://www.w3.org/1999/xhtml">x</div></text></Task>`,
		"mismatched end":      `<Task xmlns="http://hl7.org/fhir"><status value="ready"></Task>`,
		"unclosed":            `<Task xmlns="http://hl7.org/fhir">`,
		"two roots":           task + task,
		"empty attribute":     `<Task xmlns="http://hl7.org/fhir"><status value=""/></Task>`,
		"duplicate attribute": `<Task xmlns="http://hl7.org/fhir"><status value="a" value="b"/></Task>`,
		"line break in value": "<Task xmlns=\"http://hl7.org/fhir\"><status value=\"a\nb\"/></Task>",
		"control character":   "<Task xmlns=\"http://hl7.org/fhir\"><status value=\"a\x01\"/></Task>",
		"invalid UTF-8":       "<Task xmlns=\"http://hl7.org/fhir\"><status value=\"a\xff\"/></Task>",
		"double hyphen":       `<Task xmlns="http://hl7.org/fhir"><!-- a -- b --></Task>`,
		"other declaration":   `<?xml version="1.0" encoding="ISO-8859-1"?>` + task,
		"xml:lang":            `<Task xmlns="http://hl7.org/fhir" xml:lang="de"/>`,
		"processing":          task + `<?pi x?>`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, ok := scanXML([]byte(doc)); ok {
				t.Errorf("scanned %s", doc)
			}
			scanAgrees(t, []byte(doc))
		})
	}
}

func FuzzScanAgrees(f *testing.F) {
	own, _ := filepath.Glob("../../test/bench/testdata/*.xml")
	for _, file := range append(own, filepath.Join(officialExamples, "r4/xml/task-example1.xml")) {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`<?xml version="1.0" encoding="UTF-8"?><Task xmlns="http://hl7.org/fhir"><!-- c --><status value="a &amp; &lt;b&gt; &quot;c&quot; &apos;"/> </Task>`))
	f.Add([]byte(`<Task xmlns="http://hl7.org/fhir" xmlns:x="urn:x"><a b = 'v' c="é"></a ></Task>`))
	f.Fuzz(func(t *testing.T, data []byte) { scanAgrees(t, data) })
}
