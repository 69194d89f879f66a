package agent_test

// End-to-end tests of docs/SECURITY.md's boundaries that the agent holds:
// mount names, the last good version across a restart. Real daemon, real
// MinIO, real FUSE.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// TestMountNameHeldByItsHolder: a working mount keeps its mount_name when a
// file that sorts earlier claims the same name (active or not): the
// claimant is in error naming the holder, the holder keeps serving with
// the same worker; once the holder is removed, the claimant takes the name.
func TestMountNameHeldByItsHolder(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "held", map[string]string{"hello.txt": "from the holder\n"})
	m.MakeBucket(t, "other", map[string]string{"hello.txt": "from the claimant\n"})
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	mp := filepath.Join(d.ProjectRoot, "shared")

	d.WriteConnector("zz-holder", d.MinIOConnector("zz-holder", m, "held", "shared", true, ""))
	d.WaitState("zz-holder", client.StateMounted)
	pid := d.WorkerPids()["zz-holder"]
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != "from the holder\n" {
		t.Fatalf("holder serves %q", got)
	}

	for _, active := range []bool{false, true} {
		d.WriteConnector("aa-claimant", d.MinIOConnector("aa-claimant", m, "other", "shared", active, ""))
		c := d.WaitFor("aa-claimant", "a mount_name error", func(c client.Connector, ok bool) bool {
			return ok && c.State == client.StateError && strings.Contains(c.Error, "mount_name")
		})
		t.Logf("active=%v claimant: %s", active, c.Error)
		if !strings.Contains(c.Error, "held by connector zz-holder") {
			t.Errorf("active=%v: claimant's error %q does not name the holder (root may view it)", active, c.Error)
		}
		h, _ := d.Connector("zz-holder")
		if h.State != client.StateMounted || h.Error != "" {
			t.Fatalf("active=%v: holder is %s (%q), want mounted without error", active, h.State, h.Error)
		}
		if p := d.WorkerPids()["zz-holder"]; p != pid || !procAlive(pid) {
			t.Fatalf("active=%v: holder's worker changed %d -> %d", active, pid, p)
		}
		if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != "from the holder\n" {
			t.Fatalf("active=%v: the mount now serves %q", active, got)
		}
		if n := countMounts(d.Mounts(), mp); n != 1 {
			t.Fatalf("active=%v: %s mounted %d times", active, mp, n)
		}
		// activation through the API is refused while the name is held
		code, body := d.Do("POST", "/v1/connectors/aa-claimant/activate")
		if code != 409 || !strings.Contains(string(body), "zz-holder") {
			t.Errorf("active=%v: activate claimant = %d %s, want 409 naming the holder", active, code, body)
		}
	}

	// the holder goes: the claimant (active) takes the name
	d.RemoveConnector("zz-holder")
	d.WaitFor("aa-claimant", "mounted", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateMounted && c.Error == ""
	})
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != "from the claimant\n" {
		t.Fatalf("after the holder left the mount serves %q", got)
	}
	if n := countMounts(d.Mounts(), mp); n != 1 {
		t.Fatalf("%s mounted %d times", mp, n)
	}
}

// TestLastGoodSurvivesRestart: a connector whose file breaks stays mounted
// from its last good version across a full restart (SIGTERM unmounts
// everything; the next start mounts it again from <state_dir>/lastgood.json),
// with the file's error shown. The state file is 0600 and holds no secret.
func TestLastGoodSurvivesRestart(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "data", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	mp := filepath.Join(d.ProjectRoot, "datasets")
	good := d.MinIOConnector("data", m, "data", "datasets", true, "")
	d.WriteConnector("data", good)
	d.WaitState("data", client.StateMounted)

	d.WriteConnector("data", "name = \"broken\"\nbucket = = \"data\"\n")
	d.WaitFor("data", "the file error", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateError && strings.Contains(c.Error, "data.toml:2")
	})
	d.Stop() // SIGTERM: every mount is unmounted
	if n := countMounts(d.Mounts(), mp); n != 0 {
		t.Fatalf("%s still mounted after SIGTERM", mp)
	}
	lg := filepath.Join(d.StateDir, "lastgood.json")
	fi, err := os.Stat(lg)
	if err != nil {
		t.Fatalf("no last good versions persisted: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", lg, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(lg)
	if strings.Contains(string(b), m.SecretKey) {
		t.Fatalf("%s holds the secret in the clear", lg)
	}

	d.Restart()
	c := d.WaitFor("data", "mounted from the last good version, with the file's error", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateError && strings.Contains(c.Error, "data.toml:2") &&
			strings.Contains(c.Error, "last good version stays mounted")
	})
	t.Logf("after restart: %s", c.Error)
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("after restart the mount serves %q", got)
	}
	pid := d.WorkerPids()["data"]
	d.WriteConnector("data", good)
	d.WaitFor("data", "mounted without error", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateMounted && c.Error == ""
	})
	if p := d.WorkerPids()["data"]; p != pid {
		t.Errorf("fixing the file remounted (worker %d -> %d)", pid, p)
	}
	// a file removed while the agent is down is forgotten, not mounted
	d.Stop()
	d.RemoveConnector("data")
	d.Restart()
	d.WaitState("data", "")
	if n := countMounts(d.Mounts(), mp); n != 0 {
		t.Fatalf("a removed connector was mounted from its last good version")
	}
}

// TestMetricsListenAggregatesOnly: metrics_listen (TCP, no caller identity)
// serves per-node aggregates only, no connector id or state, unless
// metrics_connectors = true; the socket's /metrics for admins keeps every
// series.
func TestMetricsListenAggregatesOnly(t *testing.T) {
	for _, full := range []bool{false, true} {
		port := testenv.FreePort(t)
		toml := fmt.Sprintf("metrics_listen = \"127.0.0.1:%d\"\n", port)
		if full {
			toml += "metrics_connectors = true\n"
		}
		d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: toml})
		d.WriteConnector("hidden-team-x", "name = \"x\"\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"bucket\"\nmount_name = \"x\"\nactive = false\n[credentials]\nanonymous = true\n")
		d.WaitState("hidden-team-x", client.StateInactive)
		var body string
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = string(b)
				if strings.Contains(body, `s3mounts_node_connectors{state="inactive"} 1`) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("metrics_connectors=%v: no node aggregate on %d within 1 min (err %v):\n%s", full, port, err, body)
			}
		}
		if got := strings.Contains(body, "hidden-team-x"); got != full {
			t.Errorf("metrics_connectors=%v: connector id in the TCP metrics = %v, want %v", full, got, full)
		}
		if got := strings.Contains(body, "s3mounts_connector_state{"); got != full {
			t.Errorf("metrics_connectors=%v: per-connector states in the TCP metrics = %v, want %v", full, got, full)
		}
		code, sock := d.Do("GET", "/metrics")
		if code != 200 || !strings.Contains(string(sock), `s3mounts_connector_state{connector="hidden-team-x"`) {
			t.Errorf("socket /metrics for root: %d, lacks the per-connector series", code)
		}
		d.Stop()
	}
}
