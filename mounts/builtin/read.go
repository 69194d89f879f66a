package builtin

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

const (
	partSize     = 8 << 20 // one readahead GET
	maxWindow    = 8       // parts in flight per handle at most
	budgetBuffer = 10      // parts buffered across the mount at most (80 MiB)
)

// bufBudget is the shared memory pool of readahead buffers: at most max
// buffers of partSize exist; freed ones are reused.
type bufBudget struct {
	mu    sync.Mutex
	free  [][]byte
	count int
	max   int
}

func newBufBudget(max int) *bufBudget { return &bufBudget{max: max} }

// get returns a buffer, or nil when the budget is spent and must is false.
func (b *bufBudget) get(must bool) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.free); n > 0 {
		buf := b.free[n-1]
		b.free = b.free[:n-1]
		b.count++
		return buf
	}
	if b.count >= b.max && !must {
		return nil
	}
	b.count++
	return make([]byte, partSize)
}

func (b *bufBudget) put(buf []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.count--
	if len(b.free)+b.count < b.max {
		b.free = append(b.free, buf[:partSize])
	}
}

// part is one readahead GET of [idx*partSize, …).
type part struct {
	idx   int64
	buf   []byte
	n     int
	err   error
	done  chan struct{}
	refs  int // readers copying + 1 while in r.parts
	owner *reader

	// Progress while the GET streams in: readers are served as soon as
	// their bytes have arrived, not when the whole part has.
	mu       sync.Mutex
	avail    int
	notify   chan struct{} // closed and replaced at each progress
	lastByte atomic.Int64  // unix nanoseconds of the last byte received
}

// wait blocks until the part holds need bytes or is done; ok is false if
// ctx ended, stalled true if no byte arrived for limit (counted from the
// later of the call and the part's last byte).
func (p *part) wait(ctx context.Context, need int, limit time.Duration) (ok, stalled bool) {
	start := time.Now().UnixNano()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		p.mu.Lock()
		if p.avail >= need {
			p.mu.Unlock()
			return true, false
		}
		ch := p.notify
		p.mu.Unlock()
		idle := time.Duration(time.Now().UnixNano() - max(start, p.lastByte.Load()))
		if idle >= limit {
			return false, true
		}
		if timer == nil {
			timer = time.NewTimer(limit - idle)
		} else {
			timer.Reset(limit - idle)
		}
		select {
		case <-ch:
		case <-p.done:
			return true, false
		case <-ctx.Done():
			return false, false
		case <-timer.C:
		}
	}
}

func (p *part) progress(avail int) {
	p.mu.Lock()
	p.avail = avail
	close(p.notify)
	p.notify = make(chan struct{})
	p.mu.Unlock()
}

// reader serves reads of one open file: sequential access gets a growing
// window of parallel ranged GETs; random access gets exact GETs and no
// readahead. Every GET carries If-Match with the ETag pinned at open.
type reader struct {
	fsys *FS
	key  string
	etag string
	size int64

	mu     sync.Mutex
	parts  map[int64]*part
	next   int64 // where a sequential reader goes next
	streak int   // consecutive sequential reads
	ctx    context.Context
	cancel context.CancelFunc

	// keepCache: the kernel kept its page cache at open, so its pages may
	// hold the pinned version; served: bytes have been returned.
	keepCache bool
	served    atomic.Bool
	// stalledAt (unix ns) is when a read of this handle last failed for
	// lack of progress: for stall_timeout after it, reads that need bytes
	// from the network fail at once. The kernel retries a failed page read
	// synchronously, and one read(2) must not wait twice for a frozen
	// endpoint.
	stalledAt atomic.Int64
	// onChanged tells the node that the object is no longer what it knew;
	// onRepinned what it is now.
	onChanged  func()
	onRepinned func(info ObjInfo, grew bool)
}

func isChanged(err error) bool {
	return errors.Is(err, errChanged) || code(err) == "PreconditionFailed"
}

