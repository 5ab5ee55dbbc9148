// Package deploy checks the deployment files: the compose file loads the way
// docker compose loads it (compose-go, the library docker compose uses), and
// every Kubernetes manifest decodes strictly into its typed API object.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// goModVersion returns the version the loanflow module requires of path.
func goModVersion(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(path) + `\s+v(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("go.mod does not require %s", path)
	}
	return string(m[1])
}

// exampleEnv is .env.example with every empty value filled in.
func exampleEnv(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if v == "" {
			v = "test-" + strings.ToLower(k)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	var list []string
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."),
		cli.WithEnv(list),
		cli.WithProfiles([]string{"monitoring", "cli"}),
		cli.WithName("loanflow"),
	)
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func TestComposeFile(t *testing.T) {
	p, err := loadCompose(t, exampleEnv(t))
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	server := goModVersion(t, "go.temporal.io/server")
	ui := goModVersion(t, "github.com/temporalio/ui-server/v2")
	images := map[string]string{}
	for name, s := range p.Services {
		images[name] = s.Image
		if strings.Contains(s.Image, "auto-setup") {
			t.Errorf("service %s uses the deprecated %s", name, s.Image)
		}
		for _, port := range s.Ports {
			if port.Published != "" && port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %s on %q, want 127.0.0.1", name, port.Published, port.HostIP)
			}
		}
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionStarted {
				if ds, ok := p.Services[dep]; ok && ds.HealthCheck != nil {
					t.Errorf("service %s waits only for %s to start although it has a health check", name, dep)
				}
			}
		}
	}
	for svc, want := range map[string]string{
		"temporal":             "temporalio/server:" + server,
		"temporal-admin-tools": "temporalio/admin-tools:" + server,
		"temporal-ui":          "temporalio/ui:" + ui,
	} {
		if images[svc] != want {
			t.Errorf("service %s runs %q, want %q (the embedded versions in go.mod)", svc, images[svc], want)
		}
	}
	if d := p.Services["temporal"].DependsOn["temporal-admin-tools"]; d.Condition != types.ServiceConditionCompletedSuccessfully {
		t.Errorf("temporal depends on the schema job with condition %q, want %q", d.Condition, types.ServiceConditionCompletedSuccessfully)
	}
	for _, name := range []string{"postgres", "redis", "temporal", "worker", "prometheus", "grafana"} {
		if p.Services[name].HealthCheck == nil {
			t.Errorf("service %s has no health check", name)
		}
	}
	for _, name := range []string{"prometheus", "grafana"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("no %s service under the monitoring profile", name)
		}
	}
}

// Without a .env, compose refuses to start and names the missing variable.
func TestComposeRefusesMissingSecrets(t *testing.T) {
	for _, v := range []string{"POSTGRES_PASSWORD", "REDIS_PASSWORD", "LOANFLOW_CODEC_KEYS", "GRAFANA_ADMIN_PASSWORD"} {
		env := exampleEnv(t)
		delete(env, v)
		_, err := loadCompose(t, env)
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("without %s: err = %v, want an error naming it", v, err)
		}
	}
}

// No password, key or token is written in the compose file itself.
func TestComposeHasNoLiteralSecrets(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?im)^\s*[A-Z_]*(PASSWORD|PWD|_KEYS|TOKEN)[A-Z_]*:\s*(\S.*)$`)
	for _, m := range re.FindAllSubmatch(b, -1) {
		if v := string(m[2]); !strings.HasPrefix(v, "${") {
			t.Errorf("literal secret in docker-compose.yml: %s", bytes.TrimSpace(m[0]))
		}
	}
}

// kinds maps the manifests' apiVersion/kind to their typed objects.
var kinds = map[string]func() any{
	"v1/Namespace":                                  func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                                  func() any { return &corev1.ConfigMap{} },
	"v1/Service":                                    func() any { return &corev1.Service{} },
	"apps/v1/Deployment":                            func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":                 func() any { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1/ServiceMonitor":       func() any { return &monitoringv1.ServiceMonitor{} },
	"kustomize.config.k8s.io/v1beta1/Kustomization": nil, // checked by listing below
}

func TestKubernetesManifests(t *testing.T) {
	files, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in k8s/ (%v)", err)
	}
	objects := map[string]any{}
	for _, f := range files {
		docs, err := splitYAML(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docs {
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			gvk := head.APIVersion + "/" + head.Kind
			mk, known := kinds[gvk]
			if !known {
				t.Errorf("%s document %d: unexpected kind %s", f, i, gvk)
				continue
			}
			if mk == nil {
				continue
			}
			obj := mk()
			// Strict: an unknown or misspelt field fails, as kubectl's
			// server-side field validation would.
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s document %d (%s %s): %v", f, i, gvk, head.Metadata.Name, err)
				continue
			}
			objects[head.Kind+"/"+head.Metadata.Name] = obj
		}
	}
	w, ok := objects["Deployment/loanflow-worker"].(*appsv1.Deployment)
	if !ok {
		t.Fatal("no Deployment loanflow-worker")
	}
	c := w.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.LivenessProbe.HTTPGet == nil {
		t.Error("the worker has no HTTP liveness and readiness probes")
	} else if c.LivenessProbe.HTTPGet.Port.String() != "metrics" {
		t.Errorf("liveness probe on port %s, want the metrics port", c.LivenessProbe.HTTPGet.Port.String())
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Error("the worker has no CPU request or memory limit")
	}
	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name)
		if e.Value != "" && strings.ContainsAny(e.Name, "KEY") && strings.Contains(e.Name, "KEYS") {
			t.Errorf("worker env %s has a literal value", e.Name)
		}
	}
	for _, want := range []string{"DATABASE_URL", "REDIS_URL", "LOANFLOW_CODEC_KEYS", "LOANFLOW_SEARCH_KEYS"} {
		if !slices.Contains(env, want) {
			t.Errorf("worker env lacks %s", want)
		}
	}
	cm, ok := objects["ConfigMap/loanflow-config"].(*corev1.ConfigMap)
	if !ok || cm.Data["TEMPORAL_ADDRESS"] == "" {
		t.Error("no ConfigMap loanflow-config with TEMPORAL_ADDRESS")
	}
	pdb, ok := objects["PodDisruptionBudget/loanflow-worker"].(*policyv1.PodDisruptionBudget)
	if !ok || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != w.Spec.Selector.MatchLabels["app.kubernetes.io/name"] {
		t.Error("no PodDisruptionBudget selecting the worker")
	}
	for _, name := range []string{"Deployment/loanflow-codec-server", "Service/loanflow-codec-server", "ServiceMonitor/loanflow-worker"} {
		if objects[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	// The kustomization lists every manifest file.
	kb, err := os.ReadFile("k8s/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !strings.Contains(string(kb), "- "+base) {
			t.Errorf("kustomization.yaml does not list %s", base)
		}
	}
}

// splitYAML returns the non-empty documents of a multi-document YAML file.
func splitYAML(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	r := bufio.NewReader(bytes.NewReader(b))
	var cur bytes.Buffer
	flush := func() {
		doc := bytes.TrimSpace(cur.Bytes())
		if len(stripComments(doc)) > 0 {
			out = append(out, append([]byte(nil), doc...))
		}
		cur.Reset()
	}
	for {
		line, err := r.ReadString('\n')
		if strings.TrimRight(line, "\r\n") == "---" {
			flush()
		} else {
			cur.WriteString(line)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	flush()
	return out, nil
}

func stripComments(doc []byte) []byte {
	var keep []string
	for _, l := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			keep = append(keep, l)
		}
	}
	return []byte(strings.Join(keep, "\n"))
}
