package pipeline

import (
	"net/http"
	"testing"
)

// redactedQuery lists every parameter name, values redacted but
// _format's, in the order of the "name=value" pairs.
func TestRedactedQuery(t *testing.T) {
	cases := []struct{ raw, want string }{
		{"", ""},
		{"ac=secret", "ac=REDACTED"},
		{"_format=json&secret=x&ac=y", "_format=json&ac=REDACTED&secret=REDACTED"},
		{"a=1&a-b=2&a_b=3&a=4", "a-b=REDACTED&a=REDACTED&a_b=REDACTED"},
		{"b=1&a=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10", "a=REDACTED&b=REDACTED&c=REDACTED&d=REDACTED&e=REDACTED&f=REDACTED&g=REDACTED&h=REDACTED&i=REDACTED&j=REDACTED"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest(http.MethodGet, "http://x/Task?"+c.raw, nil)
		if got := redactedQuery(&Exchange{r: r}); got != c.want {
			t.Errorf("%q → %q, want %q", c.raw, got, c.want)
		}
	}
}
