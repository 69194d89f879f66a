package builtin

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sync/errgroup"
)

// writeState is the staged content of a file open for writing, shared by
// all its write handles. It lives in a 0600 file under CacheDir and goes to
// S3 on flush/fsync: one PUT, or a parallel multipart upload.
type writeState struct {
	f     *stagedFile
	size  int64
	mtime int64
	// mtimeSet: mtime was set by utimensat after the last write; the
	// upload stores it (x-amz-meta-mtime). Otherwise the upload's
	// LastModified is the mtime.
	mtimeSet bool
	// created: the file was created through this mount by this writer;
	// mode is a narrower mode set on it with chmod (rsync's and
	// mkstemp's private temporary files), shown until the last close.
	created  bool
	mode     uint32
	dirty    bool
	refs     int
	unlinked bool
	// failed is set when a write could not be staged: the staged content
	// is not what was written, so nothing is ever published from it and
	// every flush or fsync returns failed (ENOSPC for a full disk or
	// max_staging). Also set, with dirty false, when a streamed upload
	// published everything but the staging file could not keep up: a later
	// write then fails, the published object stays.
	failed syscall.Errno
	// pubErr is the error of the last publish when nothing was written
	// since: the caller was told, so the last release publishes nothing.
	pubErr syscall.Errno
	// st streams a file written from empty and strictly sequentially as a
	// multipart upload while it is written; nil otherwise.
	st *streamUpload
}

// streamUpload uploads a file written from empty and strictly sequentially
// as a multipart upload while it is written: appended bytes go straight into
// an in-memory part buffer, and each full buffer is uploaded and, in the
// background, written to the staging file (so that the staging file is
// complete whenever the stream has to stop). flush sends the tail from
// memory and completes. Any other write pattern, a read, or a truncate
// breaks it (breakOff): the staging file is completed first, and flush
// then uploads the staged file whole.
type streamUpload struct {
	key  string
	file *stagedFile
	fsys *FS
	id   string
	sent int64 // bytes handed to part uploads
	// buf holds the bytes [sent, sent+len(buf)) not handed to an upload yet.
	buf       []byte
	parts     []types.CompletedPart
	mu        sync.Mutex
	wg        sync.WaitGroup // part uploads
	staged    sync.WaitGroup // background writes of handed-off parts to file
	err       error
	stageErr  error
	broken    bool
	finishing bool

	spillMu  sync.Mutex
	spilled  bool
	spillErr error
}

// fileHandle is one open file.
type fileHandle struct {
	n  *node
	r  *reader     // reading the object from S3
	ws *writeState // writing, or reading while this mount writes the file
	// pid is the thread group (process) that opened the handle: only its
	// flushes publish (see Flush).
	pid uint32
	// writer: opened for writing (a reader may share ws while a writer
	// is open); created: the handle created the file, so there is no old
	// object to keep; wrote: something was written or truncated through it.
	writer  bool
	created bool
	wrote   atomic.Bool
	// appends: opened with O_APPEND. Writes go to the end of the content
	// this mount holds, not to the kernel's offset: the kernel computes
	// it from a size that may be stale when another client replaced the
	// object.
	appends bool
}

var (
	_ fs.FileReader   = (*fileHandle)(nil)
	_ fs.FileWriter   = (*fileHandle)(nil)
	_ fs.FileFlusher  = (*fileHandle)(nil)
	_ fs.FileFsyncer  = (*fileHandle)(nil)
	_ fs.FileReleaser = (*fileHandle)(nil)
)

