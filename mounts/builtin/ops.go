package builtin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sync/errgroup"
)

// maxDirRename is the most objects a directory rename copies; above it
// rename answers EXDEV, and mv falls back to copying file by file.
const maxDirRename = 1000

const renameNoReplace = 1 // RENAME_NOREPLACE

var (
	_ fs.NodeCreater   = (*node)(nil)
	_ fs.NodeMkdirer   = (*node)(nil)
	_ fs.NodeUnlinker  = (*node)(nil)
	_ fs.NodeRmdirer   = (*node)(nil)
	_ fs.NodeRenamer   = (*node)(nil)
	_ fs.NodeSetattrer = (*node)(nil)
)

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	if f.spec.ReadOnly {
		return nil, nil, 0, syscall.EROFS
	}
	if errno := nameErrno(name); errno != 0 {
		return nil, nil, 0, errno
	}
	rel := joinPath(n.rel(), name)
	tmp, err := f.stagingFile()
	if err != nil {
		return nil, nil, 0, stagingErrno(err)
	}
	now := time.Now().UnixNano()
	ws := &writeState{f: tmp, refs: 1, dirty: true, mtime: now, created: true, st: f.newStream(f.key(rel), tmp)}
	ce := entry{mtime: now, meta: f.newObjectMeta(ctx, syscall.S_IFREG|mode&0o7777)}
	ch := n.newChild(ctx, name, ce)
	cn := ch.Operations().(*node)
	cn.mu.Lock()
	if cn.ws != nil {
		// Someone has it open for writing already: share and truncate.
		tmp.Close()
		ws = cn.ws
		err := ws.st.breakOff()
		if err == nil {
			err = ws.f.Truncate(0)
		}
		if err != nil {
			errno := ws.fail(err)
			cn.mu.Unlock()
			return nil, nil, 0, errno
		}
		ws.refs++
		ws.size, ws.dirty = 0, true
		cn.mu.Unlock()
	} else {
		cn.ws = ws
		cn.info = ce
		cn.mu.Unlock()
	}
	f.meta.changed(rel)
	cn.attrOut(&out.Attr)
	return ch, &fileHandle{n: cn, ws: ws, pid: callerTgid(ctx), writer: true, created: true}, 0, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	if f.spec.ReadOnly {
		return nil, syscall.EROFS
	}
	if errno := nameErrno(name); errno != 0 {
		return nil, errno
	}
	rel := joinPath(n.rel(), name)
	if e, errno := f.stat(ctx, rel); errno == 0 {
		_ = e
		return nil, syscall.EEXIST
	} else if errno != syscall.ENOENT {
		return nil, errno
	}
	meta := f.newObjectMeta(ctx, syscall.S_IFDIR|mode&0o7777)
	info, err := f.cl.Put(ctx, f.dirKey(rel), bytes.NewReader(nil), 0, meta)
	if err != nil {
		return nil, toErrno(err)
	}
	e := entry{dir: true, headed: true, mtime: info.MTime.UnixNano(), meta: meta}
	if e.mtime <= 0 {
		e.mtime = time.Now().UnixNano()
	}
	f.meta.changed(rel)
	f.meta.put(rel, e)
	ch := n.newChild(ctx, name, e)
	ch.Operations().(*node).attrOut(&out.Attr)
	return ch, 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	if f.spec.ReadOnly {
		return syscall.EROFS
	}
	rel := joinPath(n.rel(), name)
	e, errno := f.stat(ctx, rel)
	if errno == syscall.ENOENT {
		// Maybe created here and not uploaded yet.
		if ch := n.GetChild(name); ch == nil {
			return syscall.ENOENT
		}
	} else if errno != 0 {
		return errno
	} else if e.dir {
		return syscall.EISDIR
	}
	if ch := n.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok {
			cn.mu.Lock()
			if cn.ws != nil {
				cn.ws.unlinked = true
			}
			cn.mu.Unlock()
		}
	}
	if err := f.cl.Delete(ctx, f.key(rel)); err != nil {
		return toErrno(err)
	}
	if ch := n.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok {
			cn.mu.Lock()
			cn.unlinked = true // fstat of an open descriptor: st_nlink 0
			cn.mu.Unlock()
		}
	}
	f.meta.changed(rel)
	f.meta.putNeg(rel)
	return 0
}

