// Package procs runs the project's binaries as real processes for the
// end-to-end, chaos and security suites: build them once, start them on
// free loopback ports, wait until they answer, collect their output, stop
// or kill them.
package procs

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the gateway and the simulators into dir.
func Build(dir string) error {
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/fhirgate/fhirgate/cmd/fhirgate", "github.com/fhirgate/fhirgate/cmd/legacysim")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building binaries: %w", err)
	}
	return nil
}

// SyncBuffer collects a process's output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a started process. Done receives its exit; Stopped is set once
// it has been waited for.
type Proc struct {
	Cmd     *exec.Cmd
	Out     *SyncBuffer
	Done    chan error
	Stopped bool
}

// Start runs bin; it is stopped with SIGTERM at the test's cleanup.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Cmd: exec.Command(bin, args...), Out: &SyncBuffer{}, Done: make(chan error, 1)}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Out, p.Out
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	go func() { p.Done <- p.Cmd.Wait() }()
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Stop sends SIGTERM and waits up to 10 s (then kills and fails the test).
func (p *Proc) Stop(t testing.TB) {
	if p.Stopped {
		return
	}
	p.Stopped = true
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(10 * time.Second):
		p.Cmd.Process.Kill()
		t.Errorf("%s did not stop on SIGTERM", p.Cmd.Path)
	}
}

// Kill ends the process at once (SIGKILL), as a crash would.
func (p *Proc) Kill() {
	if p.Stopped {
		return
	}
	p.Stopped = true
	p.Cmd.Process.Kill()
	<-p.Done
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitHTTP polls url until it answers at all, failing the test if p exits
// or 15 s pass.
func WaitHTTP(t testing.TB, url string, p *Proc) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case err := <-p.Done:
			p.Stopped = true
			t.Fatalf("%s exited (%v):\n%s", p.Cmd.Path, err, p.Out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not answer in time:\n%s", url, p.Out.String())
}

// Env is what every suite of real processes starts from: the binaries,
// built once, and the signing key the simulators' demo IDPs use (so tests
// can sign good and bad tokens), as a private and a public PEM file.
type Env struct {
	BinDir     string
	Key        *rsa.PrivateKey
	KeyFile    string // private key, for legacysim --idp-key
	PubKeyFile string // public key, for a gateway's keys.pem_file
}

// Setup builds the binaries into a new temporary directory and writes a
// fresh key pair there; cleanup removes it all.
func Setup(prefix string) (*Env, func(), error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := Build(dir); err != nil {
		cleanup()
		return nil, nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	e := &Env{BinDir: dir, Key: key, KeyFile: filepath.Join(dir, "idp-key.pem"), PubKeyFile: filepath.Join(dir, "idp-pub.pem")}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	err = errors.Join(
		os.WriteFile(e.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600),
		os.WriteFile(e.PubKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644))
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	return e, cleanup, nil
}

// Main is TestMain for such a suite: Setup, then the tests with env set.
func Main(m *testing.M, prefix string, env **Env) int {
	e, cleanup, err := Setup(prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	*env = e
	return m.Run()
}

// WriteRoutes copies the configuration src (relative to the test's
// package, e.g. ../../routes.yaml) to a temporary file with the old, new
// pairs replaced in order (each old must occur), the repository-relative
// profiles/ paths made absolute and log lines unbatched
// (log.flush_interval 0), and returns its path.
func WriteRoutes(t testing.TB, src string, pairs ...string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(data)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(cfg, pairs[i]) {
			t.Fatalf("%s does not contain %q", src, pairs[i])
		}
		cfg = strings.ReplaceAll(cfg, pairs[i], pairs[i+1])
	}
	// The suites read a running gateway's log (secrets absent, reloads
	// logged): every line is written at once, not batched — unless the
	// test sets the interval itself.
	if !strings.Contains(cfg, "flush_interval:") {
		cfg = strings.Replace(cfg, "\nlog:\n", "\nlog:\n  flush_interval: 0s\n", 1)
	}
	dir := filepath.Join(RepoRoot(), "profiles")
	cfg = strings.NewReplacer("[profiles/", "["+dir+"/", ": profiles/", ": "+dir+"/").Replace(cfg)
	file := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// RepoRoot is the repository's directory (this file is test/procs/procs.go).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Scrape returns the /metrics page of a gateway's admin listener
// (admin is its base URL, http://host:port).
func Scrape(t testing.TB, admin string) string {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Sample returns the value of one sample in a /metrics page; name includes
// the label set as exposed, e.g. fhirgate_config_reloads_total{result="success"}.
// ok is false when the page has no such sample.
func Sample(page, name string) (value string, ok bool) {
	for _, line := range strings.Split(page, "\n") {
		if v, found := strings.CutPrefix(line, name+" "); found {
			return v, true
		}
	}
	return "", false
}
