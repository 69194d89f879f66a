package builtin

import (
	"encoding/hex"
	"hash/maphash"
	"time"
	"unsafe"
)

// listing is the entries of one folder, packed so that a cached entry
// costs its name plus about 50 bytes (docs/SEMANTICS.md, "Memory"): names
// in one byte slice, the attributes in parallel slices, ETags of the usual
// form ("<32 hex digits>") as 16 bytes, a hash index of uint32s; no
// per-entry pointer or map. What only some entries have (an unusual ETag,
// metadata known beyond the listing) lives in small side tables.
type listing struct {
	names  []byte
	ends   []uint32 // end of name i in names
	sizes  []int64
	mtimes []int64 // LastModified (or the known mtime), unix ns
	etags  [][16]byte
	flags  []uint8
	// odd holds the ETags not of the usual form (multipart "…-N"),
	// known the metadata known of entries beyond the listing (enrich).
	odd     map[int32]string
	known   map[int32]knownMeta
	index   []uint32 // open addressing: 0 empty, else entry+1
	expires time.Time
}

const (
	flagDir uint8 = 1 << iota
	flagOddETag
	flagKnown
)

var listSeed = maphash.MakeSeed()

func (l *listing) len() int { return len(l.ends) }

// name is entry i's name; it shares the listing's memory (names is only
// ever appended to, never changed in place).
func (l *listing) name(i int) string {
	start := uint32(0)
	if i > 0 {
		start = l.ends[i-1]
	}
	if l.ends[i] == start {
		return ""
	}
	return unsafe.String(&l.names[start], int(l.ends[i]-start))
}

func (l *listing) add(d dirent) {
	i := int32(len(l.ends))
	l.names = append(l.names, d.name...)
	l.ends = append(l.ends, uint32(len(l.names)))
	l.sizes = append(l.sizes, d.size)
	l.mtimes = append(l.mtimes, d.mtime)
	var fl uint8
	var tag [16]byte
	if d.dir {
		fl |= flagDir
	} else if len(d.etag) == 34 && d.etag[0] == '"' && d.etag[33] == '"' && isLowerHex(d.etag[1:33]) {
		_, _ = hex.Decode(tag[:], []byte(d.etag[1:33]))
	} else if d.etag != "" {
		fl |= flagOddETag
		if l.odd == nil {
			l.odd = map[int32]string{}
		}
		l.odd[i] = d.etag
	}
	if d.headed || d.link || d.meta != nil {
		fl |= flagKnown
		if l.known == nil {
			l.known = map[int32]knownMeta{}
		}
		l.known[i] = knownMeta{lm: d.lm, link: d.link, meta: d.meta, headed: d.headed}
	}
	l.etags = append(l.etags, tag)
	l.flags = append(l.flags, fl)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// at is entry i.
func (l *listing) at(i int) dirent {
	fl := l.flags[i]
	d := dirent{name: l.name(i), entry: entry{dir: fl&flagDir != 0, size: l.sizes[i], mtime: l.mtimes[i]}}
	switch {
	case fl&flagOddETag != 0:
		d.etag = l.odd[int32(i)]
	case fl&flagDir == 0:
		var b [34]byte
		b[0], b[33] = '"', '"'
		hex.Encode(b[1:33], l.etags[i][:])
		d.etag = string(b[:])
	}
	if fl&flagKnown != 0 {
		k := l.known[int32(i)]
		d.link, d.meta, d.lm, d.headed = k.link, k.meta, k.lm, k.headed
	}
	return d
}

// tail is a new listing of the entries from i on.
func (l *listing) tail(from int) *listing {
	t := &listing{}
	for i := from; i < l.len(); i++ {
		t.add(l.at(i))
	}
	return t
}

// freeze trims the slices to their length and builds the name index; the
// listing is read-only afterwards.
func (l *listing) freeze() {
	l.names = append([]byte(nil), l.names...)
	l.ends = append([]uint32(nil), l.ends...)
	l.sizes = append([]int64(nil), l.sizes...)
	l.mtimes = append([]int64(nil), l.mtimes...)
	l.etags = append([][16]byte(nil), l.etags...)
	l.flags = append([]uint8(nil), l.flags...)
	n := 1
	for n < 2*l.len() {
		n <<= 1
	}
	l.index = make([]uint32, n)
	mask := uint64(n - 1)
	for i := 0; i < l.len(); i++ {
		h := maphash.String(listSeed, l.name(i)) & mask
		for l.index[h] != 0 {
			h = (h + 1) & mask
		}
		l.index[h] = uint32(i + 1)
	}
}

// find returns the index of the entry called name.
func (l *listing) find(name string) (int, bool) {
	if len(l.index) == 0 {
		return 0, false
	}
	mask := uint64(len(l.index) - 1)
	for h := maphash.String(listSeed, name) & mask; l.index[h] != 0; h = (h + 1) & mask {
		if i := int(l.index[h] - 1); l.name(i) == name {
			return i, true
		}
	}
	return 0, false
}

// bytes is the memory the listing holds once frozen.
func (l *listing) bytes() int64 {
	n := len(l.names) + 4*len(l.ends) + 8*len(l.sizes) + 8*len(l.mtimes) + 16*len(l.etags) + len(l.flags) + 4*len(l.index) + 200
	n += len(l.odd) * (48 + 64) // map slot and string
	n += len(l.known) * (int(unsafe.Sizeof(knownMeta{})) + 48)
	return int64(n)
}
