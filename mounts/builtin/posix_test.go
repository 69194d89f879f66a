package builtin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
)

// TestNoSilentSuccessOwnerMode: under permissions = "connector" chmod and
// chown through a real mount fail with EPERM when they would change
// something, succeed when they change nothing, and never change what stat
// shows.
func TestNoSilentSuccessOwnerMode(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "perm", map[string]string{"a.txt": "hello", "d/b.txt": "b"})
	spec := m.Spec("perm")
	spec.UID, spec.GID = 1000, 100
	dir, _ := mount(t, spec)
	file, sub := filepath.Join(dir, "a.txt"), filepath.Join(dir, "d")

	equal(t, "chmod +x a file", errnoOf(os.Chmod(file, 0o755)), syscall.EPERM)
	equal(t, "chmod a dir", errnoOf(os.Chmod(sub, 0o700)), syscall.EPERM)
	equal(t, "chown a file", errnoOf(os.Chown(file, 0, -1)), syscall.EPERM)
	equal(t, "chgrp a file", errnoOf(os.Chown(file, -1, 0)), syscall.EPERM)
	equal(t, "chown a dir", errnoOf(os.Lchown(sub, 0, 0)), syscall.EPERM)
	// Changing nothing is no lie: it succeeds.
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatalf("chmod to the current mode: %v", err)
	}
	if err := os.Chmod(sub, 0o755); err != nil {
		t.Fatalf("chmod of a dir to its current mode: %v", err)
	}
	if err := os.Chown(file, 1000, 100); err != nil {
		t.Fatalf("chown to the current owner: %v", err)
	}
	for _, p := range []string{file, sub} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		equal(t, p+" uid", sys.Uid, uint32(1000))
		equal(t, p+" gid", sys.Gid, uint32(100))
	}
	st, _ := os.Stat(file)
	equal(t, "file mode unchanged", st.Mode().Perm(), os.FileMode(0o644))
	st, _ = os.Stat(sub)
	equal(t, "dir mode unchanged", st.Mode().Perm(), os.FileMode(0o755))
}

func mtimeOf(t *testing.T, p string) time.Time {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.ModTime()
}

