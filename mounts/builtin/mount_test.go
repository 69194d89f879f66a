package builtin_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/builtin"
)

// mount mounts spec at a fresh directory and unmounts it at the end.
func mount(t *testing.T, spec mounts.Spec) (string, mounts.Mount) {
	t.Helper()
	spec.MountPoint = t.TempDir()
	if spec.CacheDir == "" {
		spec.CacheDir = filepath.Join(t.TempDir(), "cache")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := builtin.New().Mount(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := m.Unmount(ctx); err != nil && !errors.Is(err, mounts.ErrLazyUnmount) {
			t.Errorf("unmount: %v", err)
		}
		_ = mounts.Unmount(ctx, spec.MountPoint) // belt and braces: never leave a mount behind
	})
	return spec.MountPoint, m
}

func readDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("readdir %s: %v", dir, err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func listKeys(t *testing.T, c *s3.Client, bucket string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range out.Contents {
			keys = append(keys, *o.Key)
		}
	}
	sort.Strings(keys)
	return keys
}

func getObject(t *testing.T, c *s3.Client, bucket, key string) (string, error) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

func putObject(t *testing.T, c *s3.Client, bucket, key string, data []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader(data)}); err != nil {
		t.Fatal(err)
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !deepEqual(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func deepEqual(a, b any) bool {
	as, aok := a.([]string)
	bs, bok := b.([]string)
	if aok && bok {
		return strings.Join(as, "\x00") == strings.Join(bs, "\x00") && len(as) == len(bs)
	}
	return a == b
}

func errnoOf(err error) syscall.Errno {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return 0
}

var long = strings.Repeat("L", 300)

var fixture = map[string]string{
	"a.txt":         "hello",
	"dir/b.txt":     "bbb",
	"dir/sub/c.txt": "cc",
	"empty/":        "",
	"x":             "file x",
	"x-1":           "sorts between x and x/",
	"long/ok":       "ok",
	"sp ace/ü.txt":  "unicode",
	"trail/":        "",
	"trail/inner/":  "",
}

func TestReadOnlyMount(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "rob", fixture)
	spec := m.Spec("rob")
	spec.ReadOnly = true
	before := listKeys(t, m.Client(t), "rob")
	dir, _ := mount(t, spec)

	equal(t, "root listing", strings.Join(readDir(t, dir), ","),
		"a.txt,dir/,empty/,long/,sp ace/,trail/,x,x-1")
	equal(t, "dir listing", strings.Join(readDir(t, filepath.Join(dir, "dir")), ","), "b.txt,sub/")
	equal(t, "marker dirs", strings.Join(readDir(t, filepath.Join(dir, "trail")), ","), "inner/")
	equal(t, "empty marker dir", len(readDir(t, filepath.Join(dir, "empty"))), 0)

	b, err := os.ReadFile(filepath.Join(dir, "dir/sub/c.txt"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "content", string(b), "cc")
	b, err = os.ReadFile(filepath.Join(dir, "sp ace/ü.txt"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "unicode content", string(b), "unicode")

	st, err := os.Stat(filepath.Join(dir, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "size", st.Size(), int64(5))
	equal(t, "mode", st.Mode(), os.FileMode(0o644))
	if d := time.Since(st.ModTime()); d < 0 || d > 5*time.Minute {
		t.Fatalf("mtime %v is not the object's LastModified", st.ModTime())
	}
	// Lookups without a listing first (fresh names).
	if _, err := os.Stat(filepath.Join(dir, "dir/sub")); err != nil {
		t.Fatal(err)
	}
	_, err = os.Stat(filepath.Join(dir, "nope"))
	equal(t, "missing name", errnoOf(err), syscall.ENOENT)
	_, err = os.Stat(filepath.Join(dir, "dir", long))
	if err == nil {
		t.Fatal("a name over 255 bytes must not resolve")
	}

	var sfs syscall.Statfs_t
	if err := syscall.Statfs(dir, &sfs); err != nil {
		t.Fatal(err)
	}
	if sfs.Blocks == 0 || sfs.Namelen != 255 {
		t.Fatalf("statfs: %+v", sfs)
	}

	// Every write is EROFS and nothing reaches the bucket.
	err = os.WriteFile(filepath.Join(dir, "new"), []byte("x"), 0o644)
	equal(t, "create in ro", errnoOf(err), syscall.EROFS)
	_, err = os.OpenFile(filepath.Join(dir, "a.txt"), os.O_WRONLY|os.O_TRUNC, 0)
	equal(t, "truncate in ro", errnoOf(err), syscall.EROFS)
	equal(t, "mkdir in ro", errnoOf(os.Mkdir(filepath.Join(dir, "d2"), 0o755)), syscall.EROFS)
	equal(t, "unlink in ro", errnoOf(os.Remove(filepath.Join(dir, "a.txt"))), syscall.EROFS)
	equal(t, "rmdir in ro", errnoOf(os.Remove(filepath.Join(dir, "empty"))), syscall.EROFS)
	equal(t, "rename in ro", errnoOf(os.Rename(filepath.Join(dir, "a.txt"), filepath.Join(dir, "b"))), syscall.EROFS)
	equal(t, "bucket unchanged", strings.Join(listKeys(t, m.Client(t), "rob"), ","), strings.Join(before, ","))
}

func TestPrefixMount(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "pre", fixture)
	spec := m.Spec("pre")
	spec.Prefix = "dir/"
	dir, _ := mount(t, spec)
	equal(t, "prefix root", strings.Join(readDir(t, dir), ","), "b.txt,sub/")
	b, err := os.ReadFile(filepath.Join(dir, "sub/c.txt"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "content under prefix", string(b), "cc")
	_, err = os.Stat(filepath.Join(dir, "a.txt"))
	equal(t, "outside the prefix", errnoOf(err), syscall.ENOENT)
}

func TestBigDirectoryAndListerAndCache(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "big", nil)
	c := m.Client(t)
	const n = 2500
	putMany(t, c, "big", "flat/", n)
	spec := m.Spec("big")
	dir, mnt := mount(t, spec)

	for round := 0; round < 2; round++ {
		ents, err := os.ReadDir(filepath.Join(dir, "flat"))
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "entries", len(ents), n)
		for _, e := range ents[:10] {
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			equal(t, "size from listing", info.Size(), int64(len(e.Name())))
		}
	}

	// Past the READDIRPLUS inode limit entries are plain, and stat still works.
	restore := builtin.SetPlusLimit(100)
	if err := mnt.(mounts.Refresher).Refresh("flat"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "flat"))
	restore()
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "entries past the plus limit", len(ents), n)
	for _, e := range ents[n-5:] {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "size past the plus limit", info.Size(), int64(len(e.Name())))
	}

	l := mnt.(mounts.Lister)
	var all []mounts.Entry
	cursor := ""
	pages := 0
	for {
		p, err := l.List(context.Background(), "flat", cursor, 1000)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Entries...)
		pages++
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	equal(t, "lister entries", len(all), n)
	equal(t, "lister pages", pages, 3)
	equal(t, "lister key", all[0].Key, "flat/"+all[0].Name)
	root, err := l.List(context.Background(), "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "lister root", len(root.Entries) == 1 && root.Entries[0].Dir && root.Entries[0].Name == "flat", true)
	if _, err := l.List(context.Background(), "missing", "", 10); err == nil {
		t.Fatal("listing a missing directory must fail")
	}

	// Freshness: a change by someone else shows after Refresh.
	putObject(t, c, "big", "flat/f00000", []byte("changed content"))
	if err := mnt.(mounts.Refresher).Refresh("/flat/f00000"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "flat/f00000"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "after refresh", string(b), "changed content")
	putObject(t, c, "big", "flat/zzz-new", []byte("new"))
	if err := mnt.(mounts.Refresher).Refresh(""); err != nil {
		t.Fatal(err)
	}
	ents, err = os.ReadDir(filepath.Join(dir, "flat"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "new object after refresh", len(ents), n+1)
}

func putMany(t testing.TB, c *s3.Client, bucket, prefix string, n int) {
	t.Helper()
	errs := make(chan error, 16)
	sem := make(chan struct{}, 16)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			name := "f" + pad(i)
			_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket),
				Key: aws.String(prefix + name), Body: strings.NewReader(name)})
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}()
	}
	for i := 0; i < cap(sem); i++ {
		sem <- struct{}{}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

func pad(i int) string {
	s := "00000" + itoa(i)
	return s[len(s)-5:]
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLargeReadsSequentialAndRandom(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "rdb", nil)
	c := m.Client(t)
	data := randomBytes(t, 50<<20+12345)
	putObject(t, c, "rdb", "big.bin", data)
	putObject(t, c, "rdb", "other.bin", data)
	dir, _ := mount(t, m.Spec("rdb"))

	got, err := os.ReadFile(filepath.Join(dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "sequential read", bytes.Equal(got, data), true)

	f, err := os.Open(filepath.Join(dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for _, off := range []int64{40 << 20, 123, 9 << 20, int64(len(data)) - 100, 17<<20 + 7} {
		n, err := f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		equal(t, "random read", bytes.Equal(buf[:n], data[off:off+int64(n)]), true)
	}

	// The object changes under an open file: EIO, never a mix of versions.
	g, err := os.Open(filepath.Join(dir, "other.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := g.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	putObject(t, c, "rdb", "other.bin", randomBytes(t, len(data)))
	_, err = g.ReadAt(buf, 30<<20)
	equal(t, "read after change", errnoOf(err), syscall.EIO)
}

// A change by someone else shows within MetadataTTL without a refresh:
// new objects in a listed directory, overwrites and deletes.
func TestFreshnessWithinTTL(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "fresh", map[string]string{"d/a": "one"})
	c := m.Client(t)
	spec := m.Spec("fresh")
	spec.MetadataTTL = time.Second
	spec.NegativeTTL = time.Second
	dir, _ := mount(t, spec)
	p := func(s string) string { return filepath.Join(dir, s) }
	equal(t, "listing", strings.Join(readDir(t, p("d")), ","), "a")
	equal(t, "listing again (cached)", strings.Join(readDir(t, p("d")), ","), "a")
	b, err := os.ReadFile(p("d/a"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "content", string(b), "one")
	_, err = os.Stat(p("d/b"))
	equal(t, "not yet there", errnoOf(err), syscall.ENOENT)

	putObject(t, c, "fresh", "d/b", []byte("bee"))
	putObject(t, c, "fresh", "d/a", []byte("two!"))
	time.Sleep(1500 * time.Millisecond)
	equal(t, "new object listed", strings.Join(readDir(t, p("d")), ","), "a,b")
	b, err = os.ReadFile(p("d/a"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "overwritten content", string(b), "two!")
	b, err = os.ReadFile(p("d/b"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "new content", string(b), "bee")

	if _, err := c.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("fresh"), Key: aws.String("d/b")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	equal(t, "deleted object gone", strings.Join(readDir(t, p("d")), ","), "a")
	_, err = os.Stat(p("d/b"))
	equal(t, "deleted object", errnoOf(err), syscall.ENOENT)
}

// An object overwritten after it was listed but before it was opened: a
// handle that has served nothing yet re-pins the new version, whatever its
// size, and serves it whole; never EIO (issue 14: "a fresh open serves one
// version whole").
func TestChangedBeforeOpen(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "chg", map[string]string{"d/same": "aaaa", "d/grow": "bbbb", "d/shrink": "a longer original"})
	c := m.Client(t)
	dir, _ := mount(t, m.Spec("chg"))
	p := func(s string) string { return filepath.Join(dir, s) }
	equal(t, "listing", strings.Join(readDir(t, p("d")), ","), "grow,same,shrink")

	putObject(t, c, "chg", "d/same", []byte("AAAA"))
	b, err := os.ReadFile(p("d/same"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "re-pinned to the new version", string(b), "AAAA")

	putObject(t, c, "chg", "d/grow", []byte("a longer content"))
	got, err := os.ReadFile(p("d/grow"))
	if err != nil {
		t.Fatalf("size changed under a stale stat: %v", err)
	}
	equal(t, "size changed under a stale stat", string(got), "a longer content")
	putObject(t, c, "chg", "d/shrink", []byte("short"))
	got, err = os.ReadFile(p("d/shrink"))
	if err != nil {
		t.Fatalf("shrunk under a stale stat: %v", err)
	}
	equal(t, "shrunk under a stale stat", string(got), "short")
	got, err = os.ReadFile(p("d/shrink"))
	equal(t, "next open", string(got), "short")
	// Replaced again after its bytes were read: within metadata_ttl the
	// kernel may still serve the version it holds, but one version whole.
	putObject(t, c, "chg", "d/grow", []byte("v3"))
	got, err = os.ReadFile(p("d/grow"))
	if err != nil || (string(got) != "v3" && string(got) != "a longer content") {
		t.Fatalf("replaced after a read: got %q, %v; want one version whole", got, err)
	}
}
