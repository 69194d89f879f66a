package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// This file is the one definition of every key of agent.toml and of the
// connector files: its path, kind, default, bounds and one-line doc. The
// table drives decoding (which keys exist, the "did you mean" of unknown
// ones), the defaults, the validation of simple keys, and the key tables
// of docs/CONFIG.md (go run ./internal/tools/configdoc). Rules that combine
// keys (credentials, access policies) stay hand-written; their keys are
// still listed here so that they are known.

// Kind is the kind of value a key holds.
type Kind int

const (
	KindString    Kind = iota // a string, normalised and checked by Key.Check
	KindEnum                  // one of Key.Enum
	KindBool                  // true or false
	KindInt                   // an integer from Key.Min to Key.Max
	KindDuration              // a Go duration ("10s") from Key.Min to Key.Max nanoseconds
	KindSize                  // bytes: an integer, or "N" with KiB, MiB, GiB, TiB or B, from Key.Min to Key.Max
	KindShare                 // a size, or "N%" of a filesystem (Field: bytes, Field2: percent)
	KindMode                  // an octal permission string ("0644")
	KindDatetime              // a TOML date-time with a zone (or an RFC 3339 string), stored in UTC
	KindPrincipal             // a user (or group, Key.Group) name or numeric id (Field: as written, Field2: the id)
	KindPath                  // a path, relative to the file's directory when not absolute
	KindList                  // an array of strings, each checked by Key.Check
	KindTable                 // a table whose keys are listed separately
	KindHand                  // validated by hand (credentials, access policy, [binaries])
)

// Key is one key of a file.
type Key struct {
	Path  string // "stall_timeout", "cache.metadata_ttl"
	Kind  Kind
	Field string // the field of Connector or Agent that receives the value ("A.B" for nested)
	// Field2 receives the second value of KindShare and KindPrincipal.
	Field2 string
	// Default is the value when the key is absent, as TOML ("\"10s\"",
	// "16", "[]"); "" leaves the field as it is (zero, or set by the agent).
	Default string
	// Required, when set, makes the key required; it says what to add.
	Required string
	Enum     []string
	Min, Max int64 // bounds of KindInt, KindDuration (ns), KindSize (bytes)
	// RangeMsg replaces an integer's "N is out of range: …" message (after "N ").
	RangeMsg string
	// Check normalises and checks a KindString value or each element of a
	// KindList; its error is the message after the key.
	Check func(string) (string, error)
	Group bool // KindPrincipal: a group, not a user
	Doc   string
	// DocKey and DocDefault replace the key and default cells of the
	// docs' table (e.g. to document two keys in one row); NoDoc leaves the
	// key out of the table (documented in another row or section).
	DocKey, DocDefault string
	NoDoc              bool
	// JoinPrev documents the key in the previous key's row, its name (and
	// default, when both have one) joined with this separator.
	JoinPrev string
}

const maxID = 1<<32 - 2