// TestMTimesStoredAndRead: utimensat on a closed file, cp -p, and objects
// written by s3fs (whole seconds) or rclone (fractions) with
// x-amz-meta-mtime: the mount shows the stored mtime, also after a
// remount and through a listing (ls -l).
func TestMTimesStoredAndRead(t *testing.T) {
	testenv.RequireFUSE(t)
	if _, err := exec.LookPath("cp"); err != nil {
		t.Skip("cp not found")
	}
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "mtimes", map[string]string{"d/keep": "k"})
	c := m.Client(t)
	for key, v := range map[string]string{"s3fs.txt": "1000000000", "rclone.txt": "1000000000.5"} {
		if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("mtimes"), Key: aws.String(key),
			Body: strings.NewReader("x"), Metadata: map[string]string{"mtime": v}}); err != nil {
			t.Fatal(err)
		}
	}
	spec := m.Spec("mtimes")
	dir, _ := mount(t, spec)

	// utimensat on a closed file: a metadata-only copy.
	a := filepath.Join(dir, "a.txt")
	if err := os.WriteFile(a, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	ta := time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)
	if err := os.Chtimes(a, ta, ta); err != nil {
		t.Fatalf("utimensat: %v", err)
	}
	equal(t, "mtime after utimensat", mtimeOf(t, a).UnixNano(), ta.UnixNano())
	head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("mtimes"), Key: aws.String("a.txt")})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "x-amz-meta-mtime", head.Metadata["mtime"], "1577934245.123456789")
	b, err := os.ReadFile(a)
	if err != nil || string(b) != "hello" {
		t.Fatalf("content after the metadata copy: %q, %v", b, err)
	}

	// cp -p of a local file (whole seconds, as s3fs writes).
	src := filepath.Join(t.TempDir(), "local.txt")
	if err := os.WriteFile(src, []byte("local"), 0o644); err != nil {
		t.Fatal(err)
	}
	tl := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chtimes(src, tl, tl); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-p", src, filepath.Join(dir, "copied.txt")).CombinedOutput(); err != nil {
		t.Fatalf("cp -p: %v: %s", err, out)
	}
	equal(t, "mtime after cp -p", mtimeOf(t, filepath.Join(dir, "copied.txt")).UnixNano(), tl.UnixNano())
	head, err = c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("mtimes"), Key: aws.String("copied.txt")})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "x-amz-meta-mtime of cp -p", head.Metadata["mtime"], "1557126489")

	// cp -p of a file big enough to stream as a multipart upload while
	// written: the times set after the last write reach the object too.
	bigSrc := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(bigSrc, bytes.Repeat([]byte("0123456789abcdef"), 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(bigSrc, ta, ta); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-p", bigSrc, filepath.Join(dir, "big.bin")).CombinedOutput(); err != nil {
		t.Fatalf("cp -p of a streamed file: %v: %s", err, out)
	}
	head, err = c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("mtimes"), Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "x-amz-meta-mtime of a streamed cp -p", head.Metadata["mtime"], "1577934245.123456789")
	equal(t, "size of a streamed cp -p", aws.ToInt64(head.ContentLength), int64(48<<20))

	// tar x (as root, into the connector's owner uid 0) keeps mtimes.
	tarball := filepath.Join(t.TempDir(), "a.tar")
	if out, err := exec.Command("tar", "cf", tarball, "-C", filepath.Dir(src), "local.txt").CombinedOutput(); err != nil {
		t.Fatalf("tar c: %v: %s", err, out)
	}
	if err := os.Mkdir(filepath.Join(dir, "untar"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "xf", tarball, "-C", filepath.Join(dir, "untar")).CombinedOutput(); err != nil {
		t.Fatalf("tar x: %v: %s", err, out)
	}

	// A directory's times are stored on its marker (TestPosixDirMTime).
	if err := os.Chtimes(filepath.Join(dir, "d"), ta, ta); err != nil {
		t.Fatalf("utimensat of a directory: %v", err)
	}
	equal(t, "a directory's mtime", mtimeOf(t, filepath.Join(dir, "d")).UnixNano(), ta.UnixNano())

	// Through a fresh mount, by lookup and by listing. A lookup outside a
	// listing HEADs the object and shows its stored mtime; a listing is
	// authoritative for what it says (LastModified), except for objects
	// whose metadata this mount already knows (docs/SEMANTICS.md).
	dir2, _ := mount(t, spec)
	want := map[string]int64{"a.txt": ta.UnixNano(), "copied.txt": tl.UnixNano(),
		"s3fs.txt": time.Unix(1000000000, 0).UnixNano(), "rclone.txt": time.Unix(1000000000, 5e8).UnixNano(),
		"untar/local.txt": tl.UnixNano(), "big.bin": ta.UnixNano()}
	equal(t, "tar x mtime through a remount", mtimeOf(t, filepath.Join(dir2, "untar/local.txt")).UnixNano(), tl.UnixNano())
	for _, name := range []string{"a.txt", "s3fs.txt"} {
		equal(t, name+" mtime by lookup before a listing", mtimeOf(t, filepath.Join(dir2, name)).UnixNano(), want[name])
	}
	lastModified := func(key string) int64 {
		t.Helper()
		out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String("mtimes"), Prefix: aws.String(key), MaxKeys: aws.Int32(1)})
		if err != nil || len(out.Contents) == 0 || aws.ToString(out.Contents[0].Key) != key {
			t.Fatalf("listing %s: %v", key, err)
		}
		return aws.ToTime(out.Contents[0].LastModified).UnixNano()
	}
	ents, err := os.ReadDir(dir2)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, e := range ents {
		w, ok := want[e.Name()]
		if !ok {
			continue
		}
		if e.Name() != "a.txt" && e.Name() != "s3fs.txt" {
			w = lastModified(e.Name()) // never HEADed by this mount
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		equal(t, e.Name()+" mtime through a listing", info.ModTime().UnixNano(), w)
		seen++
	}
	equal(t, "files listed", seen, len(want)-1)
	dir3, _ := mount(t, spec)
	for name, w := range want {
		equal(t, name+" mtime by lookup", mtimeOf(t, filepath.Join(dir3, name)).UnixNano(), w)
	}
}

// TestRsyncTwiceTransfersNothing: rsync -a of an unchanged 50-file tree
// into a mount transfers 0 files the second time, also through a remount,
// in both permission models, and keeps the directory's mtime.
func TestRsyncTwiceTransfersNothing(t *testing.T) {
	testenv.RequireFUSE(t)
	if _, err := exec.LookPath("rsync"); err != nil {
		t.Skip("rsync not installed (Debian: apt-get install rsync; scripts/setup.sh installs it)")
	}
	m := testenv.StartMinIO(t)
	for _, model := range []string{"connector", "object"} {
		t.Run(model, func(t *testing.T) { rsyncTwice(t, m, model) })
	}
}