// children lists up to max keys under a directory prefix (no delimiter).
func (f *FS) children(ctx context.Context, prefix string, max int) ([]ObjInfo, bool, error) {
	var out []ObjInfo
	token := ""
	for {
		p, err := f.cl.List(ctx, prefix, "", token, 1000)
		if err != nil {
			return nil, false, err
		}
		out = append(out, p.Objects...)
		if len(out) > max {
			return out[:max], true, nil
		}
		if p.Next == "" {
			return out, false, nil
		}
		token = p.Next
	}
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	f := n.fsys
	if f.spec.ReadOnly {
		return syscall.EROFS
	}
	rel := joinPath(n.rel(), name)
	p, err := f.cl.List(ctx, f.dirKey(rel), "", "", 2)
	if err != nil {
		return toErrno(err)
	}
	for _, o := range p.Objects {
		if o.Key != f.dirKey(rel) {
			return syscall.ENOTEMPTY
		}
	}
	if len(p.Objects) == 0 {
		if e, errno := f.stat(ctx, rel); errno != 0 {
			return errno
		} else if !e.dir {
			return syscall.ENOTDIR
		}
	}
	if err := f.cl.Delete(ctx, f.dirKey(rel)); err != nil {
		return toErrno(err)
	}
	f.meta.drop(rel)
	f.meta.putNeg(rel)
	return 0
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	f := n.fsys
	if f.spec.ReadOnly {
		return syscall.EROFS
	}
	if flags&^uint32(renameNoReplace) != 0 {
		return syscall.ENOTSUP // RENAME_EXCHANGE, RENAME_WHITEOUT
	}
	if errno := nameErrno(newName); errno != 0 {
		return errno
	}
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	src := joinPath(n.rel(), name)
	dst := joinPath(np.rel(), newName)
	// Upload what a writer of the source has staged, so the copy has it.
	if ch := n.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok && !cn.dir {
			if errno := cn.sync(ctx); errno != 0 {
				return errno
			}
		}
	}
	se, errno := f.stat(ctx, src)
	if errno != 0 {
		return errno
	}
	de, derr := f.stat(ctx, dst)
	if derr == 0 {
		if flags&renameNoReplace != 0 {
			return syscall.EEXIST
		}
		if de.dir && !se.dir {
			return syscall.EISDIR
		}
		if !de.dir && se.dir {
			return syscall.ENOTDIR
		}
	} else if derr != syscall.ENOENT {
		return derr
	}
	defer func() {
		f.meta.drop(src)
		f.meta.drop(dst)
		f.meta.putNeg(src)
	}()
	if !se.dir {
		if err := f.cl.Copy(ctx, f.key(src), f.key(dst), se.size); err != nil {
			return toErrno(err)
		}
		if err := f.cl.Delete(ctx, f.key(src)); err != nil {
			return toErrno(err)
		}
		return 0
	}
	if derr == 0 {
		if p, err := f.cl.List(ctx, f.dirKey(dst), "", "", 2); err != nil {
			return toErrno(err)
		} else {
			for _, o := range p.Objects {
				if o.Key != f.dirKey(dst) {
					return syscall.ENOTEMPTY
				}
			}
		}
	}
	if strings.HasPrefix(dst+"/", src+"/") {
		return syscall.EINVAL // into itself
	}
	objs, more, err := f.children(ctx, f.dirKey(src), maxDirRename)
	if err != nil {
		return toErrno(err)
	}
	if more {
		return syscall.EXDEV
	}
	sp, dp := f.dirKey(src), f.dirKey(dst)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	hasMarker := false
	for _, o := range objs {
		if o.Key == sp {
			hasMarker = true
		}
		g.Go(func() error { return f.cl.Copy(gctx, o.Key, dp+o.Key[len(sp):], o.Size) })
	}
	if err := g.Wait(); err != nil {
		return toErrno(err)
	}
	if !hasMarker {
		// Keep the (maybe empty) directory visible under its new name.
		if _, err := f.cl.Put(ctx, dp, bytes.NewReader(nil), 0, nil); err != nil {
			return toErrno(err)
		}
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, o := range objs {
		g.Go(func() error { return f.cl.Delete(gctx, o.Key) })
	}
	if err := g.Wait(); err != nil {
		return toErrno(err)
	}
	return 0
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	f := n.fsys
	// Nothing is changed unless everything asked can be: refuse first.
	if f.objectPerms() {
		if errno := n.setOwnerModeObject(ctx, fh, in, true); errno != 0 {
			return errno
		}
	} else if errno := n.checkOwnerMode(in); errno != 0 {
		return errno
	}
	size, hasSize := in.GetSize()
	if hasSize {
		if f.spec.ReadOnly {
			return syscall.EROFS
		}
		if n.dir {
			return syscall.EISDIR
		}
		if size > maxObjectSize {
			return syscall.EFBIG // S3 stores no object over 5 TiB
		}
		var ws *writeState
		h, _ := fh.(*fileHandle)
		if h != nil && h.ws != nil {
			ws = h.ws
		}
		// own: a truncate(2) by path, not through an open handle. It
		// publishes at once, unless the file is open for writing here:
		// then the writers' close publishes it with their content.
		own, fresh := false, false
		if ws == nil {
			var errno syscall.Errno
			if errno := n.refreshInfo(ctx); errno != 0 {
				return errno
			}
			ws, fresh, errno = n.acquireWS(ctx, size == 0)
			if errno != 0 {
				return errno
			}
			own = true
		}
		n.mu.Lock()
		same := ws.size == int64(size)
		var err error
		if !same {
			err = ws.st.breakOff()
		}
		if err == nil && ws.failed != 0 && ws.dirty {
			err = ws.failed
		}
		n.mu.Unlock()
		if same && !own && err == nil {
			// O_TRUNC arrives as open + setattr(size 0): nothing to do,
			// and a streamed upload must go on.
			n.attrOut(&out.Attr)
			return 0
		}
		if err == nil {
			err = ws.f.Truncate(int64(size))
		}
		if h != nil {
			h.wrote.Store(true)
		}
		n.mu.Lock()
		if err != nil {
			errno := ws.fail(err)
			n.mu.Unlock()
			if own {
				n.releaseWS()
			}
			return errno
		}
		ws.size, ws.dirty, ws.mtime, ws.mtimeSet, ws.pubErr = int64(size), true, time.Now().UnixNano(), false, 0
		n.mu.Unlock()
		if own && !fresh {
			n.releaseWS()
		} else if own {
			errno := n.sync(ctx)
			n.releaseWS()
			if errno != 0 {
				return errno
			}
		}
	}
	if mt, ok := in.GetMTime(); ok && !(hasSize && in.Valid&fuse.FATTR_MTIME_NOW != 0) {
		// (A truncate's own "mtime = now" is done by the truncate.)
		if errno := n.setMTime(ctx, fh, mt, in.Valid&fuse.FATTR_MTIME_NOW != 0); errno != 0 {
			return errno
		}
	}
	if f.objectPerms() {
		if errno := n.setOwnerModeObject(ctx, fh, in, false); errno != 0 {
			return errno
		}
	}
	n.attrOut(&out.Attr)
	return 0
}

