package agent_test

// Paths a user controls (docs/SECURITY.md): attacks by real local users
// (useradd + setpriv) on the real daemon, with the real s3fs and FUSE.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// localUsers makes throw-away users and groups for one test.
type localUsers struct {
	t      *testing.T
	prefix string
}

func newLocalUsers(t *testing.T) *localUsers {
	t.Helper()
	testenv.RequireRoot(t)
	for _, bin := range []string{"setpriv", "useradd", "groupadd", "userdel", "groupdel"} {
		testenv.RequireBinary(t, bin, false)
	}
	usersSeq++
	return &localUsers{t: t, prefix: "s3sp" + strconv.Itoa(os.Getpid()%100000) + strconv.Itoa(usersSeq) + "-"}
}

var usersSeq int

// backends runs f for the built-in backend and for s3fs (when installed).
func backends(t *testing.T, f func(t *testing.T, backend, fstype, extra string)) {
	t.Run("default", func(t *testing.T) { f(t, "default", "fuse.s3mounts", "") })
	t.Run("s3fs", func(t *testing.T) {
		testenv.RequireBinary(t, "s3fs", false)
		f(t, "s3fs", "fuse.s3fs", "backend = \"s3fs\"\n")
	})
}

func (u *localUsers) sh(args ...string) {
	u.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		u.t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

func (u *localUsers) group(name string) string {
	g := u.prefix + name
	u.sh("groupadd", g)
	u.t.Cleanup(func() { exec.Command("groupdel", g).Run() })
	return g
}

func (u *localUsers) user(name string, groups ...string) (string, int) {
	n := u.prefix + name
	args := []string{"useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"}
	if len(groups) > 0 {
		args = append(args, "--groups", strings.Join(groups, ","))
	}
	u.sh(append(args, n)...)
	u.t.Cleanup(func() { exec.Command("userdel", n).Run() })
	out, err := exec.Command("id", "-u", n).Output()
	if err != nil {
		u.t.Fatal(err)
	}
	uid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n, uid
}

// as runs a command as user (uid, gid and groups from the databases).
func (u *localUsers) as(user string, args ...string) (string, error) {
	cmd := exec.Command("setpriv", append([]string{"--reuid=" + user, "--regid=" + user, "--init-groups", "--reset-env"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustAs is as, failing the test on error.
func (u *localUsers) mustAs(user string, args ...string) {
	u.t.Helper()
	if out, err := u.as(user, args...); err != nil {
		u.t.Fatalf("as %s: %v: %v\n%s", user, args, err, out)
	}
}

// userCtl copies s3mountctl where every user can run it, lets sockGroup
// reach the daemon's socket, and returns a function running
// `s3mountctl --json ARGS…` as a user: stdout, the API error code ("" on
// success) and the error message.
func userCtl(t *testing.T, u *localUsers, d *testenv.Daemon, sockGroup string) func(user string, args ...string) (string, string, string) {
	t.Helper()
	os.Chmod(d.Dir, 0o755)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	b, err := os.ReadFile(d.Ctl)
	if err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(dir, "s3mountctl")
	if err := os.WriteFile(ctl, b, 0o755); err != nil {
		t.Fatal(err)
	}
	u.sh("chgrp", sockGroup, d.Socket)
	return func(user string, args ...string) (string, string, string) {
		t.Helper()
		cmd := exec.Command("setpriv", append([]string{"--reuid=" + user, "--regid=" + user, "--init-groups", "--reset-env",
			ctl, "--socket", d.Socket, "--json"}, args...)...)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		if err == nil {
			return o.String(), "", ""
		}
		var eb client.ErrorBody
		if json.Unmarshal([]byte(strings.TrimSpace(e.String())), &eb) == nil && eb.Error.Code != "" {
			return o.String(), eb.Error.Code, eb.Error.Message
		}
		t.Fatalf("s3mountctl %v as %s: %v\nstdout: %s\nstderr: %s", args, user, err, o.String(), e.String())
		return "", "", ""
	}
}

// mountsUnder lists mountinfo entries (mount point, fstype) at or below dir.
func mountsUnder(t *testing.T, dir string) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		sep := 0
		for i := 6; i < len(fl); i++ {
			if fl[i] == "-" {
				sep = i
				break
			}
		}
		if sep == 0 {
			continue
		}
		if mp := fl[4]; mp == dir || strings.HasPrefix(mp, dir+"/") {
			out[mp] = fl[sep+1]
		}
	}
	return out
}

// detachAllUnder is a cleanup that never lets os.RemoveAll run through a
// mount a test moved out of the project root.
func detachAllUnder(t *testing.T, dir string) {
	t.Cleanup(func() {
		for i := 0; i < 8; i++ {
			m := mountsUnder(t, dir)
			if len(m) == 0 {
				return
			}
			for mp := range m {
				unix.Unmount(mp, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			}
		}
	})
}

// waitMounted waits until id is mounted, failing at once on an error.
func waitMounted(t *testing.T, d *testenv.Daemon, id string) client.Connector {
	t.Helper()
	c := d.WaitFor(id, "mounted or error", func(c client.Connector, ok bool) bool {
		return ok && (c.State == client.StateMounted || c.State == client.StateError)
	})
	if c.State != client.StateMounted {
		t.Fatalf("connector %s: %s %q; want mounted", id, c.State, c.Error)
	}
	return c
}

func filesOf(t *testing.T, out string) map[string]client.Entry {
	t.Helper()
	var f client.Files
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("ls output %q: %v", out, err)
	}
	m := map[string]client.Entry{}
	for _, e := range f.Entries {
		m[e.Name] = e
	}
	return m
}

// TestFilesNeverFollowsLinksS3FS: inside a real s3fs mount a user makes
// `escape -> /` and a link to a root-only 0700 directory, and an object is
// PUT straight into the bucket that s3fs shows as a symlink; a user whose
// policy gives only view+browse asks the daemon for the directories behind
// the links. Every such request is an error, and the links are listed as
// entries of type "file", never as directories.
func TestFilesNeverFollowsLinksS3FS(t *testing.T) {
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "s3fs", false)
	u := newLocalUsers(t)
	sockGroup := u.group("sock")
	owner, _ := u.user("own", sockGroup)
	browser, _ := u.user("brw", sockGroup)

	// A root-only directory with a secret name in it.
	private := t.TempDir()
	os.Chmod(filepath.Dir(private), 0o755)
	os.Chmod(private, 0o700)
	if err := os.WriteFile(filepath.Join(private, "root-only-secret-name"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "links", map[string]string{"plain/file.txt": "hello"})
	// An object s3fs shows as a symbolic link (mode S_IFLNK|0777, the
	// target as the body): anyone who can PUT into the bucket makes one.
	if _, err := m.Client(t).PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String("links"), Key: aws.String("planted"), Body: strings.NewReader("/"),
		Metadata: map[string]string{"mode": strconv.Itoa(unix.S_IFLNK | 0o777)},
	}); err != nil {
		t.Fatal(err)
	}

	d := testenv.StartDaemon(t, testenv.DaemonOptions{})
	detachAllUnder(t, d.Dir)
	extra := fmt.Sprintf("backend = \"s3fs\"\nmode = \"rw\"\nowner = %q\n\n[[access.allow]]\nusers = [%q]\nactions = [\"view\", \"browse\"]\n", owner, browser)
	d.WriteConnector("lnk", d.MinIOConnector("lnk", m, "links", "lnk", true, extra))
	os.Chmod(d.Dir, 0o755)
	c := waitMounted(t, d, "lnk")
	mp := c.MountPath

	// The mount's owner plants links inside the mount.
	u.mustAs(owner, "ln", "-s", "/", filepath.Join(mp, "escape"))
	u.mustAs(owner, "ln", "-s", private, filepath.Join(mp, "privlink"))
	if got, err := os.Readlink(filepath.Join(mp, "planted")); err != nil || got != "/" {
		t.Fatalf("s3fs does not show the planted object as a link to / (%q, %v): the test's premise fails", got, err)
	}

	ctl := userCtl(t, u, d, sockGroup)
	for _, p := range []string{
		"/escape" + private, "/escape/root", "/escape/etc", "/escape",
		"/privlink", "/planted/etc", "/planted",
		"/plain/../escape/etc", "/../../escape/etc",
	} {
		out, code, msg := ctl(browser, "ls", "lnk", p)
		if code == "" {
			t.Errorf("ls %s as a browse-only user listed a directory behind a link: %s", p, out)
			continue
		}
		if strings.Contains(out+msg, "root-only-secret-name") || strings.Contains(out+msg, "passwd") {
			t.Errorf("ls %s leaked a name behind the link: %s %s", p, out, msg)
		}
		if code != client.CodeInvalid || !strings.Contains(msg, "symbolic link") {
			t.Errorf("ls %s: code %q %q; want invalid, naming the symbolic link", p, code, msg)
		}
	}
	out, code, msg := ctl(browser, "ls", "lnk", "/")
	if code != "" {
		t.Fatalf("ls / as the browse user: %s %s", code, msg)
	}
	ents := filesOf(t, out)
	for _, name := range []string{"escape", "privlink", "planted"} {
		e, ok := ents[name]
		if !ok {
			t.Errorf("the link %s is not listed: %v", name, ents)
			continue
		}
		if e.Type != "file" {
			t.Errorf("the link %s is listed as %q; want \"file\" (never followed)", name, e.Type)
		}
	}
	if e := ents["plain"]; e.Type != "dir" {
		t.Errorf("plain/ listed as %+v; want a dir", e)
	}
	// A real directory still lists.
	out, code, msg = ctl(browser, "ls", "lnk", "/plain")
	if code != "" || filesOf(t, out)["file.txt"].Size != 5 {
		t.Errorf("ls /plain: %q %s %s", out, code, msg)
	}
	// A file is not a directory.
	if _, code, msg := ctl(browser, "ls", "lnk", "/plain/file.txt"); code != client.CodeInvalid {
		t.Errorf("ls of a file: %q %s; want invalid", code, msg)
	}
}

// TestMountPointSymlinkRefused: the user who owns the project root's
// parent (the default root is in a user's home) replaces <root>/victim,
// then a parent of the root, with a symbolic link before activation:
// activation fails with an error naming the link, and nothing is mounted
// outside the project root.
func TestMountPointSymlinkRefused(t *testing.T) {
	testenv.RequireFUSE(t)
	backends(t, testMountPointSymlinkRefused)
}

func testMountPointSymlinkRefused(t *testing.T, backend, fstype, extra string) {
	u := newLocalUsers(t)
	owner, uid := u.user("home")
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "victim", map[string]string{"a": "b"})

	d := testenv.StartDaemon(t, testenv.DaemonOptions{ProjectRoot: "{dir}/home/mnt/s3"})
	detachAllUnder(t, d.Dir)
	home := filepath.Join(d.Dir, "home")
	os.Chmod(d.Dir, 0o755)
	if err := os.MkdirAll(d.ProjectRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	u.sh("chown", "-R", strconv.Itoa(uid)+":"+strconv.Itoa(uid), home)
	target := filepath.Join(d.Dir, "elsewhere") // a root-owned directory
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}

	// 1. The mount point itself is a link.
	link := filepath.Join(d.ProjectRoot, "victim")
	u.mustAs(owner, "ln", "-s", target, link)
	d.WriteConnector("victim", d.MinIOConnector("victim", m, "victim", "victim", true, extra))
	c := d.WaitFor("victim", "an error", func(c client.Connector, ok bool) bool {
		return ok && (c.State == client.StateError || c.State == client.StateMounted)
	})
	if c.State != client.StateError {
		t.Errorf("activation through the link %s: %s; want error", link, c.State)
	}
	if !strings.Contains(c.Error, "symbolic link "+link) {
		t.Errorf("error %q does not name the link %s", c.Error, link)
	}
	if got := mountsUnder(t, target); len(got) != 0 {
		t.Fatalf("mounted outside the project root: %v", got)
	}
	if got := mountsUnder(t, d.Dir); len(got) != 0 {
		t.Fatalf("something was mounted: %v", got)
	}

	// 2. A parent of the project root is a link (the user renamed the real
	// one away and put a link in its place).
	u.mustAs(owner, "rm", link)
	u.mustAs(owner, "mv", filepath.Join(home, "mnt"), filepath.Join(home, "mnt.real"))
	if err := os.MkdirAll(filepath.Join(target, "s3"), 0o755); err != nil {
		t.Fatal(err)
	}
	u.mustAs(owner, "ln", "-s", target, filepath.Join(home, "mnt"))
	d.Do("POST", "/v1/connectors/victim/activate")
	c = d.WaitFor("victim", "an error naming home/mnt", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateError && strings.Contains(c.Error, filepath.Join(home, "mnt"))
	})
	if !strings.Contains(c.Error, "symbolic link "+filepath.Join(home, "mnt")) {
		t.Errorf("error %q does not name the link %s", c.Error, filepath.Join(home, "mnt"))
	}
	if got := mountsUnder(t, d.Dir); len(got) != 0 {
		t.Fatalf("something was mounted: %v", got)
	}

	// 3. Put back as plain directories, it mounts.
	u.mustAs(owner, "rm", filepath.Join(home, "mnt"))
	u.mustAs(owner, "mv", filepath.Join(home, "mnt.real"), filepath.Join(home, "mnt"))
	d.Do("POST", "/v1/connectors/victim/activate")
	waitMounted(t, d, "victim")
	if got := mountsUnder(t, d.ProjectRoot); len(got) != 1 || got[filepath.Join(d.ProjectRoot, "victim")] != fstype {
		t.Fatalf("mounts after fixing the path: %v", got)
	}
	// s3fs itself mounts on a private directory of the worker (the
	// worker's guard serves the mount point): nowhere else.
	for mp := range mountsUnder(t, d.Dir) {
		if !strings.HasPrefix(mp, d.ProjectRoot+"/") && !strings.Contains(mp, "/run/mounts/victim/") {
			t.Errorf("unexpected mount %s", mp)
		}
	}
}

