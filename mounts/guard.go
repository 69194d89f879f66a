package mounts

// The guard: a passthrough FUSE filesystem the mount worker serves on the
// user-visible mount point over an external tool's (s3fs, geesefs) mount,
// which sits on a private root-only directory. Every operation runs on the
// tool's mount in a goroutine of its own and is answered within the
// guard's limit (3 × stall_timeout): past it the caller gets EIO while the
// call on the tool's side finishes, or never does, by itself. At most
// maxStranded such calls per mount are left behind; beyond that every
// operation is answered EIO at once until some return.
//
// Every path is resolved from the tool mount's root fd with openat2
// (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and *at calls on the final name
// that never follow it: a symbolic link in the bucket is shown as a link
// (the caller's kernel decides whether to follow it) and never followed by
// the root worker.

import (
	"context"
	"encoding/binary"
	"path"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// guardMaxStranded bounds the calls a guard leaves blocked on the tool's
// mount; a variable so tests can lower it.
var guardMaxStranded int64 = 64

const guardResolve = unix.RESOLVE_BENEATH | noLinks

// guardRoot is one tool mount's root, held open (O_PATH).
type guardRoot struct {
	fd   int
	refs atomic.Int64 // users + 1 while current
}

func (r *guardRoot) put() {
	if r.refs.Add(-1) == 0 {
		unix.Close(r.fd)
	}
}

// guardFS is the state of one guard mount.
type guardFS struct {
	limit time.Duration

	mu   sync.Mutex
	root *guardRoot

	stranded atomic.Int64 // calls still blocked after their answer
	timeouts atomic.Int64 // operations answered EIO at the limit
	refused  atomic.Int64 // answered EIO at once: too many stranded
	open     atomic.Int64 // open file handles

	// closing counts released handles whose fd on the tool's side is not
	// closed yet (Release answers at once, the close runs behind it);
	// closed is closed when it drops to zero.
	cmu     sync.Mutex
	closing int
	closed  chan struct{}
}

func (g *guardFS) closeStart() {
	g.cmu.Lock()
	if g.closing == 0 {
		g.closed = make(chan struct{})
	}
	g.closing++
	g.cmu.Unlock()
}

func (g *guardFS) closeDone() {
	g.cmu.Lock()
	g.closing--
	if g.closing == 0 {
		close(g.closed)
	}
	g.cmu.Unlock()
}

// closesDone is closed once no released handle's close is in progress.
// A path's times set right after close(2) must reach the tool after its
// own close of the file, or s3fs, seeing the file still open, keeps the
// times for an upload that never comes.
func (g *guardFS) closesDone() <-chan struct{} {
	g.cmu.Lock()
	defer g.cmu.Unlock()
	if g.closing == 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return g.closed
}

func newGuardFS(rootFd int, limit time.Duration) *guardFS {
	g := &guardFS{limit: limit}
	g.setRoot(rootFd)
	return g
}

// setRoot makes fd (an O_PATH fd of a tool mount's root) the root every
// new operation uses; the old one is closed once no call uses it.
func (g *guardFS) setRoot(fd int) {
	r := &guardRoot{fd: fd}
	r.refs.Store(1)
	g.mu.Lock()
	old := g.root
	g.root = r
	g.mu.Unlock()
	if old != nil {
		old.put()
	}
}

func (g *guardFS) getRoot() *guardRoot {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.root
	if r != nil {
		r.refs.Add(1)
	}
	return r
}

// withRoot runs fn on the current root ("not connected" once closed).
func (g *guardFS) withRoot(fn func(r *guardRoot) syscall.Errno) syscall.Errno {
	r := g.getRoot()
	if r == nil {
		return syscall.ENOTCONN
	}
	defer r.put()
	return fn(r)
}

// close drops the current root.
func (g *guardFS) close() {
	g.mu.Lock()
	r := g.root
	g.root = nil
	g.mu.Unlock()
	if r != nil {
		r.put()
	}
}

// guardRun runs fn within g's limit. When fn returns too late, its result
// is handed to discard (if any) to release what it holds.
func guardRun[T any](g *guardFS, fn func() (T, syscall.Errno), discard func(T)) (T, syscall.Errno) {
	return guardRunStuck(g, nil, fn, discard)
}

// guardRunStuck is guardRun counting in stuck (if not nil) the calls left
// blocked until they return.
func guardRunStuck[T any](g *guardFS, stuck *atomic.Int64, fn func() (T, syscall.Errno), discard func(T)) (T, syscall.Errno) {
	var zero T
	if g.stranded.Load() >= guardMaxStranded {
		g.refused.Add(1)
		return zero, syscall.EIO
	}
	type result struct {
		v T
		e syscall.Errno
	}
	ch := make(chan result, 1)
	go func() {
		v, e := fn()
		ch <- result{v, e}
	}()
	t := time.NewTimer(g.limit)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.v, r.e
	case <-t.C:
	}
	g.stranded.Add(1)
	g.timeouts.Add(1)
	if stuck != nil {
		stuck.Add(1)
	}
	go func() {
		r := <-ch
		if discard != nil && r.e == 0 {
			discard(r.v)
		}
		if stuck != nil {
			stuck.Add(-1)
		}
		g.stranded.Add(-1)
	}()
	return zero, syscall.EIO
}

