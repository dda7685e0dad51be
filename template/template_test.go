package template

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

type values map[string]string

func (v values) Value(r Ref) (string, bool) {
	s, ok := v[r.String()]
	return s, ok
}

func TestRender(t *testing.T) {
	v := values{"path.id": "160.1", "query.ac": "", "header.X-AccessCode": "hdr", "role": "prescriber", "body.state": "in-progress"}
	cases := []struct{ tmpl, want string }{
		{"plain", "plain"},
		{"/x/${path.id}/y", "/x/160.1/y"},
		{"${query.ac|header.X-AccessCode}", "hdr"},
		{"${query.missing|role}", "prescriber"},
		{"${query.missing}", ""},
		{"cost $$5 ${role}", "cost $5 prescriber"},
		{"is: ${body.state}", "is: in-progress"},
		{"${ role | path.id }", "prescriber"},
	}
	for _, c := range cases {
		tm, err := Parse(c.tmpl, nil)
		if err != nil {
			t.Fatalf("%q: %v", c.tmpl, err)
		}
		if got, _ := tm.Render(v, nil); got != c.want {
			t.Errorf("%q → %q, want %q", c.tmpl, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"${", "${}", "${a|}", "$x", "a$", "${a"} {
		if _, err := Parse(s, nil); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
	_, err := Parse("${cookie.x}", func(r Ref) error {
		if r.Source == "cookie" {
			return errors.New("no cookies")
		}
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "no cookies") {
		t.Errorf("check not applied: %v", err)
	}
}

// Escaping applies to values only, never to the template's literal text.
func TestRenderEscapes(t *testing.T) {
	tm, _ := Parse("/a/${path.id}", nil)
	got, _ := tm.Render(values{"path.id": "../../b?c#d"}, func(s string) (string, error) { return url.PathEscape(s), nil })
	if got != "/a/..%2F..%2Fb%3Fc%23d" {
		t.Errorf("got %q", got)
	}
	_, err := tm.Render(values{"path.id": "x"}, func(string) (string, error) { return "", errors.New("no") })
	if !errors.Is(err, ErrRefused) {
		t.Errorf("refusal not reported: %v", err)
	}
}

// FuzzParse: Parse never panics, and a parsed template renders its literal
// text with every reference absent.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"/x/${path.id}", "$$${a|b.c}", "${", "a${b}c${d.e|f}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := Parse(s, nil)
		if err != nil {
			return
		}
		got, err := tm.Render(values{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tm.IsLiteral() && got != strings.ReplaceAll(s, "$$", "$") {
			t.Fatalf("literal %q rendered %q", s, got)
		}
	})
}
