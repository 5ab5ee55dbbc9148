package deploy

import (
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// A worker started without the agencies' contract file runs without the
// contracted TPS ceilings, periods and concurrency caps, and says nothing:
// these tests hold every deployment file to handing it over.

const (
	envAgenciesFile     = "LOANFLOW_AGENCIES_FILE"          // read by the worker
	envAgencyMax        = "LOANFLOW_AGENCY_MAX_CONCURRENCY" // read by the worker
	envAgencyStart      = "LOANFLOW_AGENCY_CONCURRENCY"     // read by the worker
	envPollers          = "LOANFLOW_POLLERS"                // read by the worker
	envAgenciesHostFile = "LOANFLOW_AGENCIES_HOST_FILE"     // compose: the file on the host
	exampleContract     = "agencies.example.toml"
)

// workerServices names the compose services that run the worker: by their
// entrypoint, or by the image's own (the Dockerfile's ENTRYPOINT is worker).
func workerServices(p *types.Project) []string {
	var out []string
	for name, s := range p.Services {
		if (len(s.Entrypoint) > 0 && s.Entrypoint[0] == "worker") || (len(s.Entrypoint) == 0 && s.Build != nil) {
			out = append(out, name)
		}
	}
	return out
}

// hostPathOf returns the host path a container path comes from, and the
// mount that brings it.
func hostPathOf(vols []types.ServiceVolumeConfig, file string) (string, *types.ServiceVolumeConfig) {
	for i, v := range vols {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		if v.Target == file {
			return v.Source, &vols[i]
		}
		if rel, ok := strings.CutPrefix(file, strings.TrimSuffix(v.Target, "/")+"/"); ok {
			return filepath.Join(v.Source, rel), &vols[i]
		}
	}
	return "", nil
}

func TestComposeWorkerGetsAgencyContracts(t *testing.T) {
	example, err := filepath.Abs(exampleContract)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(example); err != nil {
		t.Fatalf("the default contract file: %v", err)
	}
	custom := filepath.Join(t.TempDir(), "contracts.toml")
	for _, tc := range []struct {
		name   string
		env    map[string]string
		source string
		// passed are the worker's variables compose passes on from .env.
		passed map[string]string
	}{
		{"defaults", nil, example, map[string]string{envAgencyMax: "", envAgencyStart: "", envPollers: ""}},
		{"set in .env", map[string]string{envAgenciesHostFile: custom, envAgencyMax: "12", envAgencyStart: "8", envPollers: "4"}, custom,
			map[string]string{envAgencyMax: "12", envAgencyStart: "8", envPollers: "4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := exampleEnv(t)
			maps.Copy(env, tc.env)
			p, err := loadCompose(t, env)
			if err != nil {
				t.Fatalf("load docker-compose.yml: %v", err)
			}
			workers := workerServices(p)
			if len(workers) == 0 {
				t.Fatal("no service runs the worker")
			}
			for _, name := range workers {
				s := p.Services[name]
				for _, k := range slices.Sorted(maps.Keys(tc.passed)) {
					if v, ok := s.Environment[k]; !ok {
						t.Errorf("service %s does not pass %s", name, k)
					} else if got := deref(v); got != tc.passed[k] {
						t.Errorf("service %s: %s=%q, want %q", name, k, got, tc.passed[k])
					}
				}
				file := deref(s.Environment[envAgenciesFile])
				if file == "" {
					t.Errorf("service %s does not set %s: the worker runs without the agencies' contracts", name, envAgenciesFile)
					continue
				}
				src, m := hostPathOf(s.Volumes, file)
				switch {
				case m == nil:
					t.Errorf("service %s: %s=%s, but no bind mount brings that file", name, envAgenciesFile, file)
				case src != tc.source:
					t.Errorf("service %s mounts %s from %s, want %s", name, file, src, tc.source)
				case !m.ReadOnly:
					t.Errorf("service %s mounts the contract file %s read-write, want read-only", name, file)
				case m.Bind != nil && bool(m.Bind.CreateHostPath):
					t.Errorf("service %s: a missing contract file %s would be created as an empty directory; want bind.create_host_path: false so compose refuses", name, m.Source)
				}
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// kustomized renders the kustomization at dir as kubectl apply -k does
// (load restricted to its root, no plugins).
func kustomized(t *testing.T, fs filesys.FileSystem, dir string) (map[string]*appsv1.Deployment, map[string]*corev1.ConfigMap) {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	deps, cms := map[string]*appsv1.Deployment{}, map[string]*corev1.ConfigMap{}
	for _, r := range rm.Resources() {
		b, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		key := r.GetNamespace() + "/" + r.GetName()
		var obj any
		switch r.GetKind() {
		case "Deployment":
			deps[key] = &appsv1.Deployment{}
			obj = deps[key]
		case "ConfigMap":
			cms[key] = &corev1.ConfigMap{}
			obj = cms[key]
		default:
			continue
		}
		if err := yaml.UnmarshalStrict(b, obj); err != nil {
			t.Fatalf("kustomize build %s: %s %s: %v", dir, r.GetKind(), key, err)
		}
	}
	return deps, cms
}

// envValue is a container's variable as the pod sees it: a literal, or
// taken from a ConfigMap by key or by envFrom.
func envValue(c corev1.Container, ns string, cms map[string]*corev1.ConfigMap, name string) string {
	for _, e := range c.Env {
		if e.Name != name {
			continue
		}
		if r := e.ValueFrom; r != nil && r.ConfigMapKeyRef != nil {
			if cm := cms[ns+"/"+r.ConfigMapKeyRef.Name]; cm != nil {
				return cm.Data[r.ConfigMapKeyRef.Key]
			}
			return ""
		}
		return e.Value
	}
	for _, f := range c.EnvFrom {
		key, ok := strings.CutPrefix(name, f.Prefix)
		if f.ConfigMapRef == nil || !ok {
			continue
		}
		if cm := cms[ns+"/"+f.ConfigMapRef.Name]; cm != nil && cm.Data[key] != "" {
			return cm.Data[key]
		}
	}
	return ""
}

// workerContract follows the worker's LOANFLOW_AGENCIES_FILE to the
// ConfigMap key mounted there, in the rendered manifests. It returns the
// ConfigMap's name and the file's content, or reports what is missing.
func workerContract(t *testing.T, deps map[string]*appsv1.Deployment, cms map[string]*corev1.ConfigMap) (string, string, bool) {
	t.Helper()
	d := deps["loanflow/loanflow-worker"]
	if d == nil {
		t.Error("no Deployment loanflow/loanflow-worker")
		return "", "", false
	}
	ns, spec := d.Namespace, d.Spec.Template.Spec
	var c *corev1.Container
	for i := range spec.Containers {
		if spec.Containers[i].Name == "worker" {
			c = &spec.Containers[i]
		}
	}
	if c == nil {
		t.Error("the worker Deployment has no container named worker")
		return "", "", false
	}
	file := envValue(*c, ns, cms, envAgenciesFile)
	if file == "" {
		t.Errorf("the worker container does not set %s: the worker runs without the agencies' contracts", envAgenciesFile)
		return "", "", false
	}
	var mount *corev1.VolumeMount
	var rel string
	for i, m := range c.VolumeMounts {
		if m.SubPath != "" && m.MountPath == file {
			mount, rel = &c.VolumeMounts[i], m.SubPath
		} else if r, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/"); ok && m.SubPath == "" {
			mount, rel = &c.VolumeMounts[i], r
		}
	}
	if mount == nil {
		t.Errorf("the worker's %s=%s, but no volume is mounted there", envAgenciesFile, file)
		return "", "", false
	}
	if !mount.ReadOnly {
		t.Errorf("the worker mounts %s (volume %s) read-write, want readOnly", mount.MountPath, mount.Name)
	}
	var vol *corev1.Volume
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == mount.Name {
			vol = &spec.Volumes[i]
		}
	}
	if vol == nil || vol.ConfigMap == nil {
		t.Errorf("the worker's volume %s is not a ConfigMap", mount.Name)
		return "", "", false
	}
	key := rel
	for _, it := range vol.ConfigMap.Items {
		if path.Clean(it.Path) == path.Clean(rel) {
			key = it.Key
		}
	}
	cm := cms[ns+"/"+vol.ConfigMap.Name]
	if cm == nil {
		t.Errorf("the worker mounts ConfigMap %s/%s, which the kustomization does not make", ns, vol.ConfigMap.Name)
		return "", "", false
	}
	text, ok := cm.Data[key]
	if !ok {
		t.Errorf("ConfigMap %s has no key %s (the worker's %s=%s)", cm.Name, key, envAgenciesFile, file)
		return "", "", false
	}
	return cm.Name, text, true
}

func TestKustomizeWorkerGetsAgencyContracts(t *testing.T) {
	example, err := os.ReadFile(exampleContract)
	if err != nil {
		t.Fatal(err)
	}
	deps, cms := kustomized(t, filesys.MakeFsOnDisk(), "k8s")
	name, text, ok := workerContract(t, deps, cms)
	if !ok {
		return
	}
	if text != string(example) {
		t.Errorf("the worker's contract (ConfigMap %s) differs from %s; kustomize reads only files under k8s/, so keep k8s/agencies.toml a copy of it", name, exampleContract)
	}

	// The worker reads the file only as it starts, so a changed contract
	// must change the pod template (a ConfigMap named by its content's
	// hash) and roll the workers, or they keep the old one.
	mem := filesys.MakeFsInMemory()
	files, err := filepath.Glob("k8s/*")
	if err != nil {
		t.Fatal(err)
	}
	changed := false
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) == text {
			b, changed = append(b, "\n# amended\n"...), true
		}
		if err := mem.WriteFile("/"+filepath.ToSlash(f), b); err != nil {
			t.Fatal(err)
		}
	}
	if !changed {
		t.Fatalf("no file under k8s/ holds the contract the worker mounts")
	}
	deps2, cms2 := kustomized(t, mem, "/k8s")
	name2, text2, ok := workerContract(t, deps2, cms2)
	if !ok {
		return
	}
	if text2 == text {
		t.Fatalf("the amended contract file did not reach the worker's ConfigMap %s", name2)
	}
	if name2 == name {
		t.Errorf("a changed contract keeps the worker's ConfigMap name %s, so running workers keep the old contract: make it with configMapGenerator (its name carries the content's hash)", name)
	}
}