// ConnectorKeys are the keys of a connector file, in the docs' order.
var ConnectorKeys = []Key{
	{Path: "name", Kind: KindString, Field: "Name", Required: `add name = "…", the name shown in the panel`, Check: checkName,
		Doc: "one line, at most 200 bytes; shown in the panel"},
	{Path: "description", Kind: KindString, Field: "Description", Default: `""`, Check: checkDescription,
		Doc: "at most 4096 bytes"},
	{Path: "endpoint", Kind: KindString, Field: "Endpoint", Required: `add endpoint = "https://…", the S3 service's URL`, Check: checkEndpoint,
		Doc: "an `http://` or `https://` URL with a host; no user, password, query or fragment"},
	{Path: "region", Kind: KindString, Field: "Region", Default: `"us-east-1"`, Check: checkRegion,
		Doc: "letters, digits, `-`, `_` (e.g. `ru-central1`)"},
	{Path: "bucket", Kind: KindString, Field: "Bucket", Required: `add bucket = "…", the bucket's name`, Check: checkBucketName,
		Doc: "S3 naming rules: 3–63 characters, lowercase letters, digits, `.` and `-`; starts and ends with a letter or digit; no `..`, no `.-`/`-.`; not an IP address. Dots are allowed"},
	{Path: "prefix", Kind: KindString, Field: "Prefix", Default: `""`, DocDefault: "`\"\"` (the whole bucket)", Check: normalizePrefix,
		Doc: "mounts only this prefix; gets a trailing `/`; no leading `/`, no `//`, no `.` or `..` segments"},
	{Path: "mount_name", Kind: KindString, Field: "MountName", Required: `add mount_name = "…", the directory under the project root`, Check: checkMountName,
		Doc: "`[A-Za-z0-9._-]{1,64}`, not `.` or `..`; two connectors may not share one"},
	{Path: "mode", Kind: KindEnum, Field: "Mode", Default: `"ro"`, Enum: []string{"ro", "rw"},
		Doc: "`\"ro\"` or `\"rw\"`"},
	{Path: "backend", Kind: KindEnum, Field: "Backend", Default: `"default"`, Enum: []string{"default", "geesefs", "s3fs"},
		Doc: "`\"default\"` (built-in), `\"geesefs\"`, `\"s3fs\"`"},
	{Path: "active", Kind: KindBool, Field: "Active", Default: "false",
		Doc: "the desired state whenever the file is (re)loaded"},
	{Path: "addressing", Kind: KindEnum, Field: "Addressing", Default: `"auto"`, Enum: []string{"auto", "path", "virtual"},
		Doc: "`\"auto\"`, `\"path\"`, `\"virtual\"`. `auto` uses path-style requests when the bucket has a dot or the endpoint is not AWS"},
	{Path: "created_by", Kind: KindString, Field: "CreatedBy", Default: `""`, Check: checkCreatedBy,
		Doc: "one line"},
	{Path: "created_at", Kind: KindDatetime, Field: "CreatedAt",
		Doc: "a TOML date-time with a zone, e.g. `2022-07-18T14:23:00Z` (an RFC 3339 string works too); stored in UTC"},
	{Path: "updated_at", Kind: KindDatetime, Field: "UpdatedAt", JoinPrev: ", "},
	{Path: "owner", Kind: KindPrincipal, Field: "Owner", Field2: "UID", DocDefault: "agent's `mount_uid`",
		Doc: "a user name known to the node, or a uid (`1000` or `\"1000\"`)"},
	{Path: "group", Kind: KindPrincipal, Field: "Group", Field2: "GID", Group: true, DocDefault: "agent's `mount_gid`",
		Doc: "a group name known to the node, or a gid"},
	{Path: "file_mode", Kind: KindMode, Field: "FileMode", DocDefault: "agent's `file_mode`/`dir_mode`",
		Doc: "octal strings such as `\"0640\"`; at most `\"0777\"`"},
	{Path: "dir_mode", Kind: KindMode, Field: "DirMode", JoinPrev: ", "},
	{Path: "permissions", Kind: KindEnum, Field: "Permissions", Default: `"connector"`, Enum: []string{"connector", "object"},
		Doc: "`\"connector\"`: everything in the mount shows `owner`, `group`, `file_mode` and `dir_mode`, and chmod/chown fail with EPERM; `\"object\"`: mode, uid and gid are stored per object (`x-amz-meta-mode`/`uid`/`gid`, as s3fs does; the connector's values are the defaults) and enforced by the kernel. See docs/SEMANTICS.md"},
	{Path: "stall_timeout", Kind: KindDuration, Field: "StallTimeout", Default: `"10s"`, Min: int64(time.Second), Max: int64(10 * time.Minute),
		Doc: "an operation fails with EIO after S3 has been silent this long (1 s to 10 min)"},
	{Path: "list_concurrency", Kind: KindInt, Field: "ListConcurrency", Default: "16", Min: 1, Max: 64,
		Doc: "built-in backend: how many key ranges of one large folder are listed at once (1 to 64)"},
	{Path: "cache", Kind: KindTable, NoDoc: true},
	{Path: "cache.metadata_ttl", Kind: KindDuration, Field: "MetadataTTL", Default: `"60s"`, Min: 0, Max: int64(24 * time.Hour),
		Doc: "how long a listing or stat is trusted; `\"0s\"` always asks S3 (0 to 24 h)"},
	{Path: "cache.negative_ttl", Kind: KindDuration, Field: "NegativeTTL", Default: `"5s"`, Min: 0, Max: int64(24 * time.Hour),
		Doc: "how long \"no such key\" is trusted (0 to 24 h)"},
	{Path: "cache.max_staging", Kind: KindShare, Field: "MaxStaging", Field2: "MaxStagingPercent", Default: `"50%"`,
		Doc: "built-in backend: the most disk this mount's write staging may take in `cache_dir`: a share of the filesystem holding `cache_dir` (`\"1%\"` to `\"100%\"`), a size with a binary unit (`\"512MiB\"`, `\"20GiB\"`, `\"1TiB\"`), or a number of bytes (at least 1 MiB). Past it, writes that need staging fail with `ENOSPC` on this mount only; see docs/SEMANTICS.md, \"Staging space\""},
	{Path: "cache.metadata_max", Kind: KindSize, Field: "MetadataMax", Default: `"256MiB"`, Min: 1 << 20, Max: 1 << 40,
		Doc: "built-in backend: the most memory the mount's metadata cache (listings, stats) may take: a size with a binary unit (`\"64MiB\"`, `\"1GiB\"`) or a number of bytes (1 MiB to 1 TiB); past it, cached entries are dropped and fetched again when needed"},
	{Path: "credentials", Kind: KindTable, DocKey: "`[credentials]`", DocDefault: "**required**", Doc: "see below"},
	{Path: "credentials.access_key_id", Kind: KindHand, NoDoc: true},
	{Path: "credentials.secret_name", Kind: KindHand, NoDoc: true},
	{Path: "credentials.secret_access_key_file", Kind: KindHand, NoDoc: true},
	{Path: "credentials.secret_access_key_encrypted", Kind: KindHand, NoDoc: true},
	{Path: "credentials.secret_access_key", Kind: KindHand, NoDoc: true},
	{Path: "credentials.session_token", Kind: KindHand, NoDoc: true},
	{Path: "credentials.profile", Kind: KindHand, NoDoc: true},
	{Path: "credentials.role_arn", Kind: KindHand, NoDoc: true},
	{Path: "credentials.role_session_name", Kind: KindHand, NoDoc: true},
	{Path: "credentials.external_id", Kind: KindHand, NoDoc: true},
	{Path: "credentials.source_identity", Kind: KindHand, NoDoc: true},
	{Path: "credentials.web_identity_token_file", Kind: KindHand, NoDoc: true},
	{Path: "credentials.anonymous", Kind: KindHand, NoDoc: true},
	{Path: "access", Kind: KindTable, NoDoc: true},
	{Path: "access.allow", Kind: KindHand, DocKey: "`[[access.allow]]`", DocDefault: "no policy", Doc: "see below"},
	{Path: "access.allow.users", Kind: KindHand, NoDoc: true},
	{Path: "access.allow.groups", Kind: KindHand, NoDoc: true},
	{Path: "access.allow.actions", Kind: KindHand, NoDoc: true},
}