// guardDo is guardRun for a call with no result.
func guardDo(g *guardFS, fn func() syscall.Errno) syscall.Errno {
	_, e := guardRun(g, func() (struct{}, syscall.Errno) { return struct{}{}, fn() }, nil)
	return e
}

func errno(err error) syscall.Errno { return fs.ToErrno(err) }

// guardNode is a file, directory or link on the guard mount.
type guardNode struct {
	fs.Inode
	g *guardFS
}

var (
	_ fs.NodeLookuper   = (*guardNode)(nil)
	_ fs.NodeGetattrer  = (*guardNode)(nil)
	_ fs.NodeSetattrer  = (*guardNode)(nil)
	_ fs.NodeOpener     = (*guardNode)(nil)
	_ fs.NodeCreater    = (*guardNode)(nil)
	_ fs.NodeMkdirer    = (*guardNode)(nil)
	_ fs.NodeUnlinker   = (*guardNode)(nil)
	_ fs.NodeRmdirer    = (*guardNode)(nil)
	_ fs.NodeRenamer    = (*guardNode)(nil)
	_ fs.NodeReadlinker = (*guardNode)(nil)
	_ fs.NodeSymlinker  = (*guardNode)(nil)
	_ fs.NodeStatfser   = (*guardNode)(nil)
	_ fs.NodeReaddirer  = (*guardNode)(nil)
)

// rel is the node's path relative to the mount's root ("" for the root).
func (n *guardNode) rel() string { return n.Path(nil) }

// openRel opens rel (relative to the tool mount's root) without following
// any link; "" is the root itself.
func openRel(r *guardRoot, rel string, flags int, mode uint32) (int, error) {
	if rel == "" {
		rel = "."
	}
	// openat2 refuses bits it does not know (FUSE passes its own) and a
	// mode with the file type in it.
	flags &= unix.O_ACCMODE | unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC | unix.O_NONBLOCK |
		unix.O_DSYNC | unix.O_SYNC | unix.O_DIRECT | unix.O_NOATIME | unix.O_LARGEFILE |
		unix.O_DIRECTORY | unix.O_PATH
	if flags&unix.O_CREAT == 0 {
		mode = 0
	}
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW), Mode: uint64(mode & 0o7777), Resolve: guardResolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(r.fd, rel, how)
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 100 {
			continue
		}
		return fd, err
	}
}

// withDir runs fn with an O_PATH fd of the directory dirRel.
func withDir(r *guardRoot, dirRel string, fn func(dfd int) syscall.Errno) syscall.Errno {
	dfd, err := openRel(r, dirRel, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return errno(err)
	}
	defer unix.Close(dfd)
	return fn(dfd)
}

// lstatAt stats name in dfd without following it ("" is dfd itself).
func lstatAt(dfd int, name string, st *syscall.Stat_t) syscall.Errno {
	flags := unix.AT_SYMLINK_NOFOLLOW
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	// unix.Stat_t and syscall.Stat_t are the same kernel struct.
	return errno(unix.Fstatat(dfd, name, (*unix.Stat_t)(unsafe.Pointer(st)), flags))
}

