package builtin_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/s3mounts/s3mounts/internal/testenv"
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