// ReadAt fills dest from off. If the object turns out to have changed
// since it was pinned and nothing of it has been served yet (and the kernel
// holds none of its pages), the handle re-pins the new version (whatever
// its size) and serves it whole; otherwise EIO: never a mix of versions.
// Either way the node forgets what it knew, so the next open is right.
func (r *reader) ReadAt(ctx context.Context, dest []byte, off int64) (int, syscall.Errno) {
	n, _, errno := r.read(ctx, dest, off, false)
	return n, errno
}

// Read is ReadAt for the FUSE server: a read that lies in one readahead
// part that has its bytes is answered from the part's buffer itself (the
// reply is written from it, and the part released once written), saving
// a copy of every byte of a sequential read.
func (r *reader) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n, res, errno := r.read(ctx, dest, off, true)
	if errno != 0 {
		return nil, errno
	}
	if res != nil {
		return res, 0
	}
	return fuse.ReadResultData(dest[:n]), 0
}

// partResult is a read's reply straight from a part's buffer. It holds a
// reference to the part until go-fuse has written it (Done). It offers its
// bytes as a slice (writev) so that Done comes after the write; Bytes
// copies, for a server that calls Done before writing.
type partResult struct {
	r    *reader
	p    *part
	data []byte
	once sync.Once
}

func (x *partResult) Size() int { return len(x.data) }

func (x *partResult) Bytes(buf []byte) ([]byte, fuse.Status) {
	if len(buf) < len(x.data) {
		buf = make([]byte, len(x.data))
	}
	return buf[:copy(buf, x.data)], fuse.OK
}

func (x *partResult) Slices() ([][]byte, fuse.Status) { return [][]byte{x.data}, fuse.OK }

func (x *partResult) Done() {
	x.once.Do(func() {
		x.r.mu.Lock()
		x.r.unrefLocked(x.p)
		x.r.mu.Unlock()
	})
}

func (r *reader) read(ctx context.Context, dest []byte, off int64, zeroCopy bool) (int, *partResult, syscall.Errno) {
	n, res, errno, changed := r.readAt(ctx, dest, off, zeroCopy)
	if changed {
		if r.served.Load() || r.keepCache {
			if r.onChanged != nil {
				r.onChanged()
			}
			slog.Warn("read failed: the object changed while open and part of the old version was served; reopen the file",
				"op", "read", "key", r.key)
			return 0, nil, syscall.EIO
		}
		info, err := r.fsys.cl.Head(ctx, r.key)
		if err != nil {
			if r.onChanged != nil {
				r.onChanged()
			}
			return 0, nil, toErrno(err)
		}
		r.mu.Lock()
		old := r.size
		r.etag, r.size = info.ETag, info.Size
		for idx, p := range r.parts {
			delete(r.parts, idx)
			r.unrefLocked(p)
		}
		r.next, r.streak = 0, 0
		r.mu.Unlock()
		if r.onRepinned != nil {
			r.onRepinned(info, info.Size > old)
		}
		n, res, errno, changed = r.readAt(ctx, dest, off, zeroCopy)
		if changed {
			if r.onChanged != nil {
				r.onChanged()
			}
			slog.Warn("read failed: the object changes faster than it can be read; try again", "op", "read", "key", r.key)
			return 0, nil, syscall.EIO
		}
	}
	if errno == 0 && (n > 0 || res != nil) {
		r.served.Store(true)
	}
	return n, res, errno
}

func newReader(f *FS, key, etag string, size int64) *reader {
	ctx, cancel := context.WithCancel(f.ctx)
	return &reader{fsys: f, key: key, etag: etag, size: size, parts: map[int64]*part{}, ctx: ctx, cancel: cancel}
}

func (r *reader) close() {
	r.cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	for idx, p := range r.parts {
		delete(r.parts, idx)
		r.unrefLocked(p)
	}
}

func (r *reader) unrefLocked(p *part) {
	p.refs--
	if p.refs == 0 {
		go func() {
			<-p.done
			if cap(p.buf) >= partSize {
				r.fsys.budget.put(p.buf)
			}
		}()
	}
}

