package builtin

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Permissions, two models (connector key `permissions`):
//
//   - "connector" (the default): every file and directory shows the
//     connector's uid, gid and modes; chmod/chown that would change
//     anything fail with EPERM (checkOwnerMode in ops.go).
//   - "object": mode, uid and gid are stored per object in s3fs's
//     convention (x-amz-meta-mode as a decimal st_mode including the type
//     bits, x-amz-meta-uid, x-amz-meta-gid; directories on their marker
//     object "dir/"), the connector's values being the defaults for objects
//     without them. The kernel enforces them (default_permissions), chown
//     is reserved to root, chmod to the owner and root, and mknod/mkfifo
//     store an empty object whose mode carries the type (and
//     x-amz-meta-rdev), as s3fs does. Every file the kernel checks needs
//     its metadata: a stat of a file known from a listing only does a HEAD.

const (
	metaUID  = "uid"
	metaGID  = "gid"
	metaRdev = "rdev"
)

// objectPerms says whether the mount keeps modes and owners per object.
func (f *FS) objectPerms() bool { return f.spec.Permissions == "object" }

// metaGet reads a user metadata value whatever the case of its name (the
// SDK gives lower case, other tools may not).
func metaGet(meta map[string]string, k string) (string, bool) {
	if v, ok := meta[k]; ok {
		return v, true
	}
	for mk, v := range meta {
		if strings.EqualFold(mk, k) {
			return v, true
		}
	}
	return "", false
}

// metaSet sets k, removing other spellings of it.
func metaSet(meta map[string]string, k, v string) {
	for mk := range meta {
		if mk != k && strings.EqualFold(mk, k) {
			delete(meta, mk)
		}
	}
	meta[k] = v
}

func metaUint(meta map[string]string, k string) (uint32, bool) {
	v, ok := metaGet(meta, k)
	if !ok {
		return 0, false
	}
	u, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
	return uint32(u), err == nil
}

// specialType is the file type stored in an object's mode when it is a
// FIFO, socket or device (object model only), else 0.
func (f *FS) specialType(e entry) uint32 {
	if !f.objectPerms() || e.dir || e.link {
		return 0
	}
	m, ok := metaUint(e.meta, metaMode)
	if !ok {
		return 0
	}
	switch t := m & syscall.S_IFMT; t {
	case syscall.S_IFIFO, syscall.S_IFSOCK, syscall.S_IFCHR, syscall.S_IFBLK:
		return t
	}
	return 0
}

// ownerMode is what stat shows of e: st_mode (type and permission bits),
// uid and gid.
func (f *FS) ownerMode(e entry) (mode, uid, gid uint32) {
	uid, gid = f.spec.UID, f.spec.GID
	switch {
	case e.dir:
		mode = syscall.S_IFDIR | uint32(f.spec.DirMode.Perm())
	case e.link:
		mode = syscall.S_IFLNK | 0o777
	default:
		mode = syscall.S_IFREG | uint32(f.spec.FileMode.Perm())
	}
	if !f.objectPerms() || e.meta == nil {
		return mode, uid, gid
	}
	if m, ok := metaUint(e.meta, metaMode); ok && !e.link {
		if t := f.specialType(e); t != 0 {
			mode = t
		} else {
			mode &= syscall.S_IFMT
		}
		mode |= m & 0o7777
	}
	if u, ok := metaUint(e.meta, metaUID); ok {
		uid = u
	}
	if g, ok := metaUint(e.meta, metaGID); ok {
		gid = g
	}
	return mode, uid, gid
}

// newObjectMeta is the metadata of a new object created by the caller
// with mode (type and permission bits), in the object model; nil in the
// connector model.
func (f *FS) newObjectMeta(ctx context.Context, mode uint32) map[string]string {
	if !f.objectPerms() {
		return nil
	}
	uid, gid := f.spec.UID, f.spec.GID
	if c, ok := fuse.FromContext(ctx); ok {
		uid, gid = c.Uid, c.Gid
	}
	return map[string]string{
		metaMode: strconv.FormatUint(uint64(mode), 10),
		metaUID:  strconv.FormatUint(uint64(uid), 10),
		metaGID:  strconv.FormatUint(uint64(gid), 10),
	}
}

// callerUID is the uid of the process making the request (0 when unknown:
// the kernel itself).
func callerUID(ctx context.Context) uint32 {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid
	}
	return 0
}

