package mounts_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// TestS3FSGuardSanity: everyday use through the worker's guard over s3fs:
// cp a file in and read it back, ls, rm, rsync a tree in; symbolic links
// stay links; the tool's own mount is reachable by root only.
func TestS3FSGuardSanity(t *testing.T) {
	testenv.RequireRoot(t)
	mi := testenv.StartMinIO(t)
	mi.MakeBucket(t, "guard", map[string]string{"seed.txt": "seed"})
	spec := s3fsSpec(t, mi, "guard")
	m := mountS3FS(t, spec)
	mp := spec.MountPoint
	if _, ok := mounts.GuardStatsOf(m); !ok {
		t.Fatal("the s3fs mount is not served by the guard")
	}
	info, ok, err := mounts.MountedAt(mp)
	if err != nil || !ok || info.FSType != "fuse.s3fs" {
		t.Fatalf("mount point: %+v %v %v; want a fuse.s3fs mount", info, ok, err)
	}
	hidden := mounts.ToolMountDir(m)
	if !strings.HasPrefix(hidden, spec.RuntimeDir+"/") {
		t.Fatalf("s3fs mounts at %q, not inside the runtime directory %s", hidden, spec.RuntimeDir)
	}
	if st, err := os.Stat(spec.RuntimeDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("runtime directory %s: %v %v; want mode 0700", spec.RuntimeDir, st, err)
	}
	if out, err := exec.Command("setpriv", "--reuid", "1000", "--regid", "100", "--clear-groups", "ls", hidden).CombinedOutput(); err == nil {
		t.Errorf("user 1000 listed s3fs's own mount %s: %s", hidden, out)
	}
	// cp in, read back, ls, rm.
	src := filepath.Join(t.TempDir(), "src.bin")
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", src, filepath.Join(mp, "copied.bin")).CombinedOutput(); err != nil {
		t.Fatalf("cp into the mount: %v %s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(mp, "copied.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reading copied.bin back: %d bytes, %v", len(got), err)
	}
	if got, err := getObject(t, mi, "guard", "copied.bin"); err != nil || got != string(data) {
		t.Fatalf("copied.bin in S3: %d bytes, %v", len(got), err)
	}
	if err := os.Symlink("/etc", filepath.Join(mp, "link")); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if st, err := os.Lstat(filepath.Join(mp, "link")); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("lstat link: %v %v; want a symbolic link", st, err)
	}
	if target, err := os.Readlink(filepath.Join(mp, "link")); err != nil || target != "/etc" {
		t.Errorf("readlink = %q, %v", target, err)
	}
	names := func() string {
		out, err := exec.Command("ls", mp).CombinedOutput()
		if err != nil {
			t.Fatalf("ls: %v %s", err, out)
		}
		return strings.Join(strings.Fields(string(out)), ",")
	}
	if got := names(); got != "copied.bin,link,seed.txt" {
		t.Errorf("ls = %s", got)
	}
	if out, err := exec.Command("rm", filepath.Join(mp, "copied.bin"), filepath.Join(mp, "link")).CombinedOutput(); err != nil {
		t.Fatalf("rm: %v %s", err, out)
	}
	if got := names(); got != "seed.txt" {
		t.Errorf("ls after rm = %s", got)
	}
	if _, err := getObject(t, mi, "guard", "copied.bin"); err == nil {
		t.Error("rm left copied.bin in S3")
	}
	// rsync a tree in.
	tree := t.TempDir()
	want := map[string]string{}
	for i := 0; i < 5; i++ {
		for j := 0; j < 3; j++ {
			rel := fmt.Sprintf("d%d/f%d.txt", i, j)
			want[rel] = strings.Repeat(rel, 100*(i+1))
			os.MkdirAll(filepath.Join(tree, filepath.Dir(rel)), 0o755)
			if err := os.WriteFile(filepath.Join(tree, rel), []byte(want[rel]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if out, err := exec.Command("rsync", "-r", "--inplace", tree+"/", filepath.Join(mp, "tree")+"/").CombinedOutput(); err != nil {
		t.Fatalf("rsync into the mount: %v %s", err, out)
	}
	var got []string
	for rel, content := range want {
		b, err := os.ReadFile(filepath.Join(mp, "tree", rel))
		if err != nil || string(b) != content {
			t.Errorf("tree/%s through the mount: %d bytes, %v", rel, len(b), err)
		}
		if s, err := getObject(t, mi, "guard", "tree/"+rel); err != nil || s != content {
			t.Errorf("tree/%s in S3: %d bytes, %v", rel, len(s), err)
		}
		got = append(got, rel)
	}
	sort.Strings(got)
	if len(got) != 15 {
		t.Errorf("rsync copied %d files, want 15", len(got))
	}
	// A second rsync finds nothing to do and succeeds.
	if out, err := exec.Command("rsync", "-r", "--inplace", tree+"/", filepath.Join(mp, "tree")+"/").CombinedOutput(); err != nil {
		t.Fatalf("second rsync: %v %s", err, out)
	}
}

// BenchmarkS3FSGuardRead: a cold sequential read of a 256 MiB object
// through the guard and, in the same run, straight from s3fs's own mount
// behind it: the guard's cost.
//
//	go test -run '^$' -bench S3FSGuardRead -benchtime 3x ./mounts
func BenchmarkS3FSGuardRead(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the guard is used as root only")
	}
	mi := testenv.StartMinIO(b)
	data := make([]byte, 256<<20)
	rand.Read(data)
	mi.MakeBucket(b, "bench-guard", map[string]string{"big.bin": string(data)})
	spec := benchSpec(b, mi, "bench-guard")
	spec.MetadataTTL = 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := mounts.NewS3FS(s3conn.ResolveCredentials).Mount(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Unmount(context.Background()) })
	for _, c := range []struct{ name, dir string }{{"guard", spec.MountPoint}, {"direct", mounts.ToolMountDir(m)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200)
				f, err := os.Open(filepath.Join(c.dir, "big.bin"))
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, f, make([]byte, 1<<20))
				f.Close()
				if err != nil || n != int64(len(data)) {
					b.Fatalf("read %d bytes, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkS3FSGuardWrite: a sequential 256 MiB write and close (the
// upload) through the guard and, in the same run, straight to s3fs's own
// mount behind it.
//
//	go test -run '^$' -bench S3FSGuardWrite -benchtime 2x ./mounts
func BenchmarkS3FSGuardWrite(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the guard is used as root only")
	}
	mi := testenv.StartMinIO(b)
	mi.MakeBucket(b, "bench-guardw", nil)
	spec := benchSpec(b, mi, "bench-guardw")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := mounts.NewS3FS(s3conn.ResolveCredentials).Mount(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Unmount(context.Background()) })
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	for _, c := range []struct{ name, dir string }{{"guard", spec.MountPoint}, {"direct", mounts.ToolMountDir(m)}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(256 << 20)
			for b.Loop() {
				f, err := os.Create(filepath.Join(c.dir, "w-"+c.name+".bin"))
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < 256; i++ {
					if _, err := f.Write(buf); err != nil {
						b.Fatal(err)
					}
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
