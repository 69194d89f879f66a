package mounts

// Paths a user controls. The project root may sit in a user's home (the
// default /home/jupyter/mnt/s3), so that user can rename or replace any of
// its components at any time. Root never acts on such a path by following
// it: every mount point is resolved from "/" with openat2
// RESOLVE_NO_SYMLINKS, created with mkdirat on a directory fd root holds,
// mounted on through the fd it checked, and unmounted only after the mount
// found there has been checked to be ours. See docs/SECURITY.md, "Paths a
// user controls".

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// noLinks is the resolve mode of every open on a path a user may control:
// no symbolic link (and no /proc magic link) is followed anywhere.
const noLinks = unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// SymlinkError says that a component of a path is a symbolic link, which
// s3mounts refuses to follow.
type SymlinkError struct {
	Path      string // the whole path asked for
	Component string // the first component that is a symbolic link
}

func (e *SymlinkError) Error() string {
	if e.Component == "" {
		return fmt.Sprintf("%s goes through a symbolic link: s3mounts never follows a link on the way to a mount point (anyone who can write its parent could point it elsewhere); replace the link with a real directory, or set project_root to a path without links", e.Path)
	}
	return fmt.Sprintf("%s goes through the symbolic link %s: s3mounts never follows a link on the way to a mount point (anyone who can write its parent could point it elsewhere); replace the link with a real directory, or set project_root to a path without links", e.Path, e.Component)
}

// openat2 is unix.Openat2 retried on EINTR and EAGAIN (the kernel answers
// EAGAIN when a rename raced the lookup).
func openat2(dirfd int, path string, flags int, resolve uint64) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, path, how)
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 100 {
			continue
		}
		return fd, err
	}
}

// cleanAbs makes path absolute and lexically clean, following nothing.
func cleanAbs(path string) (string, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return "", fmt.Errorf("path %q contains a NUL byte", path)
	}
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("path %q is not absolute", path)
	}
	return filepath.Clean(path), nil
}

// firstSymlink returns the first component of the absolute path that is a
// symbolic link ("" if none is found now); for error messages only.
func firstSymlink(path string) string {
	p := "/"
	for _, c := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if c == "" {
			continue
		}
		p = filepath.Join(p, c)
		st, err := os.Lstat(p)
		if err != nil {
			return ""
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return p
		}
	}
	return ""
}

// OpenNoFollow opens the absolute path from "/" with openat2
// RESOLVE_NO_SYMLINKS: if any component is a symbolic link the error is a
// *SymlinkError. flags are open(2) flags (O_PATH|O_DIRECTORY, O_RDONLY…).
func OpenNoFollow(path string, flags int) (*os.File, error) {
	p, err := cleanAbs(path)
	if err != nil {
		return nil, err
	}
	fd, err := openat2(unix.AT_FDCWD, p, flags|unix.O_NOFOLLOW, noLinks)
	if err != nil {
		if err == unix.ELOOP {
			return nil, &SymlinkError{Path: p, Component: firstSymlink(p)}
		}
		if err == unix.ENOTDIR { // O_DIRECTORY on a link says ENOTDIR
			if c := firstSymlink(p); c != "" {
				return nil, &SymlinkError{Path: p, Component: c}
			}
		}
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// MkdirAllNoFollow is os.MkdirAll that never follows a symbolic link: each
// component is opened from its parent's fd with RESOLVE_NO_SYMLINKS and
// created with mkdirat where missing. It returns an O_PATH fd of path.
func MkdirAllNoFollow(path string, mode os.FileMode) (*os.File, error) {
	p, err := cleanAbs(path)
	if err != nil {
		return nil, err
	}
	fd, err := openat2(unix.AT_FDCWD, "/", unix.O_PATH|unix.O_DIRECTORY, noLinks)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/", Err: err}
	}
	cur := "/"
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		if c == "" {
			continue
		}
		next := filepath.Join(cur, c)
		nfd, err := childDir(fd, c, mode)
		if err == unix.ENOTDIR && isLinkAt(fd, c) {
			err = unix.ELOOP
		}
		unix.Close(fd)
		if err == unix.ELOOP {
			return nil, &SymlinkError{Path: p, Component: next}
		}
		if err == unix.ENOTDIR {
			return nil, fmt.Errorf("%s: %s is not a directory: move it away or choose another path", p, next)
		}
		if err != nil {
			return nil, &os.PathError{Op: "mkdir", Path: next, Err: err}
		}
		fd, cur = nfd, next
	}
	return os.NewFile(uintptr(fd), p), nil
}

