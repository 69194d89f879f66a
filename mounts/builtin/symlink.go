package builtin

import (
	"bytes"
	"context"
	"strconv"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Symbolic links in s3fs's format, so that the same bucket shows the same
// links under s3fs, GeeseFS and this backend: an object whose body is the
// link's target, with x-amz-meta-mode holding the mode in decimal with
// S_IFLNK set ("41471" for 0120777). A listing does not say which objects
// are links (no metadata): a HEAD does, and every file is HEADed before
// its attributes are shown (see times.go).

const metaMode = "mode"

// maxLinkTarget is the longest target stored or read (PATH_MAX).
const maxLinkTarget = 4096

var (
	_ fs.NodeReadlinker = (*node)(nil)
	_ fs.NodeSymlinker  = (*node)(nil)
)

// isLinkMeta says whether an object's metadata makes it a symbolic link.
func isLinkMeta(meta map[string]string) bool {
	for k, v := range meta {
		if len(k) == len(metaMode) && (k == metaMode || k == "Mode") {
			m, err := strconv.ParseUint(v, 10, 32)
			return err == nil && m&syscall.S_IFMT == syscall.S_IFLNK
		}
	}
	return false
}

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	f := n.fsys
	if f.spec.ReadOnly {
		return nil, syscall.EROFS
	}
	if errno := nameErrno(name); errno != 0 {
		return nil, errno
	}
	if len(target) > maxLinkTarget {
		return nil, syscall.ENAMETOOLONG
	}
	rel := joinPath(n.rel(), name)
	if _, errno := f.stat(ctx, rel); errno == 0 {
		return nil, syscall.EEXIST
	} else if errno != syscall.ENOENT {
		return nil, errno
	}
	now := time.Now().Unix() * 1e9
	meta := f.newObjectMeta(ctx, syscall.S_IFLNK|0o777) // object model: the creator's uid/gid
	if meta == nil {
		meta = map[string]string{metaMode: strconv.FormatUint(uint64(syscall.S_IFLNK|0o777), 10)}
	}
	meta[metaMTime] = formatMTime(now)
	info, err := f.cl.Put(ctx, f.key(rel), bytes.NewReader([]byte(target)), int64(len(target)), meta)
	if err != nil {
		return nil, toErrno(err)
	}
	e := entry{size: int64(len(target)), mtime: now, etag: info.ETag, headed: true, link: true, meta: meta}
	f.meta.changed(rel)
	f.meta.put(rel, e)
	ch := n.newChild(ctx, name, e)
	ch.Operations().(*node).attrOut(&out.Attr)
	return ch, 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	f := n.fsys
	if !n.link {
		return nil, syscall.EINVAL
	}
	rel := n.rel()
	n.mu.Lock()
	e, fresh := n.info, n.info.headed && time.Now().Before(n.infoExp)
	n.mu.Unlock()
	if !fresh {
		var errno syscall.Errno
		if e, errno = f.stat(ctx, rel); errno != 0 {
			return nil, errno
		}
		if !e.link {
			return nil, syscall.EINVAL
		}
		n.setInfo(e)
	}
	if e.size > maxLinkTarget {
		return nil, syscall.ENAMETOOLONG
	}
	buf := make([]byte, e.size)
	got, err := f.cl.GetRange(ctx, f.key(rel), e.etag, 0, buf)
	if err != nil {
		return nil, toErrno(err)
	}
	return buf[:got], 0
}