// setMTime stores a file's mtime (utimensat, touch, cp -p): on a file open
// for writing here it rides with the upload; on a closed file it is a
// metadata-only copy (x-amz-meta-mtime), keeping the other metadata.
// now: "set to the current time" (touch), which needs no stored value on an
// upload (LastModified is the time).
func (n *node) setMTime(ctx context.Context, fh fs.FileHandle, t time.Time, now bool) syscall.Errno {
	f := n.fsys
	if f.spec.ReadOnly {
		return syscall.EROFS
	}
	if n.dir {
		if now {
			// "Now": what a directory shows anyway once it changes; a
			// stored time would freeze it (see fill).
			return n.updateMeta(ctx, func(meta map[string]string) error {
				for k := range meta {
					if isMTimeKey(k) {
						delete(meta, k)
					}
				}
				return nil
			})
		}
		return n.updateMeta(ctx, func(meta map[string]string) error {
			metaSet(meta, metaMTime, formatMTime(t.UnixNano()))
			return nil
		})
	}
	ns := t.UnixNano()
	n.mu.Lock()
	if ws := n.ws; ws != nil && (ws.dirty || ws.failed != 0) {
		// Rides with the upload that the writer's close makes.
		ws.mtime, ws.mtimeSet = ns, !now
		n.mu.Unlock()
		return 0
	}
	n.mu.Unlock()
	if errno := n.sync(ctx); errno != 0 {
		return errno
	}
	rel := n.rel()
	head, err := f.cl.Head(ctx, f.key(rel))
	if err != nil {
		return toErrno(err)
	}
	meta := make(map[string]string, len(head.Meta)+1)
	for k, v := range head.Meta {
		meta[k] = v
	}
	meta[metaMTime] = formatMTime(ns)
	info, err := f.cl.SetMeta(ctx, head, meta)
	if err != nil {
		if errors.Is(err, errMetaTooBig) {
			slog.Debug("refusing to set the mtime of an object over 5 GiB: S3 can change metadata only by copying the object", "path", rel)
			return syscall.EFBIG
		}
		return toErrno(err)
	}
	e := entryOf(info)
	e.size = head.Size
	n.mu.Lock()
	if n.ws != nil {
		n.ws.mtime = ns
	}
	n.mu.Unlock()
	n.setInfo(e)
	f.meta.changed(rel)
	f.meta.put(rel, e)
	return 0
}