// AgentKeys are the keys of agent.toml, in the docs' order.
var AgentKeys = []Key{
	{Path: "project_root", Kind: KindPath, Field: "ProjectRoot", Default: `"/home/jupyter/mnt/s3"`,
		Doc: "every mount lands at `<project_root>/<mount_name>` (must not be `/`)"},
	{Path: "connectors_dir", Kind: KindPath, Field: "ConnectorsDir", Default: `"/etc/s3mounts/connectors.d"`,
		Doc: "the watched directory of connector files"},
	{Path: "connectors_follow_symlinks", Kind: KindList, Field: "ConnectorsFollowSymlinks", Default: "[]", Check: checkFollowDir,
		Doc: "absolute directories a symlink in `connectors_dir` (or `connectors_dir` itself) may lead into, e.g. `[\"/srv/s3mounts/connectors\"]`; without it symlinks are followed only within `connectors_dir`"},
	{Path: "socket", Kind: KindPath, Field: "Socket", Default: `"/run/s3mounts/agent.sock"`,
		Doc: "the API socket (ignored when systemd passes one)"},
	{Path: "socket_group", Kind: KindString, Field: "SocketGroup", Default: `"s3mounts"`, Check: checkSocketGroup,
		Doc: "the group of the socket file (mode 0660), i.e. who may connect at all"},
	{Path: "metrics_listen", Kind: KindString, Field: "MetricsListen", Default: `""`, DocDefault: "`\"\"` (off)", Check: checkMetricsListen,
		Doc: "also serve `/metrics` on this `HOST:PORT`, e.g. `\"127.0.0.1:9108\"`: per-node aggregates only (`s3mounts_node_*`, API and process metrics), no connector id or state, since anyone who reaches the address may scrape"},
	{Path: "metrics_connectors", Kind: KindBool, Field: "MetricsConnectors", Default: "false",
		Doc: "`true` lets `metrics_listen` serve the per-connector series too (ids and states of every connector, whatever its access policy hides); the socket's `/metrics` for admins always has them"},
	{Path: "secrets_dir", Kind: KindPath, Field: "SecretsDir", Default: `"/etc/s3mounts/secrets"`,
		Doc: "named secrets that connectors refer to by `secret_name`"},
	{Path: "state_dir", Kind: KindPath, Field: "StateDir", Default: `"/var/lib/s3mounts"`,
		Doc: "activation overrides, worker records, the node key `node.key`, the last good version of every connector (`lastgood.json`, 0600)"},
	{Path: "cache_dir", Kind: KindPath, Field: "CacheDir", Default: `"/var/cache/s3mounts"`,
		Doc: "backend caches and write staging"},
	{Path: "mount_uid", Kind: KindInt, Field: "MountUID", Default: "1000", Min: 0, Max: maxID,
		RangeMsg: "is not a valid id: use a number from 0 to 4294967294",
		Doc:      "the default owner of everything seen in a mount"},
	{Path: "mount_gid", Kind: KindInt, Field: "MountGID", Default: "100", Min: 0, Max: maxID,
		RangeMsg: "is not a valid id: use a number from 0 to 4294967294", JoinPrev: " / "},
	{Path: "file_mode", Kind: KindMode, Field: "FileMode", Default: `"0644"`,
		Doc: "the default modes in a mount, as octal **strings** (`\"0664\"`/`\"0775\"` suit shared rw mounts)"},
	{Path: "dir_mode", Kind: KindMode, Field: "DirMode", Default: `"0755"`, JoinPrev: " / "},
	{Path: "log_level", Kind: KindString, Field: "LogLevel", Default: `"info"`, Check: checkLogLevel,
		Doc: "`debug`, `info`, `warn` or `error`"},
	{Path: "resync_interval", Kind: KindDuration, Field: "ResyncInterval", Default: `"60s"`, Min: int64(time.Second), Max: int64(24 * time.Hour),
		Doc: "how often the whole connectors directory is re-read even without events (1 s to 24 h)"},
	{Path: "roles", Kind: KindTable, NoDoc: true},
	{Path: "roles.admin", Kind: KindList, Field: "Roles.Admin", Default: `["uid:0", "group:s3mounts-admin"]`, Check: checkRoleMemberValue,
		Doc: "may do everything, whatever a connector's policy says"},
	{Path: "roles.operator", Kind: KindList, Field: "Roles.Operator", Default: `["group:s3mounts"]`, Check: checkRoleMemberValue,
		Doc: "may `view`, `browse`, `test`, `activate`, `deactivate`"},
	{Path: "roles.viewer", Kind: KindList, Field: "Roles.Viewer", Default: "[]", Check: checkRoleMemberValue,
		Doc: "may `view`, `browse`"},
	{Path: "binaries", Kind: KindHand, DocKey: "`[binaries]` `geesefs`, `s3fs`", DocDefault: "PATH",
		Doc: "absolute path of an external backend's binary"},
	{Path: "limits", Kind: KindTable, NoDoc: true},
	{Path: "limits.connections_per_uid", Kind: KindInt, Field: "Limits.ConnectionsPerUID", Default: "128", Min: 1, Max: 65536,
		Doc: "open connections one uid may hold on the socket (1–65536); beyond it a connection gets `429 too_many` and is closed. uid 0 is not limited"},
	{Path: "limits.event_streams_per_uid", Kind: KindInt, Field: "Limits.EventStreamsPerUID", Default: "32", Min: 1, Max: 65536,
		Doc: "open `GET /v1/events` streams one uid may hold (1–65536); beyond it `429 too_many`"},
}

