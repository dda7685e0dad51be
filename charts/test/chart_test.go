// Package charttest renders the Helm chart with Helm's own engine, decodes
// every manifest strictly into the Kubernetes API types (unknown or
// duplicate fields fail), compares the result with golden files and checks
// what the gateway relies on: the configuration the ConfigMap carries
// loads with fhirgate's loader, the ports match, the pod is locked down.
//
// It is a module of its own so that Helm's and Kubernetes' dependencies
// stay out of the gateway's build.
//
//	go test ./...            (make chart-test)
//	go test ./... -update    rewrite the golden files after a deliberate change
package charttest

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/config"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const chartDir = "../fhirgate"

// cases are the values the chart is rendered with.
var cases = []struct {
	name       string
	valuesFile string
	kinds      []string // every kind rendered, sorted
}{
	{"default", "", []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount"}},
	{"all-features", chartDir + "/ci/all-features-values.yaml", []string{"ConfigMap", "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget", "PrometheusRule", "Secret", "Service", "ServiceAccount", "ServiceMonitor"}},
}

// rendered is one case's manifests, decoded.
type rendered struct {
	files   map[string]string // template name → rendered text
	objects []runtime.Object
}

func (r *rendered) deployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	for _, o := range r.objects {
		if d, ok := o.(*appsv1.Deployment); ok {
			return d
		}
	}
	t.Fatal("no Deployment")
	return nil
}

func (r *rendered) configMap(t *testing.T, name string) *corev1.ConfigMap {
	t.Helper()
	for _, o := range r.objects {
		if c, ok := o.(*corev1.ConfigMap); ok && c.Name == name {
			return c
		}
	}
	t.Fatalf("no ConfigMap %s", name)
	return nil
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// strictDecoder decodes YAML manifests into the typed Kubernetes and
// prometheus-operator objects, refusing unknown and duplicate fields.
func strictDecoder(t *testing.T) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := monitoringv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
}

func render(t *testing.T, values map[string]any) *rendered {
	t.Helper()
	ch := loadChart(t)
	vals, err := chartutil.ToRenderValues(ch, values, chartutil.ReleaseOptions{Name: "fhirgate", Namespace: "gateway", IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{files: map[string]string{}}
	dec := strictDecoder(t)
	for name, text := range files {
		if strings.TrimSpace(text) == "" || strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		r.files[name] = text
		for i, doc := range strings.Split(text, "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			obj, _, err := dec.Decode([]byte(doc), nil, nil)
			if err != nil {
				t.Fatalf("%s document %d: %v\n%s", name, i, err, doc)
			}
			r.objects = append(r.objects, obj)
		}
	}
	return r
}

// TestChartRendersStrictly renders each case, decodes every manifest
// strictly and compares the whole output with its golden file.
func TestChartRendersStrictly(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, readValues(t, c.valuesFile))
			var kinds []string
			for _, o := range r.objects {
				kinds = append(kinds, reflect.TypeOf(o).Elem().Name())
			}
			sort.Strings(kinds)
			if !reflect.DeepEqual(kinds, c.kinds) {
				t.Errorf("kinds %v, want %v", kinds, c.kinds)
			}
			names := make([]string, 0, len(r.files))
			for n := range r.files {
				names = append(names, n)
			}
			sort.Strings(names)
			var out bytes.Buffer
			for _, n := range names {
				fmt.Fprintf(&out, "# Source: %s\n%s\n---\n", n, strings.TrimSpace(r.files[n]))
			}
			golden := filepath.Join("testdata", c.name+".golden.yaml")
			if *update {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update once)", err)
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Errorf("rendered chart differs from %s; inspect with go test -update and git diff:\n%s", golden, firstDifference(string(want), out.String()))
			}
		})
	}
}

func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d\n golden: %s\n now:    %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(al), len(bl))
}

// TestChartLints runs Helm's linter on both cases.
func TestChartLints(t *testing.T) {
	for _, c := range cases {
		l := lint.All(chartDir, readValues(t, c.valuesFile), "gateway", false)
		for _, m := range l.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: %s", c.name, m)
			}
		}
	}
}

