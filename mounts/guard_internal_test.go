package mounts

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// A guard answers a blocked call EIO at its limit, keeps at most
// guardMaxStranded calls blocked, answers EIO at once beyond that, and
// serves again once the blocked calls return.
func TestGuardBoundsStrandedCalls(t *testing.T) {
	old := guardMaxStranded
	guardMaxStranded = 4
	t.Cleanup(func() { guardMaxStranded = old })
	g := &guardFS{limit: 50 * time.Millisecond}
	release := make(chan struct{})
	ran := make(chan struct{}, 16)
	blocked := func() syscall.Errno { ran <- struct{}{}; <-release; return 0 }
	for i := 0; i < 4; i++ {
		start := time.Now()
		if e := guardDo(g, blocked); e != syscall.EIO {
			t.Fatalf("blocked call %d = %v, want EIO", i, e)
		}
		if took := time.Since(start); took < g.limit {
			t.Fatalf("blocked call %d answered after %v, before the limit %v", i, took, g.limit)
		}
	}
	if n := g.stranded.Load(); n != 4 {
		t.Fatalf("stranded = %d, want 4", n)
	}
	if e := guardDo(g, blocked); e != syscall.EIO {
		t.Fatalf("call beyond the bound = %v, want EIO", e)
	}
	if len(ran) != 4 {
		t.Fatalf("%d calls reached the tool, want 4: the one beyond the bound must not start", len(ran))
	}
	if g.refused.Load() != 1 {
		t.Errorf("refused = %d, want 1", g.refused.Load())
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for g.stranded.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stranded = %d after the calls returned", g.stranded.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if e := guardDo(g, func() syscall.Errno { return syscall.ENOENT }); e != syscall.ENOENT {
		t.Errorf("call after recovery = %v, want its own ENOENT", e)
	}
}

// A write handle whose flush ran past the limit never reports success
// again, and its fd is closed only after the blocked call returns.
func TestGuardFailedWriteStaysFailed(t *testing.T) {
	g := &guardFS{limit: 30 * time.Millisecond}
	r, w, err := osPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(r)
	f := g.newFile(w)
	release := make(chan struct{})
	if e := f.write(func(int) syscall.Errno { <-release; return 0 }); e != syscall.EIO {
		t.Fatalf("blocked flush = %v, want EIO", e)
	}
	if e := f.Flush(nil); e != syscall.EIO {
		t.Errorf("flush after a timed-out one = %v, want EIO", e)
	}
	if e := f.Fsync(nil, 0); e != syscall.EIO {
		t.Errorf("fsync after a timed-out flush = %v, want EIO", e)
	}
	if _, e := f.Write(nil, []byte("x"), 0); e != syscall.EIO {
		t.Errorf("write after a timed-out flush = %v, want EIO", e)
	}
	f.Release(nil)
	if g.open.Load() != 1 {
		t.Fatalf("fd closed while a call still used it (open = %d)", g.open.Load())
	}
	close(release)
	deadline := time.Now().Add(10 * time.Second)
	for g.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("fd not closed after the blocked call returned")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func osPipe() (int, int, error) {
	var p [2]int
	err := syscall.Pipe2(p[:], syscall.O_CLOEXEC)
	return p[0], p[1], err
}

// A dead worker's runtime directory is cleaned of its mounts and removed;
// a live worker's is left alone.
func TestCleanDeadWorkerDirs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make the stage mounts")
	}
	parent := t.TempDir()
	dead := filepath.Join(parent, "999999999")
	live := filepath.Join(parent, strconv.Itoa(os.Getpid()))
	var stages []*Stage
	for _, d := range []string{dead, live} {
		st, err := NewStage(filepath.Join(d, "tool-0"))
		if err != nil {
			t.Fatal(err)
		}
		stages = append(stages, st)
		if err := os.WriteFile(filepath.Join(d, "passwd-s3fs"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, s := range stages {
			s.Close()
		}
	})
	CleanDeadWorkerDirs(parent)
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Errorf("the dead worker's directory is still there: %v", err)
	}
	if ok, _ := IsMountPoint(filepath.Join(dead, "tool-0")); ok {
		t.Error("the dead worker's stage is still mounted")
	}
	if ok, _ := IsMountPoint(filepath.Join(live, "tool-0")); !ok {
		t.Error("the live worker's stage was detached")
	}
	if _, err := os.Stat(filepath.Join(live, "passwd-s3fs")); err != nil {
		t.Errorf("the live worker's files were touched: %v", err)
	}
}
