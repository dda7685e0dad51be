package location

import "testing"

func TestString(t *testing.T) {
	cases := []struct {
		root  string
		steps []Step
		child string
		want  string
	}{
		{"", nil, "", ""},
		{"Task", nil, "", "Task"},
		{"", nil, "status", "status"},
		{"Task", []Step{{"input", 0}, {"type", -1}}, "", "Task.input[0].type"},
		{"", []Step{{"Task", -1}, {"input", 2}}, "valueString", "Task.input[2].valueString"},
		{"Bundle.entry[1].resource", []Step{{"identifier", 10}}, "", "Bundle.entry[1].resource.identifier[10]"},
		{"", []Step{{"contained", 0}}, "", "contained[0]"},
	}
	for _, c := range cases {
		if got := String(c.root, c.steps, c.child); got != c.want {
			t.Errorf("String(%q, %v, %q) = %q, want %q", c.root, c.steps, c.child, got, c.want)
		}
	}
}