// childDir opens (creating it if missing) the directory name inside the
// directory dirfd, following no link.
func childDir(dirfd int, name string, mode os.FileMode) (int, error) {
	how := unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW
	res := uint64(noLinks | unix.RESOLVE_BENEATH)
	fd, err := openat2(dirfd, name, how, res)
	if err == unix.ENOENT {
		if err := unix.Mkdirat(dirfd, name, uint32(mode.Perm())); err != nil && err != unix.EEXIST {
			return -1, err
		}
		fd, err = openat2(dirfd, name, how, res)
	}
	return fd, err
}

// isLinkAt reports whether name in dirfd is a symbolic link (lstat).
func isLinkAt(dirfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK
}

// MntID returns the id of the mount f is on (the "mnt_id" of
// /proc/self/fdinfo), without asking the filesystem anything: it works on
// a dead or hung FUSE mount too.
func MntID(f *os.File) (int, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return 0, err
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(l, []byte("mnt_id:")); ok {
			return strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	return 0, errors.New("no mnt_id in /proc/self/fdinfo")
}

// MountDir is a mount point prepared by PrepareMountPoint: an empty
// directory, reached from "/" through no symbolic link, held open.
type MountDir struct {
	Path   string   // canonical absolute path, no link in it
	Parent *os.File // O_PATH fd of the directory that holds it
	Name   string   // its name in Parent
	Dir    *os.File // O_RDONLY fd of the (still empty) directory itself
	// ParentMntID is the id of the mount the directory is on: the new
	// mount's parent in mountinfo.
	ParentMntID int
}

// Close closes the fds.
func (d *MountDir) Close() {
	if d == nil {
		return
	}
	if d.Dir != nil {
		d.Dir.Close()
	}
	if d.Parent != nil {
		d.Parent.Close()
	}
}

// ProcPath is /proc/self/fd/N of the checked directory: a path mount(2)
// resolves to exactly that directory, whatever happens to the names on the
// way to it. Valid while d is open, in this process only.
func (d *MountDir) ProcPath() string {
	return "/proc/self/fd/" + strconv.Itoa(int(d.Dir.Fd()))
}

// PrepareMountPoint makes path a mount point safely: its parents are
// created or opened from "/" without following a link (MkdirAllNoFollow),
// path itself is created with mkdirat on the parent's fd, and opened with
// RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV, then checked to be an empty
// directory that is not a mount point. A symbolic link anywhere gives a
// *SymlinkError.
func PrepareMountPoint(path string) (*MountDir, error) {
	p, err := cleanAbs(path)
	if err != nil {
		return nil, err
	}
	dir, name := filepath.Split(p)
	if name == "" {
		return nil, fmt.Errorf("mount point %s: / cannot be a mount point", p)
	}
	parent, err := MkdirAllNoFollow(dir, 0o755)
	if err != nil {
		return nil, err
	}
	md := &MountDir{Path: p, Parent: parent, Name: name}
	fail := func(err error) (*MountDir, error) {
		md.Close()
		return nil, err
	}
	if md.ParentMntID, err = MntID(parent); err != nil {
		return fail(err)
	}
	pfd := int(parent.Fd())
	if err := unix.Mkdirat(pfd, name, 0o755); err != nil && err != unix.EEXIST {
		return fail(&os.PathError{Op: "mkdir", Path: p, Err: err})
	}
	// Without crossing into a mount: a mount point already mounted on (or
	// a dead FUSE mount there) is refused, never entered.
	fd, err := openat2(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW,
		noLinks|unix.RESOLVE_BENEATH|unix.RESOLVE_NO_XDEV)
	if err == unix.ENOTDIR && isLinkAt(pfd, name) {
		err = unix.ELOOP
	}
	switch {
	case err == unix.ELOOP:
		return fail(&SymlinkError{Path: p, Component: p})
	case err == unix.EXDEV:
		return fail(fmt.Errorf("mount point %s is already a mount point: unmount it first", p))
	case err == unix.ENOTDIR:
		return fail(fmt.Errorf("mount point %s is not a directory: move it away", p))
	case err != nil:
		return fail(&os.PathError{Op: "open", Path: p, Err: err})
	}
	md.Dir = os.NewFile(uintptr(fd), p)
	names, err := md.Dir.Readdirnames(1)
	if err == nil && len(names) > 0 {
		return fail(fmt.Errorf("mount point %s is not empty: move its files away", p))
	}
	if _, err := md.Dir.Seek(0, 0); err != nil {
		return fail(err)
	}
	return md, nil
}

// RemoveMountPoint removes the empty directory path (rmdir) after
// resolving its parent without following a link; anything else is left.
func RemoveMountPoint(path string) error {
	p, err := cleanAbs(path)
	if err != nil {
		return err
	}
	dir, name := filepath.Split(p)
	parent, err := OpenNoFollow(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer parent.Close()
	return unix.Unlinkat(int(parent.Fd()), name, unix.AT_REMOVEDIR)
}
