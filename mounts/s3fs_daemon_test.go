package mounts_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
)

// toolPID finds the tool serving mp (its command line names mp).
func toolPID(t *testing.T, tool, mp string) int {
	t.Helper()
	for _, p := range procs(t) {
		f := strings.Fields(p.cmdline)
		if len(f) > 0 && filepath.Base(f[0]) == tool && servesMountPoint(p, mp) {
			return p.pid
		}
	}
	return 0
}

// Through the real daemon: an s3fs connector mounts, reads and writes; a
// kill -9 of s3fs shows in the connector's state and the agent remounts by
// itself; a geesefs connector on a node without geesefs says what to do
// and breaks nothing else; no secret leaks anywhere.
func TestS3FSThroughDaemon(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "s3fs", false)
	mi := testenv.StartMinIO(t)
	mi.MakeBucket(t, "daemon-bucket", map[string]string{"a.txt": "hello", "team/b.txt": "bee"})
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 1000\nmount_gid = 100\n"})

	d.WriteConnector("s3", d.MinIOConnector("s3", mi, "daemon-bucket", "data", true, "backend = \"s3fs\"\nmode = \"rw\""))
	c := d.WaitState("s3", client.StateMounted)
	mp := c.MountPath
	if b, err := os.ReadFile(filepath.Join(mp, "a.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("read through the daemon's s3fs mount = %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(mp, "w.txt"), []byte("written"), 0o644); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got, err := getObject(t, mi, "daemon-bucket", "w.txt"); err != nil || got != "written" {
		t.Fatalf("w.txt in S3 = %q, %v", got, err)
	}
	st, err := os.Stat(filepath.Join(mp, "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 1000 || sys.Gid != 100 {
		t.Errorf("a.txt owned by %d:%d, want mount_uid:mount_gid 1000:100", sys.Uid, sys.Gid)
	}

	d.WriteConnector("ro", d.MinIOConnector("ro", mi, "daemon-bucket", "data-ro", true, "backend = \"s3fs\"\nprefix = \"team/\""))
	ro := d.WaitState("ro", client.StateMounted)
	if b, err := os.ReadFile(filepath.Join(ro.MountPath, "b.txt")); err != nil || string(b) != "bee" {
		t.Fatalf("read through the ro prefix mount = %q, %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(ro.MountPath, "x.txt"), []byte("no"), 0o644); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write on a ro s3fs connector = %v, want EROFS", err)
	}

	// A backend that is not installed: a clear error, nothing else broken.
	d.WriteConnector("gf", d.MinIOConnector("gf", mi, "daemon-bucket", "data-gf", true, "backend = \"geesefs\""))
	if toolOnPath("geesefs") == "" {
		g := d.WaitFor("gf", "an error naming the missing geesefs", func(c client.Connector, ok bool) bool {
			return ok && c.State == client.StateError && strings.Contains(c.Error, "geesefs is not installed")
		})
		if !strings.Contains(g.Error, `backend = "default"`) {
			t.Errorf("error does not say what to do: %q", g.Error)
		}
	}

	// kill -9 of s3fs: the state tells the story, then the agent remounts.
	pid := toolPID(t, "s3fs", mp)
	if pid == 0 {
		t.Fatalf("no s3fs process serving %s", mp)
	}
	checkSecretHidden(t, mi.SecretKey)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	e := d.WaitFor("s3", "an error state after kill -9", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateError
	})
	t.Logf("state after kill -9: %s: %s", e.State, e.Error)
	if !strings.Contains(e.Error, "s3fs") || !strings.Contains(e.Error, "restarting") {
		t.Errorf("error after kill -9 does not tell the story: %q", e.Error)
	}
	d.WaitFor("s3", "a remount after kill -9", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateMounted && toolPID(t, "s3fs", mp) != 0 && toolPID(t, "s3fs", mp) != pid
	})
	t.Logf("remounted %.1fs after kill -9", time.Since(killed).Seconds())
	if mounts.IsStale(mp) {
		t.Fatal("mount point still stale after the remount")
	}
	if b, err := os.ReadFile(filepath.Join(mp, "w.txt")); err != nil || string(b) != "written" {
		t.Fatalf("read after the remount = %q, %v", b, err)
	}
	if processExists(pid) {
		t.Errorf("killed s3fs (pid %d) was never reaped", pid)
	}

	// kill -9 of the worker: s3fs dies with it (no orphan serving a mount
	// nobody watches) and the agent starts a new worker.
	wpid := d.WorkerPids()["s3"]
	spid := toolPID(t, "s3fs", mp)
	if wpid == 0 || spid == 0 {
		t.Fatalf("worker pid %d, s3fs pid %d", wpid, spid)
	}
	if err := syscall.Kill(wpid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for processAlive(spid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if processAlive(spid) {
		t.Fatalf("s3fs (pid %d) outlived its killed worker (pid %d)", spid, wpid)
	}
	d.WaitFor("s3", "a remount after the worker was killed", func(c client.Connector, ok bool) bool {
		p := toolPID(t, "s3fs", mp)
		return ok && c.State == client.StateMounted && p != 0 && p != spid && processAlive(p)
	})
	if b, err := os.ReadFile(filepath.Join(mp, "a.txt")); err != nil || string(b) != "hello" {
		t.Fatalf("read after the worker restart = %q, %v", b, err)
	}

	// Deactivation unmounts and reaps.
	pid2 := toolPID(t, "s3fs", mp)
	d.WriteConnector("s3", d.MinIOConnector("s3", mi, "daemon-bucket", "data", false, "backend = \"s3fs\"\nmode = \"rw\""))
	d.WaitState("s3", client.StateInactive)
	if ok, _ := mounts.IsMountPoint(mp); ok {
		t.Error("still mounted after deactivation")
	}
	deadline = time.Now().Add(60 * time.Second)
	for processExists(pid2) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if processExists(pid2) {
		t.Errorf("s3fs (pid %d) still exists after deactivation", pid2)
	}
	checkSecretHidden(t, mi.SecretKey)
	if strings.Contains(d.Log(), mi.SecretKey) {
		t.Error("the secret appears in the daemon's log")
	}
	// The worker's log tells what happened to the tool, with the connector id.
	var toolLines []string
	for _, l := range strings.Split(d.Log(), "\n") {
		if strings.Contains(l, "tool exited unexpectedly") && strings.Contains(l, "s3") && strings.Contains(l, "killed") {
			toolLines = append(toolLines, l)
		}
	}
	if len(toolLines) == 0 {
		t.Errorf("the daemon's log does not report the killed s3fs:\n%s", d.Log())
	} else {
		t.Logf("log: %s", toolLines[0])
	}
}

func toolOnPath(name string) string {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// processAlive: pid exists and is not a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
