package agent

// s3mountctl (agent/cli) against the real API server over its Unix socket,
// with the fake controller behind it.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/cli"
	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

func ctl(t *testing.T, sock string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e,
		Getenv: func(k string) string {
			if k == "S3MOUNTS_SOCKET" {
				return sock
			}
			return ""
		}}
	code = app.Run(context.Background(), args)
	return code, o.String(), e.String()
}

func TestCLIList(t *testing.T) {
	f := newFake(3)
	f.setState("c001", client.StateMounted, true, "")
	s := startAPI(t, f, APIOptions{})
	code, out, errOut := ctl(t, s.socket, "list")
	if code != 0 {
		t.Fatalf("list: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !regexp.MustCompile(`^ID\s+NAME\s+MOUNT\s+BACKEND\s+MODE\s+STATE$`).MatchString(lines[0]) {
		t.Fatalf("header %q", lines[0])
	}
	if !regexp.MustCompile(`^c001\s+Connector c001\s+/mnt/s3/c001\s+default\s+ro\s+mounted$`).MatchString(lines[2]) {
		t.Fatalf("row %q", lines[2])
	}
	if lines[len(lines)-1] != "3 connectors listed." {
		t.Fatalf("footer %q", lines[len(lines)-1])
	}
	// --json after the command, and the socket from --socket instead of the env.
	code, out, _ = ctl(t, "/nonexistent", "list", "--json", "--socket", s.socket)
	var l client.ConnectorList
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Connectors) != 3 {
		t.Fatalf("list --json: %d %s", code, out)
	}
}