func writeFlags(flags uint32) bool {
	return flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	f := n.fsys
	if n.dir {
		return nil, 0, syscall.EISDIR
	}
	if writeFlags(flags) {
		if f.spec.ReadOnly {
			return nil, 0, syscall.EROFS
		}
		if flags&syscall.O_TRUNC == 0 {
			if errno := n.refreshInfo(ctx); errno != 0 {
				return nil, 0, errno
			}
		}
		ws, _, errno := n.acquireWS(ctx, flags&syscall.O_TRUNC != 0)
		if errno != 0 {
			return nil, 0, errno
		}
		return &fileHandle{n: n, ws: ws, pid: callerTgid(ctx), writer: true, appends: flags&syscall.O_APPEND != 0}, 0, 0
	}
	n.mu.Lock()
	if ws := n.ws; ws != nil {
		ws.refs++
		n.mu.Unlock()
		return &fileHandle{n: n, ws: ws, pid: callerTgid(ctx)}, 0, 0
	}
	fresh := time.Now().Before(n.infoExp)
	n.mu.Unlock()
	if !fresh {
		e, errno := f.stat(ctx, n.rel())
		if errno != 0 {
			return nil, 0, errno
		}
		if e.dir {
			return nil, 0, syscall.EISDIR
		}
		n.setInfo(e)
	}
	n.mu.Lock()
	e := n.info
	var fuseFlags uint32
	if e.etag != "" && n.cachedAs == e.etag {
		fuseFlags = fuse.FOPEN_KEEP_CACHE
	}
	n.cachedAs = e.etag
	n.mu.Unlock()
	rel := n.rel()
	r := newReader(f, f.key(rel), e.etag, e.size)
	r.keepCache = fuseFlags&fuse.FOPEN_KEEP_CACHE != 0
	r.onChanged = func() {
		n.mu.Lock()
		n.infoExp = time.Time{}
		n.cachedAs = ""
		n.mu.Unlock()
		f.meta.changed(rel)
		// The kernel's size and pages are stale too. Asynchronously: a
		// read of this inode holds pages the invalidation waits for.
		go n.NotifyContent(0, 0)
	}
	r.onRepinned = n.repinned
	return &fileHandle{n: n, r: r}, fuseFlags, 0
}

// acquireWS returns the node's write state, creating it (and loading the
// object's current content unless trunc) when it is the first writer;
// fresh says it did. Truncating changes only the staged content: the
// object in S3 stays as it is until a handle publishes.
func (n *node) acquireWS(ctx context.Context, trunc bool) (ws *writeState, fresh bool, _ syscall.Errno) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ws != nil {
		if trunc {
			if err := n.ws.st.breakOff(); err != nil {
				return nil, false, n.ws.fail(err)
			}
			if err := n.ws.f.Truncate(0); err != nil {
				return nil, false, n.ws.fail(err)
			}
			n.ws.size, n.ws.dirty, n.ws.mtime, n.ws.mtimeSet = 0, true, time.Now().UnixNano(), false
		}
		n.ws.refs++
		return n.ws, false, 0
	}
	f := n.fsys
	tmp, err := f.stagingFile()
	if err != nil {
		return nil, false, stagingErrno(err)
	}
	ws = &writeState{f: tmp, refs: 1, mtime: time.Now().UnixNano()}
	if trunc {
		ws.dirty = true
		ws.st = f.newStream(f.key(n.rel()), tmp)
	} else if errno := n.loadCurrentLocked(ctx, tmp); errno != 0 {
		tmp.Close()
		return nil, false, errno
	} else if n.info.size > 0 {
		ws.size = n.info.size
		ws.mtime = n.info.mtime
	}
	n.ws = ws
	return ws, true, 0
}

// fail records that the staged content is not what was written (n.mu
// held) and returns the errno for the caller.
func (ws *writeState) fail(err error) syscall.Errno {
	if ws.failed == 0 {
		ws.failed = stagingErrno(err)
	}
	ws.dirty = true
	return ws.failed
}

// callerTgid is the process (thread group) of the request's caller: FUSE
// gives the calling thread's id, and a process may open a file in one
// thread and close it in another. 0 when unknown.
func callerTgid(ctx context.Context) uint32 {
	c, ok := fuse.FromContext(ctx)
	if !ok || c.Pid == 0 {
		return 0
	}
	return tgidOf(c.Pid)
}

func tgidOf(pid uint32) uint32 {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return pid
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			if t, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
				return uint32(t)
			}
		}
	}
	return pid
}

