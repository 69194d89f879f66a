package mounts_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
)

// GeeseFS end to end. No registry here serves geesefs, so this runs only
// where it is on PATH (or S3MOUNTS_GEESEFS names it) and skips otherwise,
// saying why; its command line and credentials file are unit-tested in
// external_args_test.go regardless.
func TestGeeseFSEndToEnd(t *testing.T) {
	testenv.RequireFUSE(t)
	bin := os.Getenv("S3MOUNTS_GEESEFS")
	if bin == "" {
		bin = testenv.RequireBinary(t, "geesefs", true)
	}
	mi := testenv.StartMinIO(t)
	mi.MakeBucket(t, "geese-bucket", map[string]string{"a.txt": "hello", "team/b.txt": "bee"})
	dir := t.TempDir()
	spec := mi.Spec("geese-bucket")
	spec.ID, spec.Backend, spec.Binary = "e2e-geesefs", "geesefs", bin
	spec.MountPoint = filepath.Join(dir, "mnt")
	spec.RuntimeDir = filepath.Join(dir, "run")
	spec.CacheDir = filepath.Join(dir, "cache")
	spec.UID, spec.GID, spec.FileMode, spec.DirMode = 1000, 100, 0o640, 0o750
	if err := os.Mkdir(spec.MountPoint, 0o755); err != nil {
		t.Fatal(err)
	}
	logs := captureLog(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, err := mounts.NewGeeseFS(nil).Mount(ctx, spec)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() { cleanupMount(t, m, spec.MountPoint) })
	mp := spec.MountPoint
	if b, err := os.ReadFile(filepath.Join(mp, "a.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("read = %q, %v", b, err)
	}
	st, err := os.Stat(filepath.Join(mp, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 1000 || sys.Gid != 100 || st.Mode().Perm() != 0o640 {
		t.Errorf("a.txt %d:%d %v, want 1000:100 0640", sys.Uid, sys.Gid, st.Mode().Perm())
	}
	if err := os.WriteFile(filepath.Join(mp, "w.txt"), []byte("written"), 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got, err := getObject(t, mi, "geese-bucket", "w.txt"); err != nil || got != "written" {
		t.Errorf("w.txt in S3 = %q, %v", got, err)
	}
	checkSecretHidden(t, mi.SecretKey)
	pid := mounts.ToolPID(m)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := m.Wait(); err == nil {
		t.Error("Wait after kill -9 = nil, want an error")
	}
	if !mounts.IsStale(mp) {
		t.Error("not stale after kill -9")
	}
	if err := mounts.CleanStale(mp); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(spec.RuntimeDir); len(entries) != 0 {
		t.Errorf("credentials files left after the mount ended: %v", entries)
	}
	if strings.Contains(logs.String(), mi.SecretKey) {
		t.Error("secret in the log")
	}

	// Read-only.
	spec.ReadOnly = true
	m2, err := mounts.NewGeeseFS(nil).Mount(ctx, spec)
	if err != nil {
		t.Fatalf("ro mount: %v", err)
	}
	t.Cleanup(func() { cleanupMount(t, m2, mp) })
	if err := os.WriteFile(filepath.Join(mp, "x.txt"), []byte("no"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write on ro = %v, want EROFS", err)
	}
}
