package builtin

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"
)

// genClient is a folder of n generated objects (prefix + "object-%07d.txt"),
// listed like S3 (continuation tokens and StartAfter), without storing them.
type genClient struct {
	ObjectClient
	prefix string
	n      int
}

func (g *genClient) key(i int) string { return fmt.Sprintf("%sobject-%07d.txt", g.prefix, i) }

func (g *genClient) page(from int, max int32) ListPage {
	var p ListPage
	for i := from; i < g.n; i++ {
		if int32(i-from) == max {
			p.Next = strconv.Itoa(i)
			break
		}
		p.Objects = append(p.Objects, ObjInfo{Key: g.key(i), Size: int64(i), MTime: time.Unix(1700000000, 0),
			ETag: fmt.Sprintf(`"%032x"`, i)})
	}
	return p
}

func (g *genClient) List(ctx context.Context, prefix, delim, token string, max int32) (ListPage, error) {
	from := 0
	if token != "" {
		from, _ = strconv.Atoi(token)
	}
	return g.page(from, max), nil
}

func (g *genClient) ListAfter(ctx context.Context, prefix, delim, after string, max int32) (ListPage, error) {
	return g.page(sort.Search(g.n, func(i int) bool { return g.key(i) > after }), max), nil
}

// cacheFolder lists dir as a directory handle does and caches the listing.
func cacheFolder(t testing.TB, f *FS, rel string) *listing {
	l := &listing{}
	sh := shadower{dirPrefix: f.dirKey(rel)}
	emit := func(d dirent) {
		f.meta.enrich(rel, &d)
		l.add(d)
	}
	if err := f.listStream(context.Background(), f.dirKey(rel), func(p ListPage) bool {
		sh.feed(p, emit)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	sh.finish(emit)
	return f.meta.putListing(rel, l)
}

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestEntryBytes: a cached 1,000,000-entry folder costs at most 300 bytes
// an entry of heap (measured after GC), and Stats report its size.
func TestEntryBytes(t *testing.T) {
	const n = 1_000_000
	g := &genClient{prefix: "big/", n: n}
	f := testFS(g)
	f.meta = newMetaCache(time.Hour, time.Hour, testMetadataMax)
	before := heapNow()
	l := cacheFolder(t, f, "big")
	after := heapNow()
	if l == nil || l.len() != n {
		t.Fatalf("the listing was not cached whole")
	}
	per := float64(int64(after)-int64(before)) / n
	bytes, entries, limit := f.meta.usage()
	t.Logf("1,000,000 cached entries (names of 18 bytes): %.1f bytes/entry of heap; cache reports %d bytes (%.1f/entry), %d entries, bound %d",
		per, bytes, float64(bytes)/n, entries, limit)
	if per > 300 {
		t.Fatalf("%.1f bytes per cached entry, want ≤ 300", per)
	}
	if entries != n || bytes <= 0 || bytes > int64(after-before)*2 {
		t.Fatalf("usage %d bytes, %d entries: want %d entries and about the heap measured", bytes, entries, n)
	}
	// Every entry answers a lookup from the packed listing.
	for _, i := range []int{0, 1, 4999, n / 2, n - 1} {
		e, exists, found := f.meta.lookup(fmt.Sprintf("big/object-%07d.txt", i))
		if !found || !exists || e.size != int64(i) || e.etag != fmt.Sprintf(`"%032x"`, i) {
			t.Fatalf("entry %d: %+v exists=%v found=%v", i, e, exists, found)
		}
	}
	if _, exists, found := f.meta.lookup("big/object-x.txt"); !found || exists {
		t.Fatal("a name the listing lacks must be known absent")
	}
	runtime.KeepAlive(l)
}

// TestMetadataBound: with a small metadata_max the cache evicts listings
// to stay within it, and a folder bigger than its share is not cached.
func TestMetadataBound(t *testing.T) {
	f := testFS(nil)
	f.meta = newMetaCache(time.Hour, time.Hour, 1<<20)
	for i := 0; i < 6; i++ {
		f.cl = &genClient{prefix: fmt.Sprintf("d%d/", i), n: 4000}
		if l := cacheFolder(t, f, fmt.Sprintf("d%d", i)); l == nil {
			t.Fatalf("folder %d of 4000 entries not cached", i)
		}
		bytes, _, limit := f.meta.usage()
		if bytes > limit {
			t.Fatalf("cache at %d bytes over its bound %d", bytes, limit)
		}
	}
	_, entries, _ := f.meta.usage()
	if entries >= 6*4000 {
		t.Fatalf("%d entries cached: nothing was evicted", entries)
	}
	f.cl = &genClient{prefix: "huge/", n: 40000}
	if l := cacheFolder(t, f, "huge"); l != nil {
		t.Fatal("a folder over the bound was cached")
	}
}

// TestKnownMetadataSurvivesRelisting: metadata learnt from a HEAD (a stored
// mtime, a link) is given to the listed entry while its ETag, size and
// LastModified are the ones it was learnt with, and only then; a cached
// listing keeps it in its side table.
func TestKnownMetadataSurvivesRelisting(t *testing.T) {
	c := newMetaCache(time.Hour, time.Hour, testMetadataMax)
	lm := time.Unix(1700000000, 0)
	stored := time.Unix(1000000000, 0).UnixNano()
	c.put("d/a", entryOf(ObjInfo{Key: "d/a", Size: 5, MTime: lm, ETag: `"aa"`, Meta: map[string]string{"mtime": "1000000000"}}))
	listed := func(etag string, size int64, lastMod time.Time) dirent {
		d := dirent{name: "a", entry: entry{size: size, mtime: lastMod.Add(123 * time.Millisecond).UnixNano(), etag: etag}}
		c.enrich("d", &d)
		return d
	}
	if d := listed(`"aa"`, 5, lm); d.mtime != stored || !d.headed {
		t.Fatalf("same version: mtime %d headed %v, want the stored mtime", d.mtime, d.headed)
	}
	for name, d := range map[string]dirent{
		"new ETag":         listed(`"bb"`, 5, lm),
		"new size":         listed(`"aa"`, 6, lm),
		"new LastModified": listed(`"aa"`, 5, lm.Add(time.Hour)),
	} {
		if d.mtime == stored || d.headed {
			t.Fatalf("%s: the old metadata was applied", name)
		}
	}
	l := &listing{}
	l.add(listed(`"aa"`, 5, lm))
	l.add(dirent{name: "b", entry: entry{size: 1, etag: `"0123456789abcdef0123456789abcdef"`}})
	l.add(dirent{name: "c", entry: entry{size: 1, etag: `"0123456789abcdef0123456789abcdef-3"`}})
	c.putListing("d", l)
	i, ok := l.find("a")
	if e := l.at(i); !ok || e.mtime != stored || !e.headed {
		t.Fatalf("from the cached listing: %+v", e)
	}
	if e, _, _ := c.lookup("d/b"); e.etag != `"0123456789abcdef0123456789abcdef"` || e.headed {
		t.Fatalf("packed ETag: %+v", e)
	}
	if e, _, _ := c.lookup("d/c"); e.etag != `"0123456789abcdef0123456789abcdef-3"` {
		t.Fatalf("multipart ETag: %+v", e)
	}
}
