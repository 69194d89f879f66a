package packaging

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// k8sObject is the part of a manifest the test looks at.
type k8sObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Data       map[string]string `json:"data"`
	StringData map[string]string `json:"stringData"`
	Spec       struct {
		UpdateStrategy struct {
			Type string `json:"type"`
		} `json:"updateStrategy"`
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds int  `json:"terminationGracePeriodSeconds"`
				HostPID                       bool `json:"hostPID"`
				Containers                    []struct {
					Name            string   `json:"name"`
					Command         []string `json:"command"`
					SecurityContext struct {
						Privileged bool `json:"privileged"`
					} `json:"securityContext"`
					LivenessProbe *struct {
						Exec struct {
							Command []string `json:"command"`
						} `json:"exec"`
					} `json:"livenessProbe"`
					Resources struct {
						Limits map[string]string `json:"limits"`
					} `json:"resources"`
					VolumeMounts []struct {
						Name             string `json:"name"`
						MountPath        string `json:"mountPath"`
						MountPropagation string `json:"mountPropagation"`
						ReadOnly         bool   `json:"readOnly"`
					} `json:"volumeMounts"`
				} `json:"containers"`
				Volumes []struct {
					Name     string `json:"name"`
					HostPath *struct {
						Path string `json:"path"`
						Type string `json:"type"`
					} `json:"hostPath"`
					ConfigMap *struct {
						Name string `json:"name"`
					} `json:"configMap"`
					Secret *struct {
						SecretName  string `json:"secretName"`
						DefaultMode *int   `json:"defaultMode"`
					} `json:"secret"`
				} `json:"volumes"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
	Resources []string `json:"resources"` // kustomization
}

// yamlToJSON parses YAML files with a Python that has PyYAML (no YAML
// parser is among the module's dependencies); it skips when none has it.
func yamlToJSON(t *testing.T, files []string) map[string][]k8sObject {
	t.Helper()
	const prog = `import json, sys, yaml
print(json.dumps({f: [d for d in yaml.safe_load_all(open(f)) if d is not None] for f in sys.argv[1:]}))`
	var why []string
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if _, err := exec.LookPath(py); err != nil {
			continue
		}
		out, err := exec.Command(py, append([]string{"-c", prog}, files...)...).CombinedOutput()
		if err != nil {
			if strings.Contains(string(out), "No module named 'yaml'") {
				why = append(why, py+" has no PyYAML")
				continue
			}
			t.Fatalf("YAML does not parse (%s): %v\n%s", py, err, out)
		}
		var docs map[string][]k8sObject
		if err := json.Unmarshal(out, &docs); err != nil {
			t.Fatalf("decode the manifests: %v", err)
		}
		return docs
	}
	t.Skipf("SKIP: no Python with PyYAML to parse the manifests (%s); nothing else here parses YAML", strings.Join(why, "; "))
	return nil
}

// systemdSeconds converts a systemd time span of the unit ("3min", "90s").
func systemdSeconds(t *testing.T, s string) int {
	t.Helper()
	d, err := time.ParseDuration(strings.NewReplacer("min", "m", "sec", "s").Replace(s))
	if err != nil {
		t.Fatalf("time span %q: %v", s, err)
	}
	return int(d.Seconds())
}

func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(), "packaging", "kubernetes")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) < 5 {
		t.Fatalf("packaging/kubernetes has %d YAML files, want the DaemonSet, ConfigMaps, Secret, Namespace, kustomization", len(files))
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), "\t") {
			t.Errorf("%s has a tab: YAML forbids tabs for indentation", f)
		}
	}
	docs := yamlToJSON(t, files)

	byKind := map[string]k8sObject{}
	var resources []string
	for f, ds := range docs {
		if filepath.Base(f) == "kustomization.yaml" {
			resources = ds[0].Resources
			continue
		}
		for _, d := range ds {
			if d.APIVersion == "" || d.Kind == "" || d.Metadata.Name == "" {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			if d.Kind != "Namespace" && d.Metadata.Namespace != "s3mounts" {
				t.Errorf("%s: %s %s is in namespace %q, want s3mounts", f, d.Kind, d.Metadata.Name, d.Metadata.Namespace)
			}
			byKind[d.Kind+"/"+d.Metadata.Name] = d
		}
	}
	// The kustomization names every manifest.
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(resources, b) {
			t.Errorf("kustomization.yaml does not list %s", b)
		}
	}

	ds, ok := byKind["DaemonSet/s3mountd"]
	if !ok {
		t.Fatalf("no DaemonSet s3mountd among %v", keys(byKind))
	}
	var agent struct {
		ProjectRoot   string `toml:"project_root"`
		ConnectorsDir string `toml:"connectors_dir"`
		SecretsDir    string `toml:"secrets_dir"`
		StateDir      string `toml:"state_dir"`
		CacheDir      string `toml:"cache_dir"`
		Socket        string `toml:"socket"`
	}
	if _, err := toml.Decode(byKind["ConfigMap/s3mounts-agent"].Data["agent.toml"], &agent); err != nil {
		t.Fatalf("agent.toml of the ConfigMap s3mounts-agent: %v", err)
	}

	spec := ds.Spec.Template.Spec
	if ds.Spec.UpdateStrategy.Type != "OnDelete" {
		t.Errorf("updateStrategy %q: a rollout replaces the pod, which ends every worker and mount; want OnDelete", ds.Spec.UpdateStrategy.Type)
	}
	unit, _ := os.ReadFile(filepath.Join(testenv.RepoRoot(), "packaging/systemd/s3mountd.service"))
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("s3mountd.service has no TimeoutStopSec")
	}
	if want := systemdSeconds(t, string(m[1])); spec.TerminationGracePeriodSeconds != want {
		t.Errorf("terminationGracePeriodSeconds = %d, want %d (TimeoutStopSec=%s of the unit)", spec.TerminationGracePeriodSeconds, want, m[1])
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(spec.Containers))
	}
	c := spec.Containers[0]
	if !c.SecurityContext.Privileged {
		t.Error("the container is not privileged: FUSE and Bidirectional propagation need it")
	}
	if c.LivenessProbe == nil || !slices.Contains(c.LivenessProbe.Exec.Command, "health") ||
		!strings.HasSuffix(c.LivenessProbe.Exec.Command[0], "s3mountctl") {
		t.Errorf("livenessProbe is not `s3mountctl health`: %+v", c.LivenessProbe)
	}
	if _, ok := c.Resources.Limits["memory"]; ok {
		t.Error("a memory limit is shared by the daemon and every worker; an OOM kill of the daemon (PID 1) restarts the container and ends every mount")
	}

	volumes := map[string]int{}
	for i, v := range spec.Volumes {
		volumes[v.Name] = i
	}
	mounts := map[string]string{} // mountPath -> volume
	for _, vm := range c.VolumeMounts {
		if _, ok := volumes[vm.Name]; !ok {
			t.Errorf("volumeMount %s names no volume", vm.Name)
		}
		mounts[vm.MountPath] = vm.Name
		if vm.MountPath == agent.ProjectRoot && vm.MountPropagation != "Bidirectional" {
			t.Errorf("project root %s has mountPropagation %q, want Bidirectional", vm.MountPath, vm.MountPropagation)
		}
	}
	hostPath := func(mountPath string) string {
		v, ok := mounts[mountPath]
		if !ok {
			t.Errorf("nothing is mounted at %s", mountPath)
			return ""
		}
		vol := spec.Volumes[volumes[v]]
		if vol.HostPath == nil {
			t.Errorf("%s is not a hostPath volume", mountPath)
			return ""
		}
		return vol.HostPath.Path
	}
	for _, p := range []string{agent.ProjectRoot, "/dev/fuse", filepath.Dir(agent.Socket), agent.StateDir, agent.CacheDir} {
		if hp := hostPath(p); hp != "" && hp != p {
			t.Errorf("%s comes from the node's %s; want the same path on the node", p, hp)
		}
	}
	if v := spec.Volumes[volumes[mounts[agent.ConnectorsDir]]]; v.ConfigMap == nil || v.ConfigMap.Name != "s3mounts-connectors" {
		t.Errorf("connectors_dir %s is not the ConfigMap s3mounts-connectors", agent.ConnectorsDir)
	}
	if v := spec.Volumes[volumes[mounts[agent.SecretsDir]]]; v.Secret == nil || v.Secret.SecretName != "s3mounts-secrets" ||
		v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
		t.Errorf("secrets_dir %s is not the Secret s3mounts-secrets with defaultMode 0400: %+v", agent.SecretsDir, v.Secret)
	}
	// --config points into the agent ConfigMap's mount.
	if i := slices.Index(c.Command, "--config"); i < 0 || i+1 >= len(c.Command) ||
		mounts[filepath.Dir(c.Command[i+1])] != "agent-config" {
		t.Errorf("command %v does not read agent.toml from the ConfigMap s3mounts-agent", c.Command)
	}

	// Every secret a connector names is in the Secret; every connector
	// passes the real `s3mountctl validate`.
	secret := byKind["Secret/s3mounts-secrets"]
	cdir := t.TempDir()
	for k, v := range byKind["ConfigMap/s3mounts-connectors"].Data {
		if err := os.WriteFile(filepath.Join(cdir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		var conn struct {
			Credentials struct {
				SecretName string `toml:"secret_name"`
			} `toml:"credentials"`
		}
		if _, err := toml.Decode(v, &conn); err != nil {
			t.Errorf("connector %s: %v", k, err)
		}
		if n := conn.Credentials.SecretName; n != "" {
			if _, ok := secret.StringData[n]; !ok {
				t.Errorf("connector %s names secret %q, which the Secret s3mounts-secrets lacks", k, n)
			}
		}
	}
	_, ctl := testenv.Binaries(t)
	if out, err := exec.Command(ctl, "validate", cdir).CombinedOutput(); err != nil {
		t.Errorf("s3mountctl validate of the ConfigMap's connectors: %v\n%s", err, out)
	}

	if _, err := exec.LookPath("kubectl"); err == nil {
		if out, err := exec.Command("kubectl", "kustomize", dir).CombinedOutput(); err != nil {
			t.Errorf("kubectl kustomize: %v\n%s", err, out)
		} else if !strings.Contains(string(out), "kind: DaemonSet") || !strings.Contains(string(out), "kind: Secret") {
			t.Errorf("kubectl kustomize left out the DaemonSet or the Secret:\n%s", out)
		}
	} else {
		t.Log("kubectl is not installed: the kustomization was checked by this test only")
	}
}

func keys(m map[string]k8sObject) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// kubeletWrite lays files out in dir as kubelet's atomic writer does for a
// ConfigMap or Secret volume: a timestamped directory holding the files,
// "..data" pointing at it (swapped by rename), and "<key>" → "..data/<key>".
func kubeletWrite(t *testing.T, dir string, files map[string]string, mode os.FileMode) {
	t.Helper()
	ts := "..2026_01_01_00_00_00." + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range files {
		p := filepath.Join(dir, ts, k)
		if err := os.WriteFile(p, []byte(v), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for k := range files {
		if _, err := os.Lstat(filepath.Join(dir, k)); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		os.RemoveAll(filepath.Join(dir, old))
	}
}

// TestKubernetesVolumeLayout runs the real daemon on connectors and a
// secret laid out as the DaemonSet's ConfigMap and Secret (defaultMode
// 0400) volumes are, and updates the ConfigMap the way kubelet does.
func TestKubernetesVolumeLayout(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "k8s-data", map[string]string{"a.txt": "from a Kubernetes Secret\n"})
	d := testenv.StartDaemon(t, testenv.DaemonOptions{})

	kubeletWrite(t, d.SecretsDir, map[string]string{"minio-key": m.SecretKey}, 0o400)
	conn := func(mountName string) string {
		return fmt.Sprintf("name = \"K8s\"\nendpoint = %q\nbucket = \"k8s-data\"\nmount_name = %q\nactive = true\n\n[credentials]\naccess_key_id = %q\nsecret_name = \"minio-key\"\n",
			m.Endpoint, mountName, m.AccessKey)
	}
	kubeletWrite(t, d.ConnectorsDir, map[string]string{"k8s.toml": conn("first")}, 0o644)
	d.WaitState("k8s", "mounted")
	b, err := os.ReadFile(filepath.Join(d.ProjectRoot, "first", "a.txt"))
	if err != nil || string(b) != "from a Kubernetes Secret\n" {
		t.Fatalf("read through the mount: %q %v", b, err)
	}

	// A ConfigMap update: kubelet swaps ..data; the mount follows.
	kubeletWrite(t, d.ConnectorsDir, map[string]string{"k8s.toml": conn("second")}, 0o644)
	d.WaitFor("k8s", "mount_name second, mounted", func(c client.Connector, ok bool) bool {
		return ok && c.MountName == "second" && c.State == "mounted"
	})
	if b, err := os.ReadFile(filepath.Join(d.ProjectRoot, "second", "a.txt")); err != nil || string(b) != "from a Kubernetes Secret\n" {
		t.Fatalf("read through the moved mount: %q %v", b, err)
	}
	if ms := d.Mounts(); len(ms) != 1 || ms[0] != filepath.Join(d.ProjectRoot, "second") {
		t.Errorf("mounts after the ConfigMap update: %v, want only .../second", ms)
	}
}