// setOwnerModeObject answers the mode and owner parts of a setattr under
// permissions = "object": chown only by root, chmod by the owner or root
// (the kernel checks the same with default_permissions, and that chgrp
// goes to a group of the caller's); the new values are stored in the
// object's metadata.
func (n *node) setOwnerModeObject(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, check bool) syscall.Errno {
	f := n.fsys
	m, hasMode := in.GetMode()
	uid, hasUID := in.GetUID()
	gid, hasGID := in.GetGID()
	if !hasMode && !hasUID && !hasGID {
		return 0
	}
	n.mu.Lock()
	e := n.info
	e.dir, e.link = n.dir, n.link
	n.mu.Unlock()
	_, curUID, curGID := f.ownerMode(e)
	if hasMode && n.link {
		hasMode = false // Linux has no lchmod: nothing to store
	}
	if (!hasMode || m&0o7777 == f.modeOf(e)&0o7777) && (!hasUID || uid == curUID) && (!hasGID || gid == curGID) {
		return 0 // changes nothing
	}
	if check {
		if f.spec.ReadOnly {
			return syscall.EROFS
		}
		if n.IsRoot() {
			slog.Debug("refusing to change the mount root's owner or mode: it has no object of its own", "asked", in.Valid)
			return syscall.EPERM
		}
		caller := callerUID(ctx)
		if (hasUID && uid != curUID) && caller != 0 {
			slog.Debug("refusing chown: only root may give a file away", "path", n.rel(), "caller", caller)
			return syscall.EPERM
		}
		if caller != 0 && caller != curUID {
			slog.Debug("refusing chmod/chgrp: the caller does not own the file", "path", n.rel(), "caller", caller, "owner", curUID)
			return syscall.EPERM
		}
		return 0
	}
	return n.updateMeta(ctx, func(meta map[string]string) error {
		if hasMode {
			metaSet(meta, metaMode, strconv.FormatUint(uint64(f.modeOf(e)&syscall.S_IFMT|m&0o7777), 10))
		} else if _, ok := metaGet(meta, metaMode); !ok {
			metaSet(meta, metaMode, strconv.FormatUint(uint64(f.modeOf(e)), 10))
		}
		if hasUID {
			metaSet(meta, metaUID, strconv.FormatUint(uint64(uid), 10))
		}
		if hasGID {
			metaSet(meta, metaGID, strconv.FormatUint(uint64(gid), 10))
		}
		return nil
	})
}

func (f *FS) modeOf(e entry) uint32 {
	m, _, _ := f.ownerMode(e)
	return m
}

// maxUserMeta is S3's limit on an object's user metadata: 2 KB, the sum of
// the names and values (UTF-8), x-amz-meta- not counted.
const maxUserMeta = 2048

func metaBytes(meta map[string]string) int {
	n := 0
	for k, v := range meta {
		n += len(k) + len(v)
	}
	return n
}

var errE2BIG = errors.New("user metadata over S3's 2 KB limit")