// download copies an object into w with parallel ranged GETs.
func (f *FS) download(ctx context.Context, key, etag string, size int64, w io.WriterAt) syscall.Errno {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for off := int64(0); off < size; off += partSize {
		g.Go(func() error {
			buf := make([]byte, min(int64(partSize), size-off))
			n, err := f.cl.GetRange(gctx, key, etag, off, buf)
			if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
				return err
			}
			_, err = w.WriteAt(buf, off)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return toErrno(err)
	}
	return 0
}

func (h *fileHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h.ws != nil {
		h.n.mu.Lock()
		st, failed := h.ws.st, h.ws.failed
		h.n.mu.Unlock()
		if failed != 0 {
			// The staging file lacks bytes that were written.
			return nil, syscall.EIO
		}
		if err := st.breakOff(); err != nil {
			h.n.mu.Lock()
			h.ws.fail(err)
			h.n.mu.Unlock()
			return nil, syscall.EIO
		}
		n, err := h.ws.f.ReadAt(dest, off)
		if err != nil && err != io.EOF {
			return nil, syscall.EIO
		}
		return fuse.ReadResultData(dest[:n]), 0
	}
	return h.r.Read(ctx, dest, off)
}

func (h *fileHandle) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if h.ws == nil {
		return 0, syscall.EBADF
	}
	if off+int64(len(data)) > maxObjectSize {
		return 0, syscall.EFBIG
	}
	ws := h.ws
	h.wrote.Store(true)
	h.n.mu.Lock()
	if ws.failed != 0 {
		// An earlier write was lost: this handle's content can no longer
		// be published, and saying so at once saves writing the rest.
		ws.dirty = true
		h.n.mu.Unlock()
		return 0, ws.failed
	}
	ws.pubErr = 0
	if h.appends {
		off = ws.size
	}
	st := ws.st
	if st != nil && off == ws.size && st.append(data) {
		// Appended to the stream's part buffer: no staging write here.
		ws.size += int64(len(data))
		ws.dirty = true
		ws.mtime = time.Now().UnixNano()
		ws.mtimeSet = false
		h.n.mu.Unlock()
		h.n.fsys.streamParts(ctx, st)
		return uint32(len(data)), 0
	}
	h.n.mu.Unlock()
	err := st.breakOff()
	n := 0
	if err == nil {
		n, err = ws.f.WriteAt(data, off)
	}
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	if err != nil {
		return 0, ws.fail(err)
	}
	ws.size = max(ws.size, off+int64(n))
	ws.dirty = true
	ws.mtime = time.Now().UnixNano()
	ws.mtimeSet = false
	return uint32(n), 0
}

// append copies data into the part buffer; false when the stream is broken
// or failed (the caller then writes to the staging file).
func (st *streamUpload) append(data []byte) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.broken || st.err != nil {
		return false
	}
	for len(data) > 0 {
		if st.buf == nil {
			st.buf = st.fsys.getWBuf()
		}
		if len(st.buf) >= streamPart {
			// Full and not handed off yet (streamParts runs right after
			// each append; another writer got here first): grow past the
			// part size rather than wait, within bounds.
			if len(st.buf)+len(data) > 2*streamPart {
				return false
			}
			st.buf = append(st.buf, data...)
			return true
		}
		n := min(len(data), streamPart-len(st.buf))
		st.buf = append(st.buf, data[:n]...)
		data = data[n:]
	}
	return true
}

// breakOff ends streaming for good: later writes go to the staging file,
// and flush uploads it whole. It returns once the staging file holds every
// byte written so far. Safe on nil and when called again.
func (st *streamUpload) breakOff() error {
	if st == nil {
		return nil
	}
	st.spillMu.Lock()
	defer st.spillMu.Unlock()
	if st.spilled {
		return st.spillErr
	}
	st.mu.Lock()
	st.broken = true
	buf, off := st.buf, st.sent
	st.buf = nil
	st.mu.Unlock()
	st.staged.Wait()
	var err error
	if len(buf) > 0 {
		_, err = st.file.WriteAt(buf, off)
		st.fsys.putWBuf(buf)
	}
	st.mu.Lock()
	if err == nil && st.stageErr != nil {
		err = st.stageErr
	}
	st.mu.Unlock()
	st.spilled, st.spillErr = true, err
	return err
}

// discard aborts a stream that will not be completed.
func (f *FS) discardStream(st *streamUpload) {
	if st == nil {
		return
	}
	st.mu.Lock()
	st.broken = true
	st.mu.Unlock()
	go func() {
		st.wg.Wait()
		st.staged.Wait()
		if st.id != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = f.cl.AbortMultipart(ctx, st.key, st.id)
		}
	}()
}

func (f *FS) newStream(key string, file *stagedFile) *streamUpload {
	return &streamUpload{key: key, file: file, fsys: f}
}

const (
	// streamPart is the part size of uploads streamed while writing.
	streamPart = 16 << 20
	// streamSlots bounds the part buffers handed off (uploading or being
	// staged) across the mount; each stream also fills one more.
	streamSlots = 4
)

func (f *FS) getWBuf() []byte {
	select {
	case b := <-f.wbufFree:
		return b[:0]
	default:
		return make([]byte, 0, streamPart)
	}
}