// startLocked begins fetching part idx; must forces a buffer past the budget.
func (r *reader) startLocked(idx int64, must bool) *part {
	if p := r.parts[idx]; p != nil {
		return p
	}
	off := idx * partSize
	if off >= r.size {
		return nil
	}
	n := int(min(int64(partSize), r.size-off))
	var buf []byte
	if n < partSize && idx == 0 {
		buf = make([]byte, n) // a small file: no pool buffer
	} else if buf = r.fsys.budget.get(must); buf == nil {
		return nil
	}
	etag := r.etag // r.mu is held
	p := &part{idx: idx, buf: buf, done: make(chan struct{}), refs: 1, owner: r, notify: make(chan struct{})}
	r.parts[idx] = p
	go func() {
		defer close(p.done)
		got, err := r.fetch(p, etag, off, buf[:n])
		if err == io.EOF && got < n {
			// The object is shorter than when it was opened: it changed.
			err = errChanged
		} else if err == io.EOF {
			err = nil
		}
		p.n, p.err = got, err
	}()
	return p
}

// fetch streams one part into buf, announcing progress every 256 KiB. A
// body that breaks or stalls is resumed from the last byte received,
// pinned to the same ETag; the part fails after 3 × stall_timeout without
// a byte.
func (r *reader) fetch(p *part, etag string, off int64, buf []byte) (int, error) {
	ctx, _, cancel := withProgress(r.ctx, opBudget(r.fsys.stall()))
	defer cancel()
	p.lastByte.Store(time.Now().UnixNano())
	told := 0
	return readFull(ctx, r.fsys.cl, r.key, etag, off, buf, func(got int) {
		p.lastByte.Store(time.Now().UnixNano())
		if got-told >= 256<<10 || got == len(buf) {
			told = got
			p.progress(got)
		}
	})
}

// readFull reads len(p) bytes of key at off (io.EOF itself, never wrapped,
// if the object ends first: a connection's EOF inside an SDK error is not
// the object's end). A body that breaks, stalls or ends short is resumed with a new
// ranged GET from the last byte received, pinned with If-Match to etag (or
// to the ETag of the first answer when etag is ""), so the bytes are one
// version's. It gives up when the context's no-progress budget ends, on
// an S3 error, or after 3 resumptions in a row that brought no byte.
// onBytes, if set, sees the count after every read that brought bytes.
func readFull(ctx context.Context, cl ObjectClient, key, etag string, off int64, p []byte, onBytes func(int)) (int, error) {
	pr := progressOf(ctx)
	got, fruitless := 0, 0
	for got < len(p) {
		body, err := cl.GetStream(ctx, key, etag, off+int64(got), int64(len(p)-got))
		if err != nil {
			return got, stallErr(ctx, err)
		}
		if etag == "" {
			if e, ok := body.(interface{ ETag() string }); ok {
				etag = e.ETag()
			}
		}
		before := got
		for got < len(p) {
			var n int
			n, err = body.Read(p[got:])
			if n > 0 {
				got += n
				if pr != nil {
					pr.touch()
				}
				if onBytes != nil {
					onBytes(got)
				}
			}
			if err != nil {
				break
			}
		}
		body.Close()
		if got == len(p) {
			return got, nil
		}
		if err == io.EOF {
			return got, io.EOF // the object ends here
		}
		err = stallErr(ctx, err)
		if !retryable(ctx, err) {
			return got, err
		}
		if got == before {
			if fruitless++; fruitless >= 3 {
				logFailure("GetObject(resume)", key, err)
				return got, err
			}
		} else {
			fruitless = 0
		}
		resumes.Add(1)
		slog.Debug("resuming a GET body", "key", key, "at", off+int64(got), "err", err)
	}
	return got, nil
}

var errChanged = errors.New("the object changed while open")

// resumes counts GET bodies resumed after a break (for tests).
var resumes atomic.Int64

