package fhirxml

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// officialExamples is where the shared fixtures keep the specification's
// examples as JSON/XML pairs (see its README for the known differences).
const officialExamples = "../../../shared/fixtures/official-examples"

func pairs(t *testing.T, dir string) []string {
	files, _ := filepath.Glob(filepath.Join(officialExamples, dir, "json", "*.json"))
	if len(files) == 0 {
		files, _ = filepath.Glob(filepath.Join(officialExamples, dir, "*.json"))
	}
	if len(files) == 0 {
		t.Skipf("no official examples under %s (../shared beside the checkout)", officialExamples)
	}
	var bases []string
	for _, f := range files {
		bases = append(bases, strings.TrimSuffix(f, ".json"))
	}
	return bases
}

func xmlFileFor(base string) string {
	x := base + ".xml"
	if _, err := os.Stat(x); err == nil {
		return x
	}
	return strings.Replace(base, string(filepath.Separator)+"json"+string(filepath.Separator), string(filepath.Separator)+"xml"+string(filepath.Separator), 1) + ".xml"
}

// TestOfficialExamples: XML→JSON equals the official JSON and JSON→XML
// equals the official XML, for every pair of both versions.
func TestOfficialExamples(t *testing.T) {
	for _, vc := range []struct {
		dir string
		v   Version
	}{{"stu3", STU3}, {"r4", R4}} {
		bases := pairs(t, vc.dir)
		t.Logf("%s: %d pairs", vc.dir, len(bases))
		for _, base := range bases {
			name := vc.dir + "/" + filepath.Base(base)
			jsonData, err1 := os.ReadFile(base + ".json")
			xmlData, err2 := os.ReadFile(xmlFileFor(base))
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: %v %v", name, err1, err2)
			}
			t.Run(name+"/xml→json", func(t *testing.T) {
				got, err := ToJSON(vc.v, xmlData)
				if err != nil {
					t.Fatalf("ToJSON: %v", err)
				}
				if d := diffJSON(normJSON(t, got, vc.v), normJSON(t, jsonData, vc.v), ""); d != "" {
					t.Errorf("differs from the official JSON: %s", d)
				}
			})
			t.Run(name+"/json→xml", func(t *testing.T) {
				got, err := ToXML(vc.v, jsonData)
				if err != nil {
					t.Fatalf("ToXML: %v", err)
				}
				g, w := normXML(t, got, vc.v), normXML(t, xmlData, vc.v)
				if g != w {
					t.Errorf("differs from the official XML:\n%s", firstDiff(g, w))
				}
			})
		}
	}
}

// normJSON decodes JSON keeping numbers' digits, drops fhir_comments, the
// R4 test-data marker, and canonicalises narrative divs.
func normJSON(t *testing.T, data []byte, v Version) any {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	return normValue(x, "")
}

func normValue(x any, key string) any {
	switch v := x.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, val := range v {
			if k == "fhir_comments" || k == "_fhir_comments" {
				continue
			}
			n := normValue(val, k)
			if (k == "security" || k == "tag") && isArray(n) {
				n = dropHTEST(n.([]any))
				if len(n.([]any)) == 0 {
					continue
				}
			}
			out[k] = n
		}
		if m, ok := out["meta"].(map[string]any); ok && len(m) == 0 {
			delete(out, "meta")
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = normValue(v[i], key)
		}
		return out
	case string:
		if key == "div" {
			return canonicalXHTML(v)
		}
	case json.Number:
		// The two builds of the specification write some decimals with
		// different trailing zeros (60.0 / 60.00); the pair is compared by
		// value here, and TestExactDigits checks the codec keeps digits.
		if r, ok := new(big.Rat).SetString(v.String()); ok {
			return r.RatString()
		}
	}
	return x
}

func isArray(x any) bool { _, ok := x.([]any); return ok }

func dropHTEST(arr []any) []any {
	var out []any
	for _, c := range arr {
		if m, ok := c.(map[string]any); ok && m["code"] == "HTEST" {
			continue
		}
		out = append(out, c)
	}
	return out
}

func diffJSON(got, want any, path string) string {
	if reflect.DeepEqual(got, want) {
		return ""
	}
	gm, ok1 := got.(map[string]any)
	wm, ok2 := want.(map[string]any)
	if ok1 && ok2 {
		keys := map[string]bool{}
		for k := range gm {
			keys[k] = true
		}
		for k := range wm {
			keys[k] = true
		}
		var ks []string
		for k := range keys {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			if d := diffJSON(gm[k], wm[k], path+"."+k); d != "" {
				return d
			}
		}
	}
	ga, ok1 := got.([]any)
	wa, ok2 := want.([]any)
	if ok1 && ok2 && len(ga) == len(wa) {
		for i := range ga {
			if d := diffJSON(ga[i], wa[i], fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	return fmt.Sprintf("at %s: got %.300s, want %.300s", path, g, w)
}

// normXML renders an XML document as one line per element: name, sorted
// attributes; comments and whitespace dropped, divs canonicalised, the R4
// test-data marker dropped.
func normXML(t *testing.T, data []byte, v Version) string { return normXMLWith(t, data, false) }

// normXMLWith is normXML; exact keeps decimals as written.
func normXMLWith(t *testing.T, data []byte, exact bool) string {
	dec := xml.NewDecoder(bytes.NewReader(data))
	var b strings.Builder
	depth := 0
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("XML: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			if x.Name.Local == "div" && x.Name.Space == XHTMLNamespace {
				dec.Skip()
				fmt.Fprintf(&b, "%*sdiv %s\n", depth, "", canonicalXHTML(string(data[start:dec.InputOffset()])))
				continue
			}
			var attrs []string
			for _, a := range x.Attr {
				if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
					continue
				}
				val := a.Value
				if r, ok := new(big.Rat).SetString(val); ok && !exact && a.Name.Local == "value" && decimalRe.MatchString(val) {
					val = r.RatString() // see normValue
				}
				attrs = append(attrs, a.Name.Local+"="+val)
			}
			sort.Strings(attrs)
			fmt.Fprintf(&b, "%*s%s %s\n", depth, "", x.Name.Local, strings.Join(attrs, " "))
			depth++
		case xml.EndElement:
			depth--
		}
	}
	return dropHTESTLines(b.String())
}

