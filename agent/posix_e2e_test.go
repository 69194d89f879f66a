package agent_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// TestPermissionsModelsThroughDaemon: a connector file's `permissions` key
// reaches the mount. "object": chmod and a set mtime are stored with the
// object and survive a deactivate/activate (a new worker, a fresh mount);
// "connector" (the default): chmod fails with EPERM and the mode stays the
// connector's.
func TestPermissionsModelsThroughDaemon(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, m)
	m.MakeBucket(t, "perm", nil)
	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	d.WriteConnector("obj", d.MinIOConnector("obj", m, "perm", "obj", true, "mode = \"rw\"\npermissions = \"object\"\nprefix = \"o/\"\n"))
	d.WriteConnector("con", d.MinIOConnector("con", m, "perm", "con", true, "mode = \"rw\"\nprefix = \"c/\"\n"))
	d.WaitState("obj", client.StateMounted)
	d.WaitState("con", client.StateMounted)

	obj := filepath.Join(d.ProjectRoot, "obj", "run.sh")
	if err := os.WriteFile(obj, []byte("#!/bin/sh\necho ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(obj, 0o750); err != nil {
		t.Fatalf("chmod in the object model: %v", err)
	}
	mt := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Chtimes(obj, mt, mt); err != nil {
		t.Fatalf("chtimes: %v", err)
	}

	// a fresh worker and mount: what was stored comes back from S3
	if out, code := d.RunCtl("deactivate", "obj"); code != 0 {
		t.Fatalf("deactivate: %s", out)
	}
	d.WaitState("obj", client.StateInactive)
	if out, code := d.RunCtl("activate", "obj"); code != 0 {
		t.Fatalf("activate: %s", out)
	}
	d.WaitState("obj", client.StateMounted)
	st, err := os.Stat(obj)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o750 {
		t.Errorf("mode after remount = %v, want -rwxr-x---", st.Mode())
	}
	if !st.ModTime().Equal(mt) {
		t.Errorf("mtime after remount = %v, want %v", st.ModTime(), mt)
	}

	con := filepath.Join(d.ProjectRoot, "con", "run.sh")
	if err := os.WriteFile(con, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(con)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(con, 0o700); err == nil || !os.IsPermission(err) {
		t.Fatalf("chmod in the connector model = %v, want EPERM", err)
	}
	after, _ := os.Stat(con)
	if after.Mode() != before.Mode() {
		t.Errorf("mode changed in the connector model: %v → %v", before.Mode(), after.Mode())
	}
}
