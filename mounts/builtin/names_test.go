package builtin

import (
	"strings"
	"testing"
	"time"
)

// MinIO refuses keys like "a//b" or "a/./b", so the mapping of such keys
// (which AWS S3 stores) is checked on listing pages directly.
func TestShadowerMapsOddKeys(t *testing.T) {
	long := strings.Repeat("L", 256)
	pages := []ListPage{
		{Objects: []ObjInfo{{Key: "d/"}, {Key: "d/."}, {Key: "d/a", Size: 1}, {Key: "d/a-1", Size: 2}}, Prefixes: []string{"d//", "d/./"}},
		{Objects: []ObjInfo{{Key: "d/a.b", Size: 3}}, Prefixes: []string{"d/../"}},
		{Prefixes: []string{"d/a/", "d/b/"}, Objects: []ObjInfo{{Key: "d/" + long}, {Key: "d/c\x00"}, {Key: "d/z", Size: 4, MTime: time.Unix(5, 0)}}},
	}
	sh := shadower{dirPrefix: "d/"}
	var got []string
	emit := func(e dirent) {
		n := e.name
		if e.dir {
			n += "/"
		}
		got = append(got, n)
	}
	for _, p := range pages {
		sh.feed(p, emit)
	}
	sh.finish(emit)
	want := "a-1,a.b,a/,b/,z"
	if g := strings.Join(sortStrings(got), ","); g != want {
		t.Fatalf("entries: got %s, want %s", g, want)
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func TestErrnoTable(t *testing.T) {
	if toErrno(errReadOnly) != 30 { // EROFS
		t.Fatalf("read-only guard maps to %v", toErrno(errReadOnly))
	}
	for code, want := range map[string]string{"NoSuchKey": "no such file or directory", "AccessDenied": "permission denied", "PreconditionFailed": "input/output error"} {
		if got := errnoTable[code].Error(); got != want {
			t.Errorf("%s: got %s, want %s", code, got, want)
		}
	}
}
