// Package client is the Go client of s3mountd's socket API and the home of
// its wire types. It depends on nothing heavy (no FUSE, no AWS SDK), so
// s3mountctl and scripts can import it alone.
package client

import "time"

// Connector is the API's view of one connector (SPEC: The socket API).
// It never holds a secret.
type Connector struct {
	ID          string     `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Endpoint    string     `json:"endpoint"`
	Region      string     `json:"region"`
	Bucket      string     `json:"bucket"`
	Prefix      string     `json:"prefix"`
	MountName   string     `json:"mount_name"`
	MountPath   string     `json:"mount_path"`
	Mode        string     `json:"mode"`
	Backend     string     `json:"backend"`
	Active      bool       `json:"active"`
	State       State      `json:"state"`
	Error       string     `json:"error"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   *time.Time `json:"created_at"`
	UpdatedAt   *time.Time `json:"updated_at"`
	File        string     `json:"file"`
	Owner       string     `json:"owner"`
	Group       string     `json:"group"`
	FileMode    string     `json:"file_mode"` // "0644"
	DirMode     string     `json:"dir_mode"`
	// StagingBytes is the disk space the mount's write staging takes
	// (built-in backend, while mounted), refreshed every few seconds.
	StagingBytes *int64 `json:"staging_bytes,omitempty"`
	// Actions stays last: the API's encoder appends it per caller.
	Actions []string `json:"actions"`
}

// State is a connector's lifecycle state.
type State string

const (
	StateInactive   State = "inactive"
	StateMounting   State = "mounting"
	StateMounted    State = "mounted"
	StateUnmounting State = "unmounting"
	StateError      State = "error"
)

// Health is GET /v1/health.
type Health struct {
	// Status is "ok", or "degraded" when Error says what is wrong with the
	// node as a whole (e.g. the connectors directory is missing; every
	// mount is kept meanwhile).
	Status  string `json:"status"`
	Version string `json:"version"`
	Mounts  int    `json:"mounts"`
	Error   string `json:"error,omitempty"`
	// Caller and Role say who the daemon takes the caller to be (from the
	// socket's peer credentials) and the caller's role on this node:
	// "admin", "operator", "viewer", or "user" (no role: only what a
	// connector's access policy grants). Empty from older daemons.
	Caller string `json:"caller,omitempty"`
	Role   string `json:"role,omitempty"`
}

// ConnectorList is GET /v1/connectors.
type ConnectorList struct {
	Connectors []Connector `json:"connectors"`
}

// Check is one step of POST /v1/connectors/{id}/test.
type Check struct {
	Name  string `json:"name"` // endpoint|credentials|bucket|list|read|write
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	MS    int64  `json:"ms"`
}

// TestResult is POST /v1/connectors/{id}/test.
type TestResult struct {
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Entry is one item of GET /v1/connectors/{id}/files.
type Entry struct {
	Name  string    `json:"name"`
	Type  string    `json:"type"` // "file" | "dir"
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
	Path  string    `json:"path"`   // absolute path on the node: what "Copy path" copies
	S3URI string    `json:"s3_uri"` // s3://bucket/key
}

// Files is GET /v1/connectors/{id}/files.
type Files struct {
	Path       string  `json:"path"`
	Entries    []Entry `json:"entries"`
	NextCursor string  `json:"next_cursor"`
}

// OK is the answer of calls with nothing else to say.
type OK struct {
	OK bool `json:"ok"`
}

// Error codes of ErrorBody.
const (
	CodeNotFound    = "not_found"
	CodeForbidden   = "forbidden"
	CodeInvalid     = "invalid"
	CodeConflict    = "conflict"
	CodeUnavailable = "unavailable"
	CodeInternal    = "internal"
	// CodeTooMany (HTTP 429): the caller's uid holds as many connections
	// or event streams as agent.toml's [limits] allow.
	CodeTooMany = "too_many"
)

// ErrorBody is every error answer: {"error":{"code":…,"message":…}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// PubKey is GET /v1/pubkey (an addition to the SPEC): the node's age
// recipient, to encrypt secrets for this node without reading its key.
type PubKey struct {
	Recipient string `json:"recipient"`
}
