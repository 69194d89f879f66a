package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Backends that run an external binary, the keys [binaries] may hold.
var externalBackends = []string{"geesefs", "s3fs"}

func defaultAgent() *Agent {
	return &Agent{
		ProjectRoot:   "/home/jupyter/mnt/s3",
		ConnectorsDir: "/etc/s3mounts/connectors.d",
		Socket:        "/run/s3mounts/agent.sock",
		SocketGroup:   "s3mounts",
		SecretsDir:    "/etc/s3mounts/secrets",
		StateDir:      "/var/lib/s3mounts",
		CacheDir:      "/var/cache/s3mounts",
		MountUID:      1000,
		MountGID:      100,
		FileMode:      0o644,
		DirMode:       0o755,
		Roles: Roles{
			Admin:    []string{"uid:0", "group:s3mounts-admin"},
			Operator: []string{"group:s3mounts"},
			Viewer:   []string{},
		},
		LogLevel:       "info",
		ResyncInterval: 60 * time.Second,
		Binaries:       map[string]string{},
		Limits:         Limits{ConnectionsPerUID: 128, EventStreamsPerUID: 32},
	}
}

type rawAgent struct {
	ProjectRoot    val `toml:"project_root"`
	ConnectorsDir  val `toml:"connectors_dir"`
	FollowLinks    val `toml:"connectors_follow_symlinks"`
	Socket         val `toml:"socket"`
	SocketGroup    val `toml:"socket_group"`
	MetricsListen  val `toml:"metrics_listen"`
	SecretsDir     val `toml:"secrets_dir"`
	StateDir       val `toml:"state_dir"`
	CacheDir       val `toml:"cache_dir"`
	MountUID       val `toml:"mount_uid"`
	MountGID       val `toml:"mount_gid"`
	FileMode       val `toml:"file_mode"`
	DirMode        val `toml:"dir_mode"`
	LogLevel       val `toml:"log_level"`
	ResyncInterval val `toml:"resync_interval"`
	Roles          struct {
		Admin    val `toml:"admin"`
		Operator val `toml:"operator"`
		Viewer   val `toml:"viewer"`
	} `toml:"roles"`
	Binaries map[string]val `toml:"binaries"`
	Limits   struct {
		ConnectionsPerUID  val `toml:"connections_per_uid"`
		EventStreamsPerUID val `toml:"event_streams_per_uid"`
	} `toml:"limits"`
	MetricsConnectors val `toml:"metrics_connectors"`
}

var agentKeys = keySpec{
	leaves: setOf("project_root", "connectors_dir", "connectors_follow_symlinks", "socket", "socket_group", "metrics_listen",
		"secrets_dir", "state_dir", "cache_dir", "mount_uid", "mount_gid", "file_mode", "dir_mode",
		"log_level", "resync_interval", "roles.admin", "roles.operator", "roles.viewer",
		"limits.connections_per_uid", "limits.event_streams_per_uid", "metrics_connectors"),
	tables:       setOf("roles", "binaries", "limits"),
	anyLeafUnder: setOf("binaries"),
}

func setOf(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, x := range s {
		m[x] = true
	}
	return m
}

func loadAgent(path string) (*Agent, error) {
	explicit := path != ""
	if !explicit {
		path = DefaultAgentPath
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	data, _, _, err := readTrusted(path, trust{what: "agent settings file"}, maxConnectorSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if !explicit {
				return defaultAgent(), nil
			}
			return nil, fmt.Errorf("%w: %s does not exist: create it or leave --config out to use the defaults", ErrNoConfig, path)
		}
		return nil, &FileError{File: path, Msg: strings.TrimPrefix(err.Error(), path+" ")}
	}
	return parseAgent(path, data)
}

