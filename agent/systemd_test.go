package agent_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// TestSystemdUnitsVerify checks packaging/systemd with systemd-analyze.
func TestSystemdUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIP: systemd-analyze is not installed (Debian package systemd)")
	}
	bin, _ := testenv.Binaries(t)
	dir := t.TempDir()
	src := filepath.Join(testenv.RepoRoot(), "packaging", "systemd")
	for _, name := range []string{"s3mountd.service", "s3mountd.socket"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		// verify checks that ExecStart exists: point it at the built binary
		s := strings.ReplaceAll(string(b), "/usr/bin/s3mountd", bin)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(sa, "verify", filepath.Join(dir, "s3mountd.service"), filepath.Join(dir, "s3mountd.socket")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	unit, _ := os.ReadFile(filepath.Join(src, "s3mountd.service"))
	for _, want := range []string{"Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "KillMode=process", "Restart=always", "DeviceAllow=/dev/fuse rwm", "RuntimeDirectoryPreserve=yes"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("s3mountd.service lacks %q", want)
		}
	}
	for _, bad := range []string{"\nProtectSystem=", "\nPrivateTmp=", "\nProtectHome=", "\nPrivateDevices=", "\nPrivateMounts="} {
		if strings.Contains(string(unit), bad) {
			t.Errorf("s3mountd.service has %q: a mount namespace of its own hides the mounts from users", strings.TrimSpace(bad))
		}
	}
	sock, _ := os.ReadFile(filepath.Join(src, "s3mountd.socket"))
	for _, want := range []string{"ListenStream=/run/s3mounts/agent.sock", "SocketMode=0660", "SocketGroup=s3mounts"} {
		if !strings.Contains(string(sock), want) {
			t.Errorf("s3mountd.socket lacks %q", want)
		}
	}
}

// notifyListener is a stand-in for systemd's NOTIFY_SOCKET.
type notifyListener struct {
	path string
	mu   sync.Mutex
	msgs []string
	conn *net.UnixConn
}

func listenNotify(t *testing.T) *notifyListener {
	dir, err := os.MkdirTemp("", "s3n-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	n := &notifyListener{path: filepath.Join(dir, "notify")}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n.conn = c
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, strings.Split(strings.TrimSpace(string(buf[:k])), "\n")...)
			n.mu.Unlock()
		}
	}()
	return n
}

func (n *notifyListener) has(prefix string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

func (n *notifyListener) wait(t *testing.T, prefix string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !n.has(prefix) {
		if time.Now().After(deadline) {
			n.mu.Lock()
			defer n.mu.Unlock()
			t.Fatalf("no %q on NOTIFY_SOCKET; got %q", prefix, n.msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSystemdNotify: READY=1 after the socket listens, STATUS= with the
// mount count, WATCHDOG=1 pings when WATCHDOG_USEC is set, STOPPING=1 on
// SIGTERM.
func TestSystemdNotify(t *testing.T) {
	n := listenNotify(t)
	port := testenv.FreePort(t)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Env: []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=300000"},
		AgentTOML: fmt.Sprintf("metrics_listen = \"127.0.0.1:%d\"\n", port)})
	n.wait(t, "READY=1")
	n.wait(t, "STATUS=0 of 0 connectors mounted")
	n.wait(t, "WATCHDOG=1")
	if n.has("STOPPING=1") {
		t.Fatal("STOPPING=1 before any stop")
	}
	// a connector that cannot mount (nothing listens there) counts in M
	d.WriteConnector("bad", `name = "bad"
endpoint = "http://127.0.0.1:1"
bucket = "bad-bucket"
mount_name = "bad"
active = true
backend = "s3fs"
[credentials]
anonymous = true
`)
	d.WaitState("bad", client.StateError)
	n.wait(t, "STATUS=0 of 1 connectors mounted")

	// metrics_listen serves /metrics over TCP
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatalf("metrics_listen: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// per-node aggregates only (metrics_connectors is not set)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "s3mounts_node_reconcile_errors_total") {
		t.Errorf("metrics: HTTP %d, no s3mounts_node_reconcile_errors_total:\n%.500s", resp.StatusCode, body)
	}
	d.Stop()
	n.wait(t, "STOPPING=1")
}

// TestSocketActivation: under systemd-socket-activate the daemon serves on
// the socket it is given (LISTEN_FDS) instead of creating its own.
func TestSocketActivation(t *testing.T) {
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("SKIP: systemd-socket-activate is not installed (Debian package systemd)")
	}
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Wrapper: []string{sa, "-l", "SOCKET"}})
	var h client.Health
	d.DoJSON("GET", "/v1/health", &h)
	if h.Status != "ok" {
		t.Fatalf("health %+v", h)
	}
	if !strings.Contains(d.Log(), "using the socket passed by systemd") {
		t.Fatalf("daemon did not use the passed socket; log:\n%s", d.Log())
	}
	d.Stop()
}

