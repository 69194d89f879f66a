package cli

// The hint a caller gets when the socket refuses them, as real other uids
// (useradd + setpriv, removed at the end) running the real s3mountctl.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
)

func requireAccounts(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create users and run as them")
	}
	for _, bin := range []string{"setpriv", "useradd", "groupadd", "userdel", "groupdel"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
}

func sysRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// serveHealth serves GET /v1/health on a Unix socket at sock, owned by
// root:group with mode.
func serveHealth(t *testing.T, sock, group string, mode os.FileMode) {
	t.Helper()
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(client.Health{Status: "ok", Version: "test"})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chown(sock, 0, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, mode); err != nil {
		t.Fatal(err)
	}
}

func TestPermissionHintRealUIDs(t *testing.T) {
	requireAccounts(t)
	rnd := make([]byte, 3)
	rand.Read(rnd)
	prefix := "s3mc" + hex.EncodeToString(rnd) + "-"
	group := prefix + "sock"
	sysRun(t, "groupadd", group)
	t.Cleanup(func() { exec.Command("groupdel", group).Run() })
	mkuser := func(name string, groups ...string) string {
		u := prefix + name
		args := []string{"useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"}
		if len(groups) > 0 {
			args = append(args, "--groups", strings.Join(groups, ","))
		}
		sysRun(t, append(args, u)...)
		t.Cleanup(func() { exec.Command("userdel", u).Run() })
		return u
	}
	outsider := mkuser("out")
	member := mkuser("mem", group)

	base, err := os.MkdirTemp("", "s3mc-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	ctl := filepath.Join(base, "s3mountctl")
	build := exec.Command("go", "build", "-o", ctl, "./agent/cmd/s3mountctl")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	as := func(name, sock string) (int, string) {
		cmd := exec.Command("setpriv", "--reuid="+name, "--regid="+name, "--init-groups", "--reset-env",
			ctl, "--socket", sock, "health")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("setpriv: %v", err)
		}
		return code, string(out)
	}

	// A parent directory nobody but root may search: that is what blocks,
	// for members and non-members alike; the socket's group is not blamed.
	closed := filepath.Join(base, "closed")
	os.Mkdir(closed, 0o700)
	serveHealth(t, filepath.Join(closed, "agent.sock"), group, 0o660)
	for _, u := range []string{outsider, member} {
		code, out := as(u, filepath.Join(closed, "agent.sock"))
		want := "you may not enter the directory " + closed + " (root:root 0700), which holds the socket"
		if code != 1 || !strings.Contains(out, want) || strings.Contains(out, "not in group") {
			t.Errorf("%s, socket under a 0700 directory: exit %d: %q\nwant it to say %q", u, code, out, want)
		}
	}

	// A searchable directory, socket root:group 0660: a non-member is told
	// about the group, a member gets through.
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o755)
	serveHealth(t, filepath.Join(open, "agent.sock"), group, 0o660)
	code, out := as(outsider, filepath.Join(open, "agent.sock"))
	if want := "you are not in group " + group + " (the socket's group)"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("non-member: exit %d: %q, want %q", code, out, want)
	}
	if code, out := as(member, filepath.Join(open, "agent.sock")); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("member: exit %d: %q", code, out)
	}

	// A socket its group may not write: the mode is to blame.
	ro := filepath.Join(base, "ro")
	os.Mkdir(ro, 0o755)
	serveHealth(t, filepath.Join(ro, "agent.sock"), group, 0o640)
	code, out = as(member, filepath.Join(ro, "agent.sock"))
	if want := "the socket's mode 0640 does not let its group " + group + " write to it"; code != 1 || !strings.Contains(out, want) {
		t.Errorf("member, socket 0640: exit %d: %q, want %q", code, out, want)
	}
}
