package mounts_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
)

func mountedFS(t *testing.T, path string) string {
	t.Helper()
	m, ok, err := mounts.MountedAt(path)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return ""
	}
	return m.FSType
}

func TestPrepareMountPointRefusesLinks(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	os.MkdirAll(other, 0o755)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	os.Symlink(other, filepath.Join(root, "victim"))
	os.Symlink(other, filepath.Join(dir, "linkroot"))

	for path, comp := range map[string]string{
		filepath.Join(root, "victim"):          filepath.Join(root, "victim"),
		filepath.Join(dir, "linkroot", "x"):    filepath.Join(dir, "linkroot"),
		filepath.Join(dir, "linkroot", "a/b"):  filepath.Join(dir, "linkroot"),
		filepath.Join(root, "victim", "inner"): filepath.Join(root, "victim"),
	} {
		md, err := mounts.PrepareMountPoint(path)
		var se *mounts.SymlinkError
		if !errors.As(err, &se) || se.Component != comp {
			md.Close()
			t.Errorf("PrepareMountPoint(%s) = %v; want a SymlinkError naming %s", path, err, comp)
			continue
		}
		if !strings.Contains(err.Error(), comp) || !strings.Contains(err.Error(), "replace the link") {
			t.Errorf("error %q does not name %s and the fix", err, comp)
		}
	}
	if des, _ := os.ReadDir(other); len(des) != 0 {
		t.Errorf("something was created through a link: %v", des)
	}

	os.MkdirAll(filepath.Join(root, "full"), 0o755)
	os.WriteFile(filepath.Join(root, "full", "x"), nil, 0o644)
	if _, err := mounts.PrepareMountPoint(filepath.Join(root, "full")); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a non-empty mount point: %v", err)
	}
	busy := filepath.Join(root, "busy")
	os.MkdirAll(busy, 0o755)
	if err := unix.Mount("tmpfs", busy, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(busy, unix.MNT_DETACH) })
	if _, err := mounts.PrepareMountPoint(busy); err == nil || !strings.Contains(err.Error(), "already a mount point") {
		t.Errorf("a mounted mount point: %v", err)
	}
	md, err := mounts.PrepareMountPoint(filepath.Join(root, "new", "mp"))
	if err != nil {
		t.Fatal(err)
	}
	md.Close()
	if st, err := os.Lstat(filepath.Join(root, "new", "mp")); err != nil || !st.IsDir() {
		t.Fatalf("mount point not created: %v", err)
	}
}

// TestMountLandsOnCheckedDirectory: between the check and the mount the
// user renames the parent away and puts a link to another directory in
// its place; the mount still lands on the directory that was checked.
func TestMountLandsOnCheckedDirectory(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	other := filepath.Join(dir, "other")
	os.MkdirAll(filepath.Join(other, "mp"), 0o755)
	root := filepath.Join(dir, "root")
	md, err := mounts.PrepareMountPoint(filepath.Join(root, "mp"))
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	if err := os.Rename(root, root+".moved"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, root); err != nil {
		t.Fatal(err)
	}
	stage, err := mounts.NewStage("")
	if err != nil {
		t.Fatal(err)
	}
	defer stage.Close()
	if err := unix.Mount("s3mounts-test", stage.Path, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	ref, err := stage.MoveTo(md, "tmpfs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mounts.DetachRef(ref) })
	if fs := mountedFS(t, filepath.Join(root+".moved", "mp")); fs != "tmpfs" {
		t.Fatalf("the checked directory has %q mounted; want tmpfs", fs)
	}
	if fs := mountedFS(t, filepath.Join(other, "mp")); fs != "" {
		t.Fatalf("mounted through the link, on %s/mp (%s)", other, fs)
	}
	if err := mounts.UnmountRef(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if fs := mountedFS(t, filepath.Join(root+".moved", "mp")); fs != "" {
		t.Fatalf("still mounted after UnmountRef: %s", fs)
	}
	if _, ok, _ := mounts.FindMount(ref.ID); ok {
		t.Fatal("the mount id is still in mountinfo")
	}
}

// TestUnmountNeverFollowsLinks: a path through a link is never unmounted,
// and UnmountOurs leaves a mount s3mounts did not make.
func TestUnmountNeverFollowsLinks(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "tmpfs")
	os.MkdirAll(target, 0o755)
	if err := unix.Mount("tmpfs", target, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
	os.Symlink(target, filepath.Join(dir, "link"))
	os.Symlink(dir, filepath.Join(dir, "parentlink"))
	ctx := context.Background()
	for _, p := range []string{filepath.Join(dir, "link"), filepath.Join(dir, "parentlink", "tmpfs")} {
		err := mounts.Unmount(ctx, p)
		var se *mounts.SymlinkError
		// The link itself is no mount point (nothing to do); a link on
		// the way is refused.
		if strings.Contains(p, "parentlink") && !errors.As(err, &se) {
			t.Errorf("Unmount(%s) = %v; want a SymlinkError", p, err)
		}
		if mountedFS(t, target) != "tmpfs" {
			t.Fatalf("Unmount(%s) unmounted the tmpfs behind the link", p)
		}
		if mounts.IsStale(p) {
			t.Errorf("IsStale(%s) through a link", p)
		}
		if err := mounts.CleanStale(p); mountedFS(t, target) != "tmpfs" {
			t.Fatalf("CleanStale(%s) = %v unmounted the tmpfs", p, err)
		}
	}
	if err := mounts.UnmountOurs(ctx, target); err == nil || !strings.Contains(err.Error(), "not one s3mounts made") {
		t.Errorf("UnmountOurs of a tmpfs = %v; want a refusal", err)
	}
	if mountedFS(t, target) != "tmpfs" {
		t.Fatal("UnmountOurs unmounted a tmpfs")
	}
	if err := mounts.RemoveMountPoint(filepath.Join(dir, "parentlink", "empty")); err == nil {
		t.Error("RemoveMountPoint through a link succeeded")
	}
}