// TestReloadReexecUpgrade: SIGHUP after the executable was replaced on disk
// re-executes it in place (same pid), keeps the socket answering and keeps
// the worker and its mount (same worker pid, file still readable).
func TestReloadReexecUpgrade(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "s3fs", false)
	bin, _ := testenv.Binaries(t)
	dir := t.TempDir()
	exe := filepath.Join(dir, "s3mountd")
	copyFile(t, bin, exe)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "upgrade", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Bin: exe, AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	d.WriteConnector("up", d.MinIOConnector("up", m, "upgrade", "up", true, `backend = "s3fs"`))
	d.WaitState("up", client.StateMounted)
	pid, wpid := d.Pid(), d.WorkerPids()["up"]
	f, err := os.Open(filepath.Join(d.ProjectRoot, "up", "hello.txt")) // an open file across the upgrade
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// a plain reload: nothing changes
	d.Signal(syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	d.WaitState("up", client.StateMounted)
	if strings.Contains(d.Log(), "re-executing") {
		t.Fatal("re-executed although the binary did not change")
	}

	// "upgrade": a new file renamed over the executable
	copyFile(t, bin, exe+".new")
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(2 * time.Minute)
	for strings.Count(d.Log(), "s3mountd starting") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no re-exec after SIGHUP; log:\n%s", d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c := d.WaitState("up", client.StateMounted)
	if d.Pid() != pid {
		t.Fatalf("daemon pid changed %d -> %d: not an in-place re-exec", pid, d.Pid())
	}
	if p := d.WorkerPids()["up"]; p != wpid {
		t.Fatalf("worker changed across the upgrade: %d -> %d", wpid, p)
	}
	b, err := io.ReadAll(f)
	if err != nil || string(b) != testObjects["hello.txt"] {
		t.Fatalf("open file broke across the upgrade: %q, %v", b, err)
	}
	if c.Error != "" {
		t.Errorf("error after upgrade: %s", c.Error)
	}

	// changed agent settings: applied by a re-exec on SIGHUP, mounts stay
	cfg, err := os.ReadFile(d.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.ConfigPath, append(cfg, []byte("log_level = \"debug\"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(2 * time.Minute)
	for strings.Count(d.Log(), "s3mountd starting") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no re-exec after a settings change; log:\n%s", d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.WaitState("up", client.StateMounted)
	if p := d.WorkerPids()["up"]; p != wpid || d.Pid() != pid {
		t.Fatalf("settings reload replaced the worker (%d -> %d) or the daemon (%d -> %d)", wpid, p, pid, d.Pid())
	}
	d.Stop()
	if left := d.Mounts(); len(left) != 0 {
		t.Fatalf("mounts left: %v", left)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestSecondSignalExitsAtOnce: while the first SIGTERM's unmounts are in
// progress (a busy mount retried before the lazy detach), a second SIGTERM
// exits at once with status 1, leaving the unmount in flight to its worker;
// the next start and stop clean up whatever is left.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "s3fs", false)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "twice", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	d.WriteConnector("tw", d.MinIOConnector("tw", m, "twice", "tw", true, `backend = "s3fs"`))
	d.WaitState("tw", client.StateMounted)
	// a process with its working directory in the mount keeps it busy
	busy := exec.Command("sleep", "600")
	busy.Dir = filepath.Join(d.ProjectRoot, "tw")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { busy.Process.Kill(); busy.Wait() }()
	wpid := d.WorkerPids()["tw"]

	d.Signal(syscall.SIGTERM)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(d.Log(), "stopping: unmounting every connector") {
		if time.Now().After(deadline) {
			t.Fatal("no stop after SIGTERM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	d.Signal(syscall.SIGTERM)
	select {
	case <-d.Done():
	case <-time.After(60 * time.Second): // "at once": anything but a hang, on a loaded machine
		t.Fatal("second SIGTERM did not end the daemon")
	}
	if !strings.Contains(d.Log(), "second signal") {
		t.Skipf("SKIP: the first stop finished before the second signal arrived; log:\n%s", d.Log())
	}
	var ee *exec.ExitError
	if err := d.ExitErr(); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("forced exit: %v, want exit status 1", err)
	}
	_ = wpid // the worker finishes the unmount it was asked for on its own
	// what the forced exit left is cleaned by the next start's Stop
	busy.Process.Kill()
	busy.Wait()
	d.Restart()
	d.Stop()
	if left := d.Mounts(); len(left) != 0 {
		t.Fatalf("mounts left: %v", left)
	}
}
