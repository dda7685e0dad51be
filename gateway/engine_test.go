package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gin-gonic/gin"
)

// embedder is what a program embedding fhirgate might add: middleware that
// stops some requests the ways gin handlers do (a bare status, a binding
// error, a body read over the limit, a panic) and a handler of its own.
func embedder(seen *atomic.Int64) []Option {
	mw := func(c *gin.Context) {
		seen.Add(1)
		c.Header("X-Embedder", "seen")
		switch c.GetHeader("X-Test") {
		case "abort":
			c.AbortWithStatus(http.StatusForbidden)
		case "bind":
			var v struct {
				Name string `json:"name" binding:"required"`
			}
			c.Bind(&v) // an empty body: gin answers 400 without a body
		case "read":
			if _, err := c.GetRawData(); err != nil {
				c.AbortWithStatus(http.StatusRequestEntityTooLarge)
			}
		case "panic":
			panic("embedder")
		}
	}
	return []Option{
		WithMiddleware(mw),
		WithEngine(func(e *gin.Engine) {
			e.GET("/internal/ping", func(c *gin.Context) { c.Data(http.StatusOK, "application/json", []byte(`{"ok":true}`)) })
		}),
	}
}

// TestGinAnswerPaths: every answer gin would give by itself — 404, 405,
// a redirect, a panic, a binding error, an oversized body, a bare status —
// is a FHIR answer: the base's OperationOutcome (never gin's text/plain,
// never HTML, never a redirect); and the path forms FHIR clients send
// reach their route.
func TestGinAnswerPaths(t *testing.T) {
	spy := &backendSpy{answer: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }}
	be := httptest.NewServer(spy)
	defer be.Close()
	var seen atomic.Int64
	f := newFixture(t, be.URL, spy, embedder(&seen)...)
	cases := []struct {
		name, method, path string
		header             map[string]string
		body               io.Reader
		chunked            bool
		want               int
		allow              string
		backendPath        string // the backend's escaped path, for a request that reaches it
	}{
		{name: "route", method: "POST", path: "/fhir/Task/1/$op", want: 204, backendPath: "/legacy/1"},
		{name: "trailing slash served, not redirected", method: "POST", path: "/fhir/Task/1/$op/", want: 204, backendPath: "/legacy/1"},
		{name: "%24 for $", method: "POST", path: "/fhir/Task/1/%24op", want: 204, backendPath: "/legacy/1"},
		{name: "lower-case escape", method: "POST", path: "/fhir/Task/a%2fb/$op", want: 204, backendPath: "/legacy/a%2Fb"},
		{name: "%2F stays inside its segment", method: "POST", path: "/fhir/Task/a%2Fb/$op", want: 204, backendPath: "/legacy/a%2Fb"},
		{name: "escaped letters are the letters", method: "POST", path: "/fhir/Task/%31/$op", want: 204, backendPath: "/legacy/1"},
		{name: "plus stays a plus", method: "POST", path: "/fhir/Task/a+b/$op", want: 204, backendPath: "/legacy/a+b"},
		{name: "unknown path under the base", method: "POST", path: "/fhir/Patient/1", want: 404},
		{name: "outside every base", method: "GET", path: "/nowhere", want: 404},
		{name: "root", method: "GET", path: "/", want: 404},
		{name: "known path, other method", method: "GET", path: "/fhir/Task/1/$op", want: 405, allow: "POST"},
		{name: "fixed-path redirect off (case)", method: "POST", path: "/fhir/task/1/$OP", want: 404},
		{name: "fixed-path redirect off (double slash)", method: "POST", path: "/fhir//Task/1/$op", want: 404},
		{name: "middleware aborts with a bare status", method: "POST", path: "/fhir/Task/1/$op", header: map[string]string{"X-Test": "abort"}, want: 403},
		{name: "binding error", method: "POST", path: "/fhir/Task/1/$op", header: map[string]string{"X-Test": "bind", "Content-Type": "application/json"}, want: 400},
		{name: "declared body over the limit", method: "POST", path: "/fhir/Task/1/$op", body: strings.NewReader(strings.Repeat("x", 2<<20)), want: 413},
		{name: "chunked body read over the limit", method: "POST", path: "/fhir/Task/1/$op", header: map[string]string{"X-Test": "read"}, body: strings.NewReader(strings.Repeat("x", 2<<20)), chunked: true, want: 413},
		{name: "panic in middleware", method: "POST", path: "/fhir/Task/1/$op", header: map[string]string{"X-Test": "panic"}, want: 500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, f.gw.URL+c.path, c.body)
			if c.chunked {
				req.ContentLength = -1
			}
			req.Header.Set("Authorization", "Bearer "+f.token)
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, body)
			}
			if got := resp.Header.Get("Allow"); got != c.allow {
				t.Errorf("Allow %q, want %q", got, c.allow)
			}
			if c.want >= 400 {
				if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+") {
					t.Errorf("Content-Type %q: %s", ct, body)
				}
				var o struct {
					ResourceType string `json:"resourceType"`
					Issue        []struct{ Code string }
				}
				if err := json.Unmarshal(body, &o); err != nil || o.ResourceType != "OperationOutcome" || len(o.Issue) == 0 || o.Issue[0].Code == "" {
					t.Errorf("not an OperationOutcome (%v): %s", err, body)
				}
			}
			if c.backendPath != "" {
				r, _ := spy.last()
				if r == nil || r.URL.EscapedPath() != c.backendPath {
					t.Errorf("backend path %v, want %s", r.URL, c.backendPath)
				}
			}
		})
	}
	if seen.Load() == 0 {
		t.Error("the embedding middleware never ran")
	}
}

