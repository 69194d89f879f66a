package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultAgent(t *testing.T) {
	a := DefaultAgent()
	if a.ProjectRoot != "/home/jupyter/mnt/s3" || a.ConnectorsDir != "/etc/s3mounts/connectors.d" ||
		a.Socket != "/run/s3mounts/agent.sock" || a.SocketGroup != "s3mounts" || a.MetricsListen != "" ||
		a.SecretsDir != "/etc/s3mounts/secrets" || a.StateDir != "/var/lib/s3mounts" ||
		a.CacheDir != "/var/cache/s3mounts" || a.MountUID != 1000 || a.MountGID != 100 ||
		a.FileMode != 0o644 || a.DirMode != 0o755 || a.LogLevel != "info" || a.ResyncInterval != time.Minute {
		t.Fatalf("defaults: %+v", a)
	}
	want := Roles{Admin: []string{"uid:0", "group:s3mounts-admin"}, Operator: []string{"group:s3mounts"}, Viewer: []string{}}
	if !reflect.DeepEqual(a.Roles, want) {
		t.Fatalf("roles: %+v", a.Roles)
	}
	// Each call returns a fresh value.
	a.Roles.Admin[0] = "changed"
	if DefaultAgent().Roles.Admin[0] != "uid:0" {
		t.Fatal("DefaultAgent shares its slices")
	}
}

func TestLoadAgentFull(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.toml")
	src := `project_root = "/srv/mnt"
connectors_dir = "connectors.d"
socket = "/tmp/s.sock"
socket_group = "jupyter"
metrics_listen = "127.0.0.1:9108"
secrets_dir = "/srv/secrets"
state_dir = "/srv/state"
cache_dir = "/srv/cache"
mount_uid = 1001
mount_gid = 1002
file_mode = "0664"
dir_mode = "0775"
log_level = "debug"
resync_interval = "30s"

[roles]
admin = ["uid:0"]
viewer = ["group:all", "user:bob"]

[binaries]
geesefs = "/opt/geesefs"
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := LoadAgent(path)
	if err != nil {
		t.Fatal(err)
	}
	want := &Agent{
		ProjectRoot: "/srv/mnt", ConnectorsDir: filepath.Join(dir, "connectors.d"), Socket: "/tmp/s.sock",
		SocketGroup: "jupyter", MetricsListen: "127.0.0.1:9108", SecretsDir: "/srv/secrets", StateDir: "/srv/state",
		CacheDir: "/srv/cache", MountUID: 1001, MountGID: 1002, FileMode: 0o664, DirMode: 0o775,
		Roles:    Roles{Admin: []string{"uid:0"}, Operator: []string{"group:s3mounts"}, Viewer: []string{"group:all", "user:bob"}},
		LogLevel: "debug", ResyncInterval: 30 * time.Second, Binaries: map[string]string{"geesefs": "/opt/geesefs"}, File: path,
		Limits: Limits{ConnectionsPerUID: 128, EventStreamsPerUID: 32},
	}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("got  %+v\nwant %+v", a, want)
	}
}

func TestLoadAgentMissing(t *testing.T) {
	_, err := LoadAgent(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, ErrNoConfig) {
		t.Fatalf("explicit missing file: %v", err)
	}
	a, err := LoadAgent(filepath.Join(t.TempDir(), "empty.toml"))
	if err == nil || a != nil {
		t.Fatal("missing explicit file gave settings")
	}
	path := filepath.Join(t.TempDir(), "empty.toml")
	os.WriteFile(path, nil, 0o644)
	a, err = LoadAgent(path)
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultAgent()
	d.File = path
	if !reflect.DeepEqual(a, d) {
		t.Fatalf("empty file: %+v", a)
	}
}

func TestAgentErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want, msg string
	}{
		{"unknown key", "project_rot = \"/x\"", "1: project_rot", `did you mean "project_root"`},
		{"root slash", "project_root = \"/\"", "1: project_root", `must not be "/"`},
		{"empty dir", "state_dir = \"\"", "1: state_dir", "must not be empty"},
		{"uid string", "mount_uid = \"1000\"", "1: mount_uid", "integer"},
		{"uid range", "mount_gid = -5", "1: mount_gid", "not a valid id"},
		{"mode int", "file_mode = 644", "1: file_mode", "octal string"},
		{"mode bad", "dir_mode = \"0x755\"", "1: dir_mode", "octal"},
		{"log level", "log_level = \"loud\"", "1: log_level", "debug, info, warn or error"},
		{"resync", "resync_interval = \"0s\"", "1: resync_interval", "out of range"},
		{"metrics", "metrics_listen = \"9108\"", "1: metrics_listen", "HOST:PORT"},
		{"socket group", "socket_group = \"a b\"", "1: socket_group", "not a group name"},
		{"role member", "[roles]\nadmin = [\"root\"]", "2: roles.admin", `element 1 is not a member`},
		{"role kind", "[roles]\noperator = [\"team:x\"]", "2: roles.operator", "unknown kind"},
		{"role uid", "[roles]\nviewer = [\"uid:abc\"]", "2: roles.viewer", "numeric uid"},
		{"role list", "[roles]\nviewer = \"group:x\"", "2: roles.viewer", "array of strings"},
		{"unknown role", "[roles]\nowner = [\"uid:0\"]", "2: roles.owner", "unknown key"},
		{"binaries unknown", "[binaries]\nrclone = \"/usr/bin/rclone\"", "2: binaries.rclone", "geesefs or s3fs"},
		{"binaries relative", "[binaries]\ns3fs = \"bin/s3fs\"", "2: binaries.s3fs", "absolute path"},
		{"roles as value", "roles = \"x\"", "1: roles", "must be a table"},
		{"syntax", "project_root = /x", "1", "fix the TOML syntax"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "agent.toml")
			if err := os.WriteFile(path, []byte(tc.src+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadAgent(path)
			if err == nil {
				t.Fatal("no error")
			}
			fileErrors(t, err, path)
			want := path + ":" + tc.want + ": "
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want %q … %q, got %v", want, tc.msg, err)
			}
		})
	}
}

// TestAgentLimitsAndMetricsKeys: [limits] and metrics_connectors parse,
// default, and refuse out-of-range values with the key named.
func TestAgentLimitsAndMetricsKeys(t *testing.T) {
	a := DefaultAgent()
	if a.Limits.ConnectionsPerUID != 128 || a.Limits.EventStreamsPerUID != 32 || a.MetricsConnectors {
		t.Fatalf("defaults: %+v metrics_connectors=%v", a.Limits, a.MetricsConnectors)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.toml")
	os.WriteFile(path, []byte("metrics_connectors = true\n[limits]\nconnections_per_uid = 8\nevent_streams_per_uid = 2\n"), 0o600)
	a, err := LoadAgent(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Limits.ConnectionsPerUID != 8 || a.Limits.EventStreamsPerUID != 2 || !a.MetricsConnectors {
		t.Fatalf("parsed: %+v metrics_connectors=%v", a.Limits, a.MetricsConnectors)
	}
	os.WriteFile(path, []byte("[limits]\nevent_streams_per_uid = 0\n"), 0o600)
	if _, err := LoadAgent(path); err == nil || !strings.Contains(err.Error(), "limits.event_streams_per_uid") {
		t.Fatalf("0 streams: err = %v, want one naming limits.event_streams_per_uid", err)
	}
	os.WriteFile(path, []byte("metrics_connectors = \"yes\"\n"), 0o600)
	if _, err := LoadAgent(path); err == nil || !strings.Contains(err.Error(), "metrics_connectors") {
		t.Fatalf("string bool: err = %v", err)
	}
}
