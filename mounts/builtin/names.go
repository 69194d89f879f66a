package builtin

import (
	"strings"
)

// validName says whether one key component can be a file name: not empty,
// not "." or "..", no NUL, at most 255 bytes. Keys with other components are
// hidden (see docs/SEMANTICS.md).
func validName(n string) bool {
	return n != "" && n != "." && n != ".." && len(n) <= 255 && strings.IndexByte(n, 0) < 0 && strings.IndexByte(n, '/') < 0
}

// shadower turns ListObjectsV2 pages (delimiter "/") of one directory into
// directory entries in a stream. A key that is both an object and a prefix
// ("a" and "a/…") is shown as the directory only; since "a/" may come pages
// after "a" (keys like "a-1" sort between them), a file is held back until
// no later prefix can shadow it.
type shadower struct {
	dirPrefix string
	pending   []dirent
}

// feed converts one page, calling emit for every entry that is final.
func (s *shadower) feed(p ListPage, emit func(dirent)) {
	oi, pi := 0, 0
	for oi < len(p.Objects) || pi < len(p.Prefixes) {
		if pi >= len(p.Prefixes) || (oi < len(p.Objects) && p.Objects[oi].Key < p.Prefixes[pi]) {
			o := p.Objects[oi]
			oi++
			if !strings.HasPrefix(o.Key, s.dirPrefix) {
				continue
			}
			name := o.Key[len(s.dirPrefix):]
			s.release(name, false, emit)
			if !validName(name) {
				continue // the directory's own marker, or an unmappable name
			}
			s.pending = append(s.pending, dirent{name: name, entry: entry{size: o.Size, mtime: o.MTime.UnixNano(), etag: o.ETag}})
			continue
		}
		pr := p.Prefixes[pi]
		pi++
		if !strings.HasPrefix(pr, s.dirPrefix) {
			continue
		}
		name := strings.TrimSuffix(pr[len(s.dirPrefix):], "/")
		s.release(name, true, emit)
		if !validName(name) {
			continue // e.g. "dir//": an empty component
		}
		emit(dirent{name: name, entry: entry{dir: true}})
	}
}

// release emits the pending files that no prefix at or after next can
// shadow, and drops the one that next (a directory) shadows.
func (s *shadower) release(next string, isDir bool, emit func(dirent)) {
	if len(s.pending) == 0 {
		return
	}
	keep := s.pending[:0]
	for _, f := range s.pending {
		switch {
		case isDir && f.name == next:
			// shadowed by the directory of the same name: hidden
		case (isDir && f.name+"/" < next+"/") || (!isDir && f.name+"/" < next):
			emit(f)
		default:
			keep = append(keep, f)
		}
	}
	s.pending = keep
}

// finish emits what is still held back at the end of the listing.
func (s *shadower) finish(emit func(dirent)) {
	for _, f := range s.pending {
		emit(f)
	}
	s.pending = nil
}
