package builtin

import (
	"strings"
	"sync"
	"time"
	"unsafe"
)

// entry is what is known of one name: a directory, or a file with size,
// mtime and ETag.
type entry struct {
	dir   bool
	size  int64
	mtime int64 // unix nanoseconds
	etag  string
	// headed: the entry comes from a HEAD (or our own upload), so its
	// mtime is the stored one; a listing carries only LastModified.
	headed bool
	// link: a symbolic link in s3fs's format (see symlink.go).
	link bool
	// meta: the object's user metadata from a HEAD (nil when none), kept
	// across a rewrite (s3fs's mode/uid/gid, xattrs).
	meta map[string]string
	// lm: the object's LastModified in unix seconds when headed (0: not
	// known, e.g. our own upload), to tell a metadata-only change by
	// another client (same ETag, new LastModified) from the version known.
	lm int64
}

// knownMeta is the metadata known of one object beyond what a listing says
// (its stored mtime, link flag, user metadata), from a HEAD or our own
// write; it applies to a listed entry only while that entry's ETag, size
// (and LastModified, when known) are the ones it was learnt with.
type knownMeta struct {
	etag  string
	size  int64
	lm    int64
	mtime int64
	link  bool
	meta  map[string]string
	// headed: in a listing's side table, the entry's metadata came from
	// a HEAD or our own write (entry.headed).
	headed bool
}

func (e entry) time() time.Time {
	if e.mtime == 0 {
		return time.Unix(0, 0)
	}
	return time.Unix(0, e.mtime)
}

type dirent struct {
	name string
	entry
}

type attr struct {
	entry
	expires time.Time
}

// metaCache holds metadata with TTLs in bounded memory ([cache]
// metadata_max, maxBytes): complete folder listings (packed, see listing)
// take at most 3/4 of it, single entries from HEADs (positive and
// negative) and the known-metadata table the rest, counted in entries of
// a typical size. A folder bigger than its share is streamed from S3 every
// time and never cached whole.
type metaCache struct {
	ttl, negTTL time.Duration
	maxBytes    int64
	maxAttrs    int
	maxKnown    int
	maxListed   int64 // bytes of listings

	mu    sync.Mutex
	attrs map[string]attr
	// known is what HEADs and our own writes taught us (see knownMeta):
	// no TTL, since it is checked against each listing's ETag and size.
	known  map[string]knownMeta
	neg    map[string]time.Time
	dirs   map[string]*listing
	listed int64 // bytes of the listings in dirs
	nlist  int64 // their entries
	// hints are split points of big folders from their last complete
	// listing (an entry every listPageSize), for the next parallel listing.
	hints     map[string][]string
	hintBytes int
}

func newMetaCache(ttl, negTTL time.Duration, maxBytes int64) *metaCache {
	per := int(max(1000, maxBytes/8/256)) // single entries of ~256 bytes in 1/8 each
	return &metaCache{ttl: ttl, negTTL: negTTL, maxBytes: maxBytes, maxAttrs: per, maxKnown: per, maxListed: maxBytes * 3 / 4,
		attrs: map[string]attr{}, known: map[string]knownMeta{}, neg: map[string]time.Time{}, dirs: map[string]*listing{}}
}

// lookup answers for path from the cache: found says whether the answer is
// known; exists whether the name exists.
func (c *metaCache) lookup(path string) (e entry, exists, found bool) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.attrs[path]; ok {
		if now.Before(a.expires) {
			return a.entry, true, true
		}
		delete(c.attrs, path)
	}
	if exp, ok := c.neg[path]; ok {
		if now.Before(exp) {
			return entry{}, false, true
		}
		delete(c.neg, path)
	}
	dir, name := splitPath(path)
	if l := c.dirs[dir]; l != nil {
		if now.After(l.expires) {
			c.dropListingLocked(dir)
			return entry{}, false, false
		}
		if i, ok := l.find(name); ok {
			return l.at(i).entry, true, true
		}
		return entry{}, false, true
	}
	return entry{}, false, false
}

func (c *metaCache) put(path string, e entry) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.headed && !e.dir {
		c.rememberLocked(path, e)
	}
	delete(c.neg, path)
	c.trimLocked()
	c.attrs[path] = attr{entry: e, expires: time.Now().Add(c.ttl)}
}

func (c *metaCache) putNeg(path string) {
	if c.negTTL <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.attrs, path)
	c.trimLocked()
	c.neg[path] = time.Now().Add(c.negTTL)
}

// trimLocked keeps attrs+neg under maxAttrs: expired entries first, then
// arbitrary ones (map order is random).
func (c *metaCache) trimLocked() {
	if len(c.attrs)+len(c.neg) < c.maxAttrs {
		return
	}
	now := time.Now()
	for k, a := range c.attrs {
		if now.After(a.expires) {
			delete(c.attrs, k)
		}
	}
	for k, exp := range c.neg {
		if now.After(exp) {
			delete(c.neg, k)
		}
	}
	for k := range c.attrs {
		if len(c.attrs)+len(c.neg) < c.maxAttrs/2 {
			break
		}
		delete(c.attrs, k)
	}
	for k := range c.neg {
		if len(c.attrs)+len(c.neg) < c.maxAttrs/2 {
			break
		}
		delete(c.neg, k)
	}
}

func (c *metaCache) rememberLocked(path string, e entry) {
	if _, ok := c.known[path]; !ok && len(c.known) >= c.maxKnown {
		for k := range c.known { // arbitrary ones (map order is random)
			delete(c.known, k)
			if len(c.known) < c.maxKnown*3/4 {
				break
			}
		}
	}
	c.known[path] = knownMeta{etag: e.etag, size: e.size, lm: e.lm, mtime: e.mtime, link: e.link, meta: e.meta}
}

