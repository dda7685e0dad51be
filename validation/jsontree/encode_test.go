package jsontree

import (
	"bytes"
	"encoding/json"
	"testing"
)

// encodingJSON is encoding/json's quoting of s.
func encodingJSON(s string, escapeHTML bool) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "<a & b>", "\n\r\t\b\f\x00\x1f", "é\u2028\u2029😀", "\xff\xfe", "a\xc3"} {
		for _, html := range []bool{true, false} {
			if got, want := AppendString(nil, s, html), encodingJSON(s, html); !bytes.Equal(got, want) {
				t.Errorf("AppendString(%q, html=%v) = %s, encoding/json: %s", s, html, got, want)
			}
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("<a href=\"x\">&amp;</a>\u2028\xff\x01", true)
	f.Fuzz(func(t *testing.T, s string, html bool) {
		if got, want := AppendString([]byte("prefix"), s, html), append([]byte("prefix"), encodingJSON(s, html)...); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q, html=%v) = %s, encoding/json: %s", s, html, got, want)
		}
	})
}