// keySpecOf is the set of keys a table allows.
func keySpecOf(keys []Key) keySpec {
	ks := keySpec{leaves: map[string]bool{}, tables: map[string]bool{}, anyLeafUnder: map[string]bool{}}
	for _, k := range keys {
		switch {
		case k.Kind == KindTable:
			ks.tables[k.Path] = true
		case k.Path == "binaries":
			ks.tables[k.Path] = true
			ks.anyLeafUnder[k.Path] = true
		case k.Path == "access.allow":
			ks.tables[k.Path] = true
		default:
			ks.leaves[k.Path] = true
		}
	}
	return ks
}

var (
	connectorKeys = keySpecOf(ConnectorKeys)
	agentKeys     = keySpecOf(AgentKeys)
)

// KeyDefault returns the default of a key of keys as its Go value
// (string, bool, int64, time.Duration, uint32 for modes, []string); it
// panics if there is no such key or it has no default: it is for code
// that needs one default where no parsed file is at hand.
func KeyDefault(keys []Key, path string) any {
	for _, k := range keys {
		if k.Path == path && k.Default != "" {
			v, ok := k.parseDefault()
			if !ok {
				panic("config: invalid default of key " + path)
			}
			return v
		}
	}
	panic("config: no default for key " + path)
}

// parseDefault parses the key's Default through the same rules as a file.
func (k Key) parseDefault() (any, bool) {
	var m map[string]any
	if _, err := toml.Decode("v = "+k.Default, &m); err != nil {
		return nil, false
	}
	d := &doc{file: "default", loc: newKeyLocator("")}
	v, ok := k.parse(d, val{v: m["v"], set: true}, "/")
	return v, ok && len(d.errs) == 0
}

