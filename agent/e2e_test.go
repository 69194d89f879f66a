package agent_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// TestDaemonStartsAndStops: the real binary starts on temporary dirs,
// answers /v1/health, creates its node key, and exits 0 on SIGTERM leaving
// no socket behind.
func TestDaemonStartsAndStops(t *testing.T) {
	d := testenv.StartDaemon(t, testenv.DaemonOptions{})
	var h client.Health
	d.DoJSON("GET", "/v1/health", &h)
	if h.Status != "ok" || h.Mounts != 0 {
		t.Fatalf("health = %+v", h)
	}
	fi, err := os.Stat(d.StateDir + "/node.key")
	if err != nil {
		t.Fatalf("node key not created: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("node key mode %v, want 0600", fi.Mode().Perm())
	}
	var l client.ConnectorList
	d.DoJSON("GET", "/v1/connectors", &l)
	if len(l.Connectors) != 0 {
		b, _ := json.Marshal(l)
		t.Fatalf("connectors = %s, want none", b)
	}
	d.Stop()
	if _, err := os.Stat(d.Socket); !os.IsNotExist(err) {
		t.Errorf("socket %s left behind after stop (err %v)", d.Socket, err)
	}
	out, err := exec.Command(d.Bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "s3mountd ") {
		t.Errorf("s3mountd --version: %q, %v", out, err)
	}
	// a stale socket file (a killed daemon's) is replaced at start
	d.Restart()
	d.Kill9()
	if _, err := os.Stat(d.Socket); err != nil {
		t.Fatalf("expected a stale socket after kill -9: %v", err)
	}
	d.Restart()
	d.DoJSON("GET", "/v1/health", &h)
}

var testObjects = map[string]string{
	"hello.txt":    "hello from s3mounts\n",
	"dir/a.csv":    "a,b\n1,2\n",
	"dir/sub/b.md": "# b\n",
}

func readMounted(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s through the mount: %v", path, err)
	}
	return string(b)
}

func countMounts(list []string, mp string) int {
	n := 0
	for _, m := range list {
		if m == mp {
			n++
		}
	}
	return n
}

func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

// TestEndToEnd is the "Done means", through the real binaries,
// MinIO and FUSE, for each backend that runs here.
func TestEndToEnd(t *testing.T) {
	for _, backend := range []string{"default", "s3fs"} {
		t.Run(backend, func(t *testing.T) {
			testenv.RequireFUSE(t)
			if backend == "s3fs" {
				testenv.RequireBinary(t, "s3fs", false)
			}
			endToEnd(t, backend)
		})
	}
}