// readAt fills dest from off; short only at the end of the object.
// changed reports that the pinned version is gone. With zeroCopy, a read
// served whole from one part that has its bytes returns them as res
// instead (dest untouched, n 0).
func (r *reader) readAt(ctx context.Context, dest []byte, off int64, zeroCopy bool) (n int, res *partResult, errno syscall.Errno, changed bool) {
	r.mu.Lock()
	size := r.size
	if off >= size {
		r.mu.Unlock()
		return 0, nil, 0, false
	}
	if int64(len(dest)) > size-off {
		dest = dest[:size-off]
	}
	end := off + int64(len(dest))
	first, last := off/partSize, (end-1)/partSize

	// Sequential: at or near where the last read ended (the kernel's async
	// reads arrive a little out of order), or the very first read of a file
	// that fits in one part.
	seq := (off >= r.next-2*partSize && off <= r.next+2*partSize && r.next > 0) || (off == 0 && r.size <= partSize)
	// The first read of a handle, at offset 0, fetches part 0 as a
	// readahead part (served as its bytes arrive, so no slower than an
	// exact GET), without parts ahead: a sequential reader finds its
	// second read there and the window grows from it, instead of two exact
	// GETs first (two round trips); a reader that only looks at the head of
	// a file costs at most one part.
	startRead := off == 0 && r.next == 0 && r.streak == 0
	if seq {
		r.streak++
	} else {
		r.streak = 0
	}
	if end > r.next || !seq {
		r.next = end
	}
	var want []*part
	small := off == 0 && r.size <= partSize
	if (seq && r.streak >= 2) || small || startRead || r.parts[first] != nil {
		window := int64(1)
		if seq && !small {
			window = min(int64(1)<<min(r.streak-1, 4), maxWindow)
		} else if startRead && !small {
			window = 0
		}
		for idx := first; idx <= last; idx++ {
			if p := r.startLocked(idx, true); p != nil {
				p.refs++
				want = append(want, p)
			}
		}
		for idx := last + 1; idx <= last+window; idx++ {
			r.startLocked(idx, false)
		}
		// Parts wholly before this read are done with. Two are kept behind:
		// the kernel's async readahead requests reach us out of order on a
		// busy machine, and with one kept, 7 % of the parts of a 1 GiB
		// sequential read were fetched twice.
		for idx, p := range r.parts {
			if idx < first-2 || idx > last+maxWindow {
				delete(r.parts, idx)
				r.unrefLocked(p)
			}
		}
	} else {
		// Random access: drop readahead, read exactly what was asked.
		for idx, p := range r.parts {
			delete(r.parts, idx)
			r.unrefLocked(p)
		}
	}
	etag := r.etag
	r.mu.Unlock()

	limit := opBudget(r.fsys.stall())
	failFast := time.Since(time.Unix(0, r.stalledAt.Load())) < r.fsys.stall()
	if want == nil {
		if failFast {
			return 0, nil, syscall.EIO, false
		}
		gctx, _, cancel := withProgress(ctx, limit)
		n, err := readFull(gctx, r.fsys.cl, r.key, etag, off, dest, nil)
		cancel()
		if errors.Is(err, errNoProgress) {
			r.stalledAt.Store(time.Now().UnixNano())
		}
		if err == io.EOF {
			if n < len(dest) {
				return n, nil, syscall.EIO, true
			}
			err = nil
		}
		if err != nil {
			return 0, nil, toErrno(err), isChanged(err)
		}
		return n, nil, 0, false
	}

	done := 0
	for _, p := range want {
		pOff := p.idx * partSize
		need := int(min(end, pOff+partSize) - pOff)
		wait := limit
		if failFast {
			wait = 0 // only what has arrived
		}
		if ok, stalled := p.wait(ctx, need, wait); stalled {
			if !failFast {
				slog.Warn("read failed", "op", "read", "key", r.key, "off", off, "err", errNoProgress.Error())
				r.stalledAt.Store(time.Now().UnixNano())
			}
			errno = syscall.EIO
		} else if !ok {
			errno = syscall.EINTR
		}
		p.mu.Lock()
		avail := p.avail
		p.mu.Unlock()
		if avail >= need {
			// Served from what has arrived; the rest is still streaming.
			if zeroCopy && len(want) == 1 && errno == 0 {
				// The part's reference passes to the reply.
				return 0, &partResult{r: r, p: p, data: p.buf[off-pOff : need]}, 0, false
			}
			done += copy(dest[max(off, pOff)-off:], p.buf[max(off, pOff)-pOff:need])
			continue
		}
		if errno == 0 && p.err != nil {
			if errors.Is(p.err, errNoProgress) {
				r.stalledAt.Store(time.Now().UnixNano())
			}
			if isChanged(p.err) {
				errno, changed = syscall.EIO, true
			} else {
				errno = toErrno(p.err)
			}
		}
		if errno == 0 {
			pOff := p.idx * partSize
			lo := max(off, pOff) - pOff
			hi := min(end, pOff+int64(p.n)) - pOff
			if lo < hi {
				done += copy(dest[max(off, pOff)-off:], p.buf[lo:hi])
			}
		}
	}
	r.mu.Lock()
	for _, p := range want {
		if errno != 0 && r.parts[p.idx] == p && isDone(p) && p.err != nil {
			delete(r.parts, p.idx) // a later read retries
			r.unrefLocked(p)
		}
		r.unrefLocked(p)
	}
	r.mu.Unlock()
	if errno != 0 {
		return 0, nil, errno, changed
	}
	return done, nil, 0, false
}