// TestEmbeddingSurvivesReload: middleware and handlers an embedding
// program adds run on the FHIR routes of the first table and of every
// table a reload builds.
func TestEmbeddingSurvivesReload(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":false,"reason":"no"}`)
	}))
	defer be.Close()
	var seen atomic.Int64
	f := newReloadFixture(t, be.URL, embedder(&seen)...)
	check := func(version, wantText string) {
		t.Helper()
		before := seen.Load()
		req, _ := http.NewRequest(http.MethodPost, f.gw.URL+"/fhir/Task/1/$op", nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 409 || !strings.Contains(string(body), wantText) {
			t.Fatalf("%s: %d %s", version, resp.StatusCode, body)
		}
		if seen.Load() != before+1 || resp.Header.Get("X-Embedder") != "seen" {
			t.Errorf("%s: the middleware did not run on the FHIR route", version)
		}
		ping, err := http.Get(f.gw.URL + "/internal/ping")
		if err != nil {
			t.Fatal(err)
		}
		ping.Body.Close()
		if ping.StatusCode != 200 {
			t.Errorf("%s: the embedder's handler answered %d", version, ping.StatusCode)
		}
	}
	check("first table", "refused: no")
	f.publish(t, f.routes("declined"), nil)
	if err := f.srv.Reload("test"); err != nil {
		t.Fatal(err)
	}
	check("after the reload", "declined: no")
}

// TestNormalisePath: the one routing form of a path, whatever the
// client's escaping.
func TestNormalisePath(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/erp/Task/1/$abort", "/erp/Task/1/$abort"},
		{"/erp/Task/1/%24abort", "/erp/Task/1/$abort"},
		{"/erp/Task/1/%24abort/", "/erp/Task/1/$abort"},
		{"/erp/Task/a%2fb/$abort", "/erp/Task/a%2Fb/$abort"},
		{"/erp/Task/a%20b", "/erp/Task/a%20b"},
		{"/erp/Task/%41", "/erp/Task/A"},
		{"/", "/"},
	} {
		req := httptest.NewRequest("GET", c.in, nil)
		normalisePath(req.URL)
		if got := routingPath(req.URL); got != c.want {
			t.Errorf("%s: %s, want %s", c.in, got, c.want)
		}
	}
}

// FuzzNormalisePath: the routing form keeps every segment's value (an
// encoded slash stays inside its segment), drops one trailing slash, and
// is its own routing form.
func FuzzNormalisePath(f *testing.F) {
	for _, s := range []string{"/erp/Task/1/$abort", "/erp/Task/1/%24abort/", "/a%2Fb/c", "/a%2fb%25/", "/x/%41%42", "/", "//", "/a+b/c%20d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		// A request target in origin form starts with '/' (net/http's
		// server reads it with url.ParseRequestURI, which insists); "%2f"
		// parses to the path "/" but is no request target.
		if !strings.HasPrefix(raw, "/") {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Path == "" || u.Path[0] != '/' || u.Host != "" || u.User != nil || u.Scheme != "" || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
			return
		}
		esc := u.EscapedPath()
		normalisePath(u)
		got := routingPath(u)
		want := esc
		if len(want) > 1 && want[len(want)-1] == '/' {
			want = want[:len(want)-1]
		}
		gs, ws := strings.Split(got, "/"), strings.Split(want, "/")
		if len(gs) != len(ws) {
			t.Fatalf("%q → %q: segments %d, want %d", raw, got, len(gs), len(ws))
		}
		for i := range gs {
			g, err1 := url.PathUnescape(gs[i])
			w, err2 := url.PathUnescape(ws[i])
			if err1 != nil || err2 != nil || g != w {
				t.Fatalf("%q → %q: segment %d is %q, want %q", raw, got, i, g, w)
			}
		}
		if len(got) > 1 && got[len(got)-1] == '/' {
			return // two trailing slashes: one is kept, and the path matches no route
		}
		// As a request target: "//x" is a path here, not an authority.
		again, err := url.Parse("http://gateway" + got)
		if err != nil {
			t.Fatalf("%q → %q: %v", raw, got, err)
		}
		normalisePath(again)
		if routingPath(again) != got {
			t.Fatalf("%q → %q → %q: not stable", raw, got, routingPath(again))
		}
	})
}