// TestDeactivateAfterPathReplaced: after the mount, the user who owns the
// project root's parent renames it away and puts a link to another
// filesystem (a tmpfs) where the mount point was. Deactivation never
// unmounts the tmpfs, and the FUSE mount (moved along with the renamed
// directory) is found by its id and detached, not orphaned.
func TestDeactivateAfterPathReplaced(t *testing.T) {
	testenv.RequireFUSE(t)
	backends(t, testDeactivateAfterPathReplaced)
}

func testDeactivateAfterPathReplaced(t *testing.T, backend, fstype, extra string) {
	u := newLocalUsers(t)
	owner, uid := u.user("home")
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "victim", map[string]string{"a": "b"})

	d := testenv.StartDaemon(t, testenv.DaemonOptions{ProjectRoot: "{dir}/home/mnt/s3"})
	detachAllUnder(t, d.Dir)
	home := filepath.Join(d.Dir, "home")
	os.Chmod(d.Dir, 0o755)
	if err := os.MkdirAll(d.ProjectRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	u.sh("chown", "-R", strconv.Itoa(uid)+":"+strconv.Itoa(uid), home)
	other := filepath.Join(d.Dir, "other")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", other, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(other, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(other, "keep"), []byte("x"), 0o644)

	d.WriteConnector("victim", d.MinIOConnector("victim", m, "victim", "victim", true, extra))
	waitMounted(t, d, "victim")
	mp := filepath.Join(d.ProjectRoot, "victim")
	if mountsUnder(t, mp)[mp] != fstype {
		t.Fatalf("not mounted at %s: %v", mp, mountsUnder(t, d.Dir))
	}

	// The user moves the whole tree away and puts links in its place.
	u.mustAs(owner, "mv", filepath.Join(home, "mnt"), filepath.Join(home, "mnt.moved"))
	u.mustAs(owner, "mkdir", "-p", d.ProjectRoot)
	u.mustAs(owner, "ln", "-s", other, mp)
	moved := filepath.Join(home, "mnt.moved", "s3", "victim")
	if mountsUnder(t, moved)[moved] != fstype {
		t.Fatalf("the FUSE mount did not move with its parent: %v", mountsUnder(t, d.Dir))
	}

	d.Do("POST", "/v1/connectors/victim/deactivate")
	c := d.WaitFor("victim", "inactive or error", func(c client.Connector, ok bool) bool {
		return ok && (c.State == client.StateInactive || c.State == client.StateError)
	})
	if got := mountsUnder(t, other); got[other] != "tmpfs" {
		t.Fatalf("deactivate unmounted the unrelated tmpfs: %v (state %s %q)", got, c.State, c.Error)
	}
	if _, err := os.Stat(filepath.Join(other, "keep")); err != nil {
		t.Fatalf("the tmpfs lost its file: %v", err)
	}
	if got := mountsUnder(t, moved); len(got) != 0 {
		t.Fatalf("the FUSE mount was orphaned at %v (state %s %q)", got, c.State, c.Error)
	}
	if c.State != client.StateInactive {
		t.Errorf("state %s %q; want inactive", c.State, c.Error)
	}
	if _, err := os.Lstat(mp); err != nil {
		t.Errorf("the user's link was touched: %v", err)
	}
}

