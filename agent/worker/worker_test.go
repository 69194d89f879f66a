package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/mounts"
)

// The test binary doubles as the worker executable: started with
// S3MOUNTS_WORKER_TEST=1 and "worker" as its first argument it runs Main
// with a fake backend that "mounts" by filling the mount point directory.
func TestMain(m *testing.M) {
	if os.Getenv("S3MOUNTS_WORKER_TEST") == "1" && len(os.Args) > 1 && os.Args[1] == "worker" {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		os.Exit(Main(os.Args[2:], map[string]mounts.Backend{"fake": fakeBackend{}}, "test", log))
	}
	os.Exit(m.Run())
}

type fakeBackend struct{}

func (fakeBackend) Name() string                { return "fake" }
func (fakeBackend) Available(mounts.Spec) error { return nil }
func (fakeBackend) Mount(ctx context.Context, spec mounts.Spec) (mounts.Mount, error) {
	if spec.Bucket == "fail" {
		return nil, errors.New("bucket fail: access denied (check the credentials)")
	}
	for _, n := range []string{"a.txt", "b.txt", "c.txt"} {
		os.WriteFile(filepath.Join(spec.MountPoint, n), []byte(n), 0o644)
	}
	os.Mkdir(filepath.Join(spec.MountPoint, "dir"), 0o755)
	// the secret arrived: prove it without printing it
	os.WriteFile(filepath.Join(spec.MountPoint, ".secret-ok"), []byte(fmt.Sprint(spec.Credentials.SecretAccessKey.Reveal() == "s3cr3t")), 0o600)
	return &fakeMount{done: make(chan struct{}), mp: spec.MountPoint}, nil
}

type fakeMount struct {
	done chan struct{}
	mp   string
}

func (m *fakeMount) Wait() error { <-m.done; return nil }

// Staging: a fixed figure the status must carry.
func (m *fakeMount) Staging() (used, limit int64) { return 12345, 1 << 30 }

// Stats: fixed figures the status must carry.
func (m *fakeMount) Stats() mounts.Stats {
	return mounts.Stats{Requests: map[string]uint64{"ListObjectsV2": 7, "HeadObject": 2},
		MetadataBytes: 4096, MetadataEntries: 12, MetadataLimit: 256 << 20}
}
func (m *fakeMount) Unmount(context.Context) error {
	os.RemoveAll(m.mp)
	os.Mkdir(m.mp, 0o755)
	close(m.done)
	return nil
}

func newSup(t *testing.T) (*Supervisor, string) {
	t.Helper()
	t.Setenv("S3MOUNTS_WORKER_TEST", "1")
	dir, err := os.MkdirTemp("", "s3w-") // short: socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	exe, _ := os.Executable()
	return &Supervisor{Exe: exe, StateDir: filepath.Join(dir, "state"), RuntimeDir: filepath.Join(dir, "run"),
		Log: slog.New(slog.DiscardHandler), LogLevel: "info"}, dir
}

func fakeSpec(dir, id, bucket string) mounts.Spec {
	mp := filepath.Join(dir, "mnt", id)
	os.MkdirAll(mp, 0o755)
	return mounts.Spec{ID: id, Backend: "fake", MountPoint: mp, Bucket: bucket, Prefix: "pre/",
		RuntimeDir:  filepath.Join(dir, "run", "mounts", id),
		Credentials: mounts.Credentials{AccessKeyID: "AK", SecretAccessKey: "s3cr3t"}}
}

