package agent_test

// The files the agent trusts, through the real daemon: a fifo never blocks
// the loader, files root does not control are errors with the command that
// fixes them, a file that is not a connector is never quoted, and a
// vanished or unsafe connectors directory keeps every mount.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// testUser creates a real user for the test (removed at the end).
func testUser(t *testing.T) (string, int) {
	t.Helper()
	testenv.RequireBinary(t, "useradd", false)
	b := make([]byte, 3)
	rand.Read(b)
	name := "s3tr" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	return name, uid
}

// plainConnector is a valid, inactive connector (nothing is mounted).
func plainConnector(mountName string) string {
	return fmt.Sprintf("name = \"T\"\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"data\"\nmount_name = %q\n\n[credentials]\nanonymous = true\n", mountName)
}

func waitError(d *testenv.Daemon, id string, parts ...string) client.Connector {
	return d.WaitFor(id, "an error with "+strings.Join(parts, " … "), func(c client.Connector, ok bool) bool {
		if !ok || c.State != client.StateError {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(c.Error, p) {
				return false
			}
		}
		return true
	})
}

// TestDaemonTrustsOnlyRootFiles: the rows "mkfifo connectors.d/x.toml",
// "a connector file owned by a user, mode 0666" and "a connector file
// symlinked to a root-only credentials or .env file", through the real
// daemon; `s3mountctl validate` reports the same.
func TestDaemonTrustsOnlyRootFiles(t *testing.T) {
	d := testenv.StartDaemon(t, testenv.DaemonOptions{})
	name, uid := testUser(t)

	// A fifo that sorts first: the loader neither blocks nor skips later files.
	if err := syscall.Mkfifo(filepath.Join(d.ConnectorsDir, "a-fifo.toml"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.WriteConnector("b-good", plainConnector("b"))
	waitError(d, "a-fifo", "not a regular file (it is a fifo")
	d.WaitState("b-good", client.StateInactive)
	d.WriteConnector("c-later", plainConnector("c"))
	d.WaitState("c-later", client.StateInactive)

	// A user's file, mode 0666, that names another connector's secret and
	// an owner: refused with the commands that fix it, never mounted.
	d.WriteSecret("b-key", "sekrit-value")
	evil := filepath.Join(d.ConnectorsDir, "evil.toml")
	if err := os.WriteFile(evil, []byte("name = \"E\"\nendpoint = \"http://127.0.0.1:9\"\nbucket = \"data\"\nmount_name = \"e\"\nactive = true\nowner = \"root\"\n\n[credentials]\naccess_key_id = \"AK\"\nsecret_name = \"b-key\"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(evil, 0o666)
	if err := os.Chown(evil, uid, uid); err != nil {
		t.Fatal(err)
	}
	c := waitError(d, "evil", "owned by uid "+strconv.Itoa(uid)+" ("+name+")", "chown root:root "+evil+" && chmod go-w "+evil)
	if c.Active || c.State == client.StateMounted {
		t.Fatalf("a user's file was acted on: %+v", c)
	}

	// A symlink to a root-only credentials file outside connectors_dir:
	// refused, and nothing of its content is quoted.
	outside := t.TempDir()
	env := filepath.Join(outside, "credentials")
	os.WriteFile(env, []byte("[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = hunter2hunter2\n"), 0o600)
	if err := os.Symlink(env, filepath.Join(d.ConnectorsDir, "creds.toml")); err != nil {
		t.Fatal(err)
	}
	c = waitError(d, "creds", "symlink out of its directory", "connectors_follow_symlinks")
	// a copy (root's, 0600, inside the directory): a syntax error naming the
	// line only
	b, _ := os.ReadFile(env)
	d.WriteConnector("copied", string(b))
	c2 := waitError(d, "copied", "copied.toml:2", "not a TOML value")
	for _, s := range []string{"AKIA", "hunter"} {
		if strings.Contains(c.Error, s) || strings.Contains(c2.Error, s) {
			t.Fatalf("an error quotes the file's content (%q): %q / %q", s, c.Error, c2.Error)
		}
	}

	out, code := d.RunCtl("validate", "--config", d.ConfigPath)
	if code == 0 {
		t.Fatalf("validate exited 0:\n%s", out)
	}
	for _, want := range []string{"a-fifo.toml: is not a regular file (it is a fifo", "chown root:root " + evil + " && chmod go-w " + evil,
		"creds.toml: (→ " + env + ") is a symlink out of its directory", "copied.toml:2: this is not a TOML value"} {
		if !strings.Contains(out, want) {
			t.Errorf("validate does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "AKIA") || strings.Contains(out, "hunter") || strings.Contains(d.Log(), "hunter") || strings.Contains(d.Log(), "AKIAEXAMPLE") {
		t.Errorf("validate or the log quotes the content:\n%s", out)
	}
	if !strings.Contains(out, "6 connector file(s) checked: 2 valid, 4 invalid") {
		t.Errorf("validate summary:\n%s", out)
	}
}

// health reads /v1/health.
func health(d *testenv.Daemon) client.Health {
	var h client.Health
	d.DoJSON("GET", "/v1/health", &h)
	return h
}

func waitHealth(t *testing.T, d *testenv.Daemon, what string, cond func(h client.Health) bool) client.Health {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		h := health(d)
		if cond(h) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("health: no %s within 2 min; last %+v; log:\n%s", what, h, d.Log())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// TestConnectorsDirVanishes: the issue's row "the connectors directory is
// removed (a botched deploy)": every mount stays (same workers, no state
// change at all), the error is logged once and shown by /v1/health until
// the directory returns; then files deleted meanwhile are removed. The
// directory replaced by a symlink, or made writable by others, is treated
// the same with a fix-it message.
func TestConnectorsDirVanishes(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "data", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	d.WriteConnector("keep", d.MinIOConnector("keep", m, "data", "keep", true, ""))
	d.WriteConnector("gone", d.MinIOConnector("gone", m, "data", "gone", true, ""))
	d.WaitState("keep", client.StateMounted)
	d.WaitState("gone", client.StateMounted)
	pids := d.WorkerPids()
	keepFile, _ := os.ReadFile(filepath.Join(d.ConnectorsDir, "keep.toml"))

	// Every event while the directory is away: there must be none.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	es, err := client.New(d.Socket).Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan client.Connector, 100)
	go func() {
		for {
			c, err := es.Next()
			if err != nil {
				close(events)
				return
			}
			events <- c
		}
	}()

	if err := os.RemoveAll(d.ConnectorsDir); err != nil {
		t.Fatal(err)
	}
	h := waitHealth(t, d, "degraded", func(h client.Health) bool { return h.Status == "degraded" })
	if !strings.Contains(h.Error, "connectors directory "+d.ConnectorsDir+" is missing") || h.Mounts != 2 {
		t.Fatalf("health = %+v", h)
	}
	// more re-reads while it is missing: still one log line, nothing moves
	logLines := func() int { return strings.Count(d.Log(), "the connectors directory is unusable") }
	reloads := func() int { return strings.Count(d.Log(), "reload: re-reading every connector file") }
	for i := 0; i < 3; i++ {
		n := reloads()
		d.Signal(syscall.SIGHUP)
		for reloads() == n {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n := logLines(); n != 1 {
		t.Errorf("the directory's error was logged %d times, want once; log:\n%s", n, d.Log())
	}
	out, _ := d.RunCtl("health")
	if !strings.Contains(out, "degraded") || !strings.Contains(out, "error: connectors directory") {
		t.Errorf("s3mountctl health:\n%s", out)
	}
	for _, id := range []string{"keep", "gone"} {
		c, ok := d.Connector(id)
		if !ok || c.State != client.StateMounted {
			t.Fatalf("%s while the directory is missing: %+v (found %v)", id, c, ok)
		}
	}
	if got := d.WorkerPids(); got["keep"] != pids["keep"] || got["gone"] != pids["gone"] {
		t.Fatalf("workers changed while the directory was missing: %v → %v", pids, got)
	}
	if got := readMounted(t, filepath.Join(d.ProjectRoot, "keep", "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("hello.txt = %q", got)
	}

	// Replaced by a symlink to a directory holding both files: refused.
	other := filepath.Join(d.Dir, "other.d")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "keep.toml"), keepFile, 0o600)
	if err := os.Symlink(other, d.ConnectorsDir); err != nil {
		t.Fatal(err)
	}
	waitHealth(t, d, "the symlink's error", func(h client.Health) bool {
		return strings.Contains(h.Error, "is a symlink") && strings.Contains(h.Error, "connectors_follow_symlinks")
	})
	os.Remove(d.ConnectorsDir)
	// A directory others may write: refused with chmod go-w.
	os.Mkdir(d.ConnectorsDir, 0o777)
	os.Chmod(d.ConnectorsDir, 0o777)
	waitHealth(t, d, "the mode's error", func(h client.Health) bool {
		return strings.Contains(h.Error, "chmod go-w "+d.ConnectorsDir)
	})
	select {
	case c := <-events:
		t.Fatalf("a connector changed while the directory was unusable: %+v", c)
	default:
	}
	// missing, symlink, mode: one line each (a re-read between removing the
	// symlink and creating the directory may see it missing once more)
	if n := logLines(); n < 3 || n > 4 {
		t.Errorf("want one log line per distinct directory error (3 or 4), got %d", n)
	}

	// Back, with only keep.toml: keep stays as it is, gone is removed.
	tmp := filepath.Join(d.ConnectorsDir, ".keep.toml.tmp")
	os.WriteFile(tmp, keepFile, 0o600)
	os.Rename(tmp, filepath.Join(d.ConnectorsDir, "keep.toml"))
	os.Chmod(d.ConnectorsDir, 0o755)
	waitHealth(t, d, "ok", func(h client.Health) bool { return h.Status == "ok" && h.Error == "" })
	d.WaitState("gone", "")
	if c, _ := d.Connector("keep"); c.State != client.StateMounted {
		t.Fatalf("keep after the directory returned: %+v", c)
	}
	if got := d.WorkerPids(); got["keep"] != pids["keep"] {
		t.Fatalf("keep was remounted: %v → %v", pids, got)
	}
	if n := countMounts(d.Mounts(), filepath.Join(d.ProjectRoot, "gone")); n != 0 {
		t.Fatalf("gone is still mounted")
	}
	if !strings.Contains(d.Log(), "the connectors directory is usable again") {
		t.Error("the directory's return was not logged")
	}
}

// TestConnectorsDirMissingAtRestart: the agent is killed (its workers keep
// serving) and starts again while the connectors directory is missing: it
// adopts every live mount and keeps it, showing the directory's error,
// until the directory is back.
func TestConnectorsDirMissingAtRestart(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "data", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	d.WriteConnector("keep", d.MinIOConnector("keep", m, "data", "keep", true, ""))
	d.WaitState("keep", client.StateMounted)
	pid := d.WorkerPids()["keep"]
	keepFile, _ := os.ReadFile(filepath.Join(d.ConnectorsDir, "keep.toml"))

	d.Kill9()
	if err := os.RemoveAll(d.ConnectorsDir); err != nil {
		t.Fatal(err)
	}
	d.Restart()
	h := waitHealth(t, d, "degraded", func(h client.Health) bool { return h.Status == "degraded" })
	if !strings.Contains(h.Error, "is missing") {
		t.Fatalf("health = %+v", h)
	}
	c := d.WaitFor("keep", "adopted and mounted", func(c client.Connector, ok bool) bool {
		return ok && strings.Contains(c.Error, "is missing") && countMounts(d.Mounts(), filepath.Join(d.ProjectRoot, "keep")) == 1
	})
	if got := d.WorkerPids()["keep"]; got != pid {
		t.Fatalf("worker replaced at restart: %d → %d (%+v)", pid, got, c)
	}
	if got := readMounted(t, filepath.Join(d.ProjectRoot, "keep", "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("hello.txt = %q", got)
	}

	os.Mkdir(d.ConnectorsDir, 0o755)
	tmp := filepath.Join(d.ConnectorsDir, ".keep.toml.tmp")
	os.WriteFile(tmp, keepFile, 0o600)
	os.Rename(tmp, filepath.Join(d.ConnectorsDir, "keep.toml"))
	waitHealth(t, d, "ok", func(h client.Health) bool { return h.Status == "ok" })
	d.WaitFor("keep", "mounted without an error", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateMounted && c.Error == ""
	})
	if got := d.WorkerPids()["keep"]; got != pid {
		t.Fatalf("keep was remounted when the directory returned: %d → %d", pid, got)
	}
}
