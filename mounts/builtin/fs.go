package builtin

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sync/errgroup"

	"github.com/s3mounts/s3mounts/mounts"
)

// FS is one mounted bucket (or prefix of one).
type FS struct {
	spec   mounts.Spec
	cl     ObjectClient
	prefix string
	meta   *metaCache
	// lst is the state of this mount's folder listings (list.go).
	lst listState
	// requests counts the S3 requests sent, by operation (Stats).
	requests *requestCounts
	budget   *bufBudget
	staging  string
	// stagingBudget caps the disk space of staging files ([cache] max_staging).
	stagingBudget *stagingBudget
	// Write streams: free part buffers, and slots for those in flight.
	wbufFree chan []byte
	wslots   chan struct{}
	started  time.Time
	root     *node
	// ctx ends when the mount ends; S3 calls are also bounded on their own.
	ctx context.Context
}

// node is a file or directory; its path is derived from its place in the
// inode tree, so renames need no bookkeeping here.
type node struct {
	fs.Inode
	fsys *FS
	dir  bool
	link bool
	// special: S_IFIFO, S_IFSOCK, S_IFCHR or S_IFBLK for such a node
	// (object model), else 0.
	special uint32
	// unlinked: removed through this mount; fstat of a descriptor still
	// open on it shows st_nlink 0.
	unlinked bool

	mu       sync.Mutex
	syncMu   sync.Mutex // serialises uploads of this file (flushes of dup'd handles)
	info     entry
	infoExp  time.Time
	cachedAs string // ETag whose bytes the kernel page cache holds
	// kernelListing is the listing the kernel's readdir cache was filled from.
	kernelListing *listing
	ws            *writeState
}

var (
	_ fs.NodeLookuper       = (*node)(nil)
	_ fs.NodeGetattrer      = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeStatfser       = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
)

// rel is the node's path relative to the mount ("" for the root).
func (n *node) rel() string {
	if n.IsRoot() {
		return ""
	}
	return n.Path(nil)
}

// key is the object key of a file path; dirKey the prefix of a directory.
func (f *FS) key(rel string) string { return f.prefix + rel }
func (f *FS) dirKey(rel string) string {
	if rel == "" {
		return f.prefix
	}
	return f.prefix + rel + "/"
}

func (f *FS) fill(out *fuse.Attr, e entry) {
	mode, uid, gid := f.ownerMode(e)
	out.Owner = fuse.Owner{Uid: uid, Gid: gid}
	out.Mode = mode
	if e.dir {
		out.Size = 4096
		out.Nlink = 2
		// The marker's stored mtime (x-amz-meta-mtime) if it has one, else
		// the newest of the marker's LastModified and the children seen in
		// listings; the mount's start time while none is known (a
		// directory seen only as a prefix in its parent's listing).
		t := f.started
		if ns, ok := metaMTimeOf(e.meta); ok {
			t = time.Unix(0, ns) // set with utimensat (or by s3fs): wins
		} else if e.mtime != 0 {
			t = e.time()
		}
		out.SetTimes(&t, &t, &t)
	} else {
		out.Size = uint64(e.size)
		out.Nlink = 1
		t := e.time()
		out.SetTimes(&t, &t, &t)
		if t := f.specialType(e); t == syscall.S_IFCHR || t == syscall.S_IFBLK {
			if rdev, ok := metaUint(e.meta, metaRdev); ok {
				out.Rdev = rdev
			}
		}
	}
	out.Blksize = 1 << 20
	out.Blocks = (out.Size + 511) / 512
}

// stat finds what rel is: from the cache, else with a HEAD of the key and a
// one-key listing of the prefix in parallel. A directory wins over a file of
// the same name.
func (f *FS) stat(ctx context.Context, rel string) (entry, syscall.Errno) {
	if rel == "" {
		return entry{dir: true}, 0
	}
	// A fresh listing of the parent is authoritative for what it says
	// (size, LastModified as mtime): no HEAD, unless the model needs each
	// object's own mode/uid/gid (permissions = "object"; a directory's
	// marker too). A name no fresh listing answers for is HEADed, which
	// reads its stored mtime.
	if e, exists, found := f.meta.lookup(rel); found && (!exists || e.headed || !f.objectPerms()) {
		if !exists {
			return entry{}, syscall.ENOENT
		}
		return e, 0
	}
	var (
		head     ObjInfo
		headErr  error
		isDir    bool
		hasMark  bool  // the first key under the prefix is the marker "dir/"
		first    int64 // LastModified of the first key under the prefix
		g, gctx  = errgroup.WithContext(ctx)
		listErrn syscall.Errno
	)
	g.Go(func() error {
		head, headErr = f.cl.Head(gctx, f.key(rel))
		return nil
	})
	g.Go(func() error {
		p, err := f.cl.List(gctx, f.dirKey(rel), "", "", 1)
		if err != nil {
			listErrn = toErrno(err)
			return nil
		}
		isDir = len(p.Objects) > 0 || len(p.Prefixes) > 0
		if len(p.Objects) > 0 {
			first = p.Objects[0].MTime.UnixNano()
			hasMark = p.Objects[0].Key == f.dirKey(rel)
		}
		return nil
	})
	_ = g.Wait()
	if isDir {
		e := entry{dir: true, headed: true, mtime: first}
		if hasMark {
			// The marker's metadata: its stored mtime (see fill) and,
			// in the object model, its mode and owner. Only directories
			// that have a marker pay this second request.
			marker, err := f.cl.Head(ctx, f.dirKey(rel))
			if err == nil && len(marker.Meta) > 0 {
				e.meta = marker.Meta
			} else if errno := toErrno(err); err != nil && errno != syscall.ENOENT && f.objectPerms() {
				return entry{}, errno
			}
		}
		f.meta.put(rel, e)
		return e, 0
	}
	if listErrn != 0 {
		return entry{}, listErrn
	}
	if headErr != nil {
		errno := toErrno(headErr)
		if errno == syscall.ENOENT {
			f.meta.putNeg(rel)
		}
		return entry{}, errno
	}
	e := entryOf(head)
	f.meta.put(rel, e)
	return e, 0
}

