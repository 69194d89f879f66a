package agent

// The authorization matrix over the real socket, under real other uids:
// the test creates users and groups (removed at the end), serves the API on
// a socket of mode 0660 owned by a test socket group, and runs the real
// s3mountctl as each user with setpriv. Nothing here is faked but the
// controller behind the API.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// buildCtl builds s3mountctl into dir (or copies $S3MOUNTS_BIN's).
func buildCtl(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "s3mountctl")
	if d := os.Getenv("S3MOUNTS_BIN"); d != "" {
		if b, err := os.ReadFile(filepath.Join(d, "s3mountctl")); err == nil {
			if err := os.WriteFile(out, b, 0o755); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
	cmd := exec.Command("go", "build", "-o", out, "./agent/cmd/s3mountctl")
	cmd.Dir = testenv.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build s3mountctl: %v\n%s", err, b)
	}
	return out
}

// newSysAccounts skips unless the test runs as root with the account
// tools, and names its users and groups PREFIX<random>-NAME.
func newSysAccounts(t *testing.T, prefix string) *sysAccounts {
	t.Helper()
	testenv.RequireRoot(t)
	for _, bin := range []string{"setpriv", "useradd", "groupadd", "userdel", "groupdel"} {
		testenv.RequireBinary(t, bin, false)
	}
	rnd := make([]byte, 3)
	rand.Read(rnd)
	return &sysAccounts{t: t, prefix: prefix + hex.EncodeToString(rnd) + "-"}
}

type sysAccounts struct {
	t      *testing.T
	prefix string
}