// nodeStat stats the node rel without following it.
func nodeStat(r *guardRoot, rel string, st *syscall.Stat_t) syscall.Errno {
	if rel == "" {
		return lstatAt(r.fd, "", st)
	}
	dir, name := path.Split(rel)
	return withDir(r, dir, func(dfd int) syscall.Errno { return lstatAt(dfd, name, st) })
}

// op runs fn on the current root within the limit.
func (n *guardNode) op(fn func(r *guardRoot) syscall.Errno) syscall.Errno {
	return guardDo(n.g, func() syscall.Errno { return n.g.withRoot(fn) })
}

// newChild makes the inode for a child whose attributes are st.
func (n *guardNode) newChild(ctx context.Context, st *syscall.Stat_t, out *fuse.EntryOut) *fs.Inode {
	out.Attr.FromStat(st)
	return n.NewInode(ctx, &guardNode{g: n.g}, fs.StableAttr{Mode: st.Mode & syscall.S_IFMT})
}

func (n *guardNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var st syscall.Stat_t
	rel := n.rel()
	if e := n.op(func(r *guardRoot) syscall.Errno {
		return withDir(r, rel, func(dfd int) syscall.Errno { return lstatAt(dfd, name, &st) })
	}); e != 0 {
		return nil, e
	}
	return n.newChild(ctx, &st, out), 0
}

func (n *guardNode) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if gf, ok := f.(*guardFile); ok {
		return gf.Getattr(ctx, out)
	}
	var st syscall.Stat_t
	rel := n.rel()
	if e := n.op(func(r *guardRoot) syscall.Errno { return nodeStat(r, rel, &st) }); e != 0 {
		return e
	}
	out.FromStat(&st)
	return 0
}

func (n *guardNode) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if gf, ok := f.(*guardFile); ok {
		return gf.Setattr(ctx, in, out)
	}
	rel := n.rel()
	dir, name := path.Split(rel)
	var st syscall.Stat_t
	e := n.op(func(r *guardRoot) syscall.Errno {
		if sz, ok := in.GetSize(); ok {
			fd, err := openRel(r, rel, unix.O_WRONLY, 0)
			if err != nil {
				return errno(err)
			}
			err = unix.Ftruncate(fd, int64(sz))
			if cerr := unix.Close(fd); err == nil {
				err = cerr
			}
			if err != nil {
				return errno(err)
			}
		}
		if m, ok := in.GetMode(); ok {
			// chmod follows links: through an O_PATH fd of the node
			// itself, opened without following one.
			fd, err := openRel(r, rel, unix.O_PATH, 0)
			if err != nil {
				return errno(err)
			}
			err = unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+itoa(fd), m, 0)
			unix.Close(fd)
			if err != nil {
				return errno(err)
			}
		}
		return withDir(r, dir, func(dfd int) syscall.Errno {
			if name == "" { // the root
				name = "."
			}
			uid, uok := in.GetUID()
			gid, gok := in.GetGID()
			if uok || gok {
				su, sg := -1, -1
				if uok {
					su = int(uid)
				}
				if gok {
					sg = int(gid)
				}
				if err := unix.Fchownat(dfd, name, su, sg, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return errno(err)
				}
			}
			if ts, ok := setTimes(in); ok {
				<-n.g.closesDone() // within the op's limit, like the call itself
				if err := unix.UtimesNanoAt(dfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return errno(err)
				}
			}
			if name == "." {
				return lstatAt(dfd, "", &st)
			}
			return lstatAt(dfd, name, &st)
		})
	})
	if e != 0 {
		return e
	}
	out.FromStat(&st)
	return 0
}

// setTimes is the utimensat argument for in's times, if it sets any.
func setTimes(in *fuse.SetAttrIn) ([]unix.Timespec, bool) {
	mt, mok := in.GetMTime()
	at, aok := in.GetATime()
	if !mok && !aok {
		return nil, false
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	if aok {
		ts[0] = unix.NsecToTimespec(at.UnixNano())
	}
	if mok {
		ts[1] = unix.NsecToTimespec(mt.UnixNano())
	}
	return ts, true
}

func itoa(i int) string {
	var b [20]byte
	p := len(b)
	for {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[p:])
		}
	}
}

