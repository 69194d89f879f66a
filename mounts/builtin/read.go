package builtin

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
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
	mu     sync.Mutex
	avail  int
	notify chan struct{} // closed and replaced at each progress
}

// wait blocks until the part holds need bytes or is done; false if ctx ended.
func (p *part) wait(ctx context.Context, need int) bool {
	for {
		p.mu.Lock()
		if p.avail >= need {
			p.mu.Unlock()
			return true
		}
		ch := p.notify
		p.mu.Unlock()
		select {
		case <-ch:
		case <-p.done:
			return true
		case <-ctx.Done():
			return false
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
	// onChanged tells the node that the object is no longer what it knew.
	onChanged func()
}

func isChanged(err error) bool {
	return errors.Is(err, errChanged) || code(err) == "PreconditionFailed"
}

// ReadAt fills dest from off. If the object turns out to have changed
// since it was pinned and nothing of it has been served yet (and the kernel
// holds none of its pages), the handle re-pins the new version once, when
// its size is the same; otherwise EIO: never a mix of versions.
func (r *reader) ReadAt(ctx context.Context, dest []byte, off int64) (int, syscall.Errno) {
	n, errno, changed := r.readAt(ctx, dest, off)
	if changed {
		if r.onChanged != nil {
			r.onChanged()
		}
		if r.served.Load() || r.keepCache {
			return 0, syscall.EIO
		}
		info, err := r.fsys.cl.Head(ctx, r.key)
		if err != nil || info.Size != r.size {
			return 0, syscall.EIO
		}
		r.mu.Lock()
		r.etag = info.ETag
		for idx, p := range r.parts {
			delete(r.parts, idx)
			r.unrefLocked(p)
		}
		r.mu.Unlock()
		n, errno, changed = r.readAt(ctx, dest, off)
		if changed {
			return 0, syscall.EIO
		}
	}
	if errno == 0 && n > 0 {
		r.served.Store(true)
	}
	return n, errno
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
		if errors.Is(err, io.EOF) && got < n {
			// The object is shorter than when it was opened: it changed.
			err = errChanged
		} else if errors.Is(err, io.EOF) {
			err = nil
		}
		p.n, p.err = got, err
	}()
	return p
}

// fetch streams one part into buf, announcing progress every 256 KiB.
func (r *reader) fetch(p *part, etag string, off int64, buf []byte) (int, error) {
	body, err := r.fsys.cl.GetStream(r.ctx, r.key, etag, off, int64(len(buf)))
	if err != nil {
		return 0, err
	}
	defer body.Close()
	got := 0
	for got < len(buf) {
		end := min(got+256<<10, len(buf))
		n, err := io.ReadFull(body, buf[got:end])
		got += n
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			return got, err
		}
		p.progress(got)
	}
	return got, nil
}

var errChanged = errors.New("the object changed while open")

// readAt fills dest from off; short only at the end of the object.
// changed reports that the pinned version is gone.
func (r *reader) readAt(ctx context.Context, dest []byte, off int64) (int, syscall.Errno, bool) {
	if off >= r.size {
		return 0, 0, false
	}
	if int64(len(dest)) > r.size-off {
		dest = dest[:r.size-off]
	}
	end := off + int64(len(dest))
	first, last := off/partSize, (end-1)/partSize

	r.mu.Lock()
	// Sequential: at or near where the last read ended (the kernel's async
	// reads arrive a little out of order), or the very first read of a file
	// that fits in one part.
	seq := (off >= r.next-2*partSize && off <= r.next+2*partSize && r.next > 0) || (off == 0 && r.size <= partSize)
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
	if (seq && r.streak >= 2) || small || r.parts[first] != nil {
		window := int64(1)
		if seq && !small {
			window = min(int64(1)<<min(r.streak-1, 4), maxWindow)
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

	if want == nil {
		n, err := r.fsys.cl.GetRange(ctx, r.key, etag, off, dest)
		if errors.Is(err, io.EOF) {
			if n < len(dest) {
				return n, syscall.EIO, true
			}
			err = nil
		}
		if err != nil {
			return 0, toErrno(err), isChanged(err)
		}
		return n, 0, false
	}

	var errno syscall.Errno
	changed := false
	done := 0
	for _, p := range want {
		pOff := p.idx * partSize
		need := int(min(end, pOff+partSize) - pOff)
		if !p.wait(ctx, need) {
			errno = syscall.EINTR
		}
		p.mu.Lock()
		avail := p.avail
		p.mu.Unlock()
		if avail >= need {
			// Served from what has arrived; the rest is still streaming.
			done += copy(dest[max(off, pOff)-off:], p.buf[max(off, pOff)-pOff:need])
			continue
		}
		if errno == 0 && p.err != nil {
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
		return 0, errno, changed
	}
	return done, 0, false
}

func isDone(p *part) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
