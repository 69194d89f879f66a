// Package mounts holds what every mount backend shares: the Spec of one
// mount, the Backend interface a mount worker drives, and helpers for the
// kernel's mount table (mountinfo, stale mounts, unmounting).
//
// A Backend runs inside a mount worker, the per-connector process the agent
// supervises (see docs/DESIGN.md). The agent's reconciler never calls a
// Backend directly: it asks a worker to mount a Spec, and the worker calls
// Backend.Mount and serves until told to unmount or the mount ends.
package mounts

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/s3mounts/s3mounts/config"
)

// Spec is everything needed to mount one connector, secrets resolved.
// It travels from the agent to its worker over a pipe, never argv or env.
// It arrives complete (the agent's buildSpec fills every field from the
// connector, whose defaults come from config's key table): backends never
// re-default a field.
type Spec struct {
	ID           string        `json:"id"`
	Backend      string        `json:"backend"` // "default" | "geesefs" | "s3fs"
	MountPoint   string        `json:"mount_point"`
	Endpoint     string        `json:"endpoint"`
	Region       string        `json:"region"`
	Bucket       string        `json:"bucket"`
	Prefix       string        `json:"prefix"` // "" or ending in "/"
	ReadOnly     bool          `json:"read_only"`
	PathStyle    bool          `json:"path_style"`
	UID          uint32        `json:"uid"`
	GID          uint32        `json:"gid"`
	FileMode     os.FileMode   `json:"file_mode"`
	DirMode      os.FileMode   `json:"dir_mode"`
	StallTimeout time.Duration `json:"stall_timeout"`
	MetadataTTL  time.Duration `json:"metadata_ttl"`
	NegativeTTL  time.Duration `json:"negative_ttl"`
	// CacheDir is this mount's own cache and write-staging directory
	// (<cache_dir>/<id>); the backend creates it 0700 if missing.
	CacheDir string `json:"cache_dir"`
	// MaxStaging caps the disk space this mount's write staging takes, in
	// bytes; when 0, MaxStagingPercent of the filesystem holding CacheDir
	// (0: the backend's default share). Writes past it fail with ENOSPC.
	MaxStaging        int64 `json:"max_staging,omitempty"`
	MaxStagingPercent int   `json:"max_staging_percent,omitempty"`
	// Permissions is "connector" (everything shows UID/GID/FileMode/DirMode;
	// chmod/chown fail with EPERM) or "object" (mode/uid/gid stored per
	// object in x-amz-meta-mode/uid/gid, enforced by the kernel).
	Permissions string `json:"permissions,omitempty"`
	// MetadataMax bounds the built-in backend's metadata cache, in bytes.
	MetadataMax int64 `json:"metadata_max,omitempty"`
	// ListConcurrency caps the concurrent key-range listings of one folder.
	ListConcurrency int `json:"list_concurrency,omitempty"`
	// RuntimeDir is a private (0700, root) directory for this mount's
	// runtime files, e.g. an external tool's credentials file. Removed when
	// the mount ends.
	RuntimeDir string `json:"runtime_dir"`
	// Binary is the external tool to run (geesefs, s3fs); "" means PATH.
	Binary      string      `json:"binary,omitempty"`
	Credentials Credentials `json:"credentials"`
}

// OpBound is the longest one operation on a mount may last, all its
// requests and retries included, for a connector's stall_timeout: 3 ×
// stall_timeout (SPEC). Every "3 × stall" of the code is this function.
func OpBound(stall time.Duration) time.Duration { return 3 * stall }

// LogValue keeps credentials out of logs whatever a caller logs.
func (s Spec) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", s.ID), slog.String("backend", s.Backend),
		slog.String("mount_point", s.MountPoint), slog.String("endpoint", s.Endpoint),
		slog.String("bucket", s.Bucket), slog.String("prefix", s.Prefix),
		slog.Bool("read_only", s.ReadOnly))
}

// Credentials are a connector's credentials, resolved: the one type from
// the connector file to the worker (config.Credentials). SecretAccessKey
// and SessionToken are Secrets: fmt, slog and errors show "[redacted]".
type Credentials = config.Credentials

// Secret is a string that never prints ("[redacted]"); JSON keeps the
// value, since the Spec must carry it to the worker.
type Secret = config.Secret

// Backend mounts S3 buckets one way (built-in FUSE, geesefs, s3fs).
type Backend interface {
	// Name is the connector's backend value: "default", "geesefs", "s3fs".
	Name() string
	// Available says whether the backend can run on this node, e.g. that its
	// binary is installed; the error says what to do.
	Available(spec Spec) error
	// Mount mounts spec at spec.MountPoint (an existing empty directory) and
	// returns once the mount serves, or fails within ctx.
	Mount(ctx context.Context, spec Spec) (Mount, error)
}

// Mount is one live mount made by a Backend.
type Mount interface {
	// Wait blocks until the mount has ended: after Unmount, an unmount by
	// someone else, or the death of whatever served it. nil means a clean end.
	Wait() error
	// Unmount detaches the mount. A busy mount is detached lazily, and the
	// returned error wraps ErrLazyUnmount so the caller can say so.
	Unmount(ctx context.Context) error
}

// ErrLazyUnmount reports that a busy mount was detached lazily: open files
// keep working until closed.
var ErrLazyUnmount = errors.New("mount was busy and has been detached lazily; open files keep it until they are closed")

// Refresher is implemented by a Mount that caches metadata or data: it drops
// what is cached under path ("" or "/" for everything).
type Refresher interface {
	Refresh(path string) error
}

// HealthReporter is implemented by a Mount that sees its requests fail for
// the whole connector (the key refused, the endpoint gone) while mounted:
// Health says what fails in plain words and since when ("" when requests
// work).
type HealthReporter interface {
	Health() (problem string, since time.Time)
}

// StagingReporter is implemented by a Mount that stages writes on local
// disk: the bytes its staging files take now, and its cap (0: none).
type StagingReporter interface {
	Staging() (used, limit int64)
}

// Stats are a mount's own counters, for metrics, status and benchmarks.
type Stats struct {
	// Requests counts S3 requests sent, by operation name as the SDK
	// spells it ("HeadObject", "ListObjectsV2", "GetObject", ...).
	Requests map[string]uint64 `json:"requests,omitempty"`
	// MetadataBytes is the metadata cache's size now, MetadataEntries the
	// entries it holds, MetadataLimit its bound in bytes (0: none).
	MetadataBytes   int64 `json:"metadata_bytes"`
	MetadataEntries int64 `json:"metadata_entries"`
	MetadataLimit   int64 `json:"metadata_limit"`
}

// StatsReporter is implemented by a Mount that keeps Stats.
type StatsReporter interface {
	Stats() Stats
}

// Lister is implemented by a Mount that can page through a directory itself,
// faster than reading the mounted path (e.g. straight from ListObjectsV2).
type Lister interface {
	List(ctx context.Context, dir, cursor string, limit int) (Page, error)
}

// Identified is implemented by a Mount that knows the kernel mount it made
// (its mountinfo id, type and source), so that it is checked before a
// /files walk or an unmount touches its path.
type Identified interface {
	Ref() MountRef
}

// Page is one page of a directory listing.
type Page struct {
	Entries    []Entry `json:"entries"`
	NextCursor string  `json:"next_cursor,omitempty"`
}

// Entry is one directory entry, relative to the mount.
type Entry struct {
	Name  string    `json:"name"`
	Dir   bool      `json:"dir"`
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
	// Key is the object key (or the prefix, ending in "/", for a directory).
	Key string `json:"key"`
}