func (f *FS) ttl() time.Duration { return f.spec.MetadataTTL }

// newChild returns the inode for name under n with entry e, reusing a
// live inode of the same type.
func (n *node) newChild(ctx context.Context, name string, e entry) *fs.Inode {
	if ch := n.GetChild(name); ch != nil {
		if cn, ok := ch.Operations().(*node); ok && cn.dir == e.dir && cn.link == e.link && cn.special == n.fsys.specialType(e) {
			cn.setInfo(e)
			return ch
		}
	}
	cn := &node{fsys: n.fsys, dir: e.dir, link: e.link, special: n.fsys.specialType(e)}
	cn.info, cn.infoExp = e, time.Now().Add(n.fsys.ttl())
	mode := uint32(syscall.S_IFREG)
	if e.dir {
		mode = syscall.S_IFDIR
	} else if e.link {
		mode = syscall.S_IFLNK
	} else if cn.special != 0 {
		mode = cn.special
	}
	return n.NewInode(ctx, cn, fs.StableAttr{Mode: mode})
}

func (n *node) setInfo(e entry) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ws != nil {
		return // our own staged content is the truth while a writer is open
	}
	if n.dir {
		// A directory's mtime is the newest seen (see fill); a listing's
		// entry (no marker metadata) does not forget what a stat learnt.
		e.mtime = max(e.mtime, n.info.mtime)
		if !e.headed && n.info.headed && time.Now().Before(n.infoExp) {
			e.meta, e.headed = n.info.meta, true
		}
	}
	n.info, n.infoExp = e, time.Now().Add(n.fsys.ttl())
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if len(name) > maxNameLen {
		return nil, syscall.ENAMETOOLONG
	}
	if !validName(name) {
		return nil, syscall.ENOENT
	}
	if !n.dir {
		return nil, syscall.ENOTDIR
	}
	e, errno := n.fsys.stat(ctx, joinPath(n.rel(), name))
	if errno != 0 {
		return nil, errno
	}
	ch := n.newChild(ctx, name, e)
	ch.Operations().(*node).attrOut(&out.Attr)
	return ch, 0
}

// attrOut fills out from what the node knows, without asking S3.
func (n *node) attrOut(out *fuse.Attr) {
	n.mu.Lock()
	e := n.info
	unlinked := n.unlinked
	var mode uint32
	if n.ws != nil {
		e.size = n.ws.size
		e.mtime = n.ws.mtime
		mode = n.ws.mode
	}
	n.mu.Unlock()
	e.dir, e.link = n.dir, n.link
	n.fsys.fill(out, e)
	if unlinked {
		out.Nlink = 0
	}
	if mode != 0 {
		out.Mode = out.Mode&^07777 | mode
	}
}

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	// What a fresh listing said is enough (see stat), except where the
	// permission model needs each object's own metadata.
	fresh := n.ws != nil || n.IsRoot() || (n.dir && !n.fsys.objectPerms()) ||
		((n.info.headed || !n.fsys.objectPerms()) && time.Now().Before(n.infoExp))
	n.mu.Unlock()
	if !fresh {
		rel := n.rel()
		e, errno := n.fsys.stat(ctx, rel)
		if errno != 0 {
			return errno
		}
		if e.dir == n.dir {
			n.setInfo(e)
		}
	}
	n.attrOut(&out.Attr)
	return 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	const bsize = 1 << 20
	out.Bsize = bsize
	out.Frsize = bsize
	out.Blocks = 1 << 30 // 1 PiB: S3 has no fixed size
	out.Bfree = out.Blocks
	out.Bavail = out.Blocks
	out.Files = 1 << 40
	out.Ffree = 1 << 40
	out.NameLen = 255
	return 0
}

// OpendirHandle starts a streaming listing (or replays a cached one).
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if !n.dir {
		return nil, 0, syscall.ENOTDIR
	}
	// The kernel caches what readdir returned (FOPEN_CACHE_DIR), and keeps
	// it on this open only while our own listing it was built from is still
	// the fresh one: expiry, Refresh and our own changes drop that listing.
	rel := n.rel()
	flags = fuse.FOPEN_CACHE_DIR
	l := n.fsys.meta.listingFor(rel)
	n.mu.Lock()
	stale := !(l != nil && l == n.kernelListing)
	n.kernelListing = nil
	n.mu.Unlock()
	if stale {
		// go-fuse always adds FOPEN_KEEP_CACHE to FOPEN_CACHE_DIR, so the
		// kernel's copy is dropped here when it may be out of date.
		_ = n.NotifyContent(0, 0)
	}
	if !stale {
		n.mu.Lock()
		n.kernelListing = l
		n.mu.Unlock()
	}
	return &dirHandle{n: n, rel: rel}, flags, 0
}
