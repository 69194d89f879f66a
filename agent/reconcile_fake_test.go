package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
)

// The reconciler's start, stop, backoff, adoption and remount rules with
// fakeWorkers and a fakeClock: no process, no mount, no wall-clock wait
// for a backoff. The same rules through real workers: e2e_test.go,
// security_e2e_test.go, systemd_test.go, trust_e2e_test.go.

const activeConn = `name = "N"
endpoint = "http://127.0.0.1:9"
bucket = "bucket"
prefix = "%s"
mount_name = "%s"
active = %v
[credentials]
anonymous = true
`

func connFile(mountName, prefix string, active bool) string {
	return sprintf(activeConn, prefix, mountName, active)
}

type reconFixture struct {
	r   *reconciler
	a   *config.Agent
	fw  *fakeWorkers
	clk *fakeClock
}

// newReconFixture is a reconciler on fake workers and a fake clock whose
// connectors directory holds files; call start to run it.
func newReconFixture(t *testing.T, files map[string]string) *reconFixture {
	t.Helper()
	dir := t.TempDir()
	a := config.DefaultAgent()
	a.ConnectorsDir = filepath.Join(dir, "c")
	a.ProjectRoot = filepath.Join(dir, "mnt")
	a.StateDir = filepath.Join(dir, "state")
	a.CacheDir = filepath.Join(dir, "cache")
	a.SecretsDir = filepath.Join(dir, "secrets")
	a.MountUID, a.MountGID = 0, 0
	os.MkdirAll(a.ConnectorsDir, 0o700)
	for id, body := range files {
		writeConn(t, a, id, body)
	}
	ov, _ := loadOverrides(a.StateDir)
	fw := &fakeWorkers{}
	clk := newFakeClock()
	r := newReconciler(a, filepath.Join(dir, "run"), nil, fw, ov, slog.New(slog.DiscardHandler))
	r.now, r.newTimer = clk.Now, clk.NewTimer
	t.Cleanup(func() { r.Close(true) })
	return &reconFixture{r: r, a: a, fw: fw, clk: clk}
}

func (f *reconFixture) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f.r.Start(ctx)
}

// specHash is the hash of the spec the reconciler builds from id's file.
func (f *reconFixture) specHash(t *testing.T, id string) (hash, mountPoint string) {
	t.Helper()
	c, err := config.LoadConnector(filepath.Join(f.a.ConnectorsDir, id+".toml"), f.a)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := f.r.buildSpec(c)
	if err != nil {
		t.Fatal(err)
	}
	return worker.SpecHash(spec), spec.MountPoint
}

func (f *reconFixture) state(t *testing.T, id string, st client.State) View {
	t.Helper()
	return waitView(t, f.r, id, func(v View, ok bool) bool { return ok && v.Connector.State == st })
}