func TestCLIStatusActivateDeactivate(t *testing.T) {
	f := newFake(2)
	f.failMount["c001"] = "AccessDenied: the key may not list bucket-c001"
	s := startAPI(t, f, APIOptions{})

	code, out, _ := ctl(t, s.socket, "activate", "c000")
	if code != 0 || out != "c000: mounted at /mnt/s3/c000\n" {
		t.Fatalf("activate: %d %q", code, out)
	}
	code, out, _ = ctl(t, s.socket, "activate", "c001")
	if code != 1 || !strings.Contains(out, "c001: error: AccessDenied") {
		t.Fatalf("failed activate: %d %q", code, out)
	}
	code, out, _ = ctl(t, s.socket, "status", "c001")
	for _, want := range []string{"c001 - Connector c001", "State:", "error", "Error:", "AccessDenied",
		"Bucket:", "bucket-c001", "Mount:", "/mnt/s3/c001", "You may:", "view, browse, test, activate, deactivate",
		"Created at:", "2022-07-18T14:23:00Z", "File:", "c001.toml"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if code != 0 {
		t.Fatalf("status: %d", code)
	}
	code, out, _ = ctl(t, s.socket, "deactivate", "c000")
	if code != 0 || out != "c000: unmounted\n" {
		t.Fatalf("deactivate: %d %q", code, out)
	}
	code, _, errOut := ctl(t, s.socket, "status", "nope")
	if code != 1 || !strings.Contains(errOut, `s3mountctl: no connector "nope"`) {
		t.Fatalf("status nope: %d %q", code, errOut)
	}
}

func TestCLITest(t *testing.T) {
	f := newFake(2)
	f.failMount["c001"] = "InvalidAccessKeyId"
	s := startAPI(t, f, APIOptions{})
	code, out, _ := ctl(t, s.socket, "test", "c000")
	if code != 0 || !regexp.MustCompile(`(?m)^ok\s+endpoint\s+3 ms`).MatchString(out) ||
		!strings.Contains(out, "c000: all checks passed") {
		t.Fatalf("test c000: %d\n%s", code, out)
	}
	code, out, _ = ctl(t, s.socket, "test", "c001")
	if code != 1 || !regexp.MustCompile(`(?m)^FAIL\s+credentials\s+3 ms\s+InvalidAccessKeyId`).MatchString(out) ||
		!strings.Contains(out, "c001: FAILED") {
		t.Fatalf("test c001: %d\n%s", code, out)
	}
}

func TestCLILsFollowsCursor(t *testing.T) {
	f := newFake(1)
	f.dirSize = 1234
	f.setState("c000", client.StateMounted, true, "")
	s := startAPI(t, f, APIOptions{})
	code, out, errOut := ctl(t, s.socket, "ls", "c000", "sub/", "--page", "100")
	if code != 0 {
		t.Fatalf("ls: %d %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1234 || !strings.HasSuffix(lines[1233], "f01233.csv") {
		t.Fatalf("ls printed %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	code, out, _ = ctl(t, s.socket, "--json", "ls", "c000")
	var fl client.Files
	if code != 0 || json.Unmarshal([]byte(out), &fl) != nil || len(fl.Entries) != 1234 || fl.NextCursor != "" {
		t.Fatalf("ls --json: %d, %d entries", code, len(fl.Entries))
	}
}

func TestCLIRefresh(t *testing.T) {
	f := newFake(1)
	s := startAPI(t, f, APIOptions{})
	code, out, _ := ctl(t, s.socket, "refresh", "c000", "images/")
	if code != 0 || !strings.Contains(out, "c000: dropped what was cached under images/") {
		t.Fatalf("refresh: %d %q", code, out)
	}
	if len(f.refreshed) != 1 || f.refreshed[0] != "c000:/images" {
		t.Fatalf("refreshed %v", f.refreshed)
	}
}

func TestCLIPubkeyFromDaemon(t *testing.T) {
	s := startAPI(t, newFake(0), APIOptions{Recipient: "age1fromdaemon"})
	// A state dir without a node key: the daemon answers.
	code, out, errOut := ctl(t, s.socket, "pubkey", "--state-dir", t.TempDir())
	if code != 0 || out != "age1fromdaemon\n" {
		t.Fatalf("pubkey: %d %q %q", code, out, errOut)
	}
}

func TestCLIUsageAndErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	code, out, _ := ctl(t, sock, "--help")
	if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "Examples:") {
		t.Fatalf("--help: %d %q", code, out)
	}
	if code, _, errOut := ctl(t, sock, "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
	if code, _, errOut := ctl(t, sock, "status"); code != 2 || !strings.Contains(errOut, "usage: s3mountctl status ID") {
		t.Fatalf("status without ID: %d %q", code, errOut)
	}
	if code, _, _ := ctl(t, sock); code != 2 {
		t.Fatalf("no command: %d", code)
	}
	code, _, errOut := ctl(t, sock, "list")
	if code != 1 || !strings.Contains(errOut, "s3mountctl: cannot reach s3mountd at "+sock+
		": is the service running? systemctl status s3mountd") {
		t.Fatalf("list without daemon: %d %q", code, errOut)
	}
}

func TestCLIEvents(t *testing.T) {
	f := newFake(2)
	s := startAPI(t, f, APIOptions{})
	var out testenv.SyncBuffer
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out,
		Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- app.Run(ctx, []string{"--socket", s.socket, "--json", "events"}) }()
	for f.subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	f.setState("c001", client.StateError, true, "boom")
	for !strings.Contains(out.String(), "\n") {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("events after interrupt: exit %d: %s", code, out.String())
	}
	var c client.Connector
	if err := json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &c); err != nil ||
		c.ID != "c001" || c.State != client.StateError || c.Error != "boom" {
		t.Fatalf("event line %q (%v)", out.String(), err)
	}
}

// TestMetricsHandlerForTCP: metrics_listen serves per-node aggregates
// only, unless metrics_connectors = true.
func TestMetricsHandlerForTCP(t *testing.T) {
	for _, full := range []bool{false, true} {
		f := newFake(1)
		api := NewAPI(APIOptions{Controller: f, Agent: &config.Agent{MetricsConnectors: full}})
		srv := httptest.NewServer(api.MetricsHandler())
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `s3mounts_node_connectors{state="inactive"} 1`) {
			t.Fatalf("metrics_connectors=%v: metrics over TCP: %d\n%s", full, resp.StatusCode, b)
		}
		if got := strings.Contains(string(b), `s3mounts_connector_state{connector="c000",state="inactive"} 1`); got != full {
			t.Errorf("metrics_connectors=%v: per-connector series served = %v", full, got)
		}
		if !full && strings.Contains(string(b), "c000") {
			t.Errorf("the connector id reaches the aggregates-only TCP metrics:\n%s", b)
		}
	}
}