func endToEnd(t *testing.T, backend string) {
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "data", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	extra := fmt.Sprintf("backend = %q\n", backend)
	good := d.MinIOConnector("data", m, "data", "datasets", true, extra)
	mp := filepath.Join(d.ProjectRoot, "datasets")

	// 1. drop an active connector file: the bucket's objects appear
	t.Logf("%s step 1: drop an active connector file: the bucket's objects appear", time.Now().Format("15:04:05.000"))
	d.WriteConnector("data", good)
	c := d.WaitState("data", client.StateMounted)
	if c.MountPath != mp {
		t.Fatalf("mount_path = %q, want %q", c.MountPath, mp)
	}
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("hello.txt = %q", got)
	}
	if got := readMounted(t, filepath.Join(mp, "dir/a.csv")); got != testObjects["dir/a.csv"] {
		t.Fatalf("dir/a.csv = %q", got)
	}
	pid := d.WorkerPids()["data"]
	if pid == 0 || !procAlive(pid) {
		t.Fatalf("no live worker recorded: %v", d.WorkerPids())
	}
	if backend == "default" {
		// The worker's staging space reaches the connector's view.
		c = d.WaitFor("data", "staging_bytes", func(c client.Connector, ok bool) bool { return ok && c.StagingBytes != nil })
		if out, _ := d.RunCtl("status", "data"); !strings.Contains(out, "Staging:") || !strings.Contains(out, "in use") {
			t.Errorf("s3mountctl status does not show the staging space:\n%s", out)
		}
	}

	// files API through the worker
	var files client.Files
	d.DoJSON("GET", "/v1/connectors/data/files?path=dir", &files)
	names := map[string]client.Entry{}
	for _, e := range files.Entries {
		names[e.Name] = e
	}
	if e, ok := names["a.csv"]; !ok || e.Type != "file" || e.Path != filepath.Join(mp, "dir/a.csv") || e.S3URI != "s3://data/dir/a.csv" {
		t.Errorf("files(dir) = %+v", files)
	}
	if e, ok := names["sub"]; !ok || e.Type != "dir" {
		t.Errorf("files(dir) has no dir sub: %+v", files)
	}

	// 2. break the file: the mount survives, the state names file:line
	t.Logf("%s step 2: break the file: the mount survives, the state names file:line", time.Now().Format("15:04:05.000"))
	d.WriteConnector("data", "name = \"broken\"\nendpoint = \"x\"\nbucket = = \"data\"\n")
	c = d.WaitFor("data", "a file:line error", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateError && c.Error != ""
	})
	if !regexp.MustCompile(`data\.toml:3`).MatchString(c.Error) {
		t.Errorf("error %q does not name data.toml:3", c.Error)
	}
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("mount broke with the file: %q", got)
	}
	if p := d.WorkerPids()["data"]; p != pid {
		t.Fatalf("worker changed from %d to %d on a broken file", pid, p)
	}
	out, _ := d.RunCtl("status", "data")
	if !strings.Contains(out, "data.toml:3") {
		t.Errorf("s3mountctl status does not show the file:line error:\n%s", out)
	}

	// 3. fix it: mounted again, same worker (spec unchanged)
	t.Logf("%s step 3: fix it: mounted again, same worker (spec unchanged)", time.Now().Format("15:04:05.000"))
	d.WriteConnector("data", good)
	d.WaitFor("data", "mounted without error", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateMounted && c.Error == ""
	})
	if p := d.WorkerPids()["data"]; p != pid {
		t.Fatalf("fixing the file remounted (worker %d -> %d); the spec did not change", pid, p)
	}

	// 3b. the secret file rewritten with the same value: untouched;
	t.Logf("%s step 3b: the secret file rewritten with the same value: untouched;", time.Now().Format("15:04:05.000"))
	// rotated: remounted with the new secret (a wrong one fails, visibly)
	d.WriteSecret("data-key", m.SecretKey)
	time.Sleep(500 * time.Millisecond) // debounce + re-read
	d.WaitState("data", client.StateMounted)
	if p := d.WorkerPids()["data"]; p != pid {
		t.Fatalf("rewriting the secret unchanged remounted (worker %d -> %d)", pid, p)
	}
	// (a backend may check the key at mount and fail, or mount and fail
	// on use: either way the old worker must be replaced)
	d.WriteSecret("data-key", "not-the-secret")
	d.WaitFor("data", "a remount with the rotated (wrong) secret", func(c client.Connector, ok bool) bool {
		p := d.WorkerPids()["data"]
		return ok && p != pid && (c.State == client.StateError || (c.State == client.StateMounted && p != 0))
	})
	wrongPid := d.WorkerPids()["data"]
	d.WriteSecret("data-key", m.SecretKey)
	d.WaitFor("data", "mounted with the restored secret", func(c client.Connector, ok bool) bool {
		p := d.WorkerPids()["data"]
		return ok && c.State == client.StateMounted && c.Error == "" && p != 0 && p != pid && p != wrongPid
	})
	if n := countMounts(d.Mounts(), mp); n != 1 {
		t.Fatalf("%s mounted %d times after the secret rotated", mp, n)
	}
	pid = d.WorkerPids()["data"]
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("after secret rotation: %q", got)
	}

	// 4. deactivate a busy mount through the API: detached lazily, said
	t.Logf("%s step 4: deactivate a busy mount through the API: detached lazily, said", time.Now().Format("15:04:05.000"))
	// in error, the open file keeps working; then activate again
	busy, err := os.Open(filepath.Join(mp, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	d.DoJSON("POST", "/v1/connectors/data/deactivate", &c)
	if c.State != client.StateInactive || c.Active {
		t.Fatalf("after deactivate: %+v", c)
	}
	if !strings.Contains(c.Error, "lazily") {
		t.Errorf("busy deactivation: error %q does not say the mount was detached lazily", c.Error)
	}
	buf := make([]byte, 5)
	if _, err := busy.ReadAt(buf, 0); backend == "default" && (err != nil || string(buf) != "hello") {
		// (s3fs: the mounts backend ends the tool on a lazy detach)
		t.Errorf("open file broke on lazy detach: %q %v", buf, err)
	}
	busy.Close()
	if countMounts(d.Mounts(), mp) != 0 {
		t.Fatalf("still mounted after deactivate: %v", d.Mounts())
	}
	if _, err := os.Stat(mp); !os.IsNotExist(err) {
		t.Errorf("mount dir not removed after deactivate: %v", err)
	}
	d.DoJSON("POST", "/v1/connectors/data/activate", &c)
	if c.State != client.StateMounted {
		t.Fatalf("after activate: %+v", c)
	}
	pid = d.WorkerPids()["data"]

	// 5. kill -9 the daemon: the mount keeps serving; a restart adopts it
	t.Logf("%s step 5: kill -9 the daemon: the mount keeps serving; a restart adopts it", time.Now().Format("15:04:05.000"))
	d.Kill9()
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("mount stopped serving when the daemon died: %q", got)
	}
	d.Restart()
	d.WaitState("data", client.StateMounted)
	if p := d.WorkerPids()["data"]; p != pid || !procAlive(pid) {
		t.Fatalf("restart did not adopt worker %d (now %d)", pid, p)
	}
	if n := countMounts(d.Mounts(), mp); n != 1 {
		t.Fatalf("%s mounted %d times after restart", mp, n)
	}
	if !strings.Contains(d.Log(), "adopted") {
		t.Errorf("daemon log does not say it adopted the worker")
	}

	// 5b. a restart while the file is broken keeps the working mount
	t.Logf("%s step 5b: a restart while the file is broken keeps the working mount", time.Now().Format("15:04:05.000"))
	d.Kill9()
	d.WriteConnector("data", "name = \"broken\"\nbucket = = \"data\"\n")
	d.Restart()
	c = d.WaitFor("data", "the file error after a restart", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateError && strings.Contains(c.Error, "data.toml:2")
	})
	time.Sleep(300 * time.Millisecond)
	if p := d.WorkerPids()["data"]; p != pid || !procAlive(pid) {
		t.Fatalf("restart with a broken file replaced worker %d (now %d): %+v", pid, p, c)
	}
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("restart with a broken file broke the mount: %q", got)
	}
	d.WriteConnector("data", good)
	d.WaitFor("data", "mounted without error", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateMounted && c.Error == ""
	})
	if p := d.WorkerPids()["data"]; p != pid {
		t.Fatalf("fixing the file after a restart remounted (worker %d -> %d)", pid, p)
	}

	// 6. kill -9 the worker: restarted with backoff, the state says why
	t.Logf("%s step 6: kill -9 the worker: restarted with backoff, the state says why", time.Now().Format("15:04:05.000"))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c = d.WaitFor("data", "an error naming the worker's death", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateError && strings.Contains(c.Error, "restarting in")
	})
	t.Logf("after killing the worker: %s", c.Error)
	d.WaitState("data", client.StateMounted)
	np := d.WorkerPids()["data"]
	if np == pid || np == 0 {
		t.Fatalf("no new worker after kill: %d", np)
	}
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("remounted mount does not serve: %q", got)
	}
	if n := countMounts(d.Mounts(), mp); n != 1 {
		t.Fatalf("%s mounted %d times after the worker restart", mp, n)
	}

	// 6b. daemon and worker both killed: the restart cleans the dead mount
	t.Logf("%s step 6b: daemon and worker both killed: the restart cleans the dead mount", time.Now().Format("15:04:05.000"))
	// and mounts again, once
	d.Kill9()
	syscall.Kill(np, syscall.SIGKILL)
	for procAlive(np) {
		time.Sleep(10 * time.Millisecond)
	}
	d.Restart()
	d.WaitState("data", client.StateMounted)
	if p := d.WorkerPids()["data"]; p == np || p == 0 {
		t.Fatalf("no new worker after both were killed: %d", p)
	}
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("after restart over a dead mount: %q", got)
	}
	if n := countMounts(d.Mounts(), mp); n != 1 {
		t.Fatalf("%s mounted %d times after restart over a dead mount", mp, n)
	}
	np = d.WorkerPids()["data"]

	// 6c. the file deleted while the daemon is down: the restart stops the
	t.Logf("%s step 6c: the file deleted while the daemon is down: the restart stops the", time.Now().Format("15:04:05.000"))
	// unwanted worker
	d.Kill9()
	d.RemoveConnector("data")
	d.Restart()
	if _, ok := d.Connector("data"); ok {
		t.Fatal("deleted connector still listed after restart")
	}
	// (the API answers while the restart is still adopting and stopping)
	deadline := time.Now().Add(2 * time.Minute)
	for countMounts(d.Mounts(), mp) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if countMounts(d.Mounts(), mp) != 0 {
		t.Fatalf("unwanted mount kept after restart: %v", d.Mounts())
	}
	for procAlive(np) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if procAlive(np) {
		t.Fatalf("unwanted worker %d still running after restart", np)
	}
	d.WriteConnector("data", good)
	d.WaitState("data", client.StateMounted)
	np = d.WorkerPids()["data"]

	// 7. delete the file: unmounted and gone
	t.Logf("%s step 7: delete the file: unmounted and gone", time.Now().Format("15:04:05.000"))
	d.RemoveConnector("data")
	d.WaitState("data", "")
	if countMounts(d.Mounts(), mp) != 0 {
		t.Fatalf("still mounted after the file was deleted: %v", d.Mounts())
	}
	if procAlive(np) {
		t.Fatalf("worker %d still running after the file was deleted", np)
	}

	// 8. SIGTERM: exit 0, no mount left
	t.Logf("%s step 8: SIGTERM: exit 0, no mount left", time.Now().Format("15:04:05.000"))
	d.WriteConnector("data", good)
	d.WaitState("data", client.StateMounted)
	np = d.WorkerPids()["data"]
	d.Stop()
	if left := d.Mounts(); len(left) != 0 {
		t.Fatalf("mounts left after SIGTERM: %v", left)
	}
	deadline = time.Now().Add(60 * time.Second)
	for procAlive(np) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if procAlive(np) {
		t.Fatalf("worker %d still running after SIGTERM", np)
	}
}