// TestPodIsLockedDown: non-root, read-only root filesystem, no privilege
// escalation, no capabilities, probes on the admin port, resources and
// GOMEMLIMIT, spread over zones and nodes.
func TestPodIsLockedDown(t *testing.T) {
	d := render(t, nil).deployment(t)
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers", len(spec.Containers))
	}
	c := spec.Containers[0]
	psc, sc := spec.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0:
		t.Error("pod may run as root")
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem writable")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL":
		t.Error("capabilities not dropped")
	case spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken:
		t.Error("service account token mounted")
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "admin" {
		t.Errorf("liveness probe %+v", p)
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.String() != "admin" {
		t.Errorf("readiness probe %+v", p)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	// The default soft target keeps the peak RSS under 96 MiB
	// (BENCHMARKS.md § Memory); without it, the memory limit.
	if len(c.Env) == 0 || c.Env[0].Name != "GOMEMLIMIT" || c.Env[0].Value != "56MiB" {
		t.Errorf("GOMEMLIMIT not the default goMemLimit: %+v", c.Env)
	}
	c = render(t, map[string]any{"goMemLimit": ""}).deployment(t).Spec.Template.Spec.Containers[0]
	if len(c.Env) == 0 || c.Env[0].Name != "GOMEMLIMIT" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("goMemLimit empty: GOMEMLIMIT not set from the memory limit: %+v", c.Env)
	}
	keys := map[string]bool{}
	for _, tsc := range spec.TopologySpreadConstraints {
		keys[tsc.TopologyKey] = true
	}
	if !keys["topology.kubernetes.io/zone"] || !keys["kubernetes.io/hostname"] {
		t.Errorf("topology spread %v", keys)
	}
}

// materialize writes the configuration volume as the kubelet would (each
// item's key at its path) and returns the directory.
func materialize(t *testing.T, r *rendered) string {
	t.Helper()
	d := r.deployment(t)
	dir := t.TempDir()
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name != "config" {
			continue
		}
		cm := r.configMap(t, v.ConfigMap.Name)
		for _, item := range v.ConfigMap.Items {
			data, ok := cm.Data[item.Key]
			if !ok {
				t.Fatalf("item %s: key %s not in the ConfigMap", item.Path, item.Key)
			}
			p := filepath.Join(dir, item.Path)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	t.Fatal("no config volume")
	return ""
}

// TestRenderedConfigurationLoads: the routes.yaml and profiles the
// ConfigMap carries load with fhirgate's own loader, its listeners match
// the container ports, and the pod's termination grace period covers the
// drain delay and the shutdown grace.
func TestRenderedConfigurationLoads(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := render(t, readValues(t, c.valuesFile))
			dir := materialize(t, r)
			cfg, err := config.Load(filepath.Join(dir, "routes.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			ports := map[string]int32{}
			d := r.deployment(t)
			for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
				ports[p.Name] = p.ContainerPort
			}
			for name, addr := range map[string]string{"fhir": cfg.Server.Listen, "admin": cfg.Server.AdminListen} {
				host, port, _ := net.SplitHostPort(addr)
				if strconv.Itoa(int(ports[name])) != port || (host != "" && host != "0.0.0.0") {
					t.Errorf("%s listener %s does not serve container port %d on all interfaces", name, addr, ports[name])
				}
			}
			need := cfg.Server.DrainDelay.D() + cfg.Server.ShutdownGrace.D()
			if got := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second; got <= need {
				t.Errorf("terminationGracePeriodSeconds %v does not exceed drain delay + grace %v", got, need)
			}
			// The directory is mounted whole, so ConfigMap updates reach
			// the gateway's watcher; subPath mounts never update.
			for _, m := range d.Spec.Template.Spec.Containers[0].VolumeMounts {
				if m.SubPath != "" {
					t.Errorf("volume mount %s uses subPath", m.Name)
				}
			}
		})
	}
}

// TestLimitStore: with limitStore the Redis Secret is mounted where
// routes.yaml's password_file points, the chart creates it only from a
// password without secretName, and a restricting NetworkPolicy lets the
// pods reach the Redis port(s) of the given peers.
func TestLimitStore(t *testing.T) {
	r := render(t, readValues(t, chartDir+"/ci/all-features-values.yaml"))
	var secret *corev1.Secret
	var policy *networkingv1.NetworkPolicy
	for _, o := range r.objects {
		switch o := o.(type) {
		case *corev1.Secret:
			secret = o
		case *networkingv1.NetworkPolicy:
			policy = o
		}
	}
	if secret == nil || secret.StringData["password"] != "not-a-real-password" {
		t.Fatalf("limit store Secret %+v", secret)
	}
	spec := r.deployment(t).Spec.Template.Spec
	mounted := false
	for _, m := range spec.Containers[0].VolumeMounts {
		mounted = mounted || (m.Name == "limit-store" && m.MountPath == "/etc/fhirgate/redis" && m.ReadOnly)
	}
	for _, v := range spec.Volumes {
		if v.Name == "limit-store" && (v.Secret == nil || v.Secret.SecretName != secret.Name) {
			t.Errorf("limit-store volume %+v, want Secret %s", v, secret.Name)
		}
	}
	if !mounted {
		t.Error("limit store Secret not mounted at /etc/fhirgate/redis")
	}
	found := false
	for _, e := range policy.Spec.Egress {
		ports := map[int32]bool{}
		for _, p := range e.Ports {
			ports[p.Port.IntVal] = true
		}
		if ports[6379] && ports[26379] && len(e.To) == 1 && e.To[0].PodSelector != nil &&
			e.To[0].PodSelector.MatchLabels["app.kubernetes.io/name"] == "redis" {
			found = true
		}
	}
	if !found {
		t.Errorf("no egress rule to the limit store: %+v", policy.Spec.Egress)
	}

	existing := render(t, map[string]any{"limitStore": map[string]any{"enabled": true, "secretName": "redis-auth", "password": "ignored"}})
	for _, o := range existing.objects {
		if _, ok := o.(*corev1.Secret); ok {
			t.Error("a Secret created although secretName names an existing one")
		}
	}
	for _, v := range existing.deployment(t).Spec.Template.Spec.Volumes {
		if v.Name == "limit-store" && v.Secret.SecretName != "redis-auth" {
			t.Errorf("volume from %s, want redis-auth", v.Secret.SecretName)
		}
	}
}