// waitTimer waits until the connector loops have armed a timer due at at.
func (f *reconFixture) waitTimer(t *testing.T, at time.Time) {
	t.Helper()
	waitFor(t, "a backoff timer due at "+at.Format(time.TimeOnly), func() bool {
		n, next := f.clk.pending()
		return n > 0 && next.Equal(at)
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReconStartStop: an active file starts a worker; deactivate unmounts
// it; activate starts a new one; deleting the file unmounts and forgets.
func TestReconStartStop(t *testing.T) {
	f := newReconFixture(t, map[string]string{"a": connFile("data", "", true)})
	f.start(t)
	v := f.state(t, "a", client.StateMounted)
	if f.fw.starts() != 1 || !v.Connector.Active || v.Connector.Error != "" {
		t.Fatalf("after start: %d starts, view %+v", f.fw.starts(), v.Connector)
	}
	w1 := f.fw.last()
	if want := filepath.Join(f.a.ProjectRoot, "data"); w1.spec.MountPoint != want || w1.spec.Bucket != "bucket" {
		t.Errorf("worker spec: mount point %s bucket %s, want %s bucket", w1.spec.MountPoint, w1.spec.Bucket, want)
	}

	v, err := f.r.Deactivate(context.Background(), "a")
	if err != nil || v.Connector.State != client.StateInactive || v.Connector.Active {
		t.Fatalf("deactivate: %+v %v", v.Connector, err)
	}
	if !w1.gone() || w1.unmountCalls() != 1 {
		t.Errorf("deactivate: worker gone %v after %d unmount calls", w1.gone(), w1.unmountCalls())
	}

	v, err = f.r.Activate(context.Background(), "a")
	if err != nil || v.Connector.State != client.StateMounted || f.fw.starts() != 2 {
		t.Fatalf("activate: %+v %v, %d starts", v.Connector, err, f.fw.starts())
	}
	w2 := f.fw.last()

	os.Remove(filepath.Join(f.a.ConnectorsDir, "a.toml"))
	f.r.Load()
	waitView(t, f.r, "a", func(v View, ok bool) bool { return !ok })
	if !w2.gone() || w2.unmountCalls() != 1 || f.fw.starts() != 2 {
		t.Errorf("file deleted: worker gone %v after %d unmounts, %d starts", w2.gone(), w2.unmountCalls(), f.fw.starts())
	}
}

// TestReconBackoff: failed mounts are retried 1 s, 2 s, 4 s later (by the
// clock, never sooner); a worker that dies soon after mounting continues
// the backoff, one that served stableAfter restarts it at 1 s.
func TestReconBackoff(t *testing.T) {
	f := newReconFixture(t, map[string]string{"a": connFile("data", "", true)})
	boom := errors.New("the bucket does not exist")
	f.fw.mountErrs = []error{boom, boom, boom}
	t0 := f.clk.Now()
	f.start(t)

	at := t0
	for i, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		v := f.state(t, "a", client.StateError)
		if want := "retrying in " + d.String(); !strings.Contains(v.Connector.Error, want) || !strings.Contains(v.Connector.Error, boom.Error()) {
			t.Fatalf("failure %d: error %q, want the cause and %q", i+1, v.Connector.Error, want)
		}
		at = at.Add(d)
		f.waitTimer(t, at)
		if n := f.fw.starts(); n != i+1 {
			t.Fatalf("failure %d: %d starts before the retry is due", i+1, n)
		}
		if w := f.fw.last(); !w.gone() {
			t.Errorf("failure %d: the failed worker was not told to unmount", i+1)
		}
		f.clk.Advance(d - time.Millisecond)
		if n, _ := f.clk.pending(); n != 1 || f.fw.starts() != i+1 {
			t.Fatalf("failure %d: retried %v early (%d timers, %d starts)", i+1, time.Millisecond, n, f.fw.starts())
		}
		f.clk.Advance(time.Millisecond)
		waitFor(t, "the retry", func() bool { return f.fw.starts() == i+2 })
	}
	f.state(t, "a", client.StateMounted)

	// dies at once: the backoff goes on (4 failures: 8 s)
	f.fw.last().die(errors.New("mount worker killed by SIGKILL"))
	v := f.state(t, "a", client.StateError)
	if !strings.Contains(v.Connector.Error, "SIGKILL; restarting in 8s") {
		t.Fatalf("worker died: error %q", v.Connector.Error)
	}
	f.waitTimer(t, f.clk.Now().Add(8*time.Second))
	f.clk.Advance(8 * time.Second)
	f.state(t, "a", client.StateMounted)
	if f.fw.starts() != 5 {
		t.Fatalf("%d starts, want 5", f.fw.starts())
	}

	// served stableAfter: the backoff starts over
	f.clk.Advance(stableAfter)
	f.fw.last().die(errors.New("mount worker exited with status 2"))
	v = f.state(t, "a", client.StateError)
	if !strings.Contains(v.Connector.Error, "restarting in 1s") {
		t.Fatalf("worker died after serving %s: error %q, want a restart in 1s", stableAfter, v.Connector.Error)
	}
	f.waitTimer(t, f.clk.Now().Add(time.Second))
	f.clk.Advance(time.Second)
	f.state(t, "a", client.StateMounted)

	// an explicit activation of a failing connector tries at once
	f.fw.mu.Lock()
	f.fw.mountErrs = []error{boom}
	f.fw.mu.Unlock()
	f.r.Deactivate(context.Background(), "a")
	v, err := f.r.Activate(context.Background(), "a")
	if err != nil || v.Connector.State != client.StateError {
		t.Fatalf("activate of a failing mount: %+v %v", v.Connector, err)
	}
	n := f.fw.starts()
	f.r.Activate(context.Background(), "a")
	if f.fw.starts() != n+1 {
		t.Errorf("activate during backoff: %d starts, want %d (no wait for the backoff)", f.fw.starts(), n+1)
	}
}

// TestReconAdoption: at start a live worker whose connector wants its
// spec is kept (no new start); one whose spec changed is replaced; one no
// longer wanted is unmounted; one whose file is broken (no last good
// version known) keeps its mount and shows the file's error, until the
// file is deleted.
func TestReconAdoption(t *testing.T) {
	f := newReconFixture(t, map[string]string{
		"keep":     connFile("keep", "", true),
		"changed":  connFile("changed", "p2/", true),
		"unwanted": connFile("unwanted", "", false),
		"broken":   "name = \"x\"\nbucket = = 1\n",
	})
	hKeep, mpKeep := f.specHash(t, "keep")
	_, mpChanged := f.specHash(t, "changed")
	_, mpUnwanted := f.specHash(t, "unwanted")
	wKeep := f.fw.newWorker("keep", hKeep, mpKeep)
	wChanged := f.fw.newWorker("changed", "old-hash", mpChanged)
	wUnwanted := f.fw.newWorker("unwanted", "u-hash", mpUnwanted)
	wBroken := f.fw.newWorker("broken", "b-hash", filepath.Join(f.a.ProjectRoot, "brokendata"))
	f.fw.adopt = []*fakeWorker{wKeep, wChanged, wUnwanted, wBroken}
	f.start(t)

	f.state(t, "keep", client.StateMounted)
	if wKeep.gone() || wKeep.unmountCalls() != 0 {
		t.Errorf("kept worker: gone %v, %d unmounts", wKeep.gone(), wKeep.unmountCalls())
	}
	f.state(t, "changed", client.StateMounted)
	if !wChanged.gone() {
		t.Error("a worker whose spec changed was not replaced")
	}
	if w := f.fw.last(); f.fw.starts() != 1 || w.id != "changed" || w.spec.Prefix != "p2/" {
		t.Errorf("starts: %d (last %s), want one, for changed with its new prefix", f.fw.starts(), w.id)
	}
	f.state(t, "unwanted", client.StateInactive)
	if !wUnwanted.gone() {
		t.Error("a worker of an inactive connector was kept")
	}

	v := f.state(t, "broken", client.StateError)
	if !strings.Contains(v.Connector.Error, "broken.toml:2") || !strings.Contains(v.Connector.Error, "stays mounted") ||
		v.Connector.MountPath != wBroken.mp {
		t.Errorf("broken file with an adopted mount: %+v", v.Connector)
	}
	// a reload with the file still broken changes nothing
	f.r.Load()
	f.state(t, "keep", client.StateMounted)
	if wBroken.gone() || wBroken.unmountCalls() != 0 {
		t.Fatalf("broken file: its adopted mount was unmounted")
	}
	os.Remove(filepath.Join(f.a.ConnectorsDir, "broken.toml"))
	f.r.Load()
	waitView(t, f.r, "broken", func(v View, ok bool) bool { return !ok })
	if !wBroken.gone() {
		t.Error("the broken file was deleted: its mount stayed")
	}
	if wKeep.gone() || f.fw.starts() != 1 {
		t.Errorf("other connectors disturbed: keep gone %v, %d starts", wKeep.gone(), f.fw.starts())
	}
}

// TestReconRemountOnChange: a changed file remounts with the new spec; a
// broken file keeps the last good version mounted; fixing it back to the
// mounted version changes nothing.
func TestReconRemountOnChange(t *testing.T) {
	f := newReconFixture(t, map[string]string{"a": connFile("data", "p1/", true)})
	f.start(t)
	f.state(t, "a", client.StateMounted)
	w1 := f.fw.last()

	writeConn(t, f.a, "a", connFile("data", "p2/", true))
	f.r.Load()
	waitFor(t, "the remount", func() bool { return f.fw.starts() == 2 })
	f.state(t, "a", client.StateMounted)
	w2 := f.fw.last()
	if !w1.gone() || w2.spec.Prefix != "p2/" || w2.hash == w1.hash {
		t.Errorf("remount: old gone %v, new prefix %q", w1.gone(), w2.spec.Prefix)
	}

	writeConn(t, f.a, "a", "name = \"a\"\nmount_name = \"data\"\nbucket = [\n")
	f.r.Load()
	v := f.state(t, "a", client.StateError)
	if !strings.Contains(v.Connector.Error, "a.toml") || !strings.Contains(v.Connector.Error, "stays mounted") {
		t.Errorf("broken file: error %q", v.Connector.Error)
	}
	if w2.gone() || f.fw.starts() != 2 {
		t.Errorf("broken file: mount gone %v, %d starts", w2.gone(), f.fw.starts())
	}
	writeConn(t, f.a, "a", connFile("data", "p2/", true))
	f.r.Load()
	v = f.state(t, "a", client.StateMounted)
	if v.Connector.Error != "" || w2.gone() || f.fw.starts() != 2 {
		t.Errorf("fixed file: %+v, mount gone %v, %d starts", v.Connector, w2.gone(), f.fw.starts())
	}
}

// TestReconDeactivateActivate: the API's activation of an inactive file,
// its deactivation, and an unmount that fails: the mount stays, the
// connector shows the error and retries with backoff.
func TestReconDeactivateActivate(t *testing.T) {
	f := newReconFixture(t, map[string]string{"a": connFile("data", "", false)})
	f.start(t)
	f.state(t, "a", client.StateInactive)
	if f.fw.starts() != 0 {
		t.Fatalf("an inactive file started %d workers", f.fw.starts())
	}
	v, err := f.r.Activate(context.Background(), "a")
	if err != nil || v.Connector.State != client.StateMounted || !v.Connector.Active || f.fw.starts() != 1 {
		t.Fatalf("activate: %+v %v, %d starts", v.Connector, err, f.fw.starts())
	}
	w := f.fw.last()

	w.setUnmountErr(errors.New("target is busy"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	f.r.Deactivate(ctx, "a") // bounded: answers the state reached so far
	cancel()
	v = f.state(t, "a", client.StateError)
	if !strings.Contains(v.Connector.Error, "unmount failed: target is busy (retrying in 1s)") || w.gone() {
		t.Fatalf("failed unmount: %+v, worker gone %v", v.Connector, w.gone())
	}
	f.waitTimer(t, f.clk.Now().Add(time.Second))
	w.setUnmountErr(nil)
	f.clk.Advance(time.Second)
	f.state(t, "a", client.StateInactive)
	if !w.gone() || w.unmountCalls() != 2 {
		t.Errorf("retried unmount: gone %v after %d calls", w.gone(), w.unmountCalls())
	}

	// the file's own activation wins over the API's deactivation
	writeConn(t, f.a, "a", connFile("data", "", true))
	f.r.Load()
	f.state(t, "a", client.StateMounted)
	if f.fw.starts() != 2 {
		t.Errorf("file activated: %d starts, want 2", f.fw.starts())
	}
}

// TestReconHealthFilesRefresh: what a mounted worker reports failing shows
// as the connector's error while it stays mounted, and clears; /files and
// refresh reach the worker with the cleaned path, and are refused while
// the connector is not mounted.
func TestReconHealthFilesRefresh(t *testing.T) {
	f := newReconFixture(t, map[string]string{"a": connFile("data", "pre/", false)})
	f.r.healthEvery = 5 * time.Millisecond
	f.start(t)
	if err := f.r.Refresh(context.Background(), "a", "/"); err == nil || !strings.Contains(err.Error(), "not mounted") {
		t.Errorf("refresh while inactive: %v, want a not-mounted error", err)
	}
	if _, err := f.r.Files(context.Background(), "a", "/", "", 10); err == nil || !strings.Contains(err.Error(), "activate it first") {
		t.Errorf("files while inactive: %v, want a not-mounted error", err)
	}
	if _, err := f.r.Activate(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	w := f.fw.last()

	const problem = "the endpoint refuses the key since 12:03:04 UTC"
	w.setDegraded(problem)
	waitView(t, f.r, "a", func(v View, ok bool) bool {
		return v.Connector.State == client.StateMounted && v.Connector.Error == problem
	})
	w.setDegraded("")
	waitView(t, f.r, "a", func(v View, ok bool) bool {
		return v.Connector.State == client.StateMounted && v.Connector.Error == ""
	})

	w.mu.Lock()
	w.page = mounts.Page{Entries: []mounts.Entry{{Name: "x.csv", Size: 3, Key: "pre/dir/x.csv"}, {Name: "sub", Dir: true, Key: "dir/sub/"}},
		NextCursor: "c2"}
	w.mu.Unlock()
	files, err := f.r.Files(context.Background(), "a", "/dir/", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	mp := filepath.Join(f.a.ProjectRoot, "data")
	want := []client.Entry{
		{Name: "x.csv", Type: "file", Size: 3, Path: filepath.Join(mp, "dir", "x.csv"), S3URI: "s3://bucket/pre/dir/x.csv"},
		{Name: "sub", Type: "dir", Path: filepath.Join(mp, "dir", "sub"), S3URI: "s3://bucket/pre/dir/sub/"},
	}
	if files.Path != "/dir" || files.NextCursor != "c2" || len(files.Entries) != 2 || files.Entries[0] != want[0] || files.Entries[1] != want[1] {
		t.Errorf("files = %+v, want path /dir, cursor c2, entries %+v", files, want)
	}
	if err := f.r.Refresh(context.Background(), "a", "/dir/../dir/x.csv"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.r.Files(context.Background(), "a", "../../etc", "", 10); err != nil { // ".." stops at the mount's root
		t.Fatal(err)
	}
	if _, err := f.r.Files(context.Background(), "a", "a\x00b", "", 10); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("files of a path with a NUL byte: %v, want it refused", err)
	}
	w.mu.Lock()
	listed, refreshed := w.listed, w.refreshed
	w.mu.Unlock()
	if len(listed) != 2 || listed[0] != "dir" || listed[1] != "etc" || len(refreshed) != 1 || refreshed[0] != "dir/x.csv" {
		t.Errorf("the worker was asked to list %q and refresh %q, want [dir etc] and [dir/x.csv]", listed, refreshed)
	}
}