// share is a KindShare value.
type share struct {
	bytes int64
	pct   int
}

// principalID is a KindPrincipal value.
type principalID struct {
	name string
	id   uint32
}

// parse reads and validates one value of the key. base is the directory
// relative paths are taken from.
func (k Key) parse(d *doc, v val, base string) (any, bool) {
	key := k.Path
	switch k.Kind {
	case KindString:
		s, ok := d.str(key, v)
		if !ok {
			return nil, false
		}
		if k.Check != nil {
			var err error
			if s, err = k.Check(s); err != nil {
				d.failKey(key, "%s", err)
				return nil, false
			}
		}
		return s, true
	case KindEnum:
		s, ok := d.str(key, v)
		if !ok || !oneOf(d, key, s, k.Enum...) {
			return nil, false
		}
		return s, true
	case KindBool:
		return d.boolean(key, v)
	case KindInt:
		n, ok := d.integer(key, v)
		if !ok {
			return nil, false
		}
		if n < k.Min || n > k.Max {
			if k.RangeMsg != "" {
				d.failKey(key, "%d %s", n, k.RangeMsg)
			} else {
				d.failKey(key, "%d is out of range: use a number from %d to %d", n, k.Min, k.Max)
			}
			return nil, false
		}
		return n, true
	case KindDuration:
		return d.duration(key, v, time.Duration(k.Min), time.Duration(k.Max))
	case KindSize:
		return d.size(key, v, k.Min, k.Max)
	case KindShare:
		b, p, ok := d.stagingCap(key, v)
		return share{b, p}, ok
	case KindMode:
		return d.mode(key, v)
	case KindDatetime:
		return d.datetime(key, v)
	case KindPrincipal:
		name, id, ok := d.principal(key, v, k.Group)
		return principalID{name, id}, ok
	case KindPath:
		s, ok := d.str(key, v)
		if !ok {
			return nil, false
		}
		s = strings.TrimSpace(s)
		switch {
		case s == "":
			def, _ := k.parseDefault()
			d.failKey(key, "must not be empty: give a path, or remove the key for the default %q", def)
			return nil, false
		case hasControl(s):
			d.failKey(key, "must not contain control characters")
			return nil, false
		}
		if !filepath.IsAbs(s) {
			s = filepath.Join(base, s)
		}
		return filepath.Clean(s), true
	case KindList:
		list, ok := d.strList(key, v)
		if !ok {
			return nil, false
		}
		good := true
		for i, s := range list {
			if k.Check == nil {
				continue
			}
			s2, err := k.Check(s)
			if err != nil {
				d.failKey(key, "element %d %s", i+1, err)
				good = false
				continue
			}
			list[i] = s2
		}
		return list, good
	}
	return nil, false
}

