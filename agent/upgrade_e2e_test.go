package agent_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// TestUpgradeAdoptsUncodedWorker: a mount made by the previous daemon
// version survives an upgrade (SIGHUP re-exec into the new executable),
// and the new daemon understands that version's worker, which answers
// errors as {"error":"…"} without a code: files of a missing path is
// still 404 not_found, of a file 400 invalid, a refresh of a missing path
// 404; its death still reads "mount worker died (…)".
//
// It needs the previous version's s3mountd in S3MOUNTS_OLD_BIN, e.g. built
// from the commit before the coded worker errors:
//
//	mkdir /tmp/s3m-old && git archive d828b78 | tar -x -C /tmp/s3m-old
//	(cd /tmp/s3m-old && go build -o /tmp/s3mountd-old ./agent/cmd/s3mountd)
//	S3MOUNTS_OLD_BIN=/tmp/s3mountd-old S3MOUNTS_BIN=$PWD/bin go test -run TestUpgradeAdoptsUncodedWorker ./agent/
//
// The decoding itself is tested without it (worker.TestOldWorker*).
func TestUpgradeAdoptsUncodedWorker(t *testing.T) {
	old := os.Getenv("S3MOUNTS_OLD_BIN")
	if old == "" {
		t.Skip("S3MOUNTS_OLD_BIN is not set: no previous s3mountd to upgrade from (see the test's comment to build one)")
	}
	testenv.RequireFUSE(t)
	bin, _ := testenv.Binaries(t)
	exe := filepath.Join(t.TempDir(), "s3mountd")
	copyFile(t, old, exe)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "upg", testObjects)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{Bin: exe})
	d.WriteConnector("up", d.MinIOConnector("up", m, "upg", "up", true, ""))
	d.WaitState("up", client.StateMounted)
	wpid := d.WorkerPids()["up"]

	// the upgrade: the new executable renamed over the old one, SIGHUP
	copyFile(t, bin, exe+".new")
	if err := os.Rename(exe+".new", exe); err != nil {
		t.Fatal(err)
	}
	d.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(2 * time.Minute)
	for strings.Count(d.Log(), "s3mountd starting") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no re-exec after SIGHUP; log:\n%s", d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.WaitState("up", client.StateMounted)
	if p := d.WorkerPids()["up"]; p != wpid {
		t.Fatalf("the old worker was replaced across the upgrade (%d -> %d): nothing tests its protocol", wpid, p)
	}

	for _, tc := range []struct {
		method, path string
		status       int
		code, msg    string
	}{
		{"GET", "/v1/connectors/up/files?path=nope", 404, client.CodeNotFound, "no such directory: /nope"},
		{"GET", "/v1/connectors/up/files?path=hello.txt", 400, client.CodeInvalid, "/hello.txt is a file"},
		{"POST", "/v1/connectors/up/refresh?path=nope/x", 404, client.CodeNotFound, "no such file or directory: /nope/x"},
	} {
		status, body := d.Do(tc.method, tc.path)
		var eb client.ErrorBody
		json.Unmarshal(body, &eb)
		if status != tc.status || eb.Error.Code != tc.code || !strings.Contains(eb.Error.Message, tc.msg) {
			t.Errorf("%s %s through the old worker: %d %s; want %d %s %q", tc.method, tc.path, status, body, tc.status, tc.code, tc.msg)
		}
	}
	if status, body := d.Do("GET", "/v1/connectors/up/files?path=dir"); status != 200 || !strings.Contains(string(body), "a.csv") {
		t.Errorf("files?path=dir through the old worker: %d %s", status, body)
	}

	// its death, told by a broken wait connection
	if err := syscall.Kill(wpid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c := d.WaitFor("up", "an error naming the old worker's death", func(c client.Connector, ok bool) bool {
		return ok && c.State == client.StateError && strings.Contains(c.Error, "restarting in")
	})
	if !strings.HasPrefix(c.Error, "mount worker died (killed by signal killed)") {
		t.Errorf("the old worker's death reads %q; want it to start with \"mount worker died (killed by signal killed)\"", c.Error)
	}
	d.WaitState("up", client.StateMounted) // a new worker, of the new version
	d.Stop()
	if left := d.Mounts(); len(left) != 0 {
		t.Fatalf("mounts left: %v", left)
	}
}
