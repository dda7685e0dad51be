package backend

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
)

func resp(ct, body string) *Response {
	h := http.Header{}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	return &Response{Status: 200, Header: h, Body: []byte(body)}
}

func TestField(t *testing.T) {
	j := resp("application/json", `{"error":"TASK_STATE","state":"in-progress","n":12.50,"ok":true,"nil":null,"items":[{"code":"A"},{"code":"B"}],"obj":{"x":{"y":"deep"}}}`)
	x := resp("text/xml; charset=iso-8859-1", `<?xml version="1.0"?><rxresult version="2"><rc> E_STATE </rc><task status="ready"/><a><b>1</b><b>2</b></a></rxresult>`)
	sniffed := resp("", `  <r><c>v</c></r>`)
	cases := []struct {
		r      *Response
		path   string
		want   string
		wantOK bool
	}{
		{j, "error", "TASK_STATE", true},
		{j, "state", "in-progress", true},
		{j, "n", "12.50", true},
		{j, "ok", "true", true},
		{j, "nil", "", false},
		{j, "items.1.code", "B", true},
		{j, "items.5.code", "", false},
		{j, "obj.x.y", "deep", true},
		{j, "obj", "", false},
		{j, "missing", "", false},
		{x, "rc", "E_STATE", true},
		{x, "task.@status", "ready", true},
		{x, "task.@other", "", false},
		{x, "@version", "2", true}, // an attribute of the root element itself
		{x, "a.b", "1", true},
		{x, "rxresult", "", false},
		{sniffed, "c", "v", true},
		{resp("text/plain", "not a body"), "x", "", false},
		{resp("application/json", "{broken"), "x", "", false},
	}
	for _, c := range cases {
		got, ok := c.r.Field(c.path)
		if got != c.want || ok != c.wantOK {
			t.Errorf("%s: got %q %v, want %q %v", c.path, got, ok, c.want, c.wantOK)
		}
	}
}

// Hostile XML answers yield no fields rather than work or a crash.
func TestFieldRefusesHostileXML(t *testing.T) {
	bomb := `<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><r><c>&b;</c></r>`
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	wide := "<r>" + strings.Repeat("<c/>", maxXMLElements+1) + "</r>"
	for name, body := range map[string]string{"entities": bomb, "deep": deep, "wide": wide, "two roots": "<a/><b/>"} {
		if _, ok := resp("application/xml", body).Field("c"); ok {
			t.Errorf("%s: field found", name)
		}
	}
}

func TestEncodeBody(t *testing.T) {
	fields := []Field{{Name: "b.y", Value: "2"}, {Name: "a", Value: "x&<"}, {Name: "b.x", Value: "1"}}
	if got, ct := EncodeBody("json", "", append([]Field(nil), fields...)); string(got) != `{"a":"x\u0026\u003c","b":{"x":"1","y":"2"}}` || ct != "application/json" {
		t.Errorf("json: %s %s", got, ct)
	}
	if got, ct := EncodeBody("form", "", append([]Field(nil), fields...)); string(got) != "a=x%26%3C&b.x=1&b.y=2" || ct != "application/x-www-form-urlencoded" {
		t.Errorf("form: %s %s", got, ct)
	}
	if got, _ := EncodeBody("xml", "req", append([]Field(nil), fields...)); string(got) != `<?xml version="1.0" encoding="UTF-8"?><req><a>x&amp;&lt;</a><b><x>1</x><y>2</y></b></req>` {
		t.Errorf("xml: %s", got)
	}
	list := []Field{{Name: "r.read", IsList: true, Values: []string{"Observation/1", "Patient/2"}}, {Name: "a", Value: "1"}, {Name: "none", IsList: true, Values: []string{}}}
	if got, _ := EncodeBody("json", "", append([]Field(nil), list...)); string(got) != `{"a":"1","none":[],"r":{"read":["Observation/1","Patient/2"]}}` {
		t.Errorf("json list: %s", got)
	}
	if got, _ := EncodeBody("form", "", append([]Field(nil), list...)); string(got) != "a=1&r.read=Observation%2F1&r.read=Patient%2F2" {
		t.Errorf("form list: %s", got)
	}
	if got, _ := EncodeBody("xml", "q", append([]Field(nil), list...)); string(got) != `<?xml version="1.0" encoding="UTF-8"?><q><a>1</a><r><read>Observation/1</read><read>Patient/2</read></r></q>` {
		t.Errorf("xml list: %s", got)
	}
}

// FuzzField: any body and path, either content type: no panic.
func FuzzField(f *testing.F) {
	f.Add("application/json", `{"a":[{"b":"c"}]}`, "a.0.b")
	f.Add("text/xml", `<r x="1"><a>t</a></r>`, "a")
	f.Add("", `<r><!DOCTYPE x></r>`, "@x")
	f.Fuzz(func(t *testing.T, ct, body, path string) {
		resp(ct, body).Field(path)
	})
}

