package gateway

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fhirgate/fhirgate/config"
)

// reloadFixture is a Server over a configuration file in a directory of
// its own, laid out as a Kubernetes ConfigMap volume: routes.yaml and
// key.pem are symlinks into ..data, itself a symlink to a versioned
// directory.
type reloadFixture struct {
	dir     string
	srv     *Server
	gw      *httptest.Server
	token   string
	backend string
	version int
}

const reloadServer = "server: {listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0}\n"

func newReloadFixture(t *testing.T, backendURL string, opts ...Option) *reloadFixture {
	t.Helper()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	f := &reloadFixture{dir: t.TempDir(), backend: backendURL}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	f.publish(t, reloadServer+strings.Replace(testRoutes, "BACKEND", backendURL, 1), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	for _, name := range []string{"routes.yaml", "key.pem"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(f.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(f.dir, "routes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f.srv, err = NewServer(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	f.gw = httptest.NewServer(f.srv.Gateway)
	t.Cleanup(f.gw.Close)
	f.token, _ = jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "s", "role": "doc", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	return f
}

// publish writes a new version of the files and swaps ..data to it in one
// rename, as the kubelet does.
func (f *reloadFixture) publish(t *testing.T, routes string, key []byte) {
	t.Helper()
	f.version++
	vdir := filepath.Join(f.dir, fmt.Sprintf("..v%d", f.version))
	if err := os.Mkdir(vdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if key == nil {
		var err error
		if key, err = os.ReadFile(filepath.Join(f.dir, "..data", "key.pem")); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(vdir, "routes.yaml"), []byte(routes), 0o644)
	os.WriteFile(filepath.Join(vdir, "key.pem"), key, 0o644)
	tmp := filepath.Join(f.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(vdir), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// routes is the test configuration with the refusal text changed to text.
func (f *reloadFixture) routes(text string) string {
	return reloadServer + strings.Replace(strings.Replace(testRoutes, "BACKEND", f.backend, 1), "refused: ${body.reason}", text+": ${body.reason}", 1)
}

func (f *reloadFixture) post(t *testing.T) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.gw.URL+"/fhir/Task/1/$op", nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (f *reloadFixture) reloads(result string) float64 {
	families, err := f.srv.Metrics.Registry.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range families {
		if mf.GetName() != "fhirgate_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestReloadInFlightFinishOnTheirTable: a request that started before a
// reload is mapped by the table it started with; the next one by the new.
func TestReloadInFlightFinishOnTheirTable(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
			<-release
		default:
		}
		io.WriteString(w, `{"ok":false,"reason":"locked"}`)
	}))
	defer be.Close()
	f := newReloadFixture(t, be.URL)
	done := make(chan string)
	go func() { _, body := f.post(t); done <- body }()
	<-arrived
	f.publish(t, f.routes("refused by v2"), nil)
	if err := f.srv.Reload("test"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if body := <-done; !strings.Contains(body, "refused: locked") {
		t.Errorf("in-flight request answered by the new table: %s", body)
	}
	if status, body := f.post(t); status != 409 || !strings.Contains(body, "refused by v2: locked") {
		t.Errorf("after the reload: %d %s", status, body)
	}
	if got := f.reloads("success"); got != 2 {
		t.Errorf("reloads success = %v, want 2 (start + reload)", got)
	}
}

// TestReloadRejectsInvalidFiles: each broken file is refused, counted, and
// the table in use keeps serving unchanged.
func TestReloadRejectsInvalidFiles(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":false,"reason":"locked"}`)
	}))
	defer be.Close()
	f := newReloadFixture(t, be.URL)
	before := f.srv.Gateway.Table()
	broken := []struct{ name, routes string }{
		{"not YAML", "bases: [\n"},
		{"unknown key", f.routes("x") + "surprise: 1\n"},
		{"unknown backend", strings.Replace(f.routes("x"), "backend: legacy", "backend: nowhere", 1)},
		{"bad template", strings.Replace(f.routes("x"), "${path.id}", "${path.id", 1)},
		{"empty", ""},
	}
	for i, c := range broken {
		t.Run(c.name, func(t *testing.T) {
			f.publish(t, c.routes, nil)
			if err := f.srv.Reload("test"); err == nil {
				t.Fatal("accepted")
			}
			if f.srv.Gateway.Table() != before {
				t.Fatal("the table changed")
			}
			if got := f.reloads("failure"); got != float64(i+1) {
				t.Errorf("failures counted %v, want %d", got, i+1)
			}
			if status, body := f.post(t); status != 409 || !strings.Contains(body, "refused: locked") {
				t.Errorf("old table not serving: %d %s", status, body)
			}
		})
	}
}

// TestWatchFollowsConfigMapSwaps: the ..data symlink swap of a ConfigMap
// volume triggers one reload; an invalid version is rejected and the next
// valid one is taken.
func TestWatchFollowsConfigMapSwaps(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":false,"reason":"locked"}`)
	}))
	defer be.Close()
	f := newReloadFixture(t, be.URL)
	f.srv.WatchDebounce = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	f.srv.cfg.Server.DrainDelay = 0
	runDone := make(chan error)
	go func() { runDone <- f.srv.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("ready", f.srv.ready.Load)
	f.publish(t, f.routes("v2"), nil)
	waitFor("reload of v2", func() bool { return f.reloads("success") == 2 })
	if _, body := f.post(t); !strings.Contains(body, "v2: locked") {
		t.Errorf("v2 not serving: %s", body)
	}
	f.publish(t, "bases: [\n", nil)
	waitFor("rejection", func() bool { return f.reloads("failure") == 1 })
	if _, body := f.post(t); !strings.Contains(body, "v2: locked") {
		t.Errorf("v2 not kept: %s", body)
	}
	f.publish(t, f.routes("v3"), nil)
	waitFor("reload of v3", func() bool { return f.reloads("success") == 3 })
	if _, body := f.post(t); !strings.Contains(body, "v3: locked") {
		t.Errorf("v3 not serving: %s", body)
	}
}

// TestWatchIgnoresUnrelatedFiles: writes to other files in the directory of
// routes.yaml — a log written beside it, an editor's swap and backup files
// — reload nothing; an edit of routes.yaml reloads once, and so does a
// change of a file it reads (the key).
func TestWatchIgnoresUnrelatedFiles(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":false,"reason":"locked"}`)
	}))
	defer be.Close()
	dir := t.TempDir()
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	routes := reloadServer + strings.Replace(testRoutes, "BACKEND", be.URL, 1)
	file := filepath.Join(dir, "routes.yaml")
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o644)
	os.WriteFile(file, []byte(routes), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv.WatchDebounce = 20 * time.Millisecond
	srv.cfg.Server.DrainDelay = 0
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error)
	go func() { runDone <- srv.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	for !srv.ready.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	f := &reloadFixture{srv: srv}
	reloads := func() float64 { return f.reloads("success") + f.reloads("failure") }
	settle := func() { time.Sleep(300 * time.Millisecond) } // well past the debounce
	before := reloads()

	logFile, _ := os.OpenFile(filepath.Join(dir, "gateway.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	defer logFile.Close()
	for i := 0; i < 100; i++ {
		fmt.Fprintf(logFile, `{"msg":"request","n":%d}`+"\n", i)
		switch i % 4 {
		case 0:
			os.WriteFile(filepath.Join(dir, ".routes.yaml.swp"), []byte{byte(i)}, 0o644)
		case 1:
			os.Remove(filepath.Join(dir, ".routes.yaml.swp"))
		case 2:
			os.WriteFile(filepath.Join(dir, "routes.yaml~"), []byte(routes), 0o644)
		case 3:
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("notes-%d.txt", i)), nil, 0o644)
		}
		time.Sleep(2 * time.Millisecond)
	}
	settle()
	if got := reloads() - before; got != 0 {
		t.Fatalf("100 writes to unrelated files: %v reloads, want 0", got)
	}
	os.WriteFile(file, []byte(routes+"# edited\n"), 0o644)
	settle()
	if got := reloads() - before; got != 1 {
		t.Fatalf("an edit of routes.yaml: %v reloads, want 1", got)
	}
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o644)
	settle()
	if got := reloads() - before; got != 2 {
		t.Fatalf("a change of the key file routes.yaml reads: %v reloads, want 2", got)
	}
}
