package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEDemo runs the README's demo block — as a newcomer pastes it
// after `make run` — against the real binaries with the unmodified default
// routes.yaml (only the ports moved to free ones), and checks each status
// the README promises and that every error body is an OperationOutcome.
// The simulator signs with its own fresh key here, as under `make run`.
func TestREADMEDemo(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- demo:start -->\\s*```sh\\n(.*?)```\\s*<!-- demo:end -->").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README has no demo block")
	}
	script := string(m[1])
	var want []string
	for _, mm := range regexp.MustCompile(`→ (\d{3})`).FindAllStringSubmatch(script, -1) {
		want = append(want, mm[1])
	}
	if len(want) < 8 {
		t.Fatalf("the demo block promises only %d statuses", len(want))
	}

	gw, admin, sim := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg, err := os.ReadFile("../../routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/routes.yaml"
	r := strings.NewReplacer("127.0.0.1:8080", gw, "127.0.0.1:9090", admin, "127.0.0.1:9101", sim)
	os.WriteFile(file, []byte(r.Replace(string(cfg))), 0o644)
	simProc := start(t, "legacysim", "fachdienst", "--listen", sim)
	waitHTTP(t, "http://"+sim+"/demo/jwks.json", simProc)
	gwProc := start(t, "fhirgate", "serve", "--config", file)
	waitHTTP(t, "http://"+admin+"/readyz", gwProc)

	cmd := exec.Command("bash", "-euo", "pipefail", "-c", r.Replace(script))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the demo block failed: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got []string
	for i, l := range lines {
		if !regexp.MustCompile(`^\d{3}$`).MatchString(l) {
			continue
		}
		got = append(got, l)
		body := ""
		if i > 0 {
			body = lines[i-1]
		}
		if l != "204" && !strings.HasPrefix(body, "<OperationOutcome") && !strings.HasPrefix(body, `{"resourceType":"OperationOutcome"`) {
			t.Errorf("answer %s came with body %q", l, body)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("statuses %v, the README promises %v\n%s", got, want, out)
	}
}
