package jsontree

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// reference is encoding/json's verdict and tree for data (an object, at
// most depth levels).
func reference(data []byte) (map[string]any, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}

func depth(data []byte) int {
	d, max, in := 0, 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == '{' || c == '['):
			d++
			if d > max {
				max = d
			}
		case !in && (c == '}' || c == ']'):
			d--
		}
	}
	return max
}

func agree(t *testing.T, data []byte) {
	t.Helper()
	// DecodeFirst is encoding/json's Decoder, whatever follows the value.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var first any
	firstErr := dec.Decode(&first)
	if got, err := DecodeFirst(data); (err == nil) != (firstErr == nil) || (err == nil && !reflect.DeepEqual(got, first)) {
		t.Fatalf("DecodeFirst(%q) = %#v, %v; encoding/json's Decoder: %#v, %v", data, got, err, first, firstErr)
	}
	want, ok := reference(data)
	got, err := DecodeObject(data, 10000)
	if ok && depth(data) > 10000 {
		return
	}
	switch {
	case ok != (err == nil):
		t.Fatalf("encoding/json ok=%v, jsontree err=%v for %q", ok, err, data)
	case ok && !reflect.DeepEqual(got, want):
		t.Fatalf("trees differ for %q:\n got %#v\nwant %#v", data, got, want)
	}
	if !ok {
		return
	}
	// DecodeObjectUnique: the same tree, unless a name repeats.
	unique, uerr := DecodeObjectUnique(data, 10000)
	dup := hasDuplicateName(data)
	switch {
	case dup && uerr != ErrDuplicate:
		t.Fatalf("%q repeats a name; DecodeObjectUnique: %v", data, uerr)
	case !dup && (uerr != nil || !reflect.DeepEqual(unique, want)):
		t.Fatalf("%q repeats no name; DecodeObjectUnique: %#v, %v", data, unique, uerr)
	}
}

// hasDuplicateName reports, from encoding/json's tokens (names unescaped),
// whether an object of valid JSON gives a name twice.
func hasDuplicateName(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type level struct {
		names     map[string]bool
		expectKey bool
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.names != nil && top.expectKey {
			if name, isName := tok.(string); isName {
				if top.names[name] {
					return true
				}
				top.names[name] = true
				top.expectKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{names: map[string]bool{}, expectKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &level{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: its object expects a name next.
		if len(stack) > 0 && stack[len(stack)-1].names != nil {
			stack[len(stack)-1].expectKey = true
		}
		if len(stack) == 0 {
			return false
		}
	}
}

func TestAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		`{}`, ` {"a":1} `, `{"a":[1,2.5,-0,1e3,1E-2,true,false,null,"x"]}`, `{"a":{"b":{}}}`,
		`{"a":"\u00e9\ud83d\ude00\n\t\\\"\/"}`, `{"a":"\ud800"}`, `{"a":"\ud800\u0041"}`, `{"a":"\udc00\ud800"}`,
		"{\"a\":\"\xff\xfe\"}", `{"a":1,"a":2}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":-}`, `{"a":1e}`,
		`{"a":[1,]}`, `{"a":1,}`, `{"a" 1}`, `{"a":1}x`, `{"a":1} {}`, `[1]`, `"x"`, `{"a":"` + "\x01" + `"}`,
		`{"a":1,"b":{"a":2}}`, `{"a":{"b":1,"b":2}}`, `{"a":1,"\u0061":2}`, `{"a":[{"x":1},{"x":2,"x":3}]}`, `{"a":[{"b":[]}],"b":[{}]}`,
		`{"a":tru}`, `{"a":nul}`, `{"a":"\x"}`, `{"a":"\u12"}`, `{"a":"\u12G4"}`, "{\"a\":\"\u2028\"}", `{`, ``,
	} {
		agree(t, []byte(s))
	}
}

func TestDepthLimit(t *testing.T) {
	deep := []byte(`{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`)
	if _, err := DecodeObject(deep, 64); err == nil {
		t.Error("65 levels decoded under a limit of 64")
	}
	if _, err := DecodeObject(deep, 65); err != nil {
		t.Error(err)
	}
}

func FuzzAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"resourceType":"Task","status":"requested","input":[{"valueString":"a\u00e9"}],"n":1.5e3}`, `{"a":"\ud83d\ude00"}`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { agree(t, data) })
}

func BenchmarkDecode(b *testing.B) {
	data := []byte(`{"resourceType": "Task", "identifier": [{"system": "https://tools.ietf.org/html/rfc4122", "value": "0f5f7c1e-8c2d-4a3b-9a51-2e6b5b0d7f11"}], "status": "cancelled", "intent": "proposal", "code": {"coding": [{"system": "http://fhir.nl/fhir/NamingSystem/TaskCode", "code": "pull-notification"}]}, "for": {"identifier": {"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "172642863"}}, "authoredOn": "2026-11-20T15:01:54+01:00", "restriction": {"period": {"end": "2026-12-14T15:36:05+01:00"}}, "input": [{"type": {"coding": [{"system": "http://fhir.nl/fhir/NamingSystem/TaskParameter", "code": "authorization-base"}]}, "valueString": "ZGFhNDFjY2M"}, {"type": {"coding": [{"system": "http://fhir.nl/fhir/NamingSystem/TaskParameter", "code": "get-workflow-task"}]}, "valueBoolean": true}]}`)
	b.Run("jsontree", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			DecodeObject(data, 64)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reference(data)
		}
	})
}
