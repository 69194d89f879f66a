package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// noSDKText fails when a user-facing message carries what belongs in logs.
func noSDKText(t *testing.T, what, msg string) {
	t.Helper()
	for _, bad := range []string{"RequestID", "HostID", "operation error", "api error", "https response error"} {
		if strings.Contains(msg, bad) {
			t.Fatalf("%s shows %q (raw SDK text belongs in the log): %s", what, bad, msg)
		}
	}
}

// notMounted fails when anything is mounted at mp, or mp is a dead FUSE
// mount (stat fails with ENOTCONN).
func notMounted(t *testing.T, d *testenv.Daemon, mp string) {
	t.Helper()
	if slices.Contains(d.Mounts(), mp) {
		t.Fatalf("%s is mounted although the connector failed: %v", mp, d.Mounts())
	}
	if _, err := os.Stat(mp); err != nil && !os.IsNotExist(err) {
		t.Fatalf("stat %s: %v (a dead mount left behind?)", mp, err)
	}
}

// TestMountTimeTruth: a connector whose key, bucket or endpoint is wrong
// never reports "mounted": the state is error with the connector test's
// words, `s3mountctl activate` exits non-zero, nothing is mounted at the
// path, the agent retries with backoff, and fixing the cause mounts it.
func TestMountTimeTruth(t *testing.T) {
	for _, backend := range []string{"default", "s3fs"} {
		t.Run(backend, func(t *testing.T) {
			testenv.RequireFUSE(t)
			if backend == "s3fs" {
				testenv.RequireBinary(t, "s3fs", false)
			}
			mountTimeTruth(t, backend)
		})
	}
}

func mountTimeTruth(t *testing.T, backend string) {
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "data", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	extra := fmt.Sprintf("backend = %q\n", backend)

	closed := testenv.FreePort(t)
	cases := []struct {
		id, bucket, endpoint string
		want                 string
	}{
		{"wrongkey", "data", m.Endpoint, "the signature was refused (SignatureDoesNotMatch)"},
		{"nobucket", "no-such-bucket", m.Endpoint, "bucket no-such-bucket does not exist at " + m.Endpoint},
		{"noendpoint", "data", fmt.Sprintf("http://127.0.0.1:%d", closed), "nothing listens at 127.0.0.1:"},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			conf := d.MinIOConnector(tc.id, m, tc.bucket, tc.id, false, extra)
			conf = strings.Replace(conf, fmt.Sprintf("endpoint = %q", m.Endpoint), fmt.Sprintf("endpoint = %q", tc.endpoint), 1)
			if tc.id == "wrongkey" {
				d.WriteSecret(tc.id+"-key", "not-the-secret")
			}
			d.WriteConnector(tc.id, conf)
			d.WaitState(tc.id, client.StateInactive)
			mp := filepath.Join(d.ProjectRoot, tc.id)

			out, code := d.RunCtl("activate", tc.id)
			if code == 0 || strings.Contains(out, "mounted at") {
				t.Fatalf("activate exited %d:\n%s", code, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("activate does not say %q:\n%s", tc.want, out)
			}
			noSDKText(t, "activate", out)
			c, _ := d.Connector(tc.id)
			if c.State != client.StateError || !strings.Contains(c.Error, tc.want) {
				t.Fatalf("connector = %s %q, want error %q", c.State, c.Error, tc.want)
			}
			noSDKText(t, "the API's error", c.Error)
			if strings.Contains(c.Error, m.SecretKey) || strings.Contains(out, "not-the-secret") {
				t.Fatal("a secret in an error")
			}
			notMounted(t, d, mp)

			// retried with backoff: the second failure waits twice as long
			c = d.WaitFor(tc.id, "a second, backed-off attempt", func(c client.Connector, ok bool) bool {
				return ok && strings.Contains(c.Error, "retrying in 2s")
			})
			if c.State != client.StateError || !strings.Contains(c.Error, tc.want) {
				t.Fatalf("after the retry: %s %q", c.State, c.Error)
			}
			notMounted(t, d, mp)
			if !strings.Contains(d.Log(), "request_id") && tc.id != "noendpoint" {
				t.Errorf("the worker log has no request id for the refused probe")
			}

			if tc.id == "wrongkey" {
				// the secret fixed: it mounts (within the backoff)
				d.WriteSecret(tc.id+"-key", m.SecretKey)
				d.WaitFor(tc.id, "mounted with the fixed secret", func(c client.Connector, ok bool) bool {
					return ok && c.State == client.StateMounted && c.Error == ""
				})
				if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
					t.Fatalf("hello.txt = %q", got)
				}
			}
			if out, code := d.RunCtl("deactivate", tc.id); code != 0 {
				t.Fatalf("deactivate: %d %s", code, out)
			}
		})
	}
}

