package mounts

// Mount-table helpers: what the kernel says is mounted (mountinfo), dead
// FUSE mounts (ENOTCONN), and unmounting that never hangs.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MountInfo is one line of /proc/self/mountinfo.
type MountInfo struct {
	MountPoint string // unescaped
	FSType     string // e.g. "fuse.s3fs", "fuse.s3mounts"
	Source     string
	Options    string // per-mount options, comma separated
}

// mountInfoPath is a variable so tests could point it elsewhere.
var mountInfoPath = "/proc/self/mountinfo"

// ReadMountInfo parses /proc/self/mountinfo.
func ReadMountInfo() ([]MountInfo, error) {
	// /proc files must be read in one go to get a consistent snapshot of
	// a table that changes under us; os.ReadFile does that.
	b, err := os.ReadFile(mountInfoPath)
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return parseMountInfo(bytes.NewReader(b))
}

// parseMountInfo parses the mountinfo format (proc(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//
// Field 7 is zero or more optional fields, ended by "-".
func parseMountInfo(r io.Reader) ([]MountInfo, error) {
	var out []MountInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 6 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("mountinfo line %d is malformed: %q", n, line)
		}
		out = append(out, MountInfo{
			MountPoint: unescapeOctal(f[4]),
			Options:    f[5],
			FSType:     unescapeOctal(f[sep+1]),
			Source:     unescapeOctal(f[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return out, nil
}

// unescapeOctal undoes the kernel's \ooo escapes (space \040, tab \011,
// newline \012, backslash \134).
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// cleanPath makes path absolute and resolves symlinks in its parent. The
// last component is kept as is: it may be a mount point, and stat on a dead
// or hung FUSE mount fails (ENOTCONN) or blocks.
func cleanPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir, base := filepath.Split(abs)
	if base == "" {
		return abs, nil
	}
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Join(r, base), nil
	}
	return abs, nil
}

// MountedAt returns the topmost mount at path, or ok=false.
func MountedAt(path string) (MountInfo, bool, error) {
	p, err := cleanPath(path)
	if err != nil {
		return MountInfo{}, false, err
	}
	mi, err := ReadMountInfo()
	if err != nil {
		return MountInfo{}, false, err
	}
	// Later lines are mounted later, on top of earlier ones.
	for i := len(mi) - 1; i >= 0; i-- {
		if mi[i].MountPoint == p {
			return mi[i], true, nil
		}
	}
	return MountInfo{}, false, nil
}

// IsMountPoint reports whether path is a mount point (from mountinfo, so a
// dead FUSE mount still counts).
func IsMountPoint(path string) (bool, error) {
	_, ok, err := MountedAt(path)
	return ok, err
}

// IsStale reports whether path is a dead FUSE mount (stat gives ENOTCONN or
// ECONNABORTED: "transport endpoint is not connected").
//
// stat alone can be answered from the kernel's attribute cache for a second
// after the server died, so statfs, which FUSE never caches, is asked too.
func IsStale(path string) bool {
	if _, err := os.Stat(path); isStaleErr(err) {
		return true
	}
	var st unix.Statfs_t
	for {
		err := unix.Statfs(path, &st)
		if err == unix.EINTR {
			continue
		}
		return isStaleErr(err)
	}
}

func isStaleErr(err error) bool {
	return errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED)
}

// Unmount tuning: containerd retries EBUSY 50 times 50 ms apart.
var (
	unmountRetries = 50
	unmountDelay   = 50 * time.Millisecond
)

// Unmount detaches path. Idempotent: not mounted is success. EBUSY is
// retried briefly, then the mount is detached lazily and the error wraps
// ErrLazyUnmount. Falls back to `fusermount3 -u` where umount2 is refused.
func Unmount(ctx context.Context, path string) error {
	return unmount(ctx, path, unmountRetries, unmountDelay)
}

// unmount is Unmount with its own EBUSY retries.
func unmount(ctx context.Context, path string, retries int, delay time.Duration) error {
	p, err := cleanPath(path)
	if err != nil {
		return fmt.Errorf("unmounting %s: %w", path, err)
	}
	for i := 0; ; i++ {
		err := unix.Unmount(p, 0)
		switch {
		case err == nil:
			// Mounts can be stacked: go on until nothing is left at p.
			if ok, _ := IsMountPoint(p); ok {
				continue
			}
			return nil
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil // not a mount point (any more), or gone
		case errors.Is(err, unix.EPERM):
			// Not root: a FUSE mount of our own uid is detached by the
			// setuid helper.
			return fusermountUnmount(ctx, p)
		case errors.Is(err, unix.EBUSY):
			if i >= retries {
				return lazyUnmount(p)
			}
			select {
			case <-ctx.Done():
				return lazyUnmount(p)
			case <-time.After(delay):
			}
		default:
			return fmt.Errorf("unmounting %s: %w", p, err)
		}
	}
}

func lazyUnmount(p string) error {
	err := unix.Unmount(p, unix.MNT_DETACH)
	if err == nil {
		return fmt.Errorf("unmounting %s: %w", p, ErrLazyUnmount)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmounting %s lazily: %w", p, err)
}

func fusermountUnmount(ctx context.Context, p string) error {
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		bin, err = exec.LookPath("fusermount")
	}
	if err != nil {
		return fmt.Errorf("unmounting %s: not permitted, and fusermount3 is not installed (install fuse3)", p)
	}
	out, err := exec.CommandContext(ctx, bin, "-u", p).CombinedOutput()
	if err == nil {
		return nil
	}
	if ok, _ := IsMountPoint(p); !ok {
		return nil
	}
	if strings.Contains(string(out), "busy") {
		if out2, err2 := exec.CommandContext(ctx, bin, "-u", "-z", p).CombinedOutput(); err2 == nil {
			return fmt.Errorf("unmounting %s: %w", p, ErrLazyUnmount)
		} else {
			out = out2
		}
	}
	return fmt.Errorf("unmounting %s with %s -u: %v: %s", p, bin, err, strings.TrimSpace(string(out)))
}

// CleanStale lazily detaches a dead mount at path; a live or absent mount is
// left alone and is no error.
func CleanStale(path string) error {
	if !IsStale(path) {
		return nil
	}
	p, err := cleanPath(path)
	if err != nil {
		return fmt.Errorf("cleaning the dead mount at %s: %w", path, err)
	}
	// Dead mounts can be stacked (a tool restarted over its own corpse).
	for i := 0; i < 16 && IsStale(p); i++ {
		err := unix.Unmount(p, unix.MNT_DETACH)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if errors.Is(err, unix.EPERM) {
			if ferr := fusermountUnmount(context.Background(), p); ferr != nil && !errors.Is(ferr, ErrLazyUnmount) {
				return fmt.Errorf("cleaning the dead mount at %s: %w", p, ferr)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("cleaning the dead mount at %s: %w", p, err)
		}
	}
	return nil
}

// WaitMounted polls mountinfo until path is a mount point or ctx ends.
func WaitMounted(ctx context.Context, path string) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := IsMountPoint(path)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not appear in the mount table: %w", path, context.Cause(ctx))
		case <-t.C:
		}
	}
}