// parseAgent validates agent.toml. Relative paths are taken relative to the
// file's directory.
func parseAgent(path string, data []byte) (*Agent, error) {
	a := defaultAgent()
	a.File = path
	d := &doc{file: path, src: string(data)}
	var raw rawAgent
	if !d.decode(&raw, agentKeys) {
		return nil, d.err()
	}
	d.unknownKeys(agentKeys)
	base := filepath.Dir(path)

	dir := func(key string, v val, dst *string) {
		s, ok := d.str(key, v)
		if !ok {
			return
		}
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			d.failKey(key, "must not be empty: give a path, or remove the key for the default %q", *dst)
		case hasControl(s):
			d.failKey(key, "must not contain control characters")
		default:
			if !filepath.IsAbs(s) {
				s = filepath.Join(base, s)
			}
			*dst = filepath.Clean(s)
		}
	}
	dir("project_root", raw.ProjectRoot, &a.ProjectRoot)
	dir("connectors_dir", raw.ConnectorsDir, &a.ConnectorsDir)
	dir("socket", raw.Socket, &a.Socket)
	dir("secrets_dir", raw.SecretsDir, &a.SecretsDir)
	dir("state_dir", raw.StateDir, &a.StateDir)
	dir("cache_dir", raw.CacheDir, &a.CacheDir)
	if list, ok := d.strList("connectors_follow_symlinks", raw.FollowLinks); ok {
		for i, s := range list {
			s = strings.TrimSpace(s)
			if !filepath.IsAbs(s) || hasControl(s) || filepath.Clean(s) == "/" {
				d.failKey("connectors_follow_symlinks", "element %d must be an absolute directory other than \"/\", e.g. \"/srv/s3mounts/connectors\"", i+1)
				continue
			}
			a.ConnectorsFollowSymlinks = append(a.ConnectorsFollowSymlinks, filepath.Clean(s))
		}
	}
	if a.ProjectRoot == "/" {
		d.failKey("project_root", `must not be "/": mounts would land on top of the system's directories`)
	}

	if s, ok := d.str("socket_group", raw.SocketGroup); ok {
		if !validPrincipalName(s) {
			d.failKey("socket_group", "is not a group name: give the name (or numeric gid) of the group allowed to connect")
		} else {
			a.SocketGroup = s
		}
	}
	if s, ok := d.str("metrics_listen", raw.MetricsListen); ok {
		s = strings.TrimSpace(s)
		if s != "" {
			host, port, err := net.SplitHostPort(s)
			if err != nil || port == "" {
				d.failKey("metrics_listen", `is not an address: write HOST:PORT, e.g. "127.0.0.1:9108", or "" to turn metrics off`)
			} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
				d.failKey("metrics_listen", "the port is not a number from 0 to 65535")
			} else {
				_ = host
			}
		}
		a.MetricsListen = s
	}
	if b, ok := d.boolean("metrics_connectors", raw.MetricsConnectors); ok {
		a.MetricsConnectors = b
	}
	limit := func(key string, v val, dst *int) {
		n, ok := d.integer(key, v)
		if !ok {
			return
		}
		if n < 1 || n > 65536 {
			d.failKey(key, "%d is out of range: use a number from 1 to 65536", n)
			return
		}
		*dst = int(n)
	}
	limit("limits.connections_per_uid", raw.Limits.ConnectionsPerUID, &a.Limits.ConnectionsPerUID)
	limit("limits.event_streams_per_uid", raw.Limits.EventStreamsPerUID, &a.Limits.EventStreamsPerUID)
	id := func(key string, v val, dst *uint32) {
		n, ok := d.integer(key, v)
		if !ok {
			return
		}
		if n < 0 || n >= 1<<32-1 {
			d.failKey(key, "%d is not a valid id: use a number from 0 to 4294967294", n)
			return
		}
		*dst = uint32(n)
	}
	id("mount_uid", raw.MountUID, &a.MountUID)
	id("mount_gid", raw.MountGID, &a.MountGID)
	a.FileMode = os.FileMode(d.mode("file_mode", raw.FileMode, uint32(a.FileMode)))
	a.DirMode = os.FileMode(d.mode("dir_mode", raw.DirMode, uint32(a.DirMode)))
	if s, ok := d.str("log_level", raw.LogLevel); ok {
		switch l := strings.ToLower(strings.TrimSpace(s)); l {
		case "debug", "info", "warn", "error":
			a.LogLevel = l
		case "warning":
			a.LogLevel = "warn"
		default:
			d.failKey("log_level", "is not a log level: use debug, info, warn or error")
		}
	}
	a.ResyncInterval = d.duration("resync_interval", raw.ResyncInterval, a.ResyncInterval, time.Second, 24*time.Hour)

	roles := func(key string, v val, dst *[]string) {
		list, ok := d.strList(key, v)
		if !ok {
			return
		}
		good := true
		for i, m := range list {
			if err := checkRoleMember(m); err != nil {
				d.failKey(key, "element %d %s", i+1, err)
				good = false
			}
		}
		if good {
			*dst = list
		}
	}
	roles("roles.admin", raw.Roles.Admin, &a.Roles.Admin)
	roles("roles.operator", raw.Roles.Operator, &a.Roles.Operator)
	roles("roles.viewer", raw.Roles.Viewer, &a.Roles.Viewer)

	names := make([]string, 0, len(raw.Binaries))
	for k := range raw.Binaries {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		key := "binaries." + name
		if !contains(externalBackends, name) {
			d.failKey(key, "is not a backend that runs a binary: use %s", strings.Join(externalBackends, " or "))
			continue
		}
		s, ok := d.str(key, raw.Binaries[name])
		if !ok {
			continue
		}
		if s != "" && !filepath.IsAbs(s) {
			d.failKey(key, "must be an absolute path (or \"\" to search PATH)")
			continue
		}
		if s != "" {
			a.Binaries[name] = filepath.Clean(s)
		}
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	return a, nil
}

// checkRoleMember validates "user:NAME", "group:NAME" or "uid:N".
func checkRoleMember(m string) error {
	kind, name, ok := strings.Cut(m, ":")
	if !ok {
		return errors.New(`is not a member: write "user:NAME", "group:NAME" or "uid:N"`)
	}
	switch kind {
	case "user", "group":
		if !validPrincipalName(name) {
			return fmt.Errorf("is not a %s name (no spaces, colons or control characters)", kind)
		}
	case "uid":
		n, err := strconv.ParseUint(name, 10, 32)
		if err != nil || n == 1<<32-1 {
			return errors.New("is not a numeric uid")
		}
	default:
		return errors.New(`has an unknown kind: write "user:NAME", "group:NAME" or "uid:N"`)
	}
	return nil
}

// validPrincipalName accepts user and group names as systems allow them
// (including LDAP names with dots, @ and $), but no separators or spaces.
func validPrincipalName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == ':' || r == ',' || r == '/' {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
