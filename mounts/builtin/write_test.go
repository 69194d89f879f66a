package builtin_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/s3mounts/s3mounts/internal/testenv"
)

func TestWritePath(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "rwb", map[string]string{"old.txt": "0123456789", "d/one": "1", "d/two": "2", "d/sub/three": "3"})
	c := m.Client(t)
	dir, _ := mount(t, m.Spec("rwb"))
	p := func(s string) string { return filepath.Join(dir, s) }
	obj := func(key string) string {
		t.Helper()
		s, err := getObject(t, c, "rwb", key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		return s
	}

	// create + write: the object appears on close.
	f, err := os.Create(p("new.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("hello world"); err != nil {
		t.Fatal(err)
	}
	if _, err := getObject(t, c, "rwb", "new.txt"); err == nil {
		t.Fatal("the object must not be visible before close")
	}
	st, err := os.Stat(p("new.txt"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "size while writing", st.Size(), int64(11))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	equal(t, "created", obj("new.txt"), "hello world")

	// empty file
	if err := os.WriteFile(p("empty"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	equal(t, "empty file", obj("empty"), "")

	// overwrite
	if err := os.WriteFile(p("new.txt"), []byte("bye"), 0o644); err != nil {
		t.Fatal(err)
	}
	equal(t, "overwritten", obj("new.txt"), "bye")
	b, err := os.ReadFile(p("new.txt"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "read back after overwrite", string(b), "bye")

	// append
	f, err = os.OpenFile(p("old.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("abc"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	equal(t, "appended", obj("old.txt"), "0123456789abc")

	// truncate by path, then truncate-then-write through one handle
	if err := os.Truncate(p("old.txt"), 4); err != nil {
		t.Fatal(err)
	}
	equal(t, "truncated", obj("old.txt"), "0123")
	f, err = os.OpenFile(p("old.txt"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XY"), 5); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != 7 {
		t.Fatalf("size after truncate-then-write: %d", st.Size())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	equal(t, "truncate then write", obj("old.txt"), "01\x00\x00\x00XY")
	st, err = os.Stat(p("old.txt"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "size after close", st.Size(), int64(7))

	// a large file goes multipart
	big := randomBytes(t, 40<<20+3)
	if err := os.WriteFile(p("big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	equal(t, "multipart upload", obj("big.bin") == string(big), true)

	// Sequential writing streams parts; a write back into an uploaded part
	// falls back to uploading the staged file whole.
	f, err = os.Create(p("rewrite.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(big); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("HEAD"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	equal(t, "rewritten head", obj("rewrite.bin") == "HEAD"+string(big[4:]), true)
	if err := os.Remove(p("rewrite.bin")); err != nil {
		t.Fatal(err)
	}

	// rename of a file: server-side copy
	if err := os.Rename(p("new.txt"), p("d/renamed.txt")); err != nil {
		t.Fatal(err)
	}
	equal(t, "renamed", obj("d/renamed.txt"), "bye")
	if _, err := getObject(t, c, "rwb", "new.txt"); err == nil {
		t.Fatal("rename left the source")
	}
	_, err = os.Stat(p("new.txt"))
	equal(t, "old name gone", errnoOf(err), syscall.ENOENT)

	// rename of a directory
	if err := os.Rename(p("d"), p("e")); err != nil {
		t.Fatal(err)
	}
	equal(t, "renamed dir", strings.Join(readDir(t, p("e")), ","), "one,renamed.txt,sub/,two")
	equal(t, "renamed dir content", obj("e/sub/three"), "3")
	_, err = os.Stat(p("d"))
	equal(t, "old dir gone", errnoOf(err), syscall.ENOENT)

	// mkdir, rmdir, unlink
	if err := os.Mkdir(p("nd"), 0o755); err != nil {
		t.Fatal(err)
	}
	equal(t, "mkdir marker", obj("nd/"), "")
	equal(t, "mkdir exists", errnoOf(os.Mkdir(p("nd"), 0o755)), syscall.EEXIST)
	if err := os.WriteFile(p("nd/f"), []byte("f"), 0o644); err != nil {
		t.Fatal(err)
	}
	equal(t, "rmdir not empty", errnoOf(syscall.Rmdir(p("nd"))), syscall.ENOTEMPTY)
	if err := os.Remove(p("nd/f")); err != nil {
		t.Fatal(err)
	}
	if _, err := getObject(t, c, "rwb", "nd/f"); err == nil {
		t.Fatal("unlink left the object")
	}
	if err := syscall.Rmdir(p("nd")); err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(p("nd"))
	equal(t, "rmdir", errnoOf(err), syscall.ENOENT)
	equal(t, "unlink missing", errnoOf(os.Remove(p("nope"))), syscall.ENOENT)

	// staging files are private and gone after close
	ents, err := os.ReadDir(m.DataDir)
	if err != nil || len(ents) == 0 {
		t.Fatalf("data dir: %v", err)
	}
	keys := listKeys(t, c, "rwb")
	equal(t, "bucket", strings.Join(keys, ","), "big.bin,e/,e/one,e/renamed.txt,e/sub/three,e/two,empty,old.txt")
	if !bytes.Equal([]byte(obj("e/one")), []byte("1")) {
		t.Fatal("content lost in directory rename")
	}
}

// A long sequential write keeps more parts in flight than the upload
// window allows: writers wait for a slot, nothing deadlocks, every byte
// arrives.
func TestLargeStreamedWrite(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "stream", nil)
	dir, _ := mount(t, m.Spec("stream"))
	chunk := randomBytes(t, 1<<20)
	const chunks = 200
	f, err := os.Create(filepath.Join(dir, "long.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < chunks; i++ {
		chunk[0] = byte(i)
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := getObject(t, m.Client(t), "stream", "long.bin")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "size", len(got), chunks<<20)
	for i := 0; i < chunks; i++ {
		part := got[i<<20 : (i+1)<<20]
		if part[0] != byte(i) || part[1:] != string(chunk[1:]) {
			t.Fatalf("chunk %d differs", i)
		}
	}
}

// A streamed write keeps its bytes in memory part buffers; reading the file
// back while it is open, fsync in the middle and writing on afterwards all
// see (and upload) every byte.
func TestStreamedWriteReadBackFsync(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "sync", nil)
	c := m.Client(t)
	dir, _ := mount(t, m.Spec("sync"))
	data := randomBytes(t, 52<<20+5)
	first := 36<<20 + 3 // two full parts and a tail in memory

	f, err := os.OpenFile(filepath.Join(dir, "s.bin"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off := 0; off < first; off += 1 << 20 {
		if _, err := f.Write(data[off:min(off+1<<20, first)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := getObject(t, c, "sync", "s.bin")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "object after fsync", got == string(data[:first]), true)
	// Read back from the open file: bytes from uploaded parts and the tail.
	for _, off := range []int{0, 16<<20 - 7, 33 << 20, first - 10} {
		buf := make([]byte, 10)
		if _, err := f.ReadAt(buf, int64(off)); err != nil {
			t.Fatalf("read back at %d: %v", off, err)
		}
		equal(t, "read back", string(buf), string(data[off:off+10]))
	}
	if _, err := f.Write(data[first:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err = getObject(t, c, "sync", "s.bin")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "size", len(got), len(data))
	equal(t, "object after close", got == string(data), true)

	// A read while the stream is still going breaks it off; the rest
	// goes to the staged file and the whole object is still right.
	g, err := os.OpenFile(filepath.Join(dir, "r.bin"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.Write(data[:first]); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if _, err := g.ReadAt(buf, 20<<20); err != nil {
		t.Fatal(err)
	}
	equal(t, "read mid-stream", string(buf), string(data[20<<20:20<<20+100]))
	if _, err := g.Write(data[first:]); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	got, err = getObject(t, c, "sync", "r.bin")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "object after broken stream", got == string(data), true)
}