func rsyncTwice(t *testing.T, m *testenv.MinIO, model string) {
	bucket := "rsyncb-" + model
	m.MakeBucket(t, bucket, map[string]string{"tree/": ""})
	spec := m.Spec(bucket)
	spec.Permissions = model
	src := t.TempDir()
	for i := 0; i < 50; i++ {
		p := filepath.Join(src, fmt.Sprintf("f%02d.bin", i))
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, 1000+i*100), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A directory time in another second than the marker's LastModified
	// (rsync compares whole seconds here), so that rsync sets it.
	old := time.Date(2019, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(src, old, old); err != nil {
		t.Fatal(err)
	}
	rsync := func(dir string) string {
		t.Helper()
		// Directory times too (stored on the marker, docs/SEMANTICS.md).
		out, err := exec.Command("rsync", "-a", "--stats", src+"/", filepath.Join(dir, "tree")+"/").CombinedOutput()
		if err != nil {
			t.Fatalf("rsync: %v\n%s", err, out)
		}
		return string(out)
	}
	dir, _ := mount(t, spec)
	if out := rsync(dir); !strings.Contains(out, "Number of regular files transferred: 50") {
		t.Fatalf("first rsync did not transfer 50 files:\n%s", out)
	}
	if out := rsync(dir); !strings.Contains(out, "Number of regular files transferred: 0") {
		t.Fatalf("second rsync transferred files again:\n%s", out)
	}
	dir2, _ := mount(t, spec)
	if out := rsync(dir2); !strings.Contains(out, "Number of regular files transferred: 0") {
		t.Fatalf("rsync through a fresh mount transferred files again:\n%s", out)
	}
	equal(t, "the directory's mtime kept", mtimeOf(t, filepath.Join(dir2, "tree")).UnixNano(), old.UnixNano())
}

// TestMTimeInteropWithS3FS: one bucket, mtimes and symlinks made through
// Debian's s3fs are read by the built-in backend, and those made by the
// built-in backend are read by s3fs.
func TestMTimeInteropWithS3FS(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "s3fs", false)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "interop", map[string]string{"keep": "k"})

	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	s := m.Spec("interop")
	s.ID, s.Backend = "interop-s3fs", "s3fs"
	s.MountPoint = filepath.Join(root, "mnt")
	s.RuntimeDir = filepath.Join(root, "run")
	s.CacheDir = filepath.Join(root, "cache")
	if err := os.Mkdir(s.MountPoint, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sm, err := mounts.NewS3FS(nil).Mount(ctx, s)
	if err != nil {
		t.Fatalf("s3fs mount: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sm.Unmount(ctx); err != nil && !errors.Is(err, mounts.ErrLazyUnmount) {
			t.Errorf("s3fs unmount: %v", err)
		}
		_ = mounts.Unmount(ctx, s.MountPoint)
	})

	// s3fs → built-in.
	t1 := time.Date(2018, 3, 4, 5, 6, 7, 0, time.UTC)
	p := filepath.Join(s.MountPoint, "by-s3fs.txt")
	if err := os.WriteFile(p, []byte("s3fs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, t1, t1); err != nil {
		t.Fatalf("utimensat through s3fs: %v", err)
	}
	head, err := m.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("interop"), Key: aws.String("by-s3fs.txt")})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("s3fs 1.90 wrote x-amz-meta-mtime %q", head.Metadata["mtime"])
	if err := os.Symlink("by-s3fs.txt", filepath.Join(s.MountPoint, "link-by-s3fs")); err != nil {
		t.Fatalf("symlink through s3fs: %v", err)
	}
	dir, _ := mount(t, m.Spec("interop"))
	equal(t, "s3fs's mtime read by the built-in backend", mtimeOf(t, filepath.Join(dir, "by-s3fs.txt")).UnixNano(), t1.UnixNano())
	if target, err := os.Readlink(filepath.Join(dir, "link-by-s3fs")); err != nil || target != "by-s3fs.txt" {
		t.Fatalf("s3fs's symlink read by the built-in backend: %q, %v", target, err)
	}
	if err := os.Symlink("by-s3fs.txt", filepath.Join(dir, "link-by-builtin")); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(s.MountPoint, "link-by-builtin")); err != nil || target != "by-s3fs.txt" {
		t.Fatalf("built-in's symlink read by s3fs: %q, %v", target, err)
	}
	if b, err := os.ReadFile(filepath.Join(s.MountPoint, "link-by-builtin")); err != nil || string(b) != "s3fs" {
		t.Fatalf("s3fs reading through the built-in's symlink: %q, %v", b, err)
	}

	// built-in → s3fs: whole seconds, and a time with a fraction.
	t2 := time.Date(2017, 1, 2, 3, 4, 5, 0, time.UTC)
	t3 := time.Date(2016, 7, 8, 9, 10, 11, 250000000, time.UTC)
	for name, tm := range map[string]time.Time{"by-builtin.txt": t2, "by-builtin-frac.txt": t3} {
		q := filepath.Join(dir, name)
		if err := os.WriteFile(q, []byte("builtin"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(q, tm, tm); err != nil {
			t.Fatal(err)
		}
	}
	equal(t, "built-in's mtime read by s3fs", mtimeOf(t, filepath.Join(s.MountPoint, "by-builtin.txt")).Unix(), t2.Unix())
	got := mtimeOf(t, filepath.Join(s.MountPoint, "by-builtin-frac.txt"))
	equal(t, "built-in's fractional mtime read by s3fs", got.UnixNano(), t3.UnixNano())
}

// TestSymlinks: ln -s through a real mount stores s3fs's format (body =
// target, x-amz-meta-mode with S_IFLNK); readlink, lstat, a link to a
// directory, and all of it again through a fresh mount.
func TestSymlinks(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "links", map[string]string{"d/f.txt": "in d", "a.txt": "aaa"})
	spec := m.Spec("links")
	dir, _ := mount(t, spec)
	if err := os.Symlink("a.txt", filepath.Join(dir, "la")); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if err := os.Symlink("d", filepath.Join(dir, "ld")); err != nil {
		t.Fatalf("symlink to a directory: %v", err)
	}
	equal(t, "symlink over an existing name", errnoOf(os.Symlink("x", filepath.Join(dir, "a.txt"))), syscall.EEXIST)
	head, err := m.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("links"), Key: aws.String("la")})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "x-amz-meta-mode", head.Metadata["mode"], "41471")
	body, err := getObject(t, m.Client(t), "links", "la")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "body is the target", body, "a.txt")

	for i, d := range []string{dir, func() string { d, _ := mount(t, spec); return d }()} {
		target, err := os.Readlink(filepath.Join(d, "la"))
		if err != nil {
			t.Fatalf("mount %d: readlink: %v", i, err)
		}
		equal(t, "readlink", target, "a.txt")
		st, err := os.Lstat(filepath.Join(d, "la"))
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "lstat is a link", st.Mode()&os.ModeSymlink != 0, true)
		equal(t, "lstat size", st.Size(), int64(len("a.txt")))
		b, err := os.ReadFile(filepath.Join(d, "la"))
		if err != nil {
			t.Fatal(err)
		}
		equal(t, "read through the link", string(b), "aaa")
		equal(t, "listing through a link to a directory", strings.Join(readDir(t, filepath.Join(d, "ld")), ","), "f.txt")
		b, err = os.ReadFile(filepath.Join(d, "ld", "f.txt"))
		if err != nil || string(b) != "in d" {
			t.Fatalf("read under a link to a directory: %q %v", b, err)
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		links := 0
		for _, e := range ents {
			if info, err := e.Info(); err == nil && info.Mode()&os.ModeSymlink != 0 {
				links++
			}
		}
		equal(t, "links seen through a listing", links, 2)
	}
	if err := os.Remove(filepath.Join(dir, "la")); err != nil {
		t.Fatalf("unlink a link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.txt")); err != nil {
		t.Fatalf("unlinking the link removed its target: %v", err)
	}
}

