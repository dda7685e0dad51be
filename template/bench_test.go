package template

import (
	"net/url"
	"testing"
)

type mapValues map[string]string

func (m mapValues) Value(r Ref) (string, bool) {
	v, ok := m[r.Source+"."+r.Key]
	return v, ok
}

func BenchmarkRender(b *testing.B) {
	vals := mapValues{"path.id": "160.000.033.491.280.78", "request.base": "https://gw.example/twiin", "body.notificationId": "ntf-000001"}
	cases := []struct{ name, src string }{
		{"literal", "no references"},
		{"path with escaping", "/legacy/v1/prescriptions/${path.id}/cancellation"},
		{"two references", "${request.base}/Task/${body.notificationId}"},
	}
	for _, c := range cases {
		t, err := Parse(c.src, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t.Render(vals, func(s string) (string, error) { return url.PathEscape(s), nil })
			}
		})
	}
}