// TestWorkerProtocol: start (spec on fd 3, nothing secret in argv or the
// record), status, files paging, refresh, adoption by a new supervisor,
// unmount and exit.
func TestWorkerProtocol(t *testing.T) {
	sup, dir := newSup(t)
	spec := fakeSpec(dir, "c1", "bucket")
	ctx := context.Background()
	h, err := sup.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Kill)
	if err := h.WaitMounted(ctx); err != nil {
		t.Fatalf("WaitMounted: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(spec.MountPoint, ".secret-ok")); string(b) != "true" {
		t.Fatalf("the worker did not receive the secret through fd 3")
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", h.PID))
	environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", h.PID))
	if strings.Contains(string(cmdline), "s3cr3t") || strings.Contains(string(environ), "s3cr3t") {
		t.Fatal("secret in the worker's argv or environment")
	}
	recPath := RecordPath(sup.StateDir, "c1")
	fi, err := os.Stat(recPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record: %v %v", fi, err)
	}
	rb, _ := os.ReadFile(recPath)
	if strings.Contains(string(rb), "s3cr3t") {
		t.Fatal("secret in the worker record")
	}
	rec, err := ReadRecord(recPath)
	if err != nil || rec.PID != h.PID || rec.SpecHash != SpecHash(spec) || rec.StartTime == 0 {
		t.Fatalf("record %+v, %v", rec, err)
	}
	if fi, err := os.Stat(SocketPath(sup.RuntimeDir, "c1")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket: %v %v", fi, err)
	}
	st, err := h.Status(ctx)
	if err != nil || st.State != StateMounted || st.PID != h.PID {
		t.Fatalf("status %+v, %v", st, err)
	}
	if st.Staging == nil || st.Staging.UsedBytes != 12345 || st.Staging.LimitBytes != 1<<30 {
		t.Fatalf("status staging %+v", st.Staging)
	}
	if st.Stats == nil || st.Stats.Requests["ListObjectsV2"] != 7 || st.Stats.Requests["HeadObject"] != 2 ||
		st.Stats.MetadataBytes != 4096 || st.Stats.MetadataEntries != 12 || st.Stats.MetadataLimit != 256<<20 {
		t.Fatalf("status stats %+v", st.Stats)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		if last, ok := h.LastStatus(); ok && last.Staging != nil && last.Staging.UsedBytes == 12345 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the handle never polled the worker's status")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// files: paged by name, keys under the prefix
	p1, err := h.Files(ctx, "", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.Entries) != 2 || p1.Entries[0].Name != ".secret-ok" || p1.NextCursor == "" {
		t.Fatalf("page 1: %+v", p1)
	}
	p2, _ := h.Files(ctx, "", p1.NextCursor, 10)
	var names []string
	for _, e := range p2.Entries {
		names = append(names, e.Name+"="+e.Key)
	}
	if strings.Join(names, ",") != "b.txt=pre/b.txt,c.txt=pre/c.txt,dir=pre/dir/" || p2.NextCursor != "" {
		t.Fatalf("page 2: %v next %q", names, p2.NextCursor)
	}
	if _, err := h.Files(ctx, "nope", "", 10); err == nil {
		t.Error("listing a missing directory succeeded")
	}
	if _, err := h.Files(ctx, "../../etc", "", 10); err == nil {
		// cleaned to "etc" under the mount: must not list the host's /etc
		t.Error("../../etc listed something")
	}
	if err := h.Refresh(ctx, "/dir"); err != nil {
		t.Errorf("refresh: %v", err)
	}

	// a second supervisor (a restarted agent) adopts the live worker
	sup2 := &Supervisor{Exe: sup.Exe, StateDir: sup.StateDir, RuntimeDir: sup.RuntimeDir, Log: sup.Log}
	live := sup2.Adopt(ctx)
	if len(live) != 1 || live[0].PID != h.PID || !live[0].Adopted || live[0].SpecHash != SpecHash(spec) {
		t.Fatalf("adopt: %+v", live)
	}

	lazy, err := live[0].Unmount(ctx)
	if err != nil || lazy {
		t.Fatalf("unmount: lazy %v, %v", lazy, err)
	}
	select {
	case <-h.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("first handle did not see the worker end")
	}
	if h.Err() != nil {
		t.Errorf("clean end reported as %v", h.Err())
	}
	if _, err := os.Stat(recPath); !os.IsNotExist(err) {
		t.Errorf("record left after unmount: %v", err)
	}
	<-h.reaped()
	if alive := pidAlive(h.PID); alive {
		t.Error("worker still alive after unmount")
	}
}

// TestWorkerMountFails: the reason reaches the agent, the worker exits and
// leaves no record.
func TestWorkerMountFails(t *testing.T) {
	sup, dir := newSup(t)
	spec := fakeSpec(dir, "bad", "fail")
	ctx := context.Background()
	h, err := sup.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	err = h.WaitMounted(ctx)
	if err == nil || !strings.Contains(err.Error(), "access denied") {
		t.Fatalf("WaitMounted = %v, want the backend's reason", err)
	}
	select {
	case <-h.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("failed worker did not exit")
	}
	if _, err := os.Stat(RecordPath(sup.StateDir, "bad")); !os.IsNotExist(err) {
		t.Errorf("record left by a failed worker: %v", err)
	}
}

// TestWorkerKilled: a killed worker is noticed, reaped and its death
// explained; a stale record of a dead pid is not adopted.
func TestWorkerKilled(t *testing.T) {
	sup, dir := newSup(t)
	spec := fakeSpec(dir, "k", "bucket")
	ctx := context.Background()
	h, err := sup.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.WaitMounted(ctx); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(h.PID, syscall.SIGKILL)
	select {
	case <-h.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("death not noticed")
	}
	if h.Err() == nil || !strings.Contains(h.Err().Error(), "killed") {
		t.Errorf("death reason %v, want it to say killed", h.Err())
	}
	// the record is left behind by a SIGKILL: adoption must refuse it
	if _, err := os.Stat(RecordPath(sup.StateDir, "k")); err != nil {
		t.Fatalf("expected the dead worker's record to remain: %v", err)
	}
	if live := sup.Adopt(ctx); len(live) != 0 {
		t.Fatalf("adopted a dead worker: %+v", live)
	}
	if _, err := os.Stat(RecordPath(sup.StateDir, "k")); !os.IsNotExist(err) {
		t.Errorf("dead worker's record not removed by Adopt: %v", err)
	}
}

func TestCleanRel(t *testing.T) {
	for in, want := range map[string]string{"": "", "/": "", "a/b": "a/b", "/a/b/": "a/b", "../../etc": "etc", "a/../../b": "b", "./x": "x"} {
		got, err := CleanRel(in)
		if err != nil || got != want {
			t.Errorf("CleanRel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := CleanRel("a\x00b"); err == nil {
		t.Error("NUL accepted")
	}
}