// TestRewriteKeepsOtherMetadata: rewriting an object written by s3fs
// keeps its x-amz-meta-mode/uid/gid (so s3fs still shows them) and drops
// its stored mtime (the new version's time is its upload).
func TestRewriteKeepsOtherMetadata(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "keepmeta", nil)
	c := m.Client(t)
	old := map[string]string{"mode": "33261", "uid": "1000", "gid": "1000", "mtime": "1000000000"}
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("keepmeta"), Key: aws.String("s.sh"),
		Body: strings.NewReader("#!/bin/sh\n"), Metadata: old}); err != nil {
		t.Fatal(err)
	}
	dir, _ := mount(t, m.Spec("keepmeta"))
	p := filepath.Join(dir, "s.sh")
	equal(t, "stored mtime shown", mtimeOf(t, p).Unix(), int64(1000000000))
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	head, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("keepmeta"), Key: aws.String("s.sh")})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"mode", "uid", "gid"} {
		equal(t, "kept x-amz-meta-"+k, head.Metadata[k], old[k])
	}
	equal(t, "old x-amz-meta-mtime dropped", head.Metadata["mtime"], "")
	if d := time.Since(mtimeOf(t, p)); d < -time.Minute || d > 5*time.Minute {
		t.Fatalf("mtime after a rewrite is %v, not the time of the upload", mtimeOf(t, p))
	}
}
