// Package fhirclient drives the gateway with a real FHIR client library,
// fhir-kit-client (npm, installed by scripts/install-fhirclient.sh), the
// way FHIR applications reach it: the gateway as make run starts it (the
// repository's routes.yaml, both simulators), and the client's read,
// search, create, conditional update, $abort and error handling.
package fhirclient

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fhirgate/fhirgate/test/procs"
)

var env *procs.Env

func TestMain(m *testing.M) { os.Exit(procs.Main(m, "fhirgate-fhirclient-", &env)) }

func TestFHIRKitClient(t *testing.T) {
	if _, err := os.Stat("node_modules/fhir-kit-client/package.json"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("fhir-kit-client is not installed: scripts/install-fhirclient.sh installs it (make test runs it)")
		}
		t.Skip("fhir-kit-client is not installed: run scripts/install-fhirclient.sh (make test does)")
	}
	gw, admin, sim, gtk := procs.FreeAddr(t), procs.FreeAddr(t), procs.FreeAddr(t), procs.FreeAddr(t)
	file := procs.WriteRoutes(t, "../../routes.yaml", "127.0.0.1:8080", gw, "127.0.0.1:9090", admin, "127.0.0.1:9101", sim, "127.0.0.1:9102", gtk)
	simProc := procs.Start(t, filepath.Join(env.BinDir, "legacysim"), "fachdienst", "--listen", sim)
	procs.WaitHTTP(t, "http://"+sim+"/demo/jwks.json", simProc)
	gtkProc := procs.Start(t, filepath.Join(env.BinDir, "legacysim"), "gtk", "--listen", gtk)
	procs.WaitHTTP(t, "http://"+gtk+"/demo/jwks.json", gtkProc)
	gwProc := procs.Start(t, filepath.Join(env.BinDir, "fhirgate"), "serve", "--config", file)
	procs.WaitHTTP(t, "http://"+admin+"/readyz", gwProc)

	cmd := exec.Command("node", "client.mjs")
	cmd.Env = append(os.Environ(), "TWIIN=http://"+gw+"/twiin", "ERP=http://"+gw+"/erp", "GTK=http://"+gtk, "SIM=http://"+sim)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fhir-kit-client: %v\n%s\ngateway log:\n%s", err, out, gwProc.Out.String())
	}
	t.Logf("%s", out)
	for _, step := range []string{"ok capabilities", "ok create", "ok search", "ok read requested", "ok conditional-update cancelled", "ok not-found not-found", "ok $abort", "ok erp-search 6 of 6", "ok erp-read completed document", "ok erp-receipt https://gematik.de/fhir/erp/StructureDefinition/GEM_ERP_PR_Bundle|1.5"} {
		if !strings.Contains(string(out), step) {
			t.Errorf("step %q missing:\n%s", step, out)
		}
	}
}
