package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/test/testpki"
)

// runServer starts a Server for the test configuration with the given
// server and base settings, and returns its FHIR address.
func runServer(t *testing.T, serverYAML, baseExtra string, backendURL string) string {
	fhir, _ := runServerAdmin(t, serverYAML, baseExtra, backendURL)
	return fhir
}

// runServerAdmin is runServer returning the admin address too. The free
// ports it picks may be taken by a parallel test before the server binds
// them: then it tries again with others.
func runServerAdmin(t *testing.T, serverYAML, baseExtra string, backendURL string) (string, string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		addr, admin, err := startServer(t, serverYAML, baseExtra, backendURL)
		if err == nil {
			return addr, admin
		}
		if attempt == 4 {
			t.Fatalf("server did not start: %v", err)
		}
	}
}

func startServer(t *testing.T, serverYAML, baseExtra string, backendURL string) (string, string, error) {
	t.Helper()
	key, _ := publicKeyPEM(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "key.pem"), key, 0o644)
	free := func() string {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		return l.Addr().String()
	}
	addr, admin := free(), free()
	routes := "server: {listen: " + addr + ", admin_listen: " + admin + ", drain_delay: 1ms, " + serverYAML + "}\naudit: {output: none}\n" +
		strings.Replace(strings.Replace(testRoutes, "BACKEND", backendURL, 1), "    fhir_version: R4\n", "    fhir_version: R4\n"+baseExtra, 1)
	file := filepath.Join(dir, "routes.yaml")
	os.WriteFile(file, []byte(routes), 0o644)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(cfg, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !srv.ready.Load() {
		select {
		case err := <-done: // a port was taken meanwhile
			cancel()
			return "", "", err
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("server not ready")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Cleanup(func() { cancel(); <-done })
	return addr, admin, nil
}

// TestPprofOnlyWhenAsked: the profiler is on the admin listener with
// server.pprof, and absent without.
func TestPprofOnlyWhenAsked(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer be.Close()
	for _, on := range []bool{false, true} {
		yaml := "pprof: false"
		if on {
			yaml = "pprof: true"
		}
		_, admin := runServerAdmin(t, yaml, "", be.URL)
		resp, err := http.Get("http://" + admin + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if (resp.StatusCode == 200) != on {
			t.Errorf("pprof %v: %d", on, resp.StatusCode)
		}
	}
}

// publicKeyPEM is a fresh P-256 public key in PEM (the test routes' pem_file).
func publicKeyPEM(t *testing.T) ([]byte, error) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), err
}

// TestTLSListenerWithClientCertificates: HTTPS with required client
// certificates from the configured CA; others fail the handshake; the
// per-client rate limit counts per certificate.
func TestTLSListenerWithClientCertificates(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	defer be.Close()
	ca, other := testpki.NewCA(t, "fhirgate test CA"), testpki.NewCA(t, "somebody else")
	server, client, intruder := ca.Server("gateway"), ca.Client("pharmacy-system"), other.Client("intruder")
	addr := runServer(t, "tls: {cert_file: "+server.CertFile+", key_file: "+server.KeyFile+", client_ca_file: "+ca.File+"}",
		"    client_rate_limit: {requests: 1, per: 1h, burst: 2}\n", be.URL)
	get := func(cert *tls.Certificate) (*http.Response, error) {
		tc := &tls.Config{RootCAs: ca.Pool}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		return c.Get("https://" + addr + "/fhir/metadata")
	}
	for i, want := range []int{200, 200, 429} {
		resp, err := get(&client.TLS)
		if err != nil {
			t.Fatalf("request %d with a client certificate: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("request %d: %d, want %d: %s", i, resp.StatusCode, want, body)
		}
		if want == 429 && (resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "too many requests from this client")) {
			t.Errorf("429 without Retry-After or OperationOutcome: %v %s", resp.Header, body)
		}
	}
	if _, err := get(nil); err == nil {
		t.Error("a client without certificate got through")
	}
	if _, err := get(&intruder.TLS); err == nil {
		t.Error("a certificate from another CA got through")
	}
	if resp, err := http.Get("http://" + addr + "/fhir/metadata"); err == nil && resp.StatusCode < 400 {
		t.Error("plain HTTP served on the TLS listener")
	}
}

// TestSlowClients: a client that trickles its headers is cut off after
// read_header_timeout (a body that trickles is answered 408: see the
// security suite).
func TestSlowClients(t *testing.T) {
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	defer be.Close()
	addr := runServer(t, "read_header_timeout: 200ms, read_timeout: 400ms", "", be.URL)

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "POST /fhir/Task/1/$op HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("slow headers: connection not closed in time (%v, %v)", err, time.Since(start))
	}
}