// refreshInfo makes sure n.info is fresh (for a writer that loads content).
func (n *node) refreshInfo(ctx context.Context) syscall.Errno {
	n.mu.Lock()
	fresh := n.ws != nil || time.Now().Before(n.infoExp)
	n.mu.Unlock()
	if fresh {
		return 0
	}
	e, errno := n.fsys.stat(ctx, n.rel())
	if errno != 0 {
		return errno
	}
	n.setInfo(e)
	return 0
}

// checkOwnerMode answers the mode and owner parts of a setattr under
// permissions = "connector": every file and directory has the connector's
// owner, group and mode, so chmod and chown succeed only when they change
// nothing (cp -p and tar x as root set what is already there), and fail
// with EPERM otherwise, logged at debug with the reason. In a ro mount any
// of them is EROFS, as the kernel answers for a ro filesystem.
func (n *node) checkOwnerMode(in *fuse.SetAttrIn) syscall.Errno {
	f := n.fsys
	perm := uint32(f.spec.FileMode.Perm())
	if n.dir {
		perm = uint32(f.spec.DirMode.Perm())
	}
	refuse := func(what string, asked, have uint32, format string) syscall.Errno {
		if f.spec.ReadOnly {
			return syscall.EROFS
		}
		slog.Debug("refusing "+what+`: permissions = "connector" gives every file the connector's owner, group and modes, and S3 keeps no other`,
			"path", n.rel(), "asked", fmt.Sprintf(format, asked), "connector", fmt.Sprintf(format, have))
		return syscall.EPERM
	}
	if m, ok := in.GetMode(); ok && m&07777 != perm {
		n.mu.Lock()
		ws := n.ws
		if ws != nil && ws.created && m&07777&^perm == 0 && !f.spec.ReadOnly {
			// A narrower mode on a file this mount is creating (rsync's
			// temporary file, mkstemp's 0600): shown until the last close,
			// then the connector's mode, which S3 keeps in this model.
			ws.mode = m & 07777
			n.mu.Unlock()
			return 0
		}
		n.mu.Unlock()
		return refuse("chmod", m&07777, perm, "%04o")
	}
	if uid, ok := in.GetUID(); ok && uid != f.spec.UID {
		return refuse("chown", uid, f.spec.UID, "uid %d")
	}
	if gid, ok := in.GetGID(); ok && gid != f.spec.GID {
		return refuse("chgrp", gid, f.spec.GID, "gid %d")
	}
	return 0
}