func (s *sysAccounts) run(args ...string) {
	s.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		s.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (s *sysAccounts) group(name string) string {
	g := s.prefix + name
	s.run("groupadd", g)
	s.t.Cleanup(func() { exec.Command("groupdel", g).Run() })
	return g
}

// user creates a user whose supplementary groups are groups.
func (s *sysAccounts) user(name string, groups ...string) (string, uint32) {
	u := s.prefix + name
	args := []string{"useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"}
	if len(groups) > 0 {
		args = append(args, "--groups", strings.Join(groups, ","))
	}
	s.run(append(args, u)...)
	s.t.Cleanup(func() { exec.Command("userdel", u).Run() })
	uu, err := user.Lookup(u)
	if err != nil {
		s.t.Fatal(err)
	}
	uid, _ := strconv.ParseUint(uu.Uid, 10, 32)
	return u, uint32(uid)
}

type outcome string // "ok", an API error code, or "refused" (cannot connect)

func TestAuthzMatrixRealUIDs(t *testing.T) {
	acc := newSysAccounts(t, "s3mt")
	sockGroup := acc.group("sock")
	ops := acc.group("ops")
	adm := acc.group("adm")
	team := acc.group("team")
	admin, _ := acc.user("ad", sockGroup, adm)
	operator, _ := acc.user("op", sockGroup, ops)
	viewer, _ := acc.user("vw", sockGroup)
	member, _ := acc.user("tm", sockGroup, team)
	plain, _ := acc.user("pl", sockGroup)
	outsider, _ := acc.user("no")

	dir, err := os.MkdirTemp("", "s3m-authz-")
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
	g, err := user.LookupGroup(sockGroup)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	if err := os.Chown(sock, 0, gid); err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o660)

	f := newFake(0)
	f.browseUnmounted = true
	f.add("open", nil)
	f.add("team", []config.AccessRule{
		{Groups: []string{team}, Actions: []config.Action{"view", "browse"}},
		{Users: []string{operator}, Actions: []config.Action{"view", "activate"}},
	})
	api := NewAPI(APIOptions{Controller: f, Recipient: "age1matrix",
		Agent: &config.Agent{Roles: config.Roles{
			Admin: []string{"group:" + adm}, Operator: []string{"group:" + ops}, Viewer: []string{"user:" + viewer}}},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	// as runs s3mountctl --json under a user's uid and groups (from the
	// group database: --init-groups), and returns the outcome and stdout.
	as := func(t *testing.T, name string, args ...string) (outcome, string) {
		t.Helper()
		cmd := exec.Command("setpriv", append([]string{"--reuid=" + name, "--regid=" + name, "--init-groups",
			"--reset-env", ctlBin, "--socket", sock, "--json"}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if err == nil {
			return "ok", stdout.String()
		}
		var eb client.ErrorBody
		if json.Unmarshal([]byte(strings.TrimSpace(stderr.String())), &eb) == nil && eb.Error.Code != "" {
			if eb.Error.Code == client.CodeForbidden && !strings.Contains(eb.Error.Message, "may not") {
				t.Errorf("%s %v: forbidden without naming the action: %s", name, args, eb.Error.Message)
			}
			return outcome(eb.Error.Code), stdout.String()
		}
		if strings.Contains(stderr.String(), "permission denied on "+sock) {
			return "refused", stderr.String()
		}
		t.Fatalf("%s %v: %v\nstdout: %s\nstderr: %s", name, args, err, stdout.String(), stderr.String())
		return "", ""
	}

	const ok, nf, fb = outcome("ok"), outcome(client.CodeNotFound), outcome(client.CodeForbidden)
	ops6 := [][]string{{"status"}, {"ls"}, {"refresh"}, {"test"}, {"activate"}, {"deactivate"}}
	for _, tc := range []struct {
		user    string
		list    []string
		open    []outcome // in the order of ops6
		team    []outcome
		metrics outcome
	}{
		{admin, []string{"open", "team"}, []outcome{ok, ok, ok, ok, ok, ok}, []outcome{ok, ok, ok, ok, ok, ok}, ok},
		{operator, []string{"open", "team"}, []outcome{ok, ok, ok, ok, ok, ok}, []outcome{ok, fb, fb, fb, ok, fb}, fb},
		{viewer, []string{"open"}, []outcome{ok, ok, ok, fb, fb, fb}, []outcome{nf, nf, nf, nf, nf, nf}, fb},
		{member, []string{"team"}, []outcome{nf, nf, nf, nf, nf, nf}, []outcome{ok, ok, ok, fb, fb, fb}, fb},
		{plain, []string{}, []outcome{nf, nf, nf, nf, nf, nf}, []outcome{nf, nf, nf, nf, nf, nf}, fb},
	} {
		t.Run(strings.TrimPrefix(tc.user, acc.prefix), func(t *testing.T) {
			got, out := as(t, tc.user, "list")
			var l client.ConnectorList
			if got != ok || json.Unmarshal([]byte(out), &l) != nil {
				t.Fatalf("list: %s %s", got, out)
			}
			ids := []string{}
			for _, c := range l.Connectors {
				ids = append(ids, c.ID)
			}
			if !slices.Equal(ids, tc.list) {
				t.Errorf("list = %v, want %v", ids, tc.list)
			}
			for _, conn := range []struct {
				id   string
				want []outcome
			}{{"open", tc.open}, {"team", tc.team}} {
				for i, op := range ops6 {
					got, _ := as(t, tc.user, op[0], conn.id)
					// activate/deactivate print the connector; a failed
					// mount would exit 1 without an API error, never here.
					if got != conn.want[i] {
						t.Errorf("%s %s: %s, want %s", op[0], conn.id, got, conn.want[i])
					}
				}
			}
			if got, _ := as(t, tc.user, "metrics"); got != tc.metrics {
				t.Errorf("metrics: %s, want %s", got, tc.metrics)
			}
			if got, _ := as(t, tc.user, "health"); got != ok {
				t.Errorf("health: %s, want ok for anyone who can connect", got)
			}
		})
	}

	// Actions in answers are the caller's own.
	_, out := as(t, operator, "status", "team")
	var c client.Connector
	if err := json.Unmarshal([]byte(out), &c); err != nil || !slices.Equal(c.Actions, []string{"view", "activate"}) {
		t.Errorf("operator's actions on team = %v (%v), want [view activate]", c.Actions, err)
	}

	// Not in the socket group: the kernel refuses the connection, and the
	// CLI says which group is missing.
	got, msg := as(t, outsider, "health")
	if got != "refused" || !strings.Contains(msg, "you are not in group "+sockGroup) {
		t.Errorf("outsider: %s %q", got, msg)
	}
}
