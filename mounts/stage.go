package mounts

// Mounting onto a mount point a user could tamper with: the filesystem is
// first mounted at a stage (a directory only root can reach, made a private
// mount of its own so its children can be moved), then moved with
// move_mount(2) onto the mount point's directory fd that PrepareMountPoint
// checked. Neither the FUSE tool (s3fs realpath()s its mount point and
// mounts by path) nor go-fuse ever sees the user's path, and the move lands
// on that very directory whatever is renamed meanwhile.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Stage is a private directory to mount at before the move.
type Stage struct {
	Path  string
	tmp   bool // Path was made by NewStage in the temporary directory
	bound bool
}

// NewStage makes dir (created 0700 if missing; "" means a new directory
// in $TMPDIR) a private bind mount of itself. Only root can do this: the
// error then wraps EPERM.
func NewStage(dir string) (*Stage, error) {
	s := &Stage{Path: dir}
	if dir == "" {
		d, err := os.MkdirTemp("", "s3mounts-stage-")
		if err != nil {
			return nil, err
		}
		s.Path, s.tmp = d, true
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := unix.Mount(s.Path, s.Path, "", unix.MS_BIND, ""); err != nil {
		s.Close()
		return nil, fmt.Errorf("preparing the private mount stage %s: %w", s.Path, err)
	}
	s.bound = true
	if err := unix.Mount("", s.Path, "", unix.MS_PRIVATE, ""); err != nil {
		s.Close()
		return nil, fmt.Errorf("making the mount stage %s private: %w", s.Path, err)
	}
	return s, nil
}

// Close detaches whatever is still at the stage (a filesystem never moved
// is detached too) and removes the directory.
func (s *Stage) Close() {
	if s == nil {
		return
	}
	if s.bound {
		for i := 0; i < 16; i++ {
			if err := unix.Unmount(s.Path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
				break
			}
		}
		s.bound = false
	}
	os.Remove(s.Path)
}

// MoveTo moves the filesystem mounted at the stage (its type must start
// with fstypePrefix, e.g. "fuse") onto md's directory and returns what the
// kernel then says of it: a new mount whose parent is md's mount.
func (s *Stage) MoveTo(md *MountDir, fstypePrefix string) (MountRef, error) {
	f, err := os.OpenFile(s.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return MountRef{}, err
	}
	defer f.Close()
	id, err := MntID(f)
	if err != nil {
		return MountRef{}, err
	}
	m, ok, err := FindMount(id)
	if err != nil {
		return MountRef{}, err
	}
	if !ok || !strings.HasPrefix(m.FSType, fstypePrefix) || m.MountPoint != s.Path {
		return MountRef{}, fmt.Errorf("nothing of type %s is mounted at the stage %s", fstypePrefix, s.Path)
	}
	err = unix.MoveMount(int(f.Fd()), "", int(md.Dir.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return MountRef{}, fmt.Errorf("moving the new mount onto %s: %w", md.Path, err)
	}
	ref, err := VerifyMounted(md, id)
	if err != nil {
		DetachRef(MountRef{ID: id, FSType: m.FSType, Source: m.Source, MountPoint: md.Path})
		return MountRef{}, err
	}
	return ref, nil
}

// VerifyMounted checks that mount id sits on md's directory: its parent is
// md's mount and md's name, opened from md's parent fd without following
// a link, leads to it. It returns the mount's MountRef.
func VerifyMounted(md *MountDir, id int) (MountRef, error) {
	m, ok, err := FindMount(id)
	if err != nil {
		return MountRef{}, err
	}
	if !ok {
		return MountRef{}, fmt.Errorf("the new mount at %s vanished at once", md.Path)
	}
	if m.ParentID != md.ParentMntID {
		return MountRef{}, fmt.Errorf("the new mount landed at %s, not on %s: nothing is mounted", m.MountPoint, md.Path)
	}
	fd, err := openat2(int(md.Parent.Fd()), md.Name, unix.O_PATH|unix.O_NOFOLLOW, noLinks|unix.RESOLVE_BENEATH)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return MountRef{}, &SymlinkError{Path: md.Path, Component: md.Path}
		}
		return MountRef{}, fmt.Errorf("%s changed while it was being mounted (%v): nothing is mounted", md.Path, err)
	}
	f := os.NewFile(uintptr(fd), md.Path)
	top, err := MntID(f)
	f.Close()
	if err != nil {
		return MountRef{}, err
	}
	if top != id {
		return MountRef{}, fmt.Errorf("%s was replaced while it was being mounted: nothing is mounted", md.Path)
	}
	ref := m.Ref()
	ref.MountPoint = filepath.Clean(md.Path)
	return ref, nil
}
