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
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// MountInfo is one line of /proc/self/mountinfo.
type MountInfo struct {
	ID         int    // mount id (field 1): unique while mounted
	ParentID   int    // the id of the mount it sits on (field 2)
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
		id, _ := strconv.Atoi(f[0])
		parent, _ := strconv.Atoi(f[1])
		out = append(out, MountInfo{
			ID:         id,
			ParentID:   parent,
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

// cleanPath makes path absolute and lexically clean. It follows nothing:
// the kernel prints mount points without links, so a path that goes
// through a link matches no mount, and every action on a path re-resolves
// it with RESOLVE_NO_SYMLINKS (see safepath.go).
func cleanPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return filepath.Clean(abs), nil
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

// FindMount returns the mount with the given id, or ok=false.
func FindMount(id int) (MountInfo, bool, error) {
	mi, err := ReadMountInfo()
	if err != nil {
		return MountInfo{}, false, err
	}
	for _, m := range mi {
		if m.ID == id {
			return m, true, nil
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

// MountRef is what a mount was when it was made: a later unmount touches
// the mount with this id only if its type and source still match.
type MountRef struct {
	ID         int    `json:"id"`
	MountPoint string `json:"mount_point"` // where it was made
	FSType     string `json:"fstype"`
	Source     string `json:"source"`
}

// Ref is the MountRef of a mountinfo entry.
func (m MountInfo) Ref() MountRef {
	return MountRef{ID: m.ID, MountPoint: m.MountPoint, FSType: m.FSType, Source: m.Source}
}

func (r MountRef) matches(m MountInfo) bool {
	return m.ID == r.ID && m.FSType == r.FSType && m.Source == r.Source
}

// at is an O_PATH fd of the mount point path, opened through its parent
// resolved from "/" without following a link; the caller closes both.
type at struct {
	parent *os.File
	name   string
	fd     *os.File // nil when nothing is there
}

func (a *at) close() {
	if a.fd != nil {
		a.fd.Close()
	}
	a.parent.Close()
}

// procPath is the mount point as a path the kernel resolves through our own
// fd of its parent, so no user-controlled link on the way is followed.
func (a *at) procPath() string {
	return "/proc/self/fd/" + strconv.Itoa(int(a.parent.Fd())) + "/" + a.name
}

// openAt resolves path safely. A missing path gives fd == nil.
func openAt(path string) (*at, error) {
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	dir, name := filepath.Split(p)
	if name == "" {
		return nil, errors.New("/ is never unmounted")
	}
	parent, err := OpenNoFollow(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	a := &at{parent: parent, name: name}
	fd, err := openat2(int(parent.Fd()), name, unix.O_PATH|unix.O_NOFOLLOW, noLinks|unix.RESOLVE_BENEATH)
	switch {
	case err == nil:
		a.fd = os.NewFile(uintptr(fd), p)
	case errors.Is(err, unix.ENOENT):
	case errors.Is(err, unix.ELOOP):
		a.close()
		return nil, &SymlinkError{Path: p, Component: p}
	default:
		a.close()
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return a, nil
}

// topMount returns the id of the topmost mount at a (0 if a is not a mount
// point or absent).
func (a *at) topMount() (int, error) {
	if a.fd == nil {
		return 0, nil
	}
	id, err := MntID(a.fd)
	if err != nil {
		return 0, err
	}
	pid, err := MntID(a.parent)
	if err != nil {
		return 0, err
	}
	if id == pid {
		return 0, nil
	}
	return id, nil
}

// IsStale reports whether path is a dead FUSE mount (stat gives ENOTCONN or
// ECONNABORTED: "transport endpoint is not connected"). No link on the path
// is followed.
//
// stat alone can be answered from the kernel's attribute cache for a second
// after the server died, so statfs, which FUSE never caches, is asked too.
func IsStale(path string) bool {
	a, err := openAt(path)
	if err != nil {
		return isStaleErr(err)
	}
	defer a.close()
	if a.fd == nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstatat(int(a.fd.Fd()), "", &st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); isStaleErr(err) {
		return true
	}
	var sf unix.Statfs_t
	for {
		err := unix.Fstatfs(int(a.fd.Fd()), &sf)
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

// Unmount detaches whatever is mounted at path. Idempotent: not mounted is
// success. The path is resolved from "/" without following a link (a link
// anywhere is an error and nothing is touched); each mount found there is
// unmounted by UnmountRef, so stacked mounts all go. EBUSY is retried
// briefly, then the mount is detached lazily and the error wraps
// ErrLazyUnmount. Falls back to `fusermount3 -u` where umount2 is refused.
func Unmount(ctx context.Context, path string) error {
	return unmount(ctx, path, unmountRetries, unmountDelay, nil)
}

// UnmountOurs is Unmount for a path where only a mount s3mounts makes may
// be: a FUSE mount of type fuse.s3mounts, fuse.s3fs or fuse.geesefs. Any
// other mount there (one a user moved into place by renaming a parent) is
// an error and is left alone.
func UnmountOurs(ctx context.Context, path string) error {
	return unmount(ctx, path, unmountRetries, unmountDelay, OurFSType)
}

// OurFSType reports whether fstype is one s3mounts' backends mount.
func OurFSType(fstype string) bool {
	switch fstype {
	case "fuse.s3mounts", "fuse.s3fs", "fuse.geesefs", "fuse.GeeseFS", "fuse":
		return true
	}
	return false
}

// unmount is Unmount with its own EBUSY retries; ok, if set, must accept a
// mount's type before it is touched.
func unmount(ctx context.Context, path string, retries int, delay time.Duration, ok func(string) bool) error {
	for n := 0; n < 16; n++ {
		a, err := openAt(path)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil // a parent is gone: nothing mounted there
			}
			if isStaleErr(err) {
				return fmt.Errorf("unmounting %s: a parent directory is a dead mount: %w", path, err)
			}
			return fmt.Errorf("not unmounting %s: %w", path, err)
		}
		id, err := a.topMount()
		if err != nil || id == 0 {
			a.close()
			return err
		}
		m, found, err := FindMount(id)
		if err != nil {
			a.close()
			return err
		}
		if !found {
			a.close()
			continue // went away meanwhile
		}
		if ok != nil && !ok(m.FSType) {
			a.close()
			return fmt.Errorf("not unmounting %s: a %s mount (%s) is there, not one s3mounts made; unmount it yourself if it must go", path, m.FSType, m.Source)
		}
		err = unmountAt(ctx, a, m.Ref(), retries, delay)
		a.close()
		if err != nil {
			return err
		}
	}
	return fmt.Errorf("unmounting %s: more than 16 mounts stacked there", path)
}

// UnmountRef detaches the mount ref, found by its id wherever it is now
// (a user may have renamed a parent of its mount point), after checking
// that it is still the same mount (type and source) and that its current
// mount point, resolved from "/" without following a link, leads to it.
// A mount that is gone is success. A mount that cannot be reached that way
// is not touched: the error says where it is.
func UnmountRef(ctx context.Context, ref MountRef) error {
	return unmountRef(ctx, ref, unmountRetries, unmountDelay)
}

func unmountRef(ctx context.Context, ref MountRef, retries int, delay time.Duration) error {
	var last error
	for n := 0; n < 8; n++ {
		m, found, err := FindMount(ref.ID)
		if err != nil {
			return err
		}
		if !found {
			return nil
		}
		if !ref.matches(m) {
			return nil // the id was reused: ours is gone
		}
		a, err := openAt(m.MountPoint)
		if err != nil {
			last = fmt.Errorf("cannot reach mount %d (%s) at %s safely: %w", ref.ID, ref.FSType, m.MountPoint, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		err = unmountAt(ctx, a, ref, retries, delay)
		a.close()
		if err == errNotOurs {
			last = fmt.Errorf("mount %d (%s) at %s is covered by another mount or was replaced on the way: not touching it", ref.ID, ref.FSType, m.MountPoint)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		return err
	}
	return fmt.Errorf("unmounting %s: %w; detach it by hand once its path is plain directories again (umount -l)", ref.MountPoint, last)
}

var errNotOurs = errors.New("the topmost mount there is not the one asked for")

// unmountAt unmounts ref, which must be the topmost mount at a: umount2
// with UMOUNT_NOFOLLOW on the name inside our fd of the parent, retried on
// EBUSY, then detached lazily through an fd pinned to that very mount.
func unmountAt(ctx context.Context, a *at, ref MountRef, retries int, delay time.Duration) error {
	p := filepath.Join(a.parent.Name(), a.name)
	for i := 0; ; i++ {
		id, err := a.topMount()
		if err != nil {
			return err
		}
		if id != ref.ID {
			if _, found, _ := FindMount(ref.ID); !found {
				return nil
			}
			return errNotOurs
		}
		// Our O_PATH fd of the mount root would make it busy: drop it,
		// unmount the name (never following it), and check afterwards.
		a.fd.Close()
		a.fd = nil
		err = unix.Unmount(a.procPath(), unix.UMOUNT_NOFOLLOW)
		if reopenErr := a.reopen(); reopenErr != nil {
			return reopenErr
		}
		switch {
		case err == nil:
			if _, found, _ := FindMount(ref.ID); !found {
				return nil
			}
			continue // something else was on top (stacked): go on
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			if _, found, _ := FindMount(ref.ID); !found {
				return nil
			}
			continue
		case errors.Is(err, unix.EPERM):
			// Not root: a FUSE mount of our own uid is detached by the
			// setuid helper.
			return fusermountUnmount(ctx, p)
		case errors.Is(err, unix.EBUSY):
			if retries < 0 {
				return errBusy
			}
			if i >= retries {
				return lazyUnmountAt(a, ref)
			}
			select {
			case <-ctx.Done():
				return lazyUnmountAt(a, ref)
			case <-time.After(delay):
			}
		default:
			return fmt.Errorf("unmounting %s: %w", p, err)
		}
		if i > retries+16 {
			return fmt.Errorf("unmounting %s: mount %d stays", p, ref.ID)
		}
	}
}

// reopen opens the name again after an unmount attempt.
func (a *at) reopen() error {
	fd, err := openat2(int(a.parent.Fd()), a.name, unix.O_PATH|unix.O_NOFOLLOW, noLinks|unix.RESOLVE_BENEATH)
	switch {
	case err == nil:
		a.fd = os.NewFile(uintptr(fd), a.name)
	case errors.Is(err, unix.ENOENT):
	default:
		return &os.PathError{Op: "open", Path: a.name, Err: err}
	}
	return nil
}

// lazyUnmountAt detaches ref with MNT_DETACH through an O_PATH fd of its
// root whose mount id was just checked: the fd pins that mount, so nothing
// else can be detached whatever is renamed meanwhile.
func lazyUnmountAt(a *at, ref MountRef) error {
	if a.fd == nil {
		return nil
	}
	id, err := MntID(a.fd)
	if err != nil {
		return err
	}
	if id != ref.ID {
		return errNotOurs
	}
	err = unix.Unmount("/proc/self/fd/"+strconv.Itoa(int(a.fd.Fd())), unix.MNT_DETACH)
	if err == nil {
		return fmt.Errorf("unmounting %s: %w", ref.MountPoint, ErrLazyUnmount)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("unmounting %s lazily: %w", ref.MountPoint, err)
}

// DetachRef detaches the mount ref at once (MNT_DETACH) through an fd of
// its root checked to be that mount: used to take back a mount that landed
// somewhere it must not be.
func DetachRef(ref MountRef) error {
	for n := 0; n < 8; n++ {
		m, found, err := FindMount(ref.ID)
		if err != nil || !found {
			return err
		}
		a, err := openAt(m.MountPoint)
		if err != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		err = lazyUnmountAt(a, ref)
		a.close()
		if errors.Is(err, ErrLazyUnmount) || err == nil {
			return nil
		}
		if err != errNotOurs {
			return err
		}
	}
	return fmt.Errorf("mount %d (%s) could not be reached safely to detach it", ref.ID, ref.FSType)
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

// CleanStale lazily detaches a dead FUSE mount at path; a live or absent
// mount is left alone and is no error. No link on the path is followed,
// and only FUSE mounts are touched.
func CleanStale(path string) error {
	// Dead mounts can be stacked (a tool restarted over its own corpse).
	for i := 0; i < 16 && IsStale(path); i++ {
		a, err := openAt(path)
		if err != nil {
			return fmt.Errorf("cleaning the dead mount at %s: %w", path, err)
		}
		id, err := a.topMount()
		if err != nil || id == 0 {
			a.close()
			return err
		}
		m, found, err := FindMount(id)
		if err != nil || !found || !strings.HasPrefix(m.FSType, "fuse") {
			a.close()
			return err
		}
		err = lazyUnmountAt(a, m.Ref())
		a.close()
		if errors.Is(err, unix.EPERM) {
			if ferr := fusermountUnmount(context.Background(), path); ferr != nil && !errors.Is(ferr, ErrLazyUnmount) {
				return fmt.Errorf("cleaning the dead mount at %s: %w", path, ferr)
			}
			continue
		}
		if err != nil && !errors.Is(err, ErrLazyUnmount) {
			return fmt.Errorf("cleaning the dead mount at %s: %w", path, err)
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