func (n *guardNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	// The kernel passes write offsets itself; O_APPEND below would move them.
	fl := int(flags) &^ (unix.O_APPEND | fuse.FMODE_EXEC | unix.O_CREAT | unix.O_EXCL)
	rel := n.rel()
	fd, e := guardRun(n.g, func() (int, syscall.Errno) {
		fd := -1
		e := n.g.withRoot(func(r *guardRoot) syscall.Errno {
			var err error
			fd, err = openRel(r, rel, fl, 0)
			return errno(err)
		})
		return fd, e
	}, func(fd int) { unix.Close(fd) })
	if e != 0 {
		return nil, 0, e
	}
	return n.g.newFile(fd), 0, 0
}

func (n *guardNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	fl := int(flags)&^(unix.O_APPEND|fuse.FMODE_EXEC) | unix.O_CREAT
	rel := path.Join(n.rel(), name)
	type created struct {
		fd int
		st syscall.Stat_t
	}
	c, e := guardRun(n.g, func() (created, syscall.Errno) {
		var c created
		e := n.g.withRoot(func(r *guardRoot) syscall.Errno {
			fd, err := openRel(r, rel, fl, mode)
			if err != nil {
				return errno(err)
			}
			if e := lstatAt(fd, "", &c.st); e != 0 {
				unix.Close(fd)
				return e
			}
			c.fd = fd
			return 0
		})
		return c, e
	}, func(c created) { unix.Close(c.fd) })
	if e != 0 {
		return nil, nil, 0, e
	}
	return n.newChild(ctx, &c.st, out), n.g.newFile(c.fd), 0, 0
}

// inDir runs fn on this directory's fd and stats name afterwards when st
// is not nil.
func (n *guardNode) inDir(name string, st *syscall.Stat_t, fn func(dfd int) error) syscall.Errno {
	rel := n.rel()
	return n.op(func(r *guardRoot) syscall.Errno {
		return withDir(r, rel, func(dfd int) syscall.Errno {
			if err := fn(dfd); err != nil {
				return errno(err)
			}
			if st != nil {
				return lstatAt(dfd, name, st)
			}
			return 0
		})
	})
}

func (n *guardNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var st syscall.Stat_t
	if e := n.inDir(name, &st, func(dfd int) error { return unix.Mkdirat(dfd, name, mode) }); e != 0 {
		return nil, e
	}
	return n.newChild(ctx, &st, out), 0
}

func (n *guardNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	var st syscall.Stat_t
	if e := n.inDir(name, &st, func(dfd int) error { return unix.Symlinkat(target, dfd, name) }); e != 0 {
		return nil, e
	}
	return n.newChild(ctx, &st, out), 0
}

func (n *guardNode) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.inDir(name, nil, func(dfd int) error { return unix.Unlinkat(dfd, name, 0) })
}

func (n *guardNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.inDir(name, nil, func(dfd int) error { return unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR) })
}

func (n *guardNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	from := n.rel()
	to := newParent.EmbeddedInode().Path(nil)
	return n.op(func(r *guardRoot) syscall.Errno {
		return withDir(r, from, func(fd1 int) syscall.Errno {
			return withDir(r, to, func(fd2 int) syscall.Errno {
				if flags == 0 {
					return errno(unix.Renameat(fd1, name, fd2, newName))
				}
				return errno(unix.Renameat2(fd1, name, fd2, newName, uint(flags)))
			})
		})
	})
}

func (n *guardNode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	rel := n.rel()
	dir, name := path.Split(rel)
	return guardRun(n.g, func() ([]byte, syscall.Errno) {
		var out []byte
		e := n.g.withRoot(func(r *guardRoot) syscall.Errno {
			return withDir(r, dir, func(dfd int) syscall.Errno {
				for l := 256; ; l *= 2 {
					buf := make([]byte, l)
					sz, err := unix.Readlinkat(dfd, name, buf)
					if err != nil {
						return errno(err)
					}
					if sz < len(buf) {
						out = buf[:sz]
						return 0
					}
				}
			})
		})
		return out, e
	}, nil)
}

func (n *guardNode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if e := n.op(func(r *guardRoot) syscall.Errno { return errno(syscall.Fstatfs(r.fd, &st)) }); e != 0 {
		return e
	}
	out.FromStatfsT(&st)
	return 0
}