// TestKilledWorkerMountFoundByID: the user moves the project root's parent
// away (the mount moves along), then the mount worker dies. Its dead mount
// is found by the id the worker recorded and detached, not orphaned, and
// the connector mounts again at its configured path.
func TestKilledWorkerMountFoundByID(t *testing.T) {
	testenv.RequireFUSE(t)
	u := newLocalUsers(t)
	owner, uid := u.user("home")
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "victim", map[string]string{"a": "b"})

	d := testenv.StartDaemon(t, testenv.DaemonOptions{ProjectRoot: "{dir}/home/mnt/s3"})
	detachAllUnder(t, d.Dir)
	home := filepath.Join(d.Dir, "home")
	os.Chmod(d.Dir, 0o755)
	if err := os.MkdirAll(d.ProjectRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	u.sh("chown", "-R", strconv.Itoa(uid)+":"+strconv.Itoa(uid), home)
	d.WriteConnector("victim", d.MinIOConnector("victim", m, "victim", "victim", true, ""))
	waitMounted(t, d, "victim")
	pid := d.WorkerPids()["victim"]
	if pid == 0 {
		t.Fatal("no worker pid")
	}
	u.mustAs(owner, "mv", filepath.Join(home, "mnt"), filepath.Join(home, "mnt.moved"))
	moved := filepath.Join(home, "mnt.moved", "s3", "victim")
	if mountsUnder(t, moved)[moved] != "fuse.s3mounts" {
		t.Fatalf("the mount did not move with its parent: %v", mountsUnder(t, d.Dir))
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c := d.WaitFor("victim", "a new worker mounted", func(c client.Connector, ok bool) bool {
		p := d.WorkerPids()["victim"]
		return ok && c.State == client.StateMounted && p != 0 && p != pid
	})
	mp := filepath.Join(d.ProjectRoot, "victim")
	if c.MountPath != mp || mountsUnder(t, mp)[mp] != "fuse.s3mounts" {
		t.Errorf("remounted at %s (%v); want %s", c.MountPath, mountsUnder(t, d.Dir), mp)
	}
	if got := mountsUnder(t, moved); len(got) != 0 {
		t.Fatalf("the dead worker's mount was orphaned at %v", got)
	}
}