// apply parses every simple key of keys that the document holds into dst
// (a *Connector or *Agent), reporting missing required keys.
func (d *doc) apply(keys []Key, dst any, base string) {
	rv := reflect.ValueOf(dst).Elem()
	for _, k := range keys {
		if k.Field == "" {
			continue
		}
		v := d.get(k.Path)
		if !v.set {
			if k.Required != "" {
				d.fail(0, k.Path, "is required: %s", k.Required)
			}
			continue
		}
		x, ok := k.parse(d, v, base)
		if ok {
			k.assign(rv, x)
		}
	}
}

// assign stores a parsed value in its field(s).
func (k Key) assign(rv reflect.Value, x any) {
	switch t := x.(type) {
	case share:
		setField(rv, k.Field, t.bytes)
		setField(rv, k.Field2, t.pct)
	case principalID:
		setField(rv, k.Field, t.name)
		setField(rv, k.Field2, t.id)
	default:
		setField(rv, k.Field, x)
	}
}

func setField(rv reflect.Value, name string, x any) {
	f := rv
	for _, part := range strings.Split(name, ".") {
		f = f.FieldByName(part)
		if !f.IsValid() {
			panic("config: no field " + name)
		}
	}
	xv := reflect.ValueOf(x)
	if f.Kind() == reflect.Slice {
		// A fresh copy: a default's slice is never shared.
		s := reflect.MakeSlice(f.Type(), xv.Len(), xv.Len())
		reflect.Copy(s, xv)
		f.Set(s)
		return
	}
	f.Set(xv.Convert(f.Type()))
}

// applyDefaults sets every key's default in dst.
func applyDefaults(keys []Key, dst any) {
	rv := reflect.ValueOf(dst).Elem()
	for _, k := range keys {
		if k.Field == "" || k.Default == "" {
			continue
		}
		x, ok := k.parseDefault()
		if !ok {
			panic("config: invalid default of key " + k.Path)
		}
		k.assign(rv, x)
	}
}

var (
	defaultsOnce      sync.Once
	agentTemplate     Agent
	connectorTemplate Connector
)

func templates() {
	defaultsOnce.Do(func() {
		applyDefaults(AgentKeys, &agentTemplate)
		applyDefaults(ConnectorKeys, &connectorTemplate)
	})
}

// DefaultAgent returns the settings with every default (from AgentKeys).
func DefaultAgent() *Agent {
	templates()
	a := agentTemplate
	a.Roles.Admin = append([]string{}, a.Roles.Admin...)
	a.Roles.Operator = append([]string{}, a.Roles.Operator...)
	a.Roles.Viewer = append([]string{}, a.Roles.Viewer...)
	a.ConnectorsFollowSymlinks = nil
	a.Binaries = map[string]string{}
	return &a
}

// defaultConnector returns a Connector with every default of the table
// and the agent's (owner, group, modes).
func defaultConnector(a *Agent) *Connector {
	templates()
	c := connectorTemplate
	c.UID, c.GID, c.FileMode, c.DirMode = a.MountUID, a.MountGID, a.FileMode, a.DirMode
	return &c
}

// DefaultConnector returns a connector with every default of the key table
// and of DefaultAgent(), and nothing else: for tools and tests that build
// a mounts.Spec without a connector file.
func DefaultConnector() *Connector { return defaultConnector(DefaultAgent()) }

// get returns the value at a dotted path of the decoded document (a key
// matched exactly, else case-insensitively, as the decoder matched struct
// fields).
func (d *doc) get(path string) val {
	var cur any = d.tree
	for _, part := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return val{}
		}
		x, ok := m[part]
		if !ok {
			found := false
			for name, y := range m {
				if strings.EqualFold(name, part) {
					x, found = y, true
					break
				}
			}
			if !found {
				return val{}
			}
		}
		cur = x
	}
	return val{v: cur, set: true}
}

// Checks of string keys: each returns the value to keep.

func checkName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", errors.New("must not be empty: give the name shown in the panel")
	case hasControl(s) || len(s) > 200:
		return "", errors.New("must be one line of at most 200 bytes")
	}
	return s, nil
}

func checkDescription(s string) (string, error) {
	if len(s) > 4096 {
		return "", errors.New("is longer than 4096 bytes: shorten it")
	}
	return strings.TrimSpace(s), nil
}

