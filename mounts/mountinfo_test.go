package mounts_test

import (
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

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
)

// The test binary doubles as a tiny FUSE server: a child started with
// S3MOUNTS_TEST_FUSE_SERVE=DIR mounts an empty go-fuse filesystem at DIR
// and serves until killed, so a test can make a dead mount by SIGKILLing it.
func TestMain(m *testing.M) {
	if dir := os.Getenv("S3MOUNTS_TEST_FUSE_SERVE"); dir != "" {
		srv, err := fs.Mount(dir, &fs.Inode{}, &fs.Options{MountOptions: fuse.MountOptions{
			DirectMount: true, FsName: "s3mounts-test", Name: "s3mounts-test"}})
		if err != nil {
			fmt.Fprintln(os.Stderr, "fuse helper:", err)
			os.Exit(2)
		}
		srv.Wait()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseMountInfo(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []mounts.MountInfo
		err  bool
	}{
		{
			name: "plain with optional fields",
			in:   "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue\n",
			want: []mounts.MountInfo{{ID: 36, ParentID: 35, MountPoint: "/mnt2", FSType: "ext3", Source: "/dev/root", Options: "rw,noatime"}},
		},
		{
			name: "no optional fields, octal escapes",
			in:   `90 20 0:50 / /home/jupyter/mnt/s3/my\040data\011x\134y rw,nosuid,nodev - fuse.s3fs s3fs rw,user_id=0` + "\n",
			want: []mounts.MountInfo{{ID: 90, ParentID: 20, MountPoint: "/home/jupyter/mnt/s3/my data\tx\\y", FSType: "fuse.s3fs", Source: "s3fs", Options: "rw,nosuid,nodev"}},
		},
		{
			name: "backslash not followed by three octal digits stays",
			in:   `1 2 0:1 / /a\9b\04 rw - tmpfs tmpfs rw` + "\n",
			want: []mounts.MountInfo{{ID: 1, ParentID: 2, MountPoint: `/a\9b\04`, FSType: "tmpfs", Source: "tmpfs", Options: "rw"}},
		},
		{name: "missing separator", in: "1 2 0:1 / /a rw tmpfs tmpfs rw\n", err: true},
		{name: "truncated", in: "1 2 0:1 / /a\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mounts.ParseMountInfo(tt.in)
			if tt.err {
				if err == nil {
					t.Fatalf("want an error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
}

func TestReadMountInfoRealEscapes(t *testing.T) {
	testenv.RequireRoot(t)
	dir := filepath.Join(t.TempDir(), "with space\tand tab\\slash")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if ok, err := mounts.IsMountPoint(dir); err != nil || ok {
		t.Fatalf("IsMountPoint before mounting = %v, %v; want false", ok, err)
	}
	mountTmpfs(t, dir)
	mi, err := mounts.ReadMountInfo()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range mi {
		if m.MountPoint == dir {
			found = true
			if m.FSType != "tmpfs" || !strings.HasPrefix(m.Options, "rw") {
				t.Errorf("entry %+v: want tmpfs, rw", m)
			}
		}
	}
	if !found {
		t.Fatalf("%q not in mountinfo", dir)
	}
	if ok, err := mounts.IsMountPoint(dir); err != nil || !ok {
		t.Fatalf("IsMountPoint = %v, %v; want true", ok, err)
	}
	if mounts.IsStale(dir) {
		t.Fatal("a live tmpfs counts as stale")
	}
	ctx := context.Background()
	if err := mounts.Unmount(ctx, dir); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if ok, _ := mounts.IsMountPoint(dir); ok {
		t.Fatal("still mounted after Unmount")
	}
	if err := mounts.Unmount(ctx, dir); err != nil {
		t.Fatalf("second Unmount (not mounted) must succeed: %v", err)
	}
	if err := mounts.Unmount(ctx, filepath.Join(dir, "absent")); err != nil {
		t.Fatalf("Unmount of an absent path must succeed: %v", err)
	}
}

func TestUnmountStacked(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	mountTmpfs(t, dir)
	mountTmpfs(t, dir)
	if err := mounts.Unmount(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mounts.IsMountPoint(dir); ok {
		t.Fatal("a stacked mount was left behind")
	}
}

func TestUnmountBusyIsLazy(t *testing.T) {
	testenv.RequireRoot(t)
	defer mounts.SetUnmountRetries(3, 10*time.Millisecond)()
	dir := t.TempDir()
	mountTmpfs(t, dir)
	f, err := os.Create(filepath.Join(dir, "open"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = mounts.Unmount(context.Background(), dir)
	if !errors.Is(err, mounts.ErrLazyUnmount) {
		t.Fatalf("Unmount of a busy mount = %v; want ErrLazyUnmount", err)
	}
	if ok, _ := mounts.IsMountPoint(dir); ok {
		t.Fatal("busy mount still in the mount table after a lazy unmount")
	}
	if _, err := f.WriteString("still works"); err != nil {
		t.Fatalf("an open file must keep working after a lazy unmount: %v", err)
	}
}

// startFUSE mounts the helper filesystem at dir and returns its process.
func startFUSE(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	testenv.RequireFUSE(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "S3MOUNTS_TEST_FUSE_SERVE="+dir)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		unix.Unmount(dir, unix.MNT_DETACH)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := mounts.WaitMounted(ctx, dir); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func TestStaleFUSEMountIsCleaned(t *testing.T) {
	dir := t.TempDir()
	cmd := startFUSE(t, dir)
	if mounts.IsStale(dir) {
		t.Fatal("a live FUSE mount counts as stale")
	}
	if err := mounts.CleanStale(dir); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mounts.IsMountPoint(dir); !ok {
		t.Fatal("CleanStale detached a live mount")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if !mounts.IsStale(dir) {
		t.Fatal("a FUSE mount whose server was killed is not reported stale")
	}
	if ok, err := mounts.IsMountPoint(dir); err != nil || !ok {
		t.Fatalf("IsMountPoint of a dead mount = %v, %v; want true (from mountinfo)", ok, err)
	}
	if err := mounts.CleanStale(dir); err != nil {
		t.Fatalf("CleanStale: %v", err)
	}
	if ok, _ := mounts.IsMountPoint(dir); ok {
		t.Fatal("dead mount still in the mount table after CleanStale")
	}
	if mounts.IsStale(dir) {
		t.Fatal("still stale after CleanStale")
	}
	if err := mounts.CleanStale(dir); err != nil {
		t.Fatalf("CleanStale of a plain directory: %v", err)
	}
}

func TestUnmountDeadFUSEMount(t *testing.T) {
	dir := t.TempDir()
	cmd := startFUSE(t, dir)
	cmd.Process.Kill()
	cmd.Wait()
	if err := mounts.Unmount(context.Background(), dir); err != nil {
		t.Fatalf("Unmount of a dead mount: %v", err)
	}
	if ok, _ := mounts.IsMountPoint(dir); ok {
		t.Fatal("dead mount left behind by Unmount")
	}
}

func TestUnmountLiveFUSEMount(t *testing.T) {
	dir := t.TempDir()
	cmd := startFUSE(t, dir)
	if err := mounts.Unmount(context.Background(), dir); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	if ok, _ := mounts.IsMountPoint(dir); ok {
		t.Fatal("still mounted")
	}
	// The server notices the unmount and exits by itself.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("FUSE server still running 60 s after its mount was unmounted")
	}
}

func TestWaitMounted(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := mounts.WaitMounted(ctx, dir); err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("WaitMounted on a plain directory = %v; want a deadline error naming %s", err, dir)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m")
	}()
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	ctx2, cancel2 := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel2()
	if err := mounts.WaitMounted(ctx2, dir); err != nil {
		t.Fatalf("WaitMounted: %v", err)
	}
}
