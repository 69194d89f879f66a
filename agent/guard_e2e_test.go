package agent_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// TestKilledS3FSWorkerLeavesNoMounts: s3fs mounts on a private directory
// of its worker and the worker's guard serves the mount point. When the
// worker is killed (SIGKILL, s3fs dies with it), the next worker of the
// connector mounts again and nothing of the dead one stays mounted: not
// the guard's dead mount point, not s3fs's private mount.
func TestKilledS3FSWorkerLeavesNoMounts(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "s3fs", false)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "data", map[string]string{"a.txt": "a"})
	d := testenv.StartDaemon(t, testenv.DaemonOptions{})
	d.WriteConnector("live", d.MinIOConnector("live", m, "data", "live", true, "backend = \"s3fs\"\n"))
	waitMounted(t, d, "live")
	mp := filepath.Join(d.ProjectRoot, "live")
	if b, err := os.ReadFile(filepath.Join(mp, "a.txt")); err != nil || string(b) != "a" {
		t.Fatalf("read through the guard: %q %v", b, err)
	}
	if got := mountsUnder(t, d.ProjectRoot); got[mp] != "fuse.s3fs" {
		t.Fatalf("mount point: %v; want fuse.s3fs (the guard)", got)
	}
	pid := d.WorkerPids()["live"]
	if pid == 0 {
		t.Fatal("no worker pid")
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.WaitFor("live", "a new worker mounted", func(c client.Connector, ok bool) bool {
		p := d.WorkerPids()["live"]
		return ok && c.State == client.StateMounted && p != 0 && p != pid
	})
	newPid := d.WorkerPids()["live"]
	if b, err := os.ReadFile(filepath.Join(mp, "a.txt")); err != nil || string(b) != "a" {
		t.Fatalf("read after the new worker mounted: %q %v", b, err)
	}
	dead := "/mounts/live/" + strconv.Itoa(pid)
	if fresh, _ := filepath.Glob(filepath.Join(d.Dir, "*", "mounts", "live", strconv.Itoa(newPid), "tool-*")); len(fresh) == 0 {
		t.Errorf("no private s3fs mount directory of the new worker under %s", d.Dir)
	}
	if old, _ := filepath.Glob(filepath.Join(d.Dir, "*", "mounts", "live", strconv.Itoa(pid))); len(old) != 0 {
		t.Errorf("the dead worker's runtime directory is still there: %v", old)
	}
	for p, fstype := range mountsUnder(t, d.Dir) {
		switch {
		case p == mp:
		case strings.Contains(p, "/mounts/live/"+strconv.Itoa(newPid)+"/"):
		default:
			t.Errorf("left mounted: %s (%s)", p, fstype)
		}
		if strings.Contains(p, dead+"/") {
			t.Errorf("the dead worker's private mount is still there: %s", p)
		}
	}
}
