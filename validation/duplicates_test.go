package validation

import (
	"strconv"
	"strings"
	"testing"
)

func TestDuplicateKeyIssues(t *testing.T) {
	many := `{"resourceType":"Task"` + strings.Repeat(`,"x":{}`, 1) + func() string {
		var b strings.Builder
		for i := 0; i < 100; i++ {
			b.WriteString(`,"k` + strings.Repeat("a", i) + `":1`)
		}
		return b.String()
	}()
	cases := []struct {
		name, json, expr string
	}{
		{"none", `{"resourceType":"Task","status":"requested","intent":"order","input":[{"type":{"text":"a"}},{"type":{"text":"a"}}]}`, ""},
		{"root", `{"resourceType":"Task","status":"requested","status":"cancelled"}`, "Task.status"},
		{"nested", `{"resourceType":"Task","for":{"identifier":{"value":"1","value":"2"}}}`, "Task.for.identifier.value"},
		{"in an array element", `{"resourceType":"Task","input":[{"valueString":"a"},{"valueString":"a","valueString":"b"}]}`, "Task.input.valueString"},
		{"escaped spelling", `{"resourceType":"Task","status":"requested","st\u0061tus":"cancelled"}`, "Task.status"},
		{"same name in sibling objects is fine", `{"resourceType":"Task","a":{"v":1},"b":{"v":1}}`, ""},
		{"strings with braces and quotes", `{"resourceType":"Task","note":[{"text":"{\"status\":1,\"status\":2}"}]}`, ""},
		{"many names, then a duplicate", many + `,"kaaa":2}`, "Task.kaaa"},
		{"many names, no duplicate", many + `}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			issues := duplicateKeyIssues([]byte(c.json))
			switch {
			case c.expr == "" && len(issues) > 0:
				t.Errorf("unexpected %+v", issues)
			case c.expr != "" && (len(issues) != 1 || issues[0].Expression != c.expr):
				t.Errorf("got %+v, want one issue at %s", issues, c.expr)
			}
		})
	}
}

// A hostile body of one object with very many names stays linear.
func BenchmarkDuplicateKeysManyNames(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"resourceType":"Task"`)
	for i := 0; i < 50000; i++ {
		sb.WriteString(`,"k`)
		sb.WriteString(strconv.Itoa(i))
		sb.WriteString(`":1`)
	}
	data := []byte(sb.String() + "}")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		duplicateKeyIssues(data)
	}
}
