package config

import (
	"os"
	"path/filepath"
	"testing"
)

// Every example shipped in packaging/examples validates, and the example
// agent.toml states exactly the defaults.
func TestExamples(t *testing.T) {
	root := filepath.Join("..", "packaging", "examples")
	// parsed, not loaded: the checkout's owner (root or not) is no
	// property of the examples
	ap, _ := filepath.Abs(filepath.Join(root, "agent.toml"))
	data, err := os.ReadFile(ap)
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseAgent(ap, data)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultAgent()
	want.File = a.File
	if a.ProjectRoot != want.ProjectRoot || a.ConnectorsDir != want.ConnectorsDir || a.Socket != want.Socket ||
		a.SocketGroup != want.SocketGroup || a.MetricsListen != want.MetricsListen || a.SecretsDir != want.SecretsDir ||
		a.StateDir != want.StateDir || a.CacheDir != want.CacheDir || a.MountUID != want.MountUID ||
		a.MountGID != want.MountGID || a.FileMode != want.FileMode || a.DirMode != want.DirMode ||
		a.LogLevel != want.LogLevel || a.ResyncInterval != want.ResyncInterval || len(a.Binaries) != 0 ||
		len(a.ConnectorsFollowSymlinks) != 0 {
		t.Fatalf("example agent.toml differs from the defaults:\n%+v\n%+v", a, want)
	}
	files, _ := filepath.Glob(filepath.Join(root, "connectors.d", "*.toml"))
	if len(files) < 4 {
		t.Fatalf("only %d example connectors", len(files))
	}
	var cs []*Connector
	for _, f := range files {
		if !IsConnectorFile(filepath.Base(f)) {
			t.Errorf("%s is not a connector file name", f)
		}
		info, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(f)
		c, err := ParseConnector(f, data, info, a)
		if err != nil {
			t.Errorf("example %s: %v", f, err)
			continue
		}
		if w := Warnings(c, a); len(w) > 0 {
			t.Errorf("example %s has warnings: %q", f, w)
		}
		cs = append(cs, c)
	}
	if d := DuplicateMountNames(cs); len(d) > 0 {
		t.Errorf("examples share mount names: %v", d)
	}
}