func TestFieldDeclaredOtherTypeHasNoFields(t *testing.T) {
	if _, ok := resp("text/html", `<html><ok>true</ok></html>`).Field("ok"); ok {
		t.Error("an HTML page yielded a field")
	}
	if v, ok := resp("text/plain; charset=utf-8", `{"ok":"yes"}`).Field("ok"); !ok || v != "yes" {
		t.Error("text/plain JSON not sniffed")
	}
}

// encodeJSONReference is the same tree through encoding/json, the
// encoding EncodeBody had before it wrote JSON by hand.
func encodeJSONReference(fields []Field) []byte {
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].Name < fields[j].Name })
	data, _ := json.Marshal(jsonTree(fields))
	return data
}

// fuzzFields are the fields of the encoders' fuzz targets: two named
// values, or a value and a list holding both values.
func fuzzFields(n1, v1, n2, v2 string, list bool) []Field {
	fields := []Field{{Name: n1, Value: v1}, {Name: n2, Value: v2}}
	if list {
		fields[1] = Field{Name: n2, IsList: true, Values: []string{v1, v2}}
	}
	return fields
}

// FuzzEncodeJSON: the hand-written JSON is byte for byte encoding/json's,
// for any names (dotted, conflicting) and values (any bytes).
func FuzzEncodeJSON(f *testing.F) {
	f.Add("a.b", "x<&>\"\\\u2028\x01\xff", "a", "v", true)
	f.Add("r.read", "Observation/1", "r", "\t\n\r\b\f", false)
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string, list bool) {
		fields := fuzzFields(n1, v1, n2, v2, list)
		want := encodeJSONReference(append([]Field(nil), fields...))
		got, _ := EncodeBody("json", "", append([]Field(nil), fields...))
		if string(got) != string(want) {
			t.Fatalf("fields %+v:\n got %s\nwant %s", fields, got, want)
		}
	})
}

// FuzzEncodeForm: the form body is byte for byte url.Values.Encode's of
// the same fields, for any names (repeated, empty) and values (any bytes).
func FuzzEncodeForm(f *testing.F) {
	f.Add("ac", "7 7&=+%", "ac", "x", true)
	f.Add("b", "\x00\xff", "a", "", false)
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string, list bool) {
		fields := fuzzFields(n1, v1, n2, v2, list)
		want := url.Values{}
		for _, f := range fields {
			f.each(func(v string) { want.Add(f.Name, v) })
		}
		got, _ := EncodeBody("form", "", append([]Field(nil), fields...))
		if string(got) != want.Encode() {
			t.Fatalf("fields %+v:\n got %s\nwant %s", fields, got, want.Encode())
		}
	})
}

func BenchmarkEncodeBodyJSON(b *testing.B) {
	fields := []Field{{Name: "actorRole", Value: "prescriber"}, {Name: "actorId", Value: "1-BENCH"}, {Name: "accessCode", Value: strings.Repeat("7", 64)},
		{Name: "match.system", Value: "https://tools.ietf.org/html/rfc4122"}, {Name: "match.value", Value: "0f5f7c1e-8c2d-4a3b-9a51-2e6b5b0d7f11"},
		{Name: "read", IsList: true, Values: []string{"Observation/123"}}}
	b.Run("by hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			EncodeBody("json", "", append([]Field(nil), fields...))
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeJSONReference(append([]Field(nil), fields...))
		}
	})
}

// TestEncodeJSONManyFields holds the one-pass JSON writer to the
// reference on every combination of up to four names from a set that
// nests, shares prefixes, sorts differently by segment than by string
// ("a-b" against "a.b") and collides ("a" beside "a.b", duplicates).
func TestEncodeJSONManyFields(t *testing.T) {
	names := []string{"a", "b", "a.b", "a.c", "a-b", "a.b.c", "b.a", "a.b-c", "ab", ""}
	var n int
	var walk func(fields []Field)
	walk = func(fields []Field) {
		if len(fields) > 0 {
			n++
			want := encodeJSONReference(append([]Field(nil), fields...))
			got, _ := EncodeBody("json", "", append([]Field(nil), fields...))
			if string(got) != string(want) {
				t.Fatalf("fields %+v:\n got %s\nwant %s", fields, got, want)
			}
		}
		if len(fields) == 4 {
			return
		}
		for i, name := range names {
			f := Field{Name: name, Value: fmt.Sprint(len(fields), i)}
			if i%3 == 0 {
				f = Field{Name: name, IsList: true, Values: []string{"x", fmt.Sprint(i)}}
			}
			walk(append(fields, f))
		}
	}
	walk(nil)
	t.Logf("%d field lists", n)
}
