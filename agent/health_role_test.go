package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
)

// TestHealthSaysCallerAndRole: /v1/health tells the caller who the daemon
// takes them to be and their role (what `s3mountctl list` needs to explain
// an empty list). The test runs as root: admin by default.
func TestHealthSaysCallerAndRole(t *testing.T) {
	s := startAPI(t, newFake(0), APIOptions{})
	code, out, errOut := ctl(t, s.socket, "--json", "health")
	var h client.Health
	if code != 0 || json.Unmarshal([]byte(out), &h) != nil {
		t.Fatalf("health: %d %s %s", code, out, errOut)
	}
	if h.Status != "ok" || h.Caller == "" || h.Role == "" {
		t.Errorf("health: %+v", h)
	}
	if os.Geteuid() == 0 && (h.Role != "admin" || !strings.Contains(h.Caller, "uid 0")) {
		t.Errorf("root's health: %+v, want role admin, caller uid 0", h)
	}
}

// TestEmptyListExplainedRealUID: a plain user (no role, named by no policy)
// who lists connectors is told why there are none, as a real other uid.
func TestEmptyListExplainedRealUID(t *testing.T) {
	acc := newSysAccounts(t, "s3me")
	sockGroup := acc.group("sock")
	plain, _ := acc.user("pl", sockGroup)

	dir, err := os.MkdirTemp("", "s3m-empty-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	ctlBin := buildCtl(t, dir)
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := user.LookupGroup(sockGroup)
	gid, _ := strconv.Atoi(g.Gid)
	os.Chown(sock, 0, gid)
	os.Chmod(sock, 0o660)
	f := newFake(2) // connectors without a policy: a plain user sees none
	api := NewAPI(APIOptions{Controller: f, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	out, err := exec.Command("setpriv", "--reuid="+plain, "--regid="+plain, "--init-groups", "--reset-env",
		ctlBin, "--socket", sock, "list").CombinedOutput()
	if err != nil {
		t.Fatalf("list as %s: %v\n%s", plain, err, out)
	}
	for _, want := range []string{"0 connectors listed.",
		"No connectors you may view: you, " + plain + " (uid ", "have no role on this node and no connector's access policy names you",
		"Ask an admin of this node"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("list as a plain user says:\n%s\nwant it to say %q", out, want)
		}
	}
}
