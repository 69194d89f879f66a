package mounts

// Mount-table helpers. Signatures are the contract; bodies marked "stub"
// are placeholders for the real implementation.

import (
	"context"
	"errors"
)

// MountInfo is one line of /proc/self/mountinfo.
type MountInfo struct {
	MountPoint string // unescaped
	FSType     string // e.g. "fuse.s3fs", "fuse.s3mounts"
	Source     string
	Options    string // per-mount options, comma separated
}

var errStub = errors.New("not implemented yet")

// ReadMountInfo parses /proc/self/mountinfo.
func ReadMountInfo() ([]MountInfo, error) { return nil, errStub }

// IsMountPoint reports whether path is a mount point (from mountinfo, so a
// dead FUSE mount still counts).
func IsMountPoint(path string) (bool, error) { return false, errStub }

// IsStale reports whether path is a dead FUSE mount (stat gives ENOTCONN or
// ECONNABORTED: "transport endpoint is not connected").
func IsStale(path string) bool { return false }

// Unmount detaches path. Idempotent: not mounted is success. EBUSY is
// retried briefly, then the mount is detached lazily and the error wraps
// ErrLazyUnmount. Falls back to `fusermount3 -u` where umount2 is refused.
func Unmount(ctx context.Context, path string) error { return errStub }

// CleanStale lazily detaches a dead mount at path; a live or absent mount is
// left alone and is no error.
func CleanStale(path string) error { return errStub }

// WaitMounted polls mountinfo until path is a mount point or ctx ends.
func WaitMounted(ctx context.Context, path string) error { return errStub }