// updateMeta changes the user metadata of n's object with edit: on a file
// being written here it rides with the upload the writer's close makes; on
// a closed file (or a directory's marker) it is a metadata-only copy that
// keeps the other metadata (a directory without a marker gets one).
func (n *node) updateMeta(ctx context.Context, edit func(map[string]string) error) syscall.Errno {
	f := n.fsys
	if f.spec.ReadOnly {
		return syscall.EROFS
	}
	if n.IsRoot() {
		return syscall.EPERM
	}
	rel := n.rel()
	if !n.dir {
		n.mu.Lock()
		if ws := n.ws; ws != nil && (ws.dirty || ws.failed != 0) {
			meta := maps.Clone(n.info.meta)
			if meta == nil {
				meta = map[string]string{}
			}
			if err := edit(meta); err != nil {
				n.mu.Unlock()
				return metaErrno(err)
			}
			if metaBytes(meta) > maxUserMeta {
				n.mu.Unlock()
				return syscall.E2BIG
			}
			n.info.meta = meta
			n.mu.Unlock()
			return 0
		}
		n.mu.Unlock()
		if errno := n.sync(ctx); errno != 0 {
			return errno
		}
	}
	key := f.key(rel)
	if n.dir {
		key = f.dirKey(rel)
	}
	head, err := f.cl.Head(ctx, key)
	marker := false
	if err != nil {
		if !n.dir || toErrno(err) != syscall.ENOENT {
			return toErrno(err)
		}
		marker = true // a directory without a marker object: make one
	}
	meta := maps.Clone(head.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	if err := edit(meta); err != nil {
		return metaErrno(err)
	}
	if metaBytes(meta) > maxUserMeta {
		return syscall.E2BIG
	}
	var info ObjInfo
	if marker {
		info, err = f.cl.Put(ctx, key, bytes.NewReader(nil), 0, meta)
	} else {
		info, err = f.cl.SetMeta(ctx, head, meta)
	}
	if err != nil {
		if errors.Is(err, errMetaTooBig) {
			slog.Debug("refusing to change the metadata of an object over 5 GiB: S3 can change metadata only by copying the object", "path", rel)
			return syscall.EFBIG
		}
		return toErrno(err)
	}
	if info.Meta == nil {
		info.Meta = meta
	}
	var e entry
	if n.dir {
		n.mu.Lock()
		e = n.info
		n.mu.Unlock()
		e.dir, e.headed, e.meta = true, true, meta
		if ns, ok := metaMTimeOf(meta); ok && ns > e.mtime {
			e.mtime = ns
		}
	} else {
		e = entryOf(info)
		e.size = head.Size
		e.meta = meta
	}
	n.mu.Lock()
	if n.ws != nil {
		n.info.meta, n.info.etag = meta, e.etag
	}
	n.mu.Unlock()
	n.setInfo(e)
	f.meta.changed(rel)
	f.meta.put(rel, e)
	return 0
}

func metaErrno(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}

var _ fs.NodeMknoder = (*node)(nil)

// Mknod stores a FIFO, socket or device as s3fs does: an empty object
// whose x-amz-meta-mode carries the type (and x-amz-meta-rdev the device).
// Only in the object model, where modes are kept; in the connector model
// every object is a regular file, so it is EPERM (what mknod(2) answers
// for a node type the filesystem does not support). A regular file is an
// empty object in both.
func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	if f.spec.ReadOnly {
		return nil, syscall.EROFS
	}
	if errno := nameErrno(name); errno != 0 {
		return nil, errno
	}
	t := mode & syscall.S_IFMT
	if t != syscall.S_IFREG && t != 0 && !f.objectPerms() {
		slog.Debug(`refusing mknod: permissions = "connector" shows every object as a regular file; set permissions = "object" to store FIFOs, sockets and devices`, "path", joinPath(n.rel(), name))
		return nil, syscall.EPERM
	}
	if t == 0 {
		mode |= syscall.S_IFREG
	}
	rel := joinPath(n.rel(), name)
	if _, errno := f.stat(ctx, rel); errno == 0 {
		return nil, syscall.EEXIST
	} else if errno != syscall.ENOENT {
		return nil, errno
	}
	now := time.Now().Unix() * 1e9
	meta := f.newObjectMeta(ctx, mode)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[metaMTime] = formatMTime(now)
	if t == syscall.S_IFCHR || t == syscall.S_IFBLK {
		meta[metaRdev] = strconv.FormatUint(uint64(dev), 10)
	}
	info, err := f.cl.Put(ctx, f.key(rel), bytes.NewReader(nil), 0, meta)
	if err != nil {
		return nil, toErrno(err)
	}
	e := entry{mtime: now, etag: info.ETag, headed: true, meta: meta}
	f.meta.changed(rel)
	f.meta.put(rel, e)
	ch := n.newChild(ctx, name, e)
	ch.Operations().(*node).attrOut(&out.Attr)
	return ch, 0
}

// sawChildren raises a directory's mtime to the newest LastModified seen in
// its listing (a directory's mtime is not the mount's start time).
func (n *node) sawChildren(newest int64) {
	if newest == 0 {
		return
	}
	n.mu.Lock()
	if newest > n.info.mtime {
		n.info.mtime = newest
	}
	n.mu.Unlock()
}

var _ fs.FileAllocater = (*fileHandle)(nil)

// Allocate answers fallocate(2): mode 0 extends the file to off+size as
// ftruncate would (zeros); S3 has no space to reserve, so
// FALLOC_FL_KEEP_SIZE (reserve without growing), hole punching and the
// other modes are EOPNOTSUPP rather than a success that reserved nothing.
func (h *fileHandle) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	if mode != 0 {
		slog.Debug("refusing fallocate with flags: S3 has no space to reserve or holes to punch", "path", h.n.rel(), "mode", mode)
		return syscall.EOPNOTSUPP
	}
	if h.ws == nil {
		return syscall.EBADF
	}
	end := off + size
	h.n.mu.Lock()
	cur := h.n.ws.size
	h.n.mu.Unlock()
	if end <= uint64(cur) {
		return 0
	}
	in := &fuse.SetAttrIn{}
	in.Valid = fuse.FATTR_SIZE
	in.Size = end
	var out fuse.AttrOut
	return h.n.Setattr(ctx, h, in, &out)
}