// enrich gives a listed file of dir the metadata known of it (stored mtime,
// link, user metadata) while its ETag, size and LastModified match what it
// was learnt with; a listing alone carries none of it.
func (c *metaCache) enrich(dir string, d *dirent) {
	if d.dir || d.headed {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.known) == 0 {
		return
	}
	k, ok := c.known[joinPath(dir, d.name)]
	if !ok || k.etag != d.etag || k.size != d.size || (k.lm != 0 && k.lm != d.mtime/1e9) {
		return
	}
	d.mtime, d.link, d.meta, d.headed, d.lm = k.mtime, k.link, k.meta, true, k.lm
}

// listingFor returns the fresh cached listing of dir, or nil.
func (c *metaCache) listingFor(dir string) *listing {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.dirs[dir]
	if l != nil && time.Now().After(l.expires) {
		c.dropListingLocked(dir)
		return nil
	}
	return l
}

// canList says whether a listing of that many bytes may still be cached.
func (c *metaCache) canList(bytes int64) bool { return c.ttl > 0 && bytes <= c.maxListed }

// putListing caches a complete listing of dir (freezing it), evicting
// other listings, soonest to expire first, to stay within maxListed.
func (c *metaCache) putListing(dir string, l *listing) *listing {
	if c.ttl <= 0 {
		return nil
	}
	l.freeze()
	l.expires = time.Now().Add(c.ttl)
	size := l.bytes()
	if !c.canList(size) {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropListingLocked(dir)
	for c.listed+size > c.maxListed && len(c.dirs) > 0 {
		var victim string
		var soonest time.Time
		for k, o := range c.dirs {
			if victim == "" || o.expires.Before(soonest) {
				victim, soonest = k, o.expires
			}
		}
		c.dropListingLocked(victim)
	}
	c.dirs[dir] = l
	c.listed += size
	c.nlist += int64(l.len())
	// Single entries under dir are now answered by the listing.
	if len(c.neg) > 0 {
		for i := 0; i < l.len(); i++ {
			delete(c.neg, joinPath(dir, l.name(i)))
		}
	}
	return l
}

func (c *metaCache) dropListingLocked(dir string) {
	if l := c.dirs[dir]; l != nil {
		c.listed -= l.bytes()
		c.nlist -= int64(l.len())
		delete(c.dirs, dir)
	}
}

// changed forgets path and its parent's listing after a change we made.
func (c *metaCache) changed(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.attrs, path)
	delete(c.neg, path)
	dir, _ := splitPath(path)
	c.dropListingLocked(dir)
}

// drop forgets everything cached at or under path ("" for everything).
func (c *metaCache) drop(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if path == "" {
		c.attrs = map[string]attr{}
		c.known = map[string]knownMeta{}
		c.neg = map[string]time.Time{}
		c.dirs = map[string]*listing{}
		c.listed, c.nlist = 0, 0
		return
	}
	under := func(k string) bool { return k == path || strings.HasPrefix(k, path+"/") }
	for k := range c.attrs {
		if under(k) {
			delete(c.attrs, k)
		}
	}
	for k := range c.neg {
		if under(k) {
			delete(c.neg, k)
		}
	}
	for k := range c.known {
		if under(k) {
			delete(c.known, k)
		}
	}
	for k := range c.dirs {
		if under(k) {
			c.dropListingLocked(k)
		}
	}
	dir, _ := splitPath(path)
	c.dropListingLocked(dir)
}

// Rough sizes, in bytes, of what the cache holds beside the names.
const (
	attrSize  = int(unsafe.Sizeof(attr{})) + 64 // + map slot and key header
	knownSize = int(unsafe.Sizeof(knownMeta{})) + 64
)

// usage is the cache's size in bytes (an estimate of the heap it holds),
// its entry count and its bound.
func (c *metaCache) usage() (bytes, entries, limit int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	bytes, entries = c.listed, c.nlist
	for k, a := range c.attrs {
		bytes += int64(attrSize + len(k) + len(a.etag))
	}
	for k := range c.neg {
		bytes += int64(64 + len(k))
	}
	for k, m := range c.known {
		bytes += int64(knownSize + len(k) + len(m.etag))
	}
	entries += int64(len(c.attrs) + len(c.neg) + len(c.known))
	return bytes, entries, c.maxBytes
}

// maxHintBytes bounds the split points kept for parallel listings.
const maxHintBytes = 4 << 20

// splitHints returns the split points kept for the folder prefix.
func (c *metaCache) splitHints(prefix string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hints[prefix]
}

// putSplitHints keeps split points of the folder prefix (sorted).
func (c *metaCache) putSplitHints(prefix string, pts []string) {
	size := func(p []string) (n int) {
		for _, s := range p {
			n += len(s) + 16
		}
		return n
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hints == nil {
		c.hints = map[string][]string{}
	}
	c.hintBytes -= size(c.hints[prefix])
	delete(c.hints, prefix)
	n := size(pts)
	if len(pts) == 0 || n > maxHintBytes/4 {
		return
	}
	for k, v := range c.hints {
		if c.hintBytes+n <= maxHintBytes {
			break
		}
		c.hintBytes -= size(v)
		delete(c.hints, k)
	}
	c.hints[prefix] = pts
	c.hintBytes += n
}

// splitPath splits "a/b/c" into "a/b" and "c"; "c" into "" and "c".
func splitPath(p string) (string, string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}