func isDone(p *part) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// repinned records the version a reader moved to before serving any of
// the old one, so that getattr and the next open see it. The kernel still
// has the old size. A shorter object: the short reply of the read in
// progress sets the kernel's size (FUSE does so only if no attribute
// invalidation happened meanwhile, so none is sent). A longer one: its
// attributes are dropped now, synchronously (offset -1: attributes only, no
// page lock, so this cannot wait on the read in progress), so that a read
// past the old end asks for the new size.
func (n *node) repinned(info ObjInfo, grew bool) {
	e := entryOf(info)
	rel := n.rel()
	n.fsys.meta.changed(rel)
	n.fsys.meta.put(rel, e)
	n.mu.Lock()
	if n.ws == nil {
		n.info, n.infoExp = e, time.Now().Add(n.fsys.ttl())
		n.cachedAs = info.ETag
	}
	n.mu.Unlock()
	if grew {
		_ = n.NotifyContent(-1, 0)
	}
}

// loadCurrentLocked copies the object's current version into w for a
// writer that keeps the content (append, O_RDWR without O_TRUNC), and
// makes it the node's info. A HEAD re-validates what a cached listing
// said, and if the object is replaced again during the download, the newer
// version is loaded: an append never fails, nor extends a stale copy,
// because another client replaced the object. n.mu is held.
func (n *node) loadCurrentLocked(ctx context.Context, w io.WriterAt) syscall.Errno {
	f := n.fsys
	key := f.key(n.rel())
	for try := 0; ; try++ {
		info, err := f.cl.Head(ctx, key)
		if err != nil {
			if toErrno(err) == syscall.ENOENT && n.info.size == 0 {
				return 0 // not in the bucket (yet): the file starts empty
			}
			return toErrno(err)
		}
		if info.Size > 0 {
			if errno := f.download(ctx, key, info.ETag, info.Size, w); errno != 0 {
				if again, err := f.cl.Head(ctx, key); try < 2 && err == nil && again.ETag != info.ETag {
					continue // replaced while we read it: load the newer one
				}
				return errno
			}
		}
		if t, ok := w.(interface{ Truncate(int64) error }); ok && try > 0 {
			if err := t.Truncate(info.Size); err != nil {
				return syscall.EIO
			}
		}
		if info.Size != n.info.size {
			go n.NotifyContent(-1, 0) // the kernel's size is stale: attributes only
		}
		n.info, n.infoExp = entryOf(info), time.Now().Add(f.ttl())
		return 0
	}
}