// TestConfigChecksumRollsPods: with rollOnChange the pod template changes
// exactly when the configuration does.
func TestConfigChecksumRollsPods(t *testing.T) {
	annotation := func(routes string) string {
		v := map[string]any{"config": map[string]any{"rollOnChange": true, "routes": routes}}
		return render(t, v).deployment(t).Spec.Template.Annotations["checksum/config"]
	}
	a, b, a2 := annotation(""), annotation("server: {}\n"), annotation("")
	if a == "" || a == b || a != a2 {
		t.Errorf("checksums %q %q %q", a, b, a2)
	}
}

// TestAllFeatures: TLS and secrets mounted, the PrometheusRule is the rule
// file promtool tests, the dashboard ConfigMap is labelled for Grafana's
// sidecar and holds valid JSON.
func TestAllFeatures(t *testing.T) {
	r := render(t, readValues(t, chartDir+"/ci/all-features-values.yaml"))
	mounts := map[string]string{}
	for _, m := range r.deployment(t).Spec.Template.Spec.Containers[0].VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if mounts["tls"] != "/etc/fhirgate/tls" || mounts["audit-key"] != "/etc/fhirgate/secrets/audit" {
		t.Errorf("mounts %v", mounts)
	}
	for _, o := range r.objects {
		switch o := o.(type) {
		case *monitoringv1.PrometheusRule:
			data, err := os.ReadFile(chartDir + "/rules/fhirgate-alerts.yaml")
			if err != nil {
				t.Fatal(err)
			}
			var want monitoringv1.PrometheusRuleSpec
			if err := yaml.UnmarshalStrict(data, &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.Spec, want) {
				t.Error("the PrometheusRule differs from rules/fhirgate-alerts.yaml")
			}
			if n := len(o.Spec.Groups[0].Rules); n != 11 {
				t.Errorf("%d rules", n)
			}
		case *monitoringv1.ServiceMonitor:
			if len(o.Spec.Endpoints) != 1 || o.Spec.Endpoints[0].Port != "admin" || o.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoints %+v", o.Spec.Endpoints)
			}
		}
	}
	dash := r.configMap(t, "fhirgate-dashboards")
	if dash.Labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v", dash.Labels)
	}
	var d struct {
		UID    string
		Panels []struct{ Title string }
	}
	if err := json.Unmarshal([]byte(dash.Data["fhirgate.json"]), &d); err != nil || d.UID == "" || len(d.Panels) < 10 {
		t.Errorf("dashboard: %v %+v", err, d)
	}
}

// TestChartFilesInSync: the chart's bundled configuration is what
// scripts/chart-files.sh makes of routes.yaml and profiles/ now.
func TestChartFilesInSync(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("bash", "../../scripts/chart-files.sh", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := map[string]string{}
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			want[rel] = string(b)
		}
		return nil
	})
	got := map[string]string{}
	filepath.WalkDir(chartDir+"/files", func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(chartDir+"/files", p)
			got[rel] = string(b)
		}
		return nil
	})
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("charts/fhirgate/files is stale: run scripts/chart-files.sh")
	}
}

// TestStrictDecodingRefusesUnknownFields: the decoder the tests rely on
// does refuse a misspelt field and a duplicate one.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	dec := strictDecoder(t)
	for name, doc := range map[string]string{
		"unknown field":   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicass: 2\n",
		"duplicate field": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  type: ClusterIP\n  type: NodePort\n",
		"wrong type":      "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: 80\n",
	} {
		if _, _, err := dec.Decode([]byte(doc), nil, nil); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
