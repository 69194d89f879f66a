package builtin_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/builtin"
)

// mountPublic mounts spec at a directory every uid can reach (t.TempDir's
// parents are 0700), for tests that act as other users.
func mountPublic(t *testing.T, spec mounts.Spec) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec.MountPoint = filepath.Join(root, "mnt")
	if err := os.Mkdir(spec.MountPoint, 0o755); err != nil {
		t.Fatal(err)
	}
	if spec.CacheDir == "" {
		spec.CacheDir = filepath.Join(root, "cache")
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
		_ = mounts.Unmount(ctx, spec.MountPoint)
	})
	return spec.MountPoint
}

// runAs runs a command as uid:gid (tests run as root) and returns its
// combined output and error.
func runAs(uid, gid uint32, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type ownerMode struct {
	mode     uint32 // with type bits
	uid, gid uint32
}

func statOM(t *testing.T, p string) ownerMode {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return ownerMode{st.Mode, st.Uid, st.Gid}
}

func headMeta(t *testing.T, c *s3.Client, bucket, key string) map[string]string {
	t.Helper()
	h, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("HEAD %s: %v", key, err)
	}
	return h.Metadata
}

// TestPermObjectModel: permissions = "object" through a real mount: modes
// and owners written by s3fs are shown, chmod/chown are stored in s3fs's
// x-amz-meta-mode/uid/gid and survive a remount, the kernel enforces them
// for other uids, chown is root's, chmod the owner's, new files and
// directories get their creator's uid/gid, and mkfifo is stored as s3fs
// does.
func TestPermObjectModel(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "objperm", map[string]string{"plain.txt": "plain"})
	c := m.Client(t)
	ctx := context.Background()
	// As s3fs writes them: mode with S_IFREG/S_IFDIR, uid, gid, decimal.
	for key, meta := range map[string]map[string]string{
		"s3fs.txt":  {"mode": strconv.Itoa(syscall.S_IFREG | 0o600), "uid": "1234", "gid": "4321"},
		"s3fsdir/":  {"mode": strconv.Itoa(syscall.S_IFDIR | 0o700), "uid": "1234", "gid": "4321"},
		"s3fsdir/x": nil,
	} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("objperm"), Key: aws.String(key),
			Body: bytes.NewReader([]byte("s3fs")), Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	spec := m.Spec("objperm")
	spec.Permissions = "object"
	spec.UID, spec.GID = 1000, 100
	dir := mountPublic(t, spec)
	p := func(name string) string { return filepath.Join(dir, name) }

	equal(t, "object without metadata: the connector's", statOM(t, p("plain.txt")), ownerMode{syscall.S_IFREG | 0o644, 1000, 100})
	equal(t, "s3fs's file", statOM(t, p("s3fs.txt")), ownerMode{syscall.S_IFREG | 0o600, 1234, 4321})
	equal(t, "s3fs's directory", statOM(t, p("s3fsdir")), ownerMode{syscall.S_IFDIR | 0o700, 1234, 4321})
	// The kernel enforces them: uid 1234 may read its 0600 file, 2000 not.
	if out, err := runAs(1234, 4321, "cat", p("s3fs.txt")); err != nil || out != "s3fs" {
		t.Fatalf("owner reading its 0600 file: %q %v", out, err)
	}
	if out, err := runAs(2000, 2000, "cat", p("s3fs.txt")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("another uid reading a 0600 file: %q %v, want Permission denied", out, err)
	}
	if out, err := runAs(2000, 2000, "ls", p("s3fsdir")); err == nil || !strings.Contains(out, "Permission denied") {
		t.Fatalf("another uid listing a 0700 directory: %q %v, want Permission denied", out, err)
	}

	// chmod and chown as root are stored.
	if err := os.Chmod(p("plain.txt"), 0o750); err != nil {
		t.Fatalf("chmod as root: %v", err)
	}
	if err := os.Chown(p("plain.txt"), 2000, 2000); err != nil {
		t.Fatalf("chown as root: %v", err)
	}
	meta := headMeta(t, c, "objperm", "plain.txt")
	equal(t, "x-amz-meta-mode", meta["mode"], strconv.Itoa(syscall.S_IFREG|0o750))
	equal(t, "x-amz-meta-uid", meta["uid"], "2000")
	equal(t, "x-amz-meta-gid", meta["gid"], "2000")
	equal(t, "after chmod/chown", statOM(t, p("plain.txt")), ownerMode{syscall.S_IFREG | 0o750, 2000, 2000})
	if b, _ := os.ReadFile(p("plain.txt")); string(b) != "plain" {
		t.Fatalf("content after chmod: %q", b)
	}
	// The owner may chmod; another uid may not; only root may chown.
	if out, err := runAs(2000, 2000, "chmod", "0700", p("plain.txt")); err != nil {
		t.Fatalf("owner chmod: %v %s", err, out)
	}
	if out, err := runAs(3000, 3000, "chmod", "0777", p("plain.txt")); err == nil || !strings.Contains(out, "not permitted") {
		t.Fatalf("another uid chmod: %q %v, want EPERM", out, err)
	}
	if out, err := runAs(2000, 2000, "chown", "3000", p("plain.txt")); err == nil || !strings.Contains(out, "not permitted") {
		t.Fatalf("owner giving the file away: %q %v, want EPERM", out, err)
	}
	equal(t, "after the owner's chmod", statOM(t, p("plain.txt")), ownerMode{syscall.S_IFREG | 0o700, 2000, 2000})

	// On a file being written: rides with the upload.
	w, err := os.Create(p("open.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("open"); err != nil {
		t.Fatal(err)
	}
	if err := w.Chmod(0o604); err != nil {
		t.Fatalf("fchmod of a file being written: %v", err)
	}
	if err := w.Chown(3000, 3001); err != nil {
		t.Fatalf("fchown of a file being written: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	meta = headMeta(t, c, "objperm", "open.txt")
	equal(t, "fchmod rode with the upload", meta["mode"], strconv.Itoa(syscall.S_IFREG|0o604))
	equal(t, "fchown rode with the upload", meta["uid"]+":"+meta["gid"], "3000:3001")

	// chmod +x, then run it.
	if err := os.WriteFile(p("run.sh"), []byte("#!/bin/sh\necho ran\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p("run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := runAs(2000, 2000, p("run.sh")); err != nil || out != "ran\n" {
		t.Fatalf("running a script after chmod +x: %q %v", out, err)
	}

	// New files and directories carry their creator's uid/gid.
	if err := os.Mkdir(p("pub"), 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p("pub"), 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	if out, err := runAs(2000, 2000, "sh", "-c", "umask 022; mkdir "+p("pub/mine")+" && echo hi > "+p("pub/f")); err != nil {
		t.Fatalf("creating as uid 2000: %v %s", err, out)
	}
	equal(t, "dir made by uid 2000", statOM(t, p("pub/mine")), ownerMode{syscall.S_IFDIR | 0o755, 2000, 2000})
	equal(t, "file made by uid 2000", statOM(t, p("pub/f")), ownerMode{syscall.S_IFREG | 0o644, 2000, 2000})
	equal(t, "marker's x-amz-meta-uid", headMeta(t, c, "objperm", "pub/mine/")["uid"], "2000")
	if out, err := runAs(3000, 3000, "sh", "-c", "echo no > "+p("pub/f")); err == nil {
		t.Fatalf("another uid writing a 0644 file: %q, want Permission denied", out)
	}

	// mkfifo is stored as s3fs does: an empty object, S_IFIFO in its mode.
	if err := unix.Mkfifo(p("pub/fifo"), 0o640); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	equal(t, "fifo", statOM(t, p("pub/fifo")), ownerMode{syscall.S_IFIFO | 0o640, 0, 0})
	equal(t, "fifo's x-amz-meta-mode", headMeta(t, c, "objperm", "pub/fifo")["mode"], strconv.Itoa(syscall.S_IFIFO|0o640))

	// A directory's chmod is stored on its marker.
	if err := os.Chmod(p("s3fsdir"), 0o750); err != nil {
		t.Fatal(err)
	}

	// Everything again through a fresh mount.
	dir2 := mountPublic(t, spec)
	q := func(name string) string { return filepath.Join(dir2, name) }
	equal(t, "remount: plain.txt", statOM(t, q("plain.txt")), ownerMode{syscall.S_IFREG | 0o700, 2000, 2000})
	equal(t, "remount: run.sh", statOM(t, q("run.sh")).mode, uint32(syscall.S_IFREG|0o755))
	equal(t, "remount: open.txt", statOM(t, q("open.txt")), ownerMode{syscall.S_IFREG | 0o604, 3000, 3001})
	equal(t, "remount: s3fsdir", statOM(t, q("s3fsdir")), ownerMode{syscall.S_IFDIR | 0o750, 1234, 4321})
	equal(t, "remount: pub/mine", statOM(t, q("pub/mine")), ownerMode{syscall.S_IFDIR | 0o755, 2000, 2000})
	equal(t, "remount: pub/f", statOM(t, q("pub/f")), ownerMode{syscall.S_IFREG | 0o644, 2000, 2000})
	equal(t, "remount: fifo", statOM(t, q("pub/fifo")).mode, uint32(syscall.S_IFIFO|0o640))
	// ls -l (readdirplus) shows the same as stat.
	out, err := exec.Command("ls", "-ln", q("pub")).CombinedOutput()
	if err != nil {
		t.Fatalf("ls -ln pub: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 9 {
			got[f[len(f)-1]] = f[0] + " " + f[2] + " " + f[3]
		}
	}
	equal(t, "ls -ln pub", fmt.Sprint(got), fmt.Sprint(map[string]string{"f": "-rw-r--r-- 2000 2000", "fifo": "prw-r----- 0 0", "mine": "drwxr-xr-x 2000 2000"}))
}

// TestPermConnectorModel: in the default model mknod of a FIFO is EPERM (every
// object is a regular file there), and files created by another uid still
// show the connector's owner.
func TestPermConnectorModel(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "connperm", map[string]string{"a": "a"})
	spec := m.Spec("connperm")
	spec.UID, spec.GID, spec.FileMode, spec.DirMode = 2000, 2000, 0o664, 0o775
	dir := mountPublic(t, spec)
	equal(t, "mkfifo", errnoOf(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644)), syscall.EPERM)
	if out, err := runAs(2000, 2000, "sh", "-c", "echo x > "+filepath.Join(dir, "new")); err != nil {
		t.Fatalf("writing as the connector's uid: %v %s", err, out)
	}
	equal(t, "new file", statOM(t, filepath.Join(dir, "new")), ownerMode{syscall.S_IFREG | 0o664, 2000, 2000})
	if out, err := runAs(3000, 3000, "sh", "-c", "echo x > "+filepath.Join(dir, "a")); err == nil {
		t.Fatalf("another uid writing a 0664 file: %q, want Permission denied", out)
	}
}

func getx(t *testing.T, p, name string) (string, error) {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func listx(t *testing.T, p string) []string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var out []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// TestXattrUser: user.* xattrs through a real mount in both permission
// models: set/get/list/remove on a closed file and a directory, on a file
// being written (rides with the upload), the POSIX errnos (ENODATA,
// EEXIST, ENOTSUP for other namespaces, E2BIG beyond S3's 2 KB), stored in
// s3fs's x-amz-meta-xattr and read back through a remount.
func TestXattrUser(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	for _, model := range []string{"connector", "object"} {
		t.Run(model, func(t *testing.T) {
			bucket := "xattr-" + model
			m.MakeBucket(t, bucket, map[string]string{"f.txt": "content", "d/x": "x"})
			spec := m.Spec(bucket)
			spec.Permissions = model
			dir, _ := mount(t, spec)
			f, d := filepath.Join(dir, "f.txt"), filepath.Join(dir, "d")

			if _, err := getx(t, f, "user.none"); errnoOf(err) != syscall.ENODATA {
				t.Fatalf("get of an absent xattr: %v, want ENODATA", err)
			}
			for _, p := range []string{f, d} {
				if err := unix.Lsetxattr(p, "user.color", []byte("blue"), 0); err != nil {
					t.Fatalf("setxattr %s: %v", p, err)
				}
				if err := unix.Lsetxattr(p, "user.empty", nil, 0); err != nil {
					t.Fatalf("setxattr of an empty value %s: %v", p, err)
				}
			}
			if v, err := getx(t, f, "user.color"); err != nil || v != "blue" {
				t.Fatalf("getxattr: %q %v", v, err)
			}
			equal(t, "listxattr", listx(t, f), []string{"user.color", "user.empty"})
			equal(t, "XATTR_CREATE on an existing name", errnoOf(unix.Lsetxattr(f, "user.color", []byte("x"), unix.XATTR_CREATE)), syscall.EEXIST)
			equal(t, "XATTR_REPLACE of an absent name", errnoOf(unix.Lsetxattr(f, "user.nope", []byte("x"), unix.XATTR_REPLACE)), syscall.ENODATA)
			equal(t, "trusted.* namespace", errnoOf(unix.Lsetxattr(f, "trusted.x", []byte("x"), 0)), syscall.ENOTSUP)
			equal(t, "security.* namespace", errnoOf(unix.Lsetxattr(f, "security.x", []byte("x"), 0)), syscall.ENOTSUP)
			equal(t, "over S3's 2 KB", errnoOf(unix.Lsetxattr(f, "user.big", bytes.Repeat([]byte("b"), 2100), 0)), syscall.E2BIG)
			if b, _ := os.ReadFile(f); string(b) != "content" {
				t.Fatalf("content after setxattr: %q", b)
			}
			if err := unix.Lremovexattr(f, "user.empty"); err != nil {
				t.Fatal(err)
			}
			equal(t, "remove of an absent name", errnoOf(unix.Lremovexattr(f, "user.empty")), syscall.ENODATA)
			meta := headMeta(t, m.Client(t), bucket, "f.txt")
			if !strings.Contains(meta["xattr"], "user.color") {
				t.Fatalf("x-amz-meta-xattr = %q, want s3fs's encoding with user.color", meta["xattr"])
			}

			// On a file being written: rides with the upload.
			w, err := os.Create(filepath.Join(dir, "w.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.WriteString("written"); err != nil {
				t.Fatal(err)
			}
			if err := unix.Fsetxattr(int(w.Fd()), "user.tag", []byte("while-open"), 0); err != nil {
				t.Fatalf("fsetxattr on a file being written: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(headMeta(t, m.Client(t), bucket, "w.txt")["xattr"], "user.tag") {
				t.Fatalf("the upload does not carry the xattr set while open")
			}

			dir2, _ := mount(t, spec)
			for _, c := range []struct{ path, name, want string }{
				{"f.txt", "user.color", "blue"}, {"d", "user.color", "blue"}, {"w.txt", "user.tag", "while-open"},
			} {
				if v, err := getx(t, filepath.Join(dir2, c.path), c.name); err != nil || v != c.want {
					t.Fatalf("after a remount %s %s: %q %v", c.path, c.name, v, err)
				}
			}
			equal(t, "remount: list", listx(t, filepath.Join(dir2, "f.txt")), []string{"user.color"})
			if b, _ := os.ReadFile(filepath.Join(dir2, "w.txt")); string(b) != "written" {
				t.Fatalf("content: %q", b)
			}
		})
	}
}

// TestPosixDirMTime: a directory's mtime is the newest of its marker and
// its listed children (not the mount's start time), and utimensat on a
// directory is stored on its marker (x-amz-meta-mtime), which then wins.
func TestPosixDirMTime(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "dirtime", map[string]string{"d/a": "a"})
	time.Sleep(1100 * time.Millisecond) // LastModified has a 1 s granularity: make the mount start later
	spec := m.Spec("dirtime")
	dir, _ := mount(t, spec)
	d := filepath.Join(dir, "d")
	h, err := m.Client(t).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("dirtime"), Key: aws.String("d/a")})
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "implicit dir's mtime = its child's LastModified", mtimeOf(t, d).Unix(), h.LastModified.Unix())
	old := time.Date(2015, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chtimes(d, old, old); err != nil {
		t.Fatalf("utimensat on a directory: %v", err)
	}
	equal(t, "after utimensat", mtimeOf(t, d).Unix(), old.Unix())
	if _, ok := headMeta(t, m.Client(t), "dirtime", "d/")["mtime"]; !ok {
		t.Fatalf("the marker does not store the mtime")
	}
	dir2, _ := mount(t, spec)
	equal(t, "after a remount", mtimeOf(t, filepath.Join(dir2, "d")).Unix(), old.Unix())
}

// TestS3fsInteropModesXattrsDirs: one bucket, Debian's s3fs (modes kept per
// object, use_xattr) and the built-in backend in the object model: modes,
// owners, xattrs, directories (with their mtimes) and FIFOs written by one
// are read identically by the other.
func TestS3fsInteropModesXattrsDirs(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "s3fs", false)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "interop2", nil)
	sd := mountS3FSRaw(t, m, "interop2")
	spec := m.Spec("interop2")
	spec.Permissions = "object"
	spec.UID, spec.GID = 1000, 100

	type want struct {
		om    ownerMode
		xattr string
	}
	write := func(root, prefix string) map[string]want {
		t.Helper()
		d, f, fifo := filepath.Join(root, prefix+"dir"), filepath.Join(root, prefix+"dir", "file"), filepath.Join(root, prefix+"fifo")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(prefix), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mkfifo(fifo, 0o644); err != nil {
			t.Fatalf("mkfifo %s: %v", fifo, err)
		}
		for _, c := range []struct {
			p    string
			mode os.FileMode
			uid  int
		}{{d, 0o750, 1234}, {f, 0o640, 1234}, {fifo, 0o600, 2000}} {
			if err := os.Chmod(c.p, c.mode); err != nil {
				t.Fatalf("chmod %s: %v", c.p, err)
			}
			if err := os.Lchown(c.p, c.uid, 4321); err != nil {
				t.Fatalf("chown %s: %v", c.p, err)
			}
		}
		for _, p := range []string{d, f} {
			if err := unix.Lsetxattr(p, "user.by", []byte(prefix+" +/= é"), 0); err != nil {
				t.Fatalf("setxattr %s: %v", p, err)
			}
		}
		return map[string]want{
			prefix + "dir":      {ownerMode{syscall.S_IFDIR | 0o750, 1234, 4321}, prefix + " +/= é"},
			prefix + "dir/file": {ownerMode{syscall.S_IFREG | 0o640, 1234, 4321}, prefix + " +/= é"},
			prefix + "fifo":     {ownerMode{syscall.S_IFIFO | 0o600, 2000, 4321}, ""},
		}
	}
	check := func(who, root string, ws map[string]want) {
		t.Helper()
		for name, w := range ws {
			p := filepath.Join(root, name)
			equal(t, who+": "+name, statOM(t, p), w.om)
			if w.xattr != "" {
				if v, err := getx(t, p, "user.by"); err != nil || v != w.xattr {
					t.Fatalf("%s: xattr of %s: %q %v, want %q", who, name, v, err, w.xattr)
				}
			}
		}
	}

	fromS3FS := write(sd, "s3fs-")
	t.Logf("s3fs 1.90 wrote x-amz-meta-xattr %q, x-amz-meta-mode %q", headMeta(t, m.Client(t), "interop2", "s3fs-dir/file")["xattr"], headMeta(t, m.Client(t), "interop2", "s3fs-dir/file")["mode"])
	bd := mountPublic(t, spec)
	check("s3fs → built-in", bd, fromS3FS)
	// A directory's mtime: s3fs stores one on the marker; both show it.
	equal(t, "s3fs's directory mtime read by the built-in backend", mtimeOf(t, filepath.Join(bd, "s3fs-dir")).Unix(), mtimeOf(t, filepath.Join(sd, "s3fs-dir")).Unix())

	fromBuiltin := write(bd, "builtin-")
	old := time.Date(2014, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(bd, "builtin-dir"), old, old); err != nil {
		t.Fatal(err)
	}
	check("built-in → s3fs", sd, fromBuiltin)
	equal(t, "built-in's directory mtime read by s3fs", mtimeOf(t, filepath.Join(sd, "builtin-dir")).Unix(), old.Unix())
	if b, err := os.ReadFile(filepath.Join(sd, "builtin-dir", "file")); err != nil || string(b) != "builtin-" {
		t.Fatalf("s3fs reading the built-in's file: %q %v", b, err)
	}
}
