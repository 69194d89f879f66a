package worker

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// filesTree builds, in a temporary directory, a "mount root" with links
// that point out of it, and a name that exists only outside the root.
//
//	outside-secret            (outside the root)
//	root/a/b/deep.txt
//	root/a/f.txt
//	root/escape -> /
//	root/up -> ..
//	root/abs -> <dir>          (the directory holding outside-secret)
//	root/a/loop -> ../a
//	root/file.txt, root/z1..z5
func filesTree(t testing.TB) (dir, root string) {
	dir = t.TempDir()
	root = filepath.Join(dir, "root")
	for _, p := range []string{"a/b"} {
		if err := os.MkdirAll(filepath.Join(root, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"a/b/deep.txt", "a/f.txt", "file.txt", "z1", "z2", "z3", "z4", "z5"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte("12345"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "outside-secret"), nil, 0o600)
	for link, target := range map[string]string{"escape": "/", "up": "..", "abs": dir, "a/loop": "../a"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, root
}

func openRoot(t testing.TB, root string) *os.File {
	f, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func listAll(t testing.TB, root *os.File, rel string, limit int) ([]string, error) {
	var names []string
	cursor := ""
	for i := 0; i < 1000; i++ {
		p, err := readDirPageAt(root, "", rel, cursor, limit)
		if err != nil {
			return nil, err
		}
		for _, e := range p.Entries {
			names = append(names, e.Name)
		}
		if p.NextCursor == "" {
			return names, nil
		}
		cursor = p.NextCursor
	}
	t.Fatalf("paging %q never ended", rel)
	return nil, nil
}

func TestFilesWalkNeverFollowsLinks(t *testing.T) {
	_, rootPath := filesTree(t)
	root := openRoot(t, rootPath)
	p, err := readDirPageAt(root, "pre/", "", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range p.Entries {
		typ := "file"
		if e.Dir {
			typ = "dir"
		}
		got[e.Name] = typ
		if e.Name == "escape" && (e.Size != 1 || e.Key != "pre/escape") {
			t.Errorf("escape entry %+v: want the link's own lstat (size 1) and key pre/escape", e)
		}
	}
	for name, want := range map[string]string{"a": "dir", "escape": "file", "up": "file", "abs": "file", "file.txt": "file"} {
		if got[name] != want {
			t.Errorf("%s listed as %q; want %q", name, got[name], want)
		}
	}
	for _, tc := range []struct {
		rel    string
		status int
		link   bool
	}{
		{"escape", 400, true}, {"escape/etc", 400, true}, {"up", 400, true}, {"up/root", 400, true}, {"abs", 400, true},
		{"a/loop", 400, true}, {"a/loop/b", 400, true}, {"file.txt", 400, false}, {"a/f.txt", 400, false},
		{"missing", 404, false}, {"a/missing/x", 404, false},
	} {
		_, err := readDirPageAt(root, "", tc.rel, "", 100)
		var fe *FilesError
		if !errors.As(err, &fe) || fe.Status != tc.status {
			t.Errorf("%s: %v; want status %d", tc.rel, err, tc.status)
			continue
		}
		if tc.link && !strings.Contains(fe.Msg, "symbolic link") {
			t.Errorf("%s: %q does not say it is a symbolic link", tc.rel, fe.Msg)
		}
	}
	if names, err := listAll(t, root, "a/b", 1); err != nil || strings.Join(names, ",") != "deep.txt" {
		t.Errorf("a/b: %v %v", names, err)
	}
}

// FuzzFilesPath feeds any path, cursor and limit to the /files walk: it
// never panics, never lists anything outside the root or behind a link,
// and cursors page through a directory in order, each name once.
func FuzzFilesPath(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"/", "a"}, {"escape", ""}, {"/escape/etc", ""}, {"../../", ""}, {"a/../../abs", "z"},
		{"a/loop/loop/b", ""}, {"a/b", "deep.txt"}, {"//a//b/", ""}, {"a/./b/..", "f"}, {"up/outside-secret", ""},
		{"\x00", ""}, {"a\x00b", ""}, {"é/ü", "\xff"}, {"a", "\x00"}, {strings.Repeat("a/", 300), ""},
	} {
		f.Add(s[0], s[1], 2)
	}
	_, rootPath := filesTree(f)
	root, err := os.Open(rootPath)
	if err != nil {
		f.Fatal(err)
	}
	defer root.Close()
	links := map[string]bool{"escape": true, "up": true, "abs": true, "loop": true}
	f.Fuzz(func(t *testing.T, p, cursor string, limit int) {
		if limit < 1 || limit > 20 {
			limit = 1 + (limit%20+20)%20
		}
		rel, err := CleanRel(p)
		if err != nil {
			if !strings.Contains(p, "\x00") {
				t.Fatalf("CleanRel(%q) refused a path without NUL: %v", p, err)
			}
			return
		}
		if strings.HasPrefix(rel, "/") || strings.HasSuffix(rel, "/") {
			t.Fatalf("CleanRel(%q) = %q: not a clean relative path", p, rel)
		}
		throughLink := false
		for _, c := range strings.Split(rel, "/") {
			if c == ".." || c == "." {
				t.Fatalf("CleanRel(%q) = %q keeps %q", p, rel, c)
			}
			if links[c] {
				throughLink = true
			}
		}
		page, err := readDirPageAt(root, "", rel, cursor, limit)
		if err != nil {
			var fe *FilesError
			if !errors.As(err, &fe) || fe.Status == 500 {
				t.Fatalf("%q: an unexpected error %v", rel, err)
			}
			return
		}
		if throughLink {
			t.Fatalf("%q goes through a link but was listed: %+v", rel, page.Entries)
		}
		want, err := os.ReadDir(filepath.Join(rootPath, rel))
		if err != nil {
			t.Fatalf("%q listed, but it is not a directory of the tree: %v", rel, err)
		}
		var all []string
		for _, de := range want {
			all = append(all, de.Name())
		}
		sort.Strings(all)
		prev := cursor
		for i, e := range page.Entries {
			if e.Name == "outside-secret" {
				t.Fatalf("%q listed a name from outside the root", rel)
			}
			if cursor != "" && e.Name <= cursor {
				t.Fatalf("entry %q is not after the cursor %q", e.Name, cursor)
			}
			if i > 0 && e.Name <= prev {
				t.Fatalf("entries out of order: %q after %q", e.Name, prev)
			}
			prev = e.Name
		}
		if len(page.Entries) > limit {
			t.Fatalf("%d entries for limit %d", len(page.Entries), limit)
		}
		// From the start, cursors visit every name once, in order.
		got, err := listAll(t, root, rel, limit)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "/") != strings.Join(all, "/") {
			t.Fatalf("%q paged by %d: %v; want %v", rel, limit, got, all)
		}
	})
}
