// Package config reads and validates s3mounts' files: the agent settings
// (agent.toml) and the connector files (connectors.d/<id>.toml), and resolves
// the secrets connectors refer to.
//
// Every error a user can cause is a *FileError naming the file, the line and
// the key, and saying what to do.
package config

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// DefaultAgentPath is where s3mountd looks for its settings.
const DefaultAgentPath = "/etc/s3mounts/agent.toml"

// ErrNoConfig is returned (wrapped) by LoadAgent when an explicitly named
// file does not exist. A missing default file is not an error: defaults apply.
var ErrNoConfig = errors.New("no agent config")

// NodeKey is the node's age identity, kept in <state_dir>/node.key (0600).
type NodeKey struct{ impl any }

// Action is one thing a caller may do with a connector (SPEC: Who may do what).
type Action string

const (
	ActionView       Action = "view"
	ActionBrowse     Action = "browse"
	ActionTest       Action = "test"
	ActionActivate   Action = "activate"
	ActionDeactivate Action = "deactivate"
)

// AllActions lists every action in a stable order.
var AllActions = []Action{ActionView, ActionBrowse, ActionTest, ActionActivate, ActionDeactivate}

// Agent is agent.toml with every default applied.
type Agent struct {
	ProjectRoot   string
	ConnectorsDir string
	Socket        string
	SocketGroup   string
	MetricsListen string
	SecretsDir    string
	StateDir      string
	CacheDir      string
	MountUID      uint32
	MountGID      uint32
	FileMode      os.FileMode
	DirMode       os.FileMode
	Roles         Roles
	LogLevel      string
	// ResyncInterval is how often the whole connectors dir is re-read even
	// without events (key resync_interval, default 60s).
	ResyncInterval time.Duration
	// Binaries overrides where external backends are found ([binaries]
	// geesefs = "/opt/geesefs"); empty means PATH.
	Binaries map[string]string
	// ConnectorsFollowSymlinks lists directories a symlink in
	// connectors_dir (or connectors_dir itself) may lead into (key
	// connectors_follow_symlinks, default none: symlinks are followed only
	// within connectors_dir, as in Kubernetes' ..data layout).
	ConnectorsFollowSymlinks []string
	// File is the path it was read from ("" when defaults only).
	File string
	// MetricsConnectors lets metrics_listen serve per-connector series
	// (ids and states); off, it serves per-node aggregates only.
	MetricsConnectors bool
	// Limits bound what one uid may hold open on the socket ([limits]).
	Limits Limits
}

// Limits are the [limits] table of agent.toml: per-uid bounds on the
// socket API (uid 0 is not limited).
type Limits struct {
	ConnectionsPerUID  int // open connections (default 128)
	EventStreamsPerUID int // open GET /v1/events streams (default 32)
}

// Roles maps each role to its members: "user:NAME", "group:NAME", "uid:N".
type Roles struct {
	Admin    []string
	Operator []string
	Viewer   []string
}

// Connector is one validated connector file.
type Connector struct {
	ID           string // the file's stem
	File         string // absolute path of the file
	Name         string
	Description  string
	Endpoint     string
	Region       string
	Bucket       string
	Prefix       string // "" or ending in "/"
	MountName    string
	Mode         string // "ro" | "rw"
	Backend      string // "default" | "geesefs" | "s3fs"
	Active       bool
	Addressing   string // "auto" | "path" | "virtual"
	CreatedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Owner        string // as written ("" = agent's mount_uid)
	Group        string // as written ("" = agent's mount_gid)
	UID          uint32 // resolved owner
	GID          uint32 // resolved group
	FileMode     os.FileMode
	DirMode      os.FileMode
	StallTimeout time.Duration
	MetadataTTL  time.Duration
	NegativeTTL  time.Duration
	Credentials  Credentials
	Access       []AccessRule // nil: no policy

	// MaxStaging caps the disk space of the mount's write staging in
	// bytes; when 0, MaxStagingPercent of the filesystem holding cache_dir
	// ([cache] max_staging, default "50%").
	MaxStaging        int64
	MaxStagingPercent int

	// Permissions is "connector" or "object" (key permissions).
	Permissions string
	// MetadataMax bounds the metadata cache in bytes ([cache] metadata_max).
	MetadataMax int64
	// ListConcurrency caps the concurrent listings of one folder (key
	// list_concurrency).
	ListConcurrency int
}

// PathStyle reports whether requests use path-style addressing
// (SPEC: auto = path-style when the bucket has a dot or the endpoint is not AWS).
func (c *Connector) PathStyle() bool { return pathStyle(c.Addressing, c.Endpoint, c.Bucket) }

// AccessRule is one [[access.allow]] entry.
type AccessRule struct {
	Users   []string
	Groups  []string
	Actions []Action // defaults to AllActions
}

// FileError is an error a user made in a file. Error() reads
// "FILE:LINE: KEY: MESSAGE" (line or key omitted when unknown).
type FileError struct {
	File string
	Line int
	Key  string
	Msg  string // says what was wrong and what to do
}

func (e *FileError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}