func (f *FS) putWBuf(b []byte) {
	if cap(b) != streamPart {
		return
	}
	select {
	case f.wbufFree <- b[:0]:
	default:
	}
}

// streamParts hands each full part buffer to an upload and to a
// background write into the staging file. Writers wait here while
// streamSlots buffers are in flight mount-wide.
func (f *FS) streamParts(ctx context.Context, st *streamUpload) {
	for {
		st.mu.Lock()
		if st.broken || st.finishing || st.err != nil || len(st.buf) < streamPart || len(st.parts) >= 9999 {
			st.mu.Unlock()
			return
		}
		if st.id == "" {
			id, err := f.cl.CreateMultipart(ctx, st.key, nil)
			if err != nil {
				st.err = err
				st.mu.Unlock()
				return
			}
			st.id = id
		}
		buf := st.buf
		if len(buf) > streamPart {
			// Grown past a part (see append): the excess starts the next.
			next := f.getWBuf()
			next = append(next, buf[streamPart:]...)
			buf = buf[:streamPart]
			st.buf = next
		} else {
			st.buf = nil
		}
		off := st.sent
		num := int32(len(st.parts) + 1)
		st.parts = append(st.parts, types.CompletedPart{PartNumber: aws.Int32(num)})
		st.sent += streamPart
		st.wg.Add(1)
		st.staged.Add(1)
		st.mu.Unlock()

		f.wslots <- struct{}{} // backpressure, holding no lock
		var refs atomic.Int32
		refs.Store(2)
		release := func() {
			if refs.Add(-1) == 0 {
				f.putWBuf(buf)
				<-f.wslots
			}
		}
		go func() {
			defer st.staged.Done()
			defer release()
			st.mu.Lock()
			failed := st.stageErr != nil
			st.mu.Unlock()
			if failed {
				return // the staging file is incomplete already: save the disk
			}
			if _, err := st.file.WriteAt(buf, off); err != nil {
				st.mu.Lock()
				if st.stageErr == nil {
					st.stageErr = err
				}
				st.mu.Unlock()
			}
		}()
		go func() {
			defer st.wg.Done()
			defer release()
			etag, err := f.cl.UploadPart(f.ctx, st.key, st.id, num, bytes.NewReader(buf), streamPart)
			st.mu.Lock()
			defer st.mu.Unlock()
			if err != nil {
				if st.err == nil {
					st.err = err
				}
				return
			}
			st.parts[num-1].ETag = aws.String(etag)
		}()
	}
}

// finishStream completes a streamed upload of size bytes (or, when no part
// was sent yet, PUTs the buffered bytes); ok=false means the caller must
// upload the staged file whole instead, after st.breakOff().
func (f *FS) finishStream(ctx context.Context, st *streamUpload, size int64, meta map[string]string, explicit bool) (ObjInfo, bool, error) {
	st.mu.Lock()
	st.finishing = true // no more hand-offs: the rest goes as the tail
	st.mu.Unlock()
	st.wg.Wait()
	st.mu.Lock()
	defer st.mu.Unlock()
	// The abort runs in the background: the syscall has its answer, and
	// an abort against a frozen endpoint must not hold it past the stall
	// bound (an upload left behind is ended by the bucket's lifecycle or
	// the next abort attempt; it is never visible as an object).
	abort := func() {
		if st.id != "" {
			go f.abortUpload(st.key, st.id)
		}
	}
	if st.broken || st.sent+int64(len(st.buf)) != size {
		abort()
		return ObjInfo{}, false, nil
	}
	if st.id == "" {
		if size > putMax {
			return ObjInfo{}, false, nil
		}
		info, err := f.cl.Put(ctx, st.key, bytes.NewReader(st.buf), size, meta)
		return info, true, err
	}
	if st.err != nil {
		abort()
		return ObjInfo{}, true, st.err
	}
	parts := st.parts
	if tail := int64(len(st.buf)); tail > 0 {
		num := int32(len(parts) + 1)
		etag, err := f.cl.UploadPart(ctx, st.key, st.id, num, bytes.NewReader(st.buf), tail)
		if err != nil {
			abort()
			return ObjInfo{}, true, err
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: aws.String(etag)})
	}
	info, err := f.cl.CompleteMultipart(ctx, st.key, st.id, parts)
	if err != nil {
		abort()
		return ObjInfo{}, true, err
	}
	info.Size = size
	if meta != nil {
		// The upload was created before the times were set (cp -p sets
		// them after the last write): store them with a metadata copy.
		info.Key = st.key
		set, err := f.cl.SetMeta(ctx, info, meta)
		if errors.Is(err, errMetaTooBig) && !explicit {
			// Only metadata carried over from the old version: the
			// new content is published, its old metadata is not.
			slog.Warn("the old version's metadata (x-amz-meta-*) is not kept: the new version is over 5 GiB, S3 would copy all of it", "key", st.key)
			return info, true, nil
		}
		if err != nil {
			return ObjInfo{}, true, err
		}
		info = set
	}
	return info, true, nil
}