// Readdir reads the whole directory in one bounded call (s3fs lists the
// whole folder on opendir anyway).
func (n *guardNode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	rel := n.rel()
	ents, e := guardRun(n.g, func() ([]fuse.DirEntry, syscall.Errno) {
		var ents []fuse.DirEntry
		e := n.g.withRoot(func(r *guardRoot) syscall.Errno {
			fd, err := openRel(r, rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				return errno(err)
			}
			defer unix.Close(fd)
			var e syscall.Errno
			ents, e = readDirents(fd)
			return e
		})
		return ents, e
	}, nil)
	if e != 0 {
		return nil, e
	}
	return fs.NewListDirStream(ents), 0
}

// readDirents reads every entry of the directory fd but "." and "..".
func readDirents(fd int) ([]fuse.DirEntry, syscall.Errno) {
	var out []fuse.DirEntry
	buf := make([]byte, 64<<10)
	for {
		nb, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, errno(err)
		}
		if nb <= 0 {
			return out, 0
		}
		for b := buf[:nb]; len(b) >= 19; {
			ino := binary.NativeEndian.Uint64(b[0:8])
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				return nil, syscall.EIO
			}
			typ := b[18]
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			b = b[reclen:]
			if s := string(name); s != "." && s != ".." {
				out = append(out, fuse.DirEntry{Name: s, Ino: ino, Mode: uint32(typ) << 12})
			}
		}
	}
}

// guardFile is an open file on the guard mount, holding an fd on the
// tool's mount. The fd is closed at release once no call uses it. A write
// handle whose write, flush or fsync failed or ran past the limit never
// reports success again: later writes, flushes (close) and fsyncs are EIO.
type guardFile struct {
	g *guardFS

	mu       sync.Mutex
	fd       int
	inflight int
	released bool

	failed atomic.Bool
	// stuckReads counts reads of this handle still blocked after their
	// answer: while any is, reads are answered EIO at once (the kernel
	// retries a failed read-ahead page with a read of its own, which would
	// double the wait).
	stuckReads atomic.Int64
}

var (
	_ fs.FileReader    = (*guardFile)(nil)
	_ fs.FileWriter    = (*guardFile)(nil)
	_ fs.FileFlusher   = (*guardFile)(nil)
	_ fs.FileFsyncer   = (*guardFile)(nil)
	_ fs.FileReleaser  = (*guardFile)(nil)
	_ fs.FileGetattrer = (*guardFile)(nil)
	_ fs.FileSetattrer = (*guardFile)(nil)
	_ fs.FileLseeker   = (*guardFile)(nil)
)

func (g *guardFS) newFile(fd int) *guardFile {
	g.open.Add(1)
	return &guardFile{g: g, fd: fd}
}

// acquire holds the fd for one call; done gives it back.
func (f *guardFile) acquire() (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.released {
		return -1, false
	}
	f.inflight++
	return f.fd, true
}

func (f *guardFile) done() {
	f.mu.Lock()
	f.inflight--
	closeNow := f.released && f.inflight == 0
	f.mu.Unlock()
	if closeNow {
		f.closeFd()
	}
}

func (f *guardFile) closeFd() {
	unix.Close(f.fd)
	f.g.open.Add(-1)
	f.g.closeDone()
}

// do runs fn on the fd within the limit.
func (f *guardFile) do(fn func(fd int) syscall.Errno) syscall.Errno {
	return guardDo(f.g, func() syscall.Errno { return f.with(fn) })
}

// with runs fn holding the fd.
func (f *guardFile) with(fn func(fd int) syscall.Errno) syscall.Errno {
	fd, ok := f.acquire()
	if !ok {
		return syscall.EBADF
	}
	defer f.done()
	return fn(fd)
}

// write runs a call that changes the file: a failure marks the handle.
func (f *guardFile) write(fn func(fd int) syscall.Errno) syscall.Errno {
	if f.failed.Load() {
		return syscall.EIO
	}
	e := f.do(fn)
	if e != 0 {
		f.failed.Store(true)
	}
	return e
}

