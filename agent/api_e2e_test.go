package agent_test

// s3mountctl and the Go client end to end: the real s3mountd (testenv.StartDaemon)
// with a real MinIO and real FUSE mounts.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

func TestCtlEndToEnd(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "ctl-data", map[string]string{
		"hello.txt": "hello\n", "dir/a.csv": "a,b\n1,2\n", "dir/b.csv": "c\n",
	})
	d := testenv.StartDaemon(t, testenv.DaemonOptions{})
	d.WriteConnector("data", d.MinIOConnector("data", m, "ctl-data", "data", false, ""))
	d.WaitState("data", client.StateInactive)
	cl := client.New(d.Socket)
	ctx := context.Background()

	// Events: subscribe before acting.
	evCtx, evCancel := context.WithCancel(ctx)
	defer evCancel()
	ev, err := cl.Events(evCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()

	out, code := d.RunCtl("list")
	if code != 0 || !regexp.MustCompile(`(?m)^data\s+Test data\s+\S+/data\s+default\s+ro\s+inactive$`).MatchString(out) {
		t.Fatalf("list: %d\n%s", code, out)
	}
	out, code = d.RunCtl("activate", "data")
	mp := filepath.Join(d.ProjectRoot, "data")
	if code != 0 || out != "data: mounted at "+mp+"\n" {
		t.Fatalf("activate: %d %q", code, out)
	}
	t.Cleanup(func() { d.RunCtl("deactivate", "data") })
	if b, err := os.ReadFile(filepath.Join(mp, "hello.txt")); err != nil || string(b) != "hello\n" {
		t.Fatalf("read through the mount: %q %v", b, err)
	}
	// The stream saw the activation (mounting, then mounted).
	for {
		c, err := ev.Next()
		if err != nil {
			t.Fatal(err)
		}
		if c.ID == "data" && c.State == client.StateMounted {
			if len(c.Actions) != 5 {
				t.Fatalf("event actions %v", c.Actions)
			}
			break
		}
	}

	out, code = d.RunCtl("ls", "data")
	if code != 0 || !regexp.MustCompile(`(?m)^\s+-\s+\S+\s+dir/$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\s+6\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+hello.txt$`).MatchString(out) {
		t.Fatalf("ls: %d\n%s", code, out)
	}
	out, code = d.RunCtl("ls", "data", "dir", "--page", "1")
	if code != 0 || !strings.Contains(out, "a.csv") || !strings.Contains(out, "b.csv") {
		t.Fatalf("ls dir --page 1 (two pages): %d\n%s", code, out)
	}
	out, code = d.RunCtl("refresh", "data", "dir/")
	if code != 0 || !strings.Contains(out, "data: dropped what was cached under dir/") {
		t.Fatalf("refresh: %d %s", code, out)
	}
	out, code = d.RunCtl("status", "data")
	if code != 0 || !regexp.MustCompile(`State:\s+mounted`).MatchString(out) || !strings.Contains(out, "ctl-data") {
		t.Fatalf("status: %d\n%s", code, out)
	}
	out, code = d.RunCtl("deactivate", "data")
	if code != 0 || !strings.HasPrefix(out, "data: unmounted") {
		t.Fatalf("deactivate: %d %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(mp, "hello.txt")); err == nil {
		t.Fatal("file still visible after deactivate")
	}
	out, code = d.RunCtl("status", "nope")
	if code != 1 || !strings.Contains(out, `no connector "nope"`) {
		t.Fatalf("status nope: %d %s", code, out)
	}

	out, code = d.RunCtl("test", "data")
	if code != 0 || !regexp.MustCompile(`(?m)^ok\s+credentials\s+\d+ ms`).MatchString(out) ||
		!strings.Contains(out, "data: all checks passed") {
		t.Fatalf("test: %d\n%s", code, out)
	}

	// A connector with a wrong key: test fails with exit 1, activation too.
	bad := d.MinIOConnector("bad", m, "ctl-data", "bad", false, "") // writes the right secret…
	d.WriteSecret("bad-key", "not-the-secret")                      // …replaced by a wrong one
	d.WriteConnector("bad", bad)
	d.WaitState("bad", client.StateInactive)
	out, code = d.RunCtl("test", "bad")
	if code != 1 || !strings.Contains(out, "FAIL") || !strings.Contains(out, "bad: FAILED") {
		t.Fatalf("test bad: %d\n%s", code, out)
	}
	if strings.Contains(out, "not-the-secret") || strings.Contains(out, m.SecretKey) {
		t.Fatal("a secret appears in the test output")
	}

	// pubkey and encrypt through the daemon (no readable key in --state-dir).
	key, err := config.LoadNodeKey(d.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	out, code = d.RunCtl("pubkey", "--state-dir", empty)
	if code != 0 || strings.TrimSpace(out) != key.Recipient() {
		t.Fatalf("pubkey via the daemon: %d %q", code, out)
	}
	// metrics (root is an admin).
	text, err := cl.Metrics(ctx)
	if err != nil || !strings.Contains(text, `s3mounts_connector_state{connector="data",state="inactive"} 1`) ||
		!strings.Contains(text, `s3mounts_api_requests_total{code="200",route="/v1/connectors/{id}/activate"} 1`) {
		t.Fatalf("metrics: %v\n%s", err, text)
	}
	if strings.Contains(text, m.SecretKey) {
		t.Fatal("a secret appears in the metrics")
	}
}

// TestDaemonAuthzRealUIDs: the real daemon, its [roles] from agent.toml and
// connector policies from files, called by s3mountctl under real other uids.
func TestDaemonAuthzRealUIDs(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "setpriv", false)
	testenv.RequireBinary(t, "useradd", false)
	suffix := strconv.Itoa(os.Getpid() % 100000)
	var cleanups []func()
	t.Cleanup(func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	})
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	sockGroup, team := "s3md"+suffix+"-sock", "s3md"+suffix+"-team"
	for _, g := range []string{sockGroup, team} {
		sh("groupadd", g)
		cleanups = append(cleanups, func() { exec.Command("groupdel", g).Run() })
	}
	operator, member := "s3md"+suffix+"-op", "s3md"+suffix+"-tm"
	for u, groups := range map[string]string{operator: sockGroup, member: sockGroup + "," + team} {
		sh("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", "--groups", groups, u)
		cleanups = append(cleanups, func() { exec.Command("userdel", u).Run() })
	}

	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "[roles]\noperator = [\"user:" + operator + "\"]\n"})
	conn := func(name, extra string) string {
		return `name = "` + name + `"
endpoint = "http://127.0.0.1:1"
bucket = "b-` + name + `"
mount_name = "` + name + `"
[credentials]
anonymous = true
` + extra
	}
	d.WriteConnector("open", conn("open", ""))
	d.WriteConnector("team", conn("team", "[[access.allow]]\ngroups = [\""+team+"\"]\nactions = [\"view\", \"browse\"]\n"))
	d.WaitState("open", client.StateInactive)
	d.WaitState("team", client.StateInactive)
	// Let the test users reach the socket and the CLI.
	os.Chmod(d.Dir, 0o755)
	ctlDir := t.TempDir()
	os.Chmod(ctlDir, 0o755)
	b, err := os.ReadFile(d.Ctl)
	if err != nil {
		t.Fatal(err)
	}
	ctlBin := filepath.Join(ctlDir, "s3mountctl")
	os.WriteFile(ctlBin, b, 0o755)
	sh("chgrp", sockGroup, d.Socket)

	as := func(u string, args ...string) (string, string, int) {
		cmd := exec.Command("setpriv", append([]string{"--reuid=" + u, "--regid=" + u, "--init-groups", "--reset-env",
			ctlBin, "--socket", d.Socket, "--json"}, args...)...)
		var o, e strings.Builder
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	ids := func(out string) string {
		var l client.ConnectorList
		if err := json.Unmarshal([]byte(out), &l); err != nil {
			t.Fatalf("list: %v: %q", err, out)
		}
		var s []string
		for _, c := range l.Connectors {
			s = append(s, c.ID+"="+strings.Join(c.Actions, ","))
		}
		return strings.Join(s, " ")
	}
	if out, _, _ := as(operator, "list"); ids(out) != "open=view,browse,test,activate,deactivate" {
		t.Errorf("operator sees %s", ids(out))
	}
	if out, _, _ := as(member, "list"); ids(out) != "team=view,browse" {
		t.Errorf("team member sees %s", ids(out))
	}
	for _, tc := range []struct {
		user string
		args []string
		code string
	}{
		{operator, []string{"status", "team"}, `"code":"not_found"`},
		{member, []string{"status", "open"}, `"code":"not_found"`},
		{member, []string{"activate", "team"}, `"code":"forbidden"`},
		{member, []string{"test", "team"}, `"code":"forbidden"`},
		{operator, []string{"metrics"}, `"code":"forbidden"`},
	} {
		_, errOut, code := as(tc.user, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.code) {
			t.Errorf("%s %v: exit %d %q, want %s", tc.user, tc.args, code, errOut, tc.code)
		}
	}
	// browse is allowed to the team member: refresh is not refused (the
	// connector is not mounted, so the daemon may answer another error).
	if _, errOut, _ := as(member, "refresh", "team"); strings.Contains(errOut, "forbidden") || strings.Contains(errOut, "not_found") {
		t.Errorf("refresh team as member: %s", errOut)
	}
	if _, errOut, code := as(operator, "health"); code != 0 {
		t.Errorf("health as operator: %d %s", code, errOut)
	}
}