// unsent reports that st has handed no part off yet and holds exactly the
// file's size bytes in memory, few enough for one PUT.
func (st *streamUpload) unsent(size int64) bool {
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return !st.broken && !st.finishing && st.err == nil && st.id == "" && st.sent == 0 &&
		int64(len(st.buf)) == size && size <= putMax
}

// putUnsent PUTs the first size bytes of st's buffer, holding st.mu so
// that the buffer is not handed off meanwhile (appends wait).
// ok=false: it could not (the caller uploads the staged file after
// st.breakOff()).
func (f *FS) putUnsent(ctx context.Context, st *streamUpload, size int64, meta map[string]string) (ObjInfo, bool, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.id != "" || st.broken || st.sent != 0 || int64(len(st.buf)) < size {
		// A concurrent writer handed the bytes off meanwhile.
		return ObjInfo{}, false, nil
	}
	info, err := f.cl.Put(ctx, st.key, bytes.NewReader(st.buf[:size]), size, meta)
	return info, true, err
}

// Flush is close(2) of one file descriptor. It publishes the staged
// content (see docs/SEMANTICS.md, "When an object is replaced") only when
// it comes from the process that opened the handle and something was
// written or truncated through it, or the handle created the file: a
// close by a forked child (subprocess, a notebook's !cmd) or of a dup made
// before writing, as a shell does for "cmd > file", publishes nothing, so
// no partial object and no emptied object is ever published. The last
// release publishes what no flush did.
func (h *fileHandle) Flush(ctx context.Context) syscall.Errno {
	if h.ws == nil || (!h.wrote.Load() && !h.created) {
		return 0
	}
	if h.pid != 0 {
		if c := callerTgid(ctx); c != 0 && c != h.pid {
			return 0
		}
	}
	return h.n.sync(uninterrupted(ctx))
}

// uninterrupted keeps a close's or fsync's upload going when the kernel
// relays a signal (FUSE_INTERRUPT): Go programs get SIGURG (goroutine
// preemption) at any moment and never retry close(2), so an EINTR there
// would be a lost write for them. The upload is bounded by stall_timeout.
func uninterrupted(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// Fsync publishes the file as written so far, as a complete object,
// whichever process holding a descriptor opened for writing asks (a
// reader's fsync does not publish a writer's half-written file).
func (h *fileHandle) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if h.ws == nil || !h.writer {
		return 0
	}
	return h.n.sync(uninterrupted(ctx))
}

func (h *fileHandle) Release(ctx context.Context) syscall.Errno {
	if h.r != nil {
		h.r.close()
	}
	if h.ws != nil {
		h.n.releaseWS()
	}
	return 0
}

// releaseWS drops one handle's reference; the last one publishes what is
// still unpublished (an O_TRUNC open nobody wrote to, a child's writes),
// unless a write was lost or the last publish failed and was reported.
// Nobody waits for a release: a failure here is only logged.
func (n *node) releaseWS() {
	n.mu.Lock()
	defer n.mu.Unlock()
	ws := n.ws
	if ws == nil {
		return
	}
	if ws.refs == 1 && ws.dirty && ws.failed == 0 && ws.pubErr == 0 && !ws.unlinked {
		n.mu.Unlock()
		errno := n.sync(n.fsys.ctx)
		n.mu.Lock()
		if errno != 0 {
			slog.Warn("publishing a file at its last close failed; the object in S3 is unchanged",
				"key", n.fsys.key(n.rel()), "err", errno)
		}
	}
	ws.refs--
	if ws.refs == 0 {
		n.fsys.discardStream(ws.st)
		ws.st = nil
		ws.f.Close()
		n.ws = nil
		n.infoExp = time.Time{} // learn the uploaded object's ETag on next use
	}
}

