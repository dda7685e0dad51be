package e2e

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEDemo runs the README's demo blocks — as a newcomer pastes them
// after `make run` — against the real binaries with the unmodified default
// routes.yaml (only the ports moved to free ones), and checks each status
// the README promises and that every error body is an OperationOutcome.
// The simulators sign with their own fresh keys here, as under `make run`.
func TestREADMEDemo(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)<!-- (demo(?:-[a-z]+)?):start -->\\s*```sh\\n(.*?)```\\s*<!-- (?:demo(?:-[a-z]+)?):end -->").FindAllSubmatch(readme, -1)
	if len(blocks) < 2 {
		t.Fatalf("README has %d demo blocks, want the E-Rezept and the Twiin one", len(blocks))
	}

	gw, admin, sim, gtk := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	addrs := []string{"127.0.0.1:8080", gw, "127.0.0.1:9090", admin, "127.0.0.1:9101", sim, "127.0.0.1:9102", gtk}
	file := writeRoutes(t, "../../routes.yaml", addrs...)
	r := strings.NewReplacer(addrs...)
	simProc := start(t, "legacysim", "fachdienst", "--listen", sim)
	waitHTTP(t, "http://"+sim+"/demo/jwks.json", simProc)
	gtkProc := start(t, "legacysim", "gtk", "--listen", gtk)
	waitHTTP(t, "http://"+gtk+"/demo/jwks.json", gtkProc)
	gwProc := start(t, "fhirgate", "serve", "--config", file)
	waitHTTP(t, "http://"+admin+"/readyz", gwProc)

	for _, b := range blocks {
		name, script := string(b[1]), string(b[2])
		t.Run(name, func(t *testing.T) {
			var want []string
			for _, mm := range regexp.MustCompile(`→ (\d{3})`).FindAllStringSubmatch(script, -1) {
				want = append(want, mm[1])
			}
			if len(want) < 8 {
				t.Fatalf("the demo block promises only %d statuses", len(want))
			}
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
				switch {
				case l == "201":
					// "<Location> <ETag>" as printed by curl -w
					if !regexp.MustCompile(`^http://\S+/twiin/Task/\S+ W/"\d+"$`).MatchString(body) {
						t.Errorf("201 without Location and ETag: %q", body)
					}
				case l[0] == '2':
				case !strings.HasPrefix(body, "<OperationOutcome") && !strings.HasPrefix(body, `{"resourceType":"OperationOutcome"`):
					t.Errorf("answer %s came with body %q", l, body)
				}
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("statuses %v, the README promises %v\n%s", got, want, out)
			}
		})
	}
}