// TestSecretNeverExposed: the secret key is in no process's argv, in no
// environment of the worker or daemon, and in no log line.
func TestSecretNeverExposed(t *testing.T) {
	for _, backend := range []string{"default", "s3fs"} {
		t.Run(backend, func(t *testing.T) {
			testenv.RequireFUSE(t)
			if backend == "s3fs" {
				testenv.RequireBinary(t, "s3fs", false)
			}
			secretNeverExposed(t, backend)
		})
	}
}

func secretNeverExposed(t *testing.T, backend string) {
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "sec", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\nlog_level = \"debug\"\n"})
	d.WriteConnector("sec", d.MinIOConnector("sec", m, "sec", "sec", true, fmt.Sprintf("backend = %q", backend)))
	d.WaitState("sec", client.StateMounted)
	if got := readMounted(t, filepath.Join(d.ProjectRoot, "sec", "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("hello.txt = %q", got)
	}
	secret := m.SecretKey
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), secret) {
			// MinIO itself gets the secret through its environment, never argv
			t.Errorf("secret in %s: %q", p, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	for _, pid := range []int{d.Pid(), d.WorkerPids()["sec"]} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatalf("environ of %d: %v", pid, err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("secret in the environment of pid %d", pid)
		}
	}
	// activity that logs: deactivate, activate, a broken file
	var c client.Connector
	d.DoJSON("POST", "/v1/connectors/sec/deactivate", &c)
	d.DoJSON("POST", "/v1/connectors/sec/activate", &c)
	d.Stop()
	if strings.Contains(d.Log(), secret) {
		t.Errorf("the secret appears in the daemon's log")
	}
	rec, _ := filepath.Glob(filepath.Join(d.StateDir, "workers", "*"))
	for _, f := range rec {
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("worker record %s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

// TestSlowMountDoesNotBlockOthers: a connector whose endpoint accepts
// connections and never answers is still mounting (or failing) while
// another connector, dropped after it, mounts and serves.
func TestSlowMountDoesNotBlockOthers(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "s3fs", false)
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c) // accept, never answer
		}
	}()
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "fast", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	d.WriteConnector("slow", fmt.Sprintf(`name = "slow"
endpoint = "http://%s"
bucket = "slow-bucket"
mount_name = "slow"
active = true
backend = "s3fs"
stall_timeout = "30s"
[credentials]
anonymous = true
`, hole.Addr()))
	d.WaitState("slow", client.StateMounting)
	d.WriteConnector("fast", d.MinIOConnector("fast", m, "fast", "fast", true, `backend = "s3fs"`))
	d.WaitState("fast", client.StateMounted)
	if got := readMounted(t, filepath.Join(d.ProjectRoot, "fast", "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("fast: %q", got)
	}
	if c, _ := d.Connector("slow"); c.State == client.StateMounted {
		t.Logf("note: the black-hole connector mounted (the backend does not check the bucket at mount)")
	} else {
		t.Logf("slow connector meanwhile: %s %s", c.State, c.Error)
	}
	d.Stop()
}