// sync uploads the staged content if it changed since the last upload.
func (n *node) sync(ctx context.Context) syscall.Errno {
	n.syncMu.Lock()
	defer n.syncMu.Unlock()
	// After a publish the mtime shown is the upload's: the kernel's cached
	// attributes (e.g. from create, when nothing was written) are dropped
	// so stat and a later fstat agree. Runs after n.mu is released.
	notify := false
	defer func() {
		if notify {
			_ = n.NotifyContent(-1, 0) // attributes only, no page-cache range
		}
	}()
	n.mu.Lock()
	ws := n.ws
	if ws == nil || !ws.dirty || ws.unlinked {
		n.mu.Unlock()
		return 0
	}
	if ws.failed != 0 {
		n.mu.Unlock()
		return ws.failed
	}
	size := ws.size
	ws.dirty = false
	st := ws.st
	mtime := time.Now().UnixNano()
	if ws.mtimeSet {
		mtime = ws.mtime
	}
	meta := uploadMeta(n.info.meta, ws.mtimeSet, ws.mtime)
	explicit := ws.mtimeSet
	// A flush before any part was sent (e.g. of the just-created, still
	// empty file, which reaches us before dd of=… writes) PUTs the
	// buffered bytes and keeps the stream going; otherwise a stream is used
	// up by one flush, whatever happens.
	small := st.unsent(size)
	if !small {
		ws.st = nil
	}
	n.mu.Unlock()
	rel := n.rel()
	var info ObjInfo
	var err error
	done := false
	var staging error // the staging file misses bytes
	if small {
		info, done, err = n.fsys.putUnsent(ctx, st, size, meta)
		if !done {
			staging = st.breakOff()
		}
	} else if st != nil {
		info, done, err = n.fsys.finishStream(ctx, st, size, meta, explicit)
		// The staging file must hold everything: for the whole upload
		// below, and for reads and writes after this flush.
		staging = st.breakOff()
	}
	if !done && staging == nil {
		info, err = n.fsys.upload(ctx, n.fsys.key(rel), ws.f, size, meta)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	published := done || staging == nil
	if staging != nil {
		// Later writes and reads cannot use the staging file. What was
		// published (a stream that completed) stands and is a success.
		ws.fail(staging)
		if published && err == nil {
			ws.dirty = false
		}
	}
	if !published {
		return ws.failed
	}
	if err != nil {
		ws.dirty = true
		ws.pubErr = toErrno(err)
		return ws.pubErr
	}
	ws.pubErr = 0
	notify = true
	n.info = entry{size: size, mtime: mtime, etag: info.ETag, headed: true, meta: meta}
	n.infoExp = time.Now().Add(n.fsys.ttl())
	n.cachedAs = ""
	n.fsys.meta.changed(rel)
	n.fsys.meta.put(rel, n.info)
	return 0
}

const (
	putMax      = 16 << 20 // larger uploads go multipart
	minPart     = 16 << 20
	uploadConns = 8
)

// upload writes size bytes of r to key: one PUT for small objects, else a
// parallel multipart upload that is aborted on failure, so that no partial
// object is ever visible.
func (f *FS) upload(ctx context.Context, key string, r io.ReaderAt, size int64, meta map[string]string) (ObjInfo, error) {
	if size <= putMax {
		return f.cl.Put(ctx, key, io.NewSectionReader(r, 0, size), size, meta)
	}
	ps := int64(minPart)
	for size/ps >= 10000 {
		ps *= 2
	}
	id, err := f.cl.CreateMultipart(ctx, key, meta)
	if err != nil {
		return ObjInfo{}, err
	}
	nparts := int((size + ps - 1) / ps)
	parts := make([]types.CompletedPart, nparts)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadConns)
	for i := 0; i < nparts; i++ {
		g.Go(func() error {
			off := int64(i) * ps
			n := min(ps, size-off)
			etag, err := f.cl.UploadPart(gctx, key, id, int32(i+1), io.NewSectionReader(r, off, n), n)
			if err != nil {
				return err
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: aws.String(etag)}
			return nil
		})
	}
	if err = g.Wait(); err == nil {
		var info ObjInfo
		info, err = f.cl.CompleteMultipart(ctx, key, id, parts)
		if err == nil {
			info.Size = size
			return info, nil
		}
	}
	go f.abortUpload(key, id) // in the background: see finishStream
	return ObjInfo{}, err
}

// abortUpload aborts a multipart upload that will not be completed, bounded
// by one stall window per try and off any syscall's path.
func (f *FS) abortUpload(key, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = f.cl.AbortMultipart(ctx, key, id)
}
