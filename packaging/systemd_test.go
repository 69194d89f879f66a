package packaging

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/internal/testenv"
)

// The rootfs every container test boots: Debian 12 minbase with systemd,
// dbus and fuse3, made by debootstrap once and cached as a tarball.
const (
	rootfsSuite = "bookworm"
	// procps: /bin/kill of the unit's ExecReload (the package depends on it).
	rootfsIncludes = "systemd,dbus,fuse3,procps"
	containerPATH  = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

func rootfsCache() string {
	return filepath.Join(testenv.RepoRoot(), ".tools", "nspawn",
		fmt.Sprintf("%s-minbase-%s.tar", rootfsSuite, strings.ReplaceAll(rootfsIncludes, ",", "-")))
}

// ensureRootfsCache makes the cached tarball with debootstrap when it is
// missing. A Debian mirror that cannot be reached skips the test.
func ensureRootfsCache(t *testing.T) string {
	t.Helper()
	cache := rootfsCache()
	if _, err := os.Stat(cache); err == nil {
		return cache
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(filepath.Dir(cache), "debootstrap-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	t.Logf("building the container rootfs with debootstrap (about a minute, cached in %s)", cache)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase", "--include="+rootfsIncludes, rootfsSuite, dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s := string(out)
		// debootstrap's words for "the mirror is not there".
		for _, n := range []string{"Failed getting release file", "Couldn't download", "Temporary failure resolving",
			"Could not resolve", "Network is unreachable", "Connection refused", "Connection timed out", "Failed to connect"} {
			if strings.Contains(s, n) {
				t.Skipf("SKIP: debootstrap cannot reach the Debian mirror (%s); the real-systemd test needs it once, then runs from %s.\n%s", n, cache, tail(s, 1500))
			}
		}
		t.Fatalf("debootstrap --variant=minbase --include=%s %s: %v\n%s", rootfsIncludes, rootfsSuite, err, tail(s, 3000))
	}
	// MkdirTemp made it 0700: the container's / must be 0755 or no
	// system user (messagebus) can reach anything.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := cache + ".tmp"
	if out, err := exec.Command("tar", "--numeric-owner", "--xattrs", "-C", dir, "-cf", tmp, ".").CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("tar the rootfs: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, cache); err != nil {
		t.Fatal(err)
	}
	return cache
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// container is a Debian system booted by systemd-nspawn.
type container struct {
	t      *testing.T
	dir    string // rootfs on the host
	nspawn *exec.Cmd
	done   chan struct{}
	pid    int // the container's systemd, as the host sees it
	log    *testenv.SyncBuffer
}

// bootContainer unpacks the cached rootfs into a fresh directory and boots
// it; the container is halted and its leftovers unmounted in t.Cleanup.
func bootContainer(t *testing.T) *container {
	t.Helper()
	testenv.RequireRoot(t)
	for _, b := range []string{"debootstrap", "systemd-nspawn", "nsenter", "tar"} {
		testenv.RequireBinary(t, b, false)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("SKIP: no /dev/fuse to pass into the container")
	}
	cache := ensureRootfsCache(t)
	dir := t.TempDir()
	if out, err := exec.Command("tar", "--numeric-owner", "--xattrs", "-C", dir, "-xf", cache).CombinedOutput(); err != nil {
		t.Fatalf("unpack %s: %v\n%s", cache, err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // tar gave it the mode of the cached "."
		t.Fatal(err)
	}
	c := &container{t: t, dir: dir, done: make(chan struct{}), log: &testenv.SyncBuffer{}}
	c.nspawn = exec.Command("systemd-nspawn", "-D", dir, "-b", "--register=no", "--keep-unit",
		"--machine=s3mounts-test-"+strconv.Itoa(os.Getpid()),
		"--bind=/dev/fuse", "--capability=CAP_SYS_ADMIN", "--property=DeviceAllow=/dev/fuse rwm")
	// The host's environment (AWS_CA_BUNDLE, ...) must not leak in.
	c.nspawn.Env = []string{containerPATH}
	c.nspawn.Stdout, c.nspawn.Stderr = c.log, c.log
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.nspawn.Start(); err != nil {
		t.Fatalf("systemd-nspawn: %v", err)
	}
	go func() { c.nspawn.Wait(); close(c.done) }()
	t.Cleanup(c.halt)

	// The container's init is nspawn's child.
	c.waitFor("the container's systemd to start", 60*time.Second, func() (bool, string) {
		select {
		case <-c.done:
			t.Fatalf("systemd-nspawn exited while booting:\n%s", tail(c.log.String(), 3000))
		default:
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", c.nspawn.Process.Pid, c.nspawn.Process.Pid))
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return false, "no child of systemd-nspawn yet"
		}
		pid, _ := strconv.Atoi(f[0])
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) != "systemd" {
			return false, "child is " + string(comm)
		}
		c.pid = pid
		return true, ""
	})
	c.waitFor("the container to finish booting (is-system-running)", 120*time.Second, func() (bool, string) {
		out, _ := c.exec("systemctl", "is-system-running")
		s := strings.TrimSpace(out)
		return s == "running" || s == "degraded", s
	})
	return c
}

// halt stops the container (SIGTERM makes nspawn shut the system down),
// kills it when it does not stop in time, and unmounts what is left.
func (c *container) halt() {
	if c.nspawn.Process != nil {
		c.nspawn.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(60 * time.Second):
			c.t.Logf("systemd-nspawn did not stop within 60s of SIGTERM; killing it")
			syscall.Kill(-c.nspawn.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
	}
	// Nothing of the container may stay mounted on the host: deepest first.
	var under []string
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fs := strings.Fields(sc.Text())
			if len(fs) > 4 && (fs[4] == c.dir || strings.HasPrefix(fs[4], c.dir+"/")) {
				under = append(under, fs[4])
			}
		}
		f.Close()
	}
	sort.Sort(sort.Reverse(sort.StringSlice(under)))
	for _, m := range under {
		c.t.Logf("unmounting leftover %s", m)
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if c.t.Failed() {
		c.t.Logf("systemd-nspawn console (tail):\n%s", tail(c.log.String(), 4000))
	}
}

// exec runs a command inside the container, with a clean environment.
func (c *container) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a := append([]string{"-t", strconv.Itoa(c.pid), "-a", "env", "-i", containerPATH}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", a...).CombinedOutput()
	return string(out), err
}

// must runs a command inside the container and fails the test on error.
func (c *container) must(args ...string) string {
	c.t.Helper()
	out, err := c.exec(args...)
	if err != nil {
		c.t.Fatalf("in the container: %s: %v\n%s\njournal of s3mountd (tail):\n%s", strings.Join(args, " "), err, out,
			tail(c.journal("s3mountd"), 3000))
	}
	return out
}

// show answers `systemctl show -p PROP --value UNIT`.
func (c *container) show(unit, prop string) string {
	c.t.Helper()
	return strings.TrimSpace(c.must("systemctl", "show", "-p", prop, "--value", unit))
}

func (c *container) journal(unit string) string {
	out, _ := c.exec("journalctl", "--no-pager", "-o", "cat", "-u", unit)
	return out
}

// waitFor polls cond until it holds, failing with its last explanation
// after timeout.
func (c *container) waitFor(what string, timeout time.Duration, cond func() (bool, string)) {
	c.t.Helper()
	// The figures callers give are for an idle machine; one with 2 loaded
	// cores boots a container several times slower. Only a hang hits this.
	timeout *= 3
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			c.t.Fatalf("waited %v for %s; last: %s\njournal of s3mountd (tail):\n%s", timeout, what, last,
				tail(c.journal("s3mountd"), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// host turns a path of the container into one the host can open. The
// kernel resolves /proc/PID/root/... in that process's mount namespace, so
// this reads through the FUSE mount that exists only inside the container.
func (c *container) host(p string) string {
	return fmt.Sprintf("/proc/%d/root%s", c.pid, p)
}

// fuseMounts lists the fuse mount points under root inside the container.
func (c *container) fuseMounts(root string) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.pid))
	if err != nil {
		c.t.Fatalf("mountinfo of the container: %v", err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		i := strings.Index(l, " - ")
		fs := strings.Fields(l)
		if i < 0 || len(fs) < 5 {
			continue
		}
		typ := strings.Fields(l[i+3:])
		if len(typ) > 0 && strings.HasPrefix(typ[0], "fuse") && (fs[4] == root || strings.HasPrefix(fs[4], root+"/")) {
			out = append(out, fs[4])
		}
	}
	return out
}

// TestSystemdUnitsInContainer installs the .deb into a Debian container
// booted with a real systemd and drives s3mountd through systemctl: start,
// STATUS=, reload, an upgrade, kill -9 of the daemon, stop.
func TestSystemdUnitsInContainer(t *testing.T) {
	testenv.RequireFUSE(t)
	deb := buildDeb(t)
	mc := testenv.StartMinIO(t)
	const (
		bucket    = "pkg-test"
		id        = "pkgdata"
		mountName = "data"
		root      = "/home/jupyter/mnt/s3" // the package's default project_root
	)
	hello := "hello from MinIO through systemd\n"
	mc.MakeBucket(t, bucket, map[string]string{"hello.txt": hello, "dir/nested.csv": "a,b\n1,2\n"})

	c := bootContainer(t)

	// Install the package: postinst creates the groups and private dirs,
	// enables and starts the socket and the service.
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "var/tmp/s3mounts.deb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	c.must("dpkg", "-i", "/var/tmp/s3mounts.deb")
	c.must("getent", "group", "s3mounts")
	c.must("getent", "group", "s3mounts-admin")
	for _, d := range []string{"etc/s3mounts/secrets", "var/lib/s3mounts", "var/cache/s3mounts"} {
		if st, err := os.Stat(filepath.Join(c.dir, d)); err != nil {
			t.Errorf("/%s after install: %v", d, err)
		} else if !st.IsDir() || st.Mode().Perm() != 0o700 {
			t.Errorf("/%s after install has mode %v, want a 0700 directory", d, st.Mode())
		}
	}
	for _, u := range []string{"s3mountd.socket", "s3mountd.service"} {
		if s, _ := c.exec("systemctl", "is-enabled", u); strings.TrimSpace(s) != "enabled" {
			t.Errorf("%s is %q after install, want enabled", u, strings.TrimSpace(s))
		}
	}

	// A 0600 secret and a connector, dropped like the control plane does.
	if err := os.WriteFile(filepath.Join(c.dir, "etc/s3mounts/secrets/minio"), []byte(mc.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := fmt.Sprintf(`name       = "Packaging test"
endpoint   = %q
bucket     = %q
mount_name = %q
mode       = "ro"
active     = true
addressing = "path"

[credentials]
access_key_id = %q
secret_name   = "minio"
`, mc.Endpoint, bucket, mountName, mc.AccessKey)
	cdir := filepath.Join(c.dir, "etc/s3mounts/connectors.d")
	if err := os.WriteFile(filepath.Join(cdir, id+".toml.tmp"), []byte(conn), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(cdir, id+".toml.tmp"), filepath.Join(cdir, id+".toml")); err != nil {
		t.Fatal(err)
	}

	c.must("systemctl", "start", "s3mountd.socket", "s3mountd")
	for _, u := range []string{"s3mountd.socket", "s3mountd"} {
		if s, err := c.exec("systemctl", "is-active", u); err != nil || strings.TrimSpace(s) != "active" {
			t.Fatalf("systemctl is-active %s: %q %v\n%s", u, strings.TrimSpace(s), err, c.journal("s3mountd"))
		}
	}
	mnt := root + "/" + mountName
	c.waitFor("the mount to serve hello.txt", 60*time.Second, func() (bool, string) {
		got, err := os.ReadFile(c.host(mnt + "/hello.txt"))
		if err != nil {
			return false, err.Error()
		}
		return string(got) == hello, fmt.Sprintf("read %q", got)
	})
	if m := c.fuseMounts(root); len(m) != 1 || m[0] != mnt {
		t.Fatalf("fuse mounts under %s in the container: %v, want [%s]", root, m, mnt)
	}
	if got, err := os.ReadFile(c.host(mnt + "/dir/nested.csv")); err != nil || string(got) != "a,b\n1,2\n" {
		t.Errorf("dir/nested.csv: %q %v", got, err)
	}
	c.waitFor("STATUS= to say 1 of 1 connectors mounted", 30*time.Second, func() (bool, string) {
		s := c.show("s3mountd", "StatusText")
		return strings.Contains(s, "1 of 1"), s
	})
	// The CLI through the socket made by systemd: root:s3mounts 0660, so
	// a member of the package's group operates, anyone else cannot connect.
	if out := c.must("s3mountctl", "list"); !strings.Contains(out, id) {
		t.Errorf("s3mountctl list does not show %s:\n%s", id, out)
	}
	if got := strings.TrimSpace(c.must("stat", "-c", "%a %U:%G", "/run/s3mounts/agent.sock")); got != "660 root:s3mounts" {
		t.Errorf("the socket is %q, want 660 root:s3mounts", got)
	}
	c.must("useradd", "--no-create-home", "-G", "s3mounts", "alice")
	c.must("useradd", "--no-create-home", "bob")
	if out := c.must("runuser", "-u", "alice", "--", "s3mountctl", "list"); !strings.Contains(out, id) {
		t.Errorf("alice (group s3mounts) does not see %s:\n%s", id, out)
	}
	if out, err := c.exec("runuser", "-u", "bob", "--", "s3mountctl", "list"); err == nil {
		t.Errorf("bob (not in s3mounts) could use the socket:\n%s", out)
	}

	workerPid := func() int {
		b, err := os.ReadFile(filepath.Join(c.dir, "var/lib/s3mounts/workers", id+".json"))
		if err != nil {
			t.Fatalf("worker record: %v", err)
		}
		var r struct {
			PID int `json:"pid"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.PID == 0 {
			t.Fatalf("worker record %s: %v", b, err)
		}
		return r.PID
	}
	mainPid := func() string { return c.show("s3mountd", "MainPID") }
	wpid := workerPid()
	pid0 := mainPid()

	// A file held open across everything below must keep reading.
	held, err := os.Open(c.host(mnt + "/hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	readHeld := func(when string) {
		t.Helper()
		got, err := io.ReadAll(io.NewSectionReader(held, 0, 1<<20))
		if err != nil || string(got) != hello {
			t.Fatalf("the file held open %s: %q %v", when, got, err)
		}
	}

	// A reader that reads the mount all the time, from here to the stop.
	var reads, failures atomic.Int64
	var firstFailure atomic.Value
	stopReader := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			select {
			case <-stopReader:
				return
			default:
			}
			got, err := os.ReadFile(c.host(mnt + "/hello.txt"))
			reads.Add(1)
			if err != nil || string(got) != hello {
				if failures.Add(1) == 1 {
					firstFailure.Store(fmt.Sprintf("%q %v", got, err))
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	stopReading := func() {
		select {
		case <-stopReader:
		default:
			close(stopReader)
			<-readerDone
		}
	}
	defer stopReading()

	// reload: re-reads the files; the worker and the mount stay.
	c.must("systemctl", "reload", "s3mountd")
	c.waitFor("s3mountd to be active after reload", 30*time.Second, func() (bool, string) {
		s, _ := c.exec("systemctl", "is-active", "s3mountd")
		return strings.TrimSpace(s) == "active", s
	})
	if p := mainPid(); p != pid0 {
		t.Errorf("reload changed the main pid %s -> %s", pid0, p)
	}
	if p := workerPid(); p != wpid {
		t.Errorf("reload replaced the worker: pid %d -> %d", wpid, p)
	}
	readHeld("after reload")

	// An upgrade (installing the package again replaces /usr/bin/s3mountd):
	// postinst reloads, the daemon re-executes the new file in place.
	inode := func(p string) string { return strings.TrimSpace(c.must("stat", "-L", "-c", "%i", p)) }
	exe0 := inode("/usr/bin/s3mountd")
	if got := inode("/proc/" + pid0 + "/exe"); got != exe0 {
		t.Fatalf("the daemon runs inode %s, /usr/bin/s3mountd is %s before the upgrade", got, exe0)
	}
	c.must("dpkg", "-i", "/var/tmp/s3mounts.deb")
	exe1 := inode("/usr/bin/s3mountd")
	if exe1 == exe0 {
		t.Fatalf("dpkg -i did not replace /usr/bin/s3mountd (inode %s): the upgrade is not exercised", exe0)
	}
	// The daemon runs the new file once it has re-executed itself.
	c.waitFor("the upgraded daemon to re-execute the new binary and be ready", 60*time.Second, func() (bool, string) {
		p := mainPid()
		got, err := c.exec("stat", "-L", "-c", "%i", "/proc/"+p+"/exe")
		if err != nil || strings.TrimSpace(got) != exe1 {
			return false, fmt.Sprintf("main pid %s runs inode %s, want the new %s", p, strings.TrimSpace(got), exe1)
		}
		s := c.show("s3mountd", "ActiveState")
		st := c.show("s3mountd", "StatusText")
		return s == "active" && strings.Contains(st, "1 of 1"), s + " / " + st
	})
	if p := mainPid(); p != pid0 {
		t.Errorf("the upgrade changed the main pid %s -> %s: it must be a reload (re-exec in place), not a restart", pid0, p)
	}
	if n := c.show("s3mountd", "NRestarts"); n != "0" {
		t.Errorf("NRestarts = %s after the upgrade, want 0", n)
	}
	if p := workerPid(); p != wpid {
		t.Errorf("the upgrade replaced the worker: pid %d -> %d", wpid, p)
	}
	readHeld("after the upgrade")

	// kill -9 of the daemon: systemd restarts it (Restart=always), the
	// restarted daemon adopts the worker, the mount never stops serving.
	c.must("sh", "-c", `kill -9 "$1"`, "sh", pid0)
	c.waitFor("systemd to restart s3mountd after kill -9", 60*time.Second, func() (bool, string) {
		p := mainPid()
		s := c.show("s3mountd", "ActiveState")
		return p != pid0 && p != "0" && s == "active", "MainPID " + p + ", " + s
	})
	if n := c.show("s3mountd", "NRestarts"); n != "1" {
		t.Errorf("NRestarts = %s after kill -9, want 1", n)
	}
	c.waitFor("the restarted daemon to report the adopted mount", 30*time.Second, func() (bool, string) {
		st := c.show("s3mountd", "StatusText")
		return strings.Contains(st, "1 of 1"), st
	})
	if p := workerPid(); p != wpid {
		t.Errorf("the restarted daemon replaced the worker: pid %d -> %d (it must adopt it)", wpid, p)
	}
	if m := c.fuseMounts(root); len(m) != 1 {
		t.Errorf("fuse mounts after the restart: %v, want exactly one (nothing mounted twice)", m)
	}
	readHeld("after kill -9 and restart")

	stopReading()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d reads of the mount failed during reload/upgrade/kill -9; first: %v", n, reads.Load(), firstFailure.Load())
	}
	if reads.Load() < 10 {
		t.Errorf("only %d reads during reload/upgrade/kill -9: the reader did not run", reads.Load())
	}
	t.Logf("%d reads of the mount during reload, upgrade and kill -9, all served", reads.Load())
	held.Close()

	// stop: everything unmounted, the worker gone, a clean exit.
	c.must("systemctl", "stop", "s3mountd")
	if s := c.show("s3mountd", "ActiveState"); s != "inactive" {
		t.Errorf("ActiveState after stop = %s, want inactive", s)
	}
	if r := c.show("s3mountd", "Result"); r != "success" {
		t.Errorf("Result after stop = %s, want success", r)
	}
	if st := c.show("s3mountd", "ExecMainStatus"); st != "0" {
		t.Errorf("ExecMainStatus after stop = %s, want 0", st)
	}
	if m := c.fuseMounts(root); len(m) != 0 {
		t.Errorf("mounts left after systemctl stop: %v", m)
	}
	if _, err := c.exec("test", "-e", fmt.Sprintf("/proc/%d", wpid)); err == nil {
		comm, _ := c.exec("cat", fmt.Sprintf("/proc/%d/cmdline", wpid))
		t.Errorf("worker pid %d still runs after stop: %q", wpid, comm)
	}

	// Removing the package with a mount up: prerm stops the agent, which
	// unmounts; purge removes the node key and caches, keeps the secrets.
	c.must("systemctl", "start", "s3mountd")
	c.waitFor("the mount to serve again after start", 60*time.Second, func() (bool, string) {
		got, err := os.ReadFile(c.host(mnt + "/hello.txt"))
		if err != nil {
			return false, err.Error()
		}
		return string(got) == hello, fmt.Sprintf("read %q", got)
	})
	wpid2 := workerPid()
	c.must("dpkg", "-r", "s3mounts")
	if m := c.fuseMounts(root); len(m) != 0 {
		t.Errorf("mounts left after dpkg -r: %v", m)
	}
	if _, err := c.exec("test", "-e", fmt.Sprintf("/proc/%d", wpid2)); err == nil {
		t.Errorf("worker pid %d still runs after dpkg -r", wpid2)
	}
	for _, u := range []string{"s3mountd.service", "s3mountd.socket"} {
		if s := c.show(u, "ActiveState"); s != "inactive" {
			t.Errorf("%s is %s after dpkg -r, want inactive", u, s)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, "usr/bin/s3mountd")); !os.IsNotExist(err) {
		t.Errorf("/usr/bin/s3mountd after dpkg -r: %v, want it gone", err)
	}
	if _, err := os.Stat(filepath.Join(c.dir, "etc/s3mounts/agent.toml")); err != nil {
		t.Errorf("the conffile must stay after dpkg -r (until purge): %v", err)
	}
	c.must("dpkg", "--purge", "s3mounts")
	for _, d := range []string{"var/lib/s3mounts", "var/cache/s3mounts", "etc/s3mounts/agent.toml"} {
		if _, err := os.Stat(filepath.Join(c.dir, d)); !os.IsNotExist(err) {
			t.Errorf("/%s after purge: %v, want it gone", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, "etc/s3mounts/secrets/minio")); err != nil {
		t.Errorf("purge removed the administrator's secret: %v", err)
	}
}