// TestActivationSurvivesRestart: an activation made through the API
// survives a stop and start of the agent; a later change of `active` in
// the file wins over it.
func TestActivationSurvivesRestart(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "ovr", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	off := d.MinIOConnector("o", m, "ovr", "o", false, "")
	d.WriteConnector("o", off)
	c := d.WaitState("o", client.StateInactive)
	if c.Active {
		t.Fatalf("inactive file shows active: %+v", c)
	}
	d.DoJSON("POST", "/v1/connectors/o/activate", &c)
	if c.State != client.StateMounted || !c.Active {
		t.Fatalf("after activate: %+v", c)
	}
	d.Stop() // unmounts everything
	if len(d.Mounts()) != 0 {
		t.Fatalf("mounts after stop: %v", d.Mounts())
	}
	d.Restart()
	d.WaitState("o", client.StateMounted) // the activation persisted
	if got := readMounted(t, filepath.Join(d.ProjectRoot, "o", "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("after restart: %q", got)
	}
	// the file changes active (false -> true -> false): the file wins
	// (the description shows when the agent has read the middle version)
	d.WriteConnector("o", d.MinIOConnector("o", m, "ovr", "o", true, `description = "v2"`))
	d.WaitFor("o", "the active=true version read", func(c client.Connector, ok bool) bool {
		return ok && c.Description == "v2" && c.State == client.StateMounted
	})
	d.WriteConnector("o", off)
	c = d.WaitState("o", client.StateInactive)
	if c.Active || len(d.Mounts()) != 0 {
		t.Fatalf("file's later active=false did not win: %+v, mounts %v", c, d.Mounts())
	}
	// and a deactivation through the API of an active file persists too
	d.WriteConnector("o", d.MinIOConnector("o", m, "ovr", "o", true, ""))
	d.WaitState("o", client.StateMounted)
	d.DoJSON("POST", "/v1/connectors/o/deactivate", &c)
	d.Kill9()
	d.Restart()
	c = d.WaitState("o", client.StateInactive)
	if c.Active || len(d.Mounts()) != 0 {
		t.Fatalf("API deactivation lost across a restart: %+v, mounts %v", c, d.Mounts())
	}
}