func checkCreatedBy(s string) (string, error) {
	if hasControl(s) || len(s) > 256 {
		return "", errors.New("must be one line of at most 256 bytes")
	}
	return s, nil
}

func checkRegion(s string) (string, error) {
	if !reRegion.MatchString(s) {
		return "", errors.New("is not a region name: write e.g. \"us-east-1\" or \"ru-central1\" (letters, digits, '-')")
	}
	return s, nil
}

func checkBucketName(s string) (string, error) { return s, checkBucket(s) }

func checkMountName(s string) (string, error) {
	if !reMountName.MatchString(s) || s == "." || s == ".." {
		return "", errors.New("is not a directory name: use 1 to 64 letters, digits, '.', '_' or '-' (not \".\" or \"..\")")
	}
	return s, nil
}

func checkSocketGroup(s string) (string, error) {
	if !validPrincipalName(s) {
		return "", errors.New("is not a group name: give the name (or numeric gid) of the group allowed to connect")
	}
	return s, nil
}

func checkMetricsListen(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return s, nil
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return "", errors.New(`is not an address: write HOST:PORT, e.g. "127.0.0.1:9108", or "" to turn metrics off`)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", errors.New("the port is not a number from 0 to 65535")
	}
	return s, nil
}

func checkLogLevel(s string) (string, error) {
	switch l := strings.ToLower(strings.TrimSpace(s)); l {
	case "debug", "info", "warn", "error":
		return l, nil
	case "warning":
		return "warn", nil
	}
	return "", errors.New("is not a log level: use debug, info, warn or error")
}

func checkFollowDir(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !filepath.IsAbs(s) || hasControl(s) || filepath.Clean(s) == "/" {
		return "", errors.New(`must be an absolute directory other than "/", e.g. "/srv/s3mounts/connectors"`)
	}
	return filepath.Clean(s), nil
}

func checkRoleMemberValue(s string) (string, error) { return s, checkRoleMember(s) }

// docTable renders keys as the Markdown table of docs/CONFIG.md.
func docTable(keys []Key, lastColumn string) string {
	type row struct{ name, def, doc string }
	var rows []row
	for _, k := range keys {
		if k.NoDoc {
			continue
		}
		name := k.DocKey
		if name == "" {
			name = "`" + k.Path + "`"
			if t, leaf, ok := strings.Cut(k.Path, "."); ok {
				name = "`[" + t + "]` `" + leaf + "`"
			}
		}
		def := k.DocDefault
		switch {
		case def != "":
		case k.Required != "":
			def = "**required**"
		case k.Default != "":
			def = "`" + k.Default + "`"
		default:
			def = "unset"
		}
		if k.JoinPrev != "" && len(rows) > 0 {
			r := &rows[len(rows)-1]
			r.name += k.JoinPrev + name
			if k.Default != "" {
				r.def += k.JoinPrev + def
			}
			continue
		}
		rows = append(rows, row{name, def, k.Doc})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| key | default | %s |\n|---|---|---|\n", lastColumn)
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", r.name, r.def, r.doc)
	}
	return b.String()
}

// DocTables returns the generated key tables of docs/CONFIG.md by the name
// of their markers ("agent-keys", "connector-keys").
func DocTables() map[string]string {
	return map[string]string{
		"agent-keys":     docTable(AgentKeys, "meaning"),
		"connector-keys": docTable(ConnectorKeys, "rules"),
	}
}

// GenerateDocs returns doc (the text of docs/CONFIG.md) with the text
// between each "<!-- BEGIN GENERATED: NAME -->" and "<!-- END GENERATED:
// NAME -->" marker pair replaced by DocTables()[NAME].
func GenerateDocs(doc string) (string, error) {
	tables := DocTables()
	names := make([]string, 0, len(tables))
	for n := range tables {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		begin := "<!-- BEGIN GENERATED: " + n + " (go run ./internal/tools/configdoc) -->\n"
		end := "<!-- END GENERATED: " + n + " -->"
		i := strings.Index(doc, begin)
		j := strings.Index(doc, end)
		if i < 0 || j < i {
			return "", fmt.Errorf("the markers %q and %q are missing: put them around the %s table", strings.TrimSpace(begin), end, n)
		}
		doc = doc[:i+len(begin)] + tables[n] + doc[j:]
	}
	return doc, nil
}
