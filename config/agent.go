package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Backends that run an external binary, the keys [binaries] may hold.
var externalBackends = []string{"geesefs", "s3fs"}

func setOf(s ...string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, x := range s {
		m[x] = true
	}
	return m
}

// LoadAgent reads agent.toml at path. path == "" means DefaultAgentPath,
// and a missing default file yields DefaultAgent(). The file must be a
// regular file owned by root and not writable by group or others. Errors
// are *FileError.
func LoadAgent(path string) (*Agent, error) {
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
				return DefaultAgent(), nil
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
	a := DefaultAgent()
	a.File = path
	d := &doc{file: path, src: string(data)}
	if !d.decode(agentKeys) {
		return nil, d.err()
	}
	d.unknownKeys(agentKeys)
	d.apply(AgentKeys, a, filepath.Dir(path))
	if a.ProjectRoot == "/" {
		d.failKey("project_root", `must not be "/": mounts would land on top of the system's directories`)
	}

	binaries, _ := d.get("binaries").v.(map[string]any)
	names := make([]string, 0, len(binaries))
	for k := range binaries {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		key := "binaries." + name
		if !contains(externalBackends, name) {
			d.failKey(key, "is not a backend that runs a binary: use %s", strings.Join(externalBackends, " or "))
			continue
		}
		s, ok := d.str(key, val{v: binaries[name], set: true})
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
