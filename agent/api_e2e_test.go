package agent_test

// s3mountctl and the Go client end to end: the real s3mountd (testenv.StartDaemon)
// with a real MinIO and real FUSE mounts.

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
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
