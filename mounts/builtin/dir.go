package builtin

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirHandle streams one directory: entries go to the kernel as each
// ListObjectsV2 page arrives (the next page is fetched while the kernel
// takes this one), and READDIRPLUS is answered from the listing itself.
// A complete listing that fits the cache is kept for MetadataTTL.
type dirHandle struct {
	n   *node
	rel string

	started bool
	ents    *listing // everything produced so far (the cached listing when replaying)
	base    int      // directory offset of entry 0 of ents (entries trimmed off the front)
	pos     int
	last    dirent
	done    bool
	cached  bool // ents is a complete cached listing
	keep    bool // ents is still complete enough to be cached at the end
	pages   chan pageResult
	cancel  context.CancelFunc
	sh      shadower
	err     syscall.Errno
	// newest: the newest LastModified among the listed keys (the
	// directory's mtime when its marker has no stored one).
	newest int64
}

type pageResult struct {
	page ListPage
	err  error
}

var (
	_ fs.FileReaddirenter = (*dirHandle)(nil)
	_ fs.FileLookuper     = (*dirHandle)(nil)
	_ fs.FileSeekdirer    = (*dirHandle)(nil)
	_ fs.FileReleasedirer = (*dirHandle)(nil)
)

func (d *dirHandle) start() {
	d.started = true
	f := d.n.fsys
	if l := f.meta.listingFor(d.rel); l != nil {
		d.ents, d.cached, d.done = l, true, true
		d.n.mu.Lock()
		d.n.kernelListing = l
		d.n.mu.Unlock()
		return
	}
	d.keep = true
	d.ents = &listing{}
	d.sh = shadower{dirPrefix: f.dirKey(d.rel)}
	ctx, cancel := context.WithCancel(f.ctx)
	d.cancel = cancel
	d.pages = make(chan pageResult, 2)
	go func() {
		defer close(d.pages)
		// In key order, from parallel key-range streams on big folders
		// (list.go).
		err := f.listStream(ctx, f.dirKey(d.rel), func(p ListPage) bool {
			select {
			case d.pages <- pageResult{page: p}:
				return true
			case <-ctx.Done():
				return false
			}
		})
		if err != nil {
			select {
			case d.pages <- pageResult{err: err}:
			case <-ctx.Done():
			}
		}
	}()
}

// fill takes pages until at least one entry is ready or the listing ends.
func (d *dirHandle) fill(ctx context.Context) syscall.Errno {
	for d.pos >= d.ents.len() && !d.done {
		var r pageResult
		var ok bool
		select {
		case r, ok = <-d.pages:
		case <-ctx.Done():
			return syscall.EINTR
		}
		meta := d.n.fsys.meta
		emit := func(e dirent) {
			meta.enrich(d.rel, &e)
			d.ents.add(e)
		}
		if !ok {
			d.sh.finish(emit)
			d.done = true
			d.n.sawChildren(d.newest)
			if d.keep {
				l := d.n.fsys.meta.putListing(d.rel, d.ents)
				d.n.mu.Lock()
				d.n.kernelListing = l
				d.n.mu.Unlock()
			}
			break
		}
		if r.err != nil {
			d.err = toErrno(r.err)
			d.done = true
			d.keep = false
			return d.err
		}
		for _, o := range r.page.Objects {
			d.newest = max(d.newest, o.MTime.UnixNano())
		}
		d.sh.feed(r.page, emit)
		if d.keep && !d.n.fsys.meta.canList(d.ents.bytes()) {
			// Too big to cache: keep only the window the kernel may seek back into.
			d.keep = false
		}
		if !d.keep && d.pos > 4096 {
			d.base += d.pos - 1024
			d.ents = d.ents.tail(d.pos - 1024)
			d.pos = 1024
		}
	}
	return 0
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !d.started {
		d.start()
	}
	if errno := d.fill(ctx); errno != 0 {
		return nil, errno
	}
	if d.pos >= d.ents.len() {
		if d.err != 0 {
			return nil, d.err
		}
		return nil, 0
	}
	e := d.ents.at(d.pos)
	d.pos++
	d.last = e
	mode := uint32(syscall.S_IFREG)
	if e.dir {
		mode = syscall.S_IFDIR
	}
	return &fuse.DirEntry{Name: e.name, Mode: mode}, 0
}

// plusLimit is how many entries of one listing get an inode through
// READDIRPLUS; later ones go to the kernel as plain entries (looked up one by
// one if asked), so that a directory of millions of entries does not pin
// millions of inodes in this process and the kernel.
var plusLimit = 200_000

// Lookup answers READDIRPLUS for the entry just produced, from the listing.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if d.base+d.pos > plusLimit {
		// A zero node id: the kernel takes it as a plain directory entry.
		return nil, syscall.ENOENT
	}
	if d.last.name != name {
		return d.n.Lookup(ctx, name, out)
	}
	if !d.last.entry.dir && !d.last.entry.headed && d.n.fsys.objectPerms() {
		// permissions = "object": mode/uid/gid need the object's own
		// metadata, so a plain entry, looked up (HEADed) if stat'ed. In the
		// connector model the listing's attributes are the answer (ls -l
		// costs no HEAD), with what is known of the object (enrich).
		return nil, syscall.ENOENT
	}
	if d.last.entry.dir && !d.last.entry.headed && d.n.fsys.objectPerms() {
		// permissions = "object": a directory's mode and owner are on its
		// marker, which a listing does not carry.
		return nil, syscall.ENOENT
	}
	ch := d.n.newChild(ctx, name, d.last.entry)
	ch.Operations().(*node).attrOut(&out.Attr)
	return ch, 0
}

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	// Offsets are positions: the entry at index i has offset i+1.
	if !d.started {
		d.start()
	}
	if off == 0 && (d.base > 0 || d.err != 0) {
		d.Releasedir(ctx, 0)
		*d = dirHandle{n: d.n, rel: d.rel}
		return 0
	}
	for int(off) > d.base+d.ents.len() && !d.done {
		d.pos = d.ents.len()
		if errno := d.fill(ctx); errno != 0 {
			return errno
		}
	}
	if int(off) < d.base || int(off) > d.base+d.ents.len() {
		return syscall.ENOTSUP
	}
	d.pos = int(off) - d.base
	return 0
}

func (d *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {
	if d.cancel != nil {
		d.cancel()
		// Let the lister goroutine end.
		for range d.pages {
		}
	}
}
