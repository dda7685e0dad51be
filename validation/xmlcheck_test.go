package validation

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/validation/fhirxml"
	"github.com/fhirgate/fhirgate/validation/profile"
)

// checkViaText is Check of an XML body as it was before the XML fast
// path: the JSON text, then the JSON fast path or jsonformat's.
func checkViaText(p *Parser, data []byte, set *profile.Set, as []string) Checked {
	j, err := fhirxml.ToJSON(p.version, data)
	if err != nil {
		return Checked{Base: xmlIssues(err)}
	}
	if c, ok := p.fastCheck(j, set, as); ok {
		return c
	}
	_, c := p.check(j, set, as, false)
	return c
}

// TestXMLCheckAgrees: Check of every XML fixture, in both versions, as
// given and with values broken, gives exactly what the text path gives —
// the resource, the base issues and the profile issues (the Twiin and
// E-Rezept profiles loaded) — and the XML fast path takes most valid ones.
func TestXMLCheckAgrees(t *testing.T) {
	var files []string
	for _, root := range []string{"../../shared/fixtures", "testdata", "../test/bench/testdata", "../test/e2e/testdata"} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".xml") {
				files = append(files, path)
			}
			return nil
		})
	}
	if len(files) < 50 {
		t.Skipf("%d XML fixtures (../shared beside the checkout?)", len(files))
	}
	set := profile.NewSet()
	for _, dir := range []string{"../profiles/twiin", "../profiles/erezept"} {
		pkg, err := profile.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		set.AddPackage(pkg)
	}
	parsers := []*Parser{mustParser(t, STU3), mustParser(t, R4)}
	fast, total := 0, 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, body := range [][]byte{data, bytes.Replace(data, []byte(`value="`), []byte(`value=" `), 2)} {
			for _, p := range parsers {
				total++
				got, want := p.Check(body, true, set, nil), checkViaText(p, body, set, nil)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s (%v): Check differs from the text path\n got %+v\nwant %+v", f, p.version, got.Base, want.Base)
				}
				if res, ok := p.xmlTree(body); ok && p.model.Accepts(res) {
					fast++
				}
			}
		}
	}
	t.Logf("%d XML documents × 2 bodies × 2 versions: %d of %d took the XML fast path", len(files), fast, total)
	if fast < total/10 {
		t.Errorf("the XML fast path took only %d of %d", fast, total)
	}
}