// TestMountedButFailing: a mounted connector whose key stops working
// (MinIO restarted with another root secret) or whose endpoint goes away
// stays mounted and shows the failure in its error, in plain words, as an
// event; the error clears once requests succeed again, with the same
// worker. The built-in filesystem reports what its own requests meet; for
// s3fs the worker re-runs the mount probe (every 1 s here).
func TestMountedButFailing(t *testing.T) {
	for _, backend := range []string{"default", "s3fs"} {
		t.Run(backend, func(t *testing.T) {
			testenv.RequireFUSE(t)
			if backend == "s3fs" {
				testenv.RequireBinary(t, "s3fs", false)
			}
			mountedButFailing(t, backend)
		})
	}
}

func mountedButFailing(t *testing.T, backend string) {
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "data", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n",
		Env: []string{"S3MOUNTS_PROBE_INTERVAL=1s"}})
	d.WriteConnector("live", d.MinIOConnector("live", m, "data", "live", true,
		fmt.Sprintf("stall_timeout = \"3s\"\nbackend = %q\n", backend)))
	d.WaitState("live", client.StateMounted)
	mp := filepath.Join(d.ProjectRoot, "live")
	pid := d.WorkerPids()["live"]
	good := m.SecretKey

	// each poke looks up a name never looked up before: a request to S3
	n := 0
	poke := func() {
		if backend != "default" {
			return // the worker probes by itself; s3fs may block a stat for long
		}
		n++
		os.Stat(filepath.Join(mp, fmt.Sprintf("poke-%d", n)))
	}

	// every change of the error is an event
	ectx, ecancel := context.WithCancel(context.Background())
	defer ecancel()
	ev, err := client.New(d.Socket).Events(ectx)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	events := make(chan client.Connector, 256)
	go func() {
		for {
			c, err := ev.Next()
			if err != nil {
				close(events)
				return
			}
			if c.ID == "live" {
				events <- c
			}
		}
	}()
	// seen waits for an event of "live" whose error contains want ("" for
	// an empty error) while mounted.
	seen := func(want string) {
		t.Helper()
		for c := range events {
			if c.State == client.StateMounted && (want == "" && c.Error == "" || want != "" && strings.Contains(c.Error, want)) {
				return
			}
		}
		t.Fatalf("the event stream ended without a mounted event with error %q", want)
	}

	// the endpoint gone
	m.Stop()
	c := d.WaitFor("live", "the unreachable endpoint shown while mounted", func(c client.Connector, ok bool) bool {
		poke()
		return ok && strings.Contains(c.Error, "the endpoint cannot be reached since")
	})
	if c.State != client.StateMounted || !strings.Contains(c.Error, "nothing listens at") {
		t.Fatalf("connector = %s %q", c.State, c.Error)
	}
	noSDKText(t, "the degraded error", c.Error)
	t.Logf("shown while mounted: %s", c.Error)
	seen("the endpoint cannot be reached since")

	// back, but with another secret: the key is refused
	m.SecretKey = good + "-rotated"
	m.Restart()
	c = d.WaitFor("live", "the refused key shown while mounted", func(c client.Connector, ok bool) bool {
		poke()
		return ok && strings.Contains(c.Error, "the endpoint refuses the key since")
	})
	if c.State != client.StateMounted || !strings.Contains(c.Error, "SignatureDoesNotMatch") {
		t.Fatalf("connector = %s %q", c.State, c.Error)
	}
	noSDKText(t, "the degraded error", c.Error)
	t.Logf("shown while mounted: %s", c.Error)
	if backend == "default" {
		// the files API says the same, in plain words
		code, body := d.Do("GET", "/v1/connectors/live/files?path=dir")
		if code == 200 || !strings.Contains(string(body), "SignatureDoesNotMatch") {
			t.Fatalf("files while the key is refused: %d %s", code, body)
		}
		noSDKText(t, "the files API's error", string(body))
	}
	out, _ := d.RunCtl("status", "live")
	if !strings.Contains(out, "refuses the key") {
		t.Errorf("s3mountctl status does not show it:\n%s", out)
	}

	m.Stop()
	m.SecretKey = good
	m.Restart()
	d.WaitFor("live", "the error cleared", func(c client.Connector, ok bool) bool {
		poke()
		return ok && c.State == client.StateMounted && c.Error == ""
	})
	seen("the endpoint refuses the key since")
	seen("")
	if got := readMounted(t, filepath.Join(mp, "hello.txt")); got != testObjects["hello.txt"] {
		t.Fatalf("hello.txt = %q", got)
	}
	if p := d.WorkerPids()["live"]; p != pid {
		t.Fatalf("the worker changed (%d -> %d): a degraded mount must stay", pid, p)
	}
}
