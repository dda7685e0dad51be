package charttest

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestImageBinaryIsStatic builds the binary the way the Dockerfile does
// (no Docker engine is needed for that part) and checks what a distroless
// static image requires: no dynamic loader, no shared libraries, the
// version stamped in, and the chart's configuration accepted by it.
func TestImageBinaryIsStatic(t *testing.T) {
	data, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)RUN (CGO_ENABLED=0 go build .*?) -o /out/fhirgate (\S+)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatal("Dockerfile has no CGO_ENABLED=0 go build … -o /out/fhirgate line")
	}
	if !strings.Contains(string(data), "FROM gcr.io/distroless/static") || !strings.Contains(string(data), "USER 65532") {
		t.Error("the runtime stage is not distroless/static as non-root")
	}
	bin := filepath.Join(t.TempDir(), "fhirgate")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X github.com/fhirgate/fhirgate/gateway/pipeline.Version=9.9.9-test", "-o", bin, "./cmd/fhirgate")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	if raw, _ := os.ReadFile(bin); !strings.Contains(string(raw), "9.9.9-test") {
		t.Error("the version is not stamped into the binary")
	}
	out, err := exec.Command(bin, "check", "../fhirgate/files/routes.yaml").CombinedOutput()
	if err != nil {
		t.Errorf("the static binary refuses the chart's configuration: %v\n%s", err, out)
	}
}