// dropHTESTLines removes a meta.security or meta.tag coding whose code is
// HTEST (with its system and display lines).
func dropHTESTLines(s string) string {
	lines := strings.Split(s, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "security" || l == "tag" {
			j := i + 1
			block := []string{}
			indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
			for j < len(lines) && len(lines[j])-len(strings.TrimLeft(lines[j], " ")) > indent {
				block = append(block, lines[j])
				j++
			}
			if strings.Contains(strings.Join(block, "\n"), "value=HTEST") {
				i = j - 1
				continue
			}
		}
		out = append(out, lines[i])
	}
	// A meta that held only the marker is empty now: drop it.
	var kept []string
	for i, l := range out {
		if strings.TrimSpace(l) == "meta" {
			indent := len(l) - len(strings.TrimLeft(l, " "))
			if i+1 >= len(out) || len(out[i+1])-len(strings.TrimLeft(out[i+1], " ")) <= indent {
				continue
			}
		}
		kept = append(kept, l)
	}
	return strings.Join(kept, "\n")
}

// canonicalXHTML reduces XHTML to its elements, sorted attributes (no
// namespace declarations) and whitespace-collapsed text.
func canonicalXHTML(s string) string {
	dec := xml.NewDecoder(strings.NewReader(s))
	dec.Strict = false
	dec.Entity = xml.HTMLEntity
	var b strings.Builder
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch x := tok.(type) {
		case xml.StartElement:
			var attrs []string
			for _, a := range x.Attr {
				if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
					continue
				}
				attrs = append(attrs, a.Name.Local+"="+a.Value)
			}
			sort.Strings(attrs)
			b.WriteString("<" + x.Name.Local + " " + strings.Join(attrs, " ") + ">")
		case xml.EndElement:
			b.WriteString("</" + x.Name.Local + ">")
		case xml.CharData:
			if f := strings.Join(strings.Fields(string(x)), " "); f != "" {
				b.WriteString(f)
			}
		}
	}
	return b.String()
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got: %.200s\nwant: %.200s", i+1, gl, wl)
		}
	}
	return ""
}

// TestSharedFixturePairs: every other resource under ../shared/fixtures
// that exists in both formats converts either way without semantic change.
func TestSharedFixturePairs(t *testing.T) {
	const fx = "../../../shared/fixtures/"
	pairs := [][2]string{
		{"twiin/mgraauw-TA-Notified-Pull-Proposed-IG/output/Task-NewTask.json", "twiin/mgraauw-TA-Notified-Pull-Proposed-IG/output/Task-NewTask.xml"},
		{"twiin/mgraauw-TA-Notified-Pull-Proposed-IG/output/Task-CancelTask.json", "twiin/mgraauw-TA-Notified-Pull-Proposed-IG/output/Task-CancelTask.xml"},
		{"twiin/mgraauw-TA-Notified-Pull-Proposed-IG/output/StructureDefinition-tanp-task.json", "twiin/mgraauw-TA-Notified-Pull-Proposed-IG/output/StructureDefinition-tanp-task.xml"},
		{"twiin/mgraauw-TA-Notified-Pull-Proposed-IG/output/StructureDefinition-tanp-canceltask.json", "twiin/mgraauw-TA-Notified-Pull-Proposed-IG/output/StructureDefinition-tanp-canceltask.xml"},
		{"erezept/fhir-profiles-erp_1.6.4/OperationOutcome-ExampleOperationAbortErrorAVS.json", "erezept/eRezept-Examples_workflow-1.4.3_xml/OperationOutcome-ExampleOperationAbortErrorAVS.xml"},
		{"erezept/fhir-profiles-erp_1.6.4/OperationOutcome-ExampleOperationAbortErrorPVS.json", "erezept/eRezept-Examples_workflow-1.4.3_xml/OperationOutcome-ExampleOperationAbortErrorPVS.xml"},
	}
	for _, p := range pairs {
		t.Run(filepath.Base(p[0]), func(t *testing.T) {
			j, err1 := os.ReadFile(fx + p[0])
			x, err2 := os.ReadFile(fx + p[1])
			if err1 != nil || err2 != nil {
				t.Skip("fixtures not found")
			}
			got, err := ToJSON(R4, x)
			if err != nil {
				t.Fatalf("ToJSON: %v", err)
			}
			if d := diffJSON(normJSON(t, got, R4), normJSON(t, j, R4), ""); d != "" {
				t.Errorf("XML→JSON differs: %s", d)
			}
			gx, err := ToXML(R4, j)
			if err != nil {
				t.Fatalf("ToXML: %v", err)
			}
			if g, w := normXML(t, gx, R4), normXML(t, x, R4); g != w {
				t.Errorf("JSON→XML differs:\n%s", firstDiff(g, w))
			}
		})
	}
}