func (f *guardFile) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if f.stuckReads.Load() > 0 {
		return nil, syscall.EIO
	}
	size := len(dest)
	// A private buffer: a call left behind must not write into dest,
	// which go-fuse reuses.
	b, e := guardRunStuck(f.g, &f.stuckReads, func() ([]byte, syscall.Errno) {
		buf := make([]byte, size)
		got := 0
		e := f.with(func(fd int) syscall.Errno {
			for got < size {
				n, err := unix.Pread(fd, buf[got:], off+int64(got))
				if err != nil {
					if got > 0 {
						return 0
					}
					return errno(err)
				}
				if n == 0 {
					return 0
				}
				got += n
			}
			return 0
		})
		return buf[:got], e
	}, nil)
	if e != 0 {
		return nil, e
	}
	return fuse.ReadResultData(b), 0
}

func (f *guardFile) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if f.failed.Load() {
		return 0, syscall.EIO
	}
	// A copy: go-fuse reuses data once this returns.
	buf := append([]byte(nil), data...)
	var n int
	e := f.write(func(fd int) syscall.Errno {
		var err error
		n, err = unix.Pwrite(fd, buf, off)
		return errno(err)
	})
	if e != 0 {
		return 0, e
	}
	return uint32(n), 0
}

// Flush is every close(2) of the caller: it flushes the tool's file by
// closing a duplicate of the fd (s3fs uploads then).
func (f *guardFile) Flush(ctx context.Context) syscall.Errno {
	return f.write(func(fd int) syscall.Errno {
		nfd, err := unix.Dup(fd)
		if err != nil {
			return errno(err)
		}
		return errno(unix.Close(nfd))
	})
}

func (f *guardFile) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	return f.write(func(fd int) syscall.Errno { return errno(unix.Fsync(fd)) })
}

// Release closes the fd, now or when the last call still using it returns.
// Nothing waits for the answer, so it is not bounded.
func (f *guardFile) Release(ctx context.Context) syscall.Errno {
	f.mu.Lock()
	if f.released {
		f.mu.Unlock()
		return syscall.EBADF
	}
	f.released = true
	f.g.closeStart()
	closeNow := f.inflight == 0
	f.mu.Unlock()
	if closeNow {
		// close(2) on the tool's fd may wait for its flush: not here. It
		// counts as stranded meanwhile, so blocked closes bound new calls.
		f.g.stranded.Add(1)
		go func() {
			f.closeFd()
			f.g.stranded.Add(-1)
		}()
	}
	return 0
}

func (f *guardFile) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	if e := f.do(func(fd int) syscall.Errno { return lstatAt(fd, "", &st) }); e != 0 {
		return e
	}
	out.FromStat(&st)
	return 0
}

func (f *guardFile) Setattr(ctx context.Context, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	var st syscall.Stat_t
	fn := func(fd int) syscall.Errno {
		if sz, ok := in.GetSize(); ok {
			if err := unix.Ftruncate(fd, int64(sz)); err != nil {
				return errno(err)
			}
		}
		if m, ok := in.GetMode(); ok {
			if err := unix.Fchmod(fd, m); err != nil {
				return errno(err)
			}
		}
		uid, uok := in.GetUID()
		gid, gok := in.GetGID()
		if uok || gok {
			su, sg := -1, -1
			if uok {
				su = int(uid)
			}
			if gok {
				sg = int(gid)
			}
			if err := unix.Fchown(fd, su, sg); err != nil {
				return errno(err)
			}
		}
		if ts, ok := setTimes(in); ok {
			if err := unix.UtimesNanoAt(fd, "", ts, unix.AT_EMPTY_PATH); err != nil {
				// AT_EMPTY_PATH needs a recent kernel: through /proc.
				if err := unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+itoa(fd), ts, 0); err != nil {
					return errno(err)
				}
			}
		}
		return lstatAt(fd, "", &st)
	}
	var e syscall.Errno
	if _, ok := in.GetSize(); ok {
		e = f.write(fn)
	} else {
		e = f.do(fn)
	}
	if e != 0 {
		return e
	}
	out.FromStat(&st)
	return 0
}

func (f *guardFile) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	var n int64
	e := f.do(func(fd int) syscall.Errno {
		var err error
		n, err = unix.Seek(fd, int64(off), int(whence))
		return errno(err)
	})
	return uint64(n), e
}
