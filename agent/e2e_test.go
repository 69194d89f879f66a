package agent_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// TestDaemonStartsAndStops: the real binary starts on temporary dirs,
// answers /v1/health, creates its node key, and exits 0 on SIGTERM leaving
// no socket behind.
func TestDaemonStartsAndStops(t *testing.T) {
	d := testenv.StartDaemon(t, testenv.DaemonOptions{})
	var h client.Health
	d.DoJSON("GET", "/v1/health", &h)
	if h.Status != "ok" || h.Mounts != 0 {
		t.Fatalf("health = %+v", h)
	}
	fi, err := os.Stat(d.StateDir + "/node.key")
	if err != nil {
		t.Fatalf("node key not created: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("node key mode %v, want 0600", fi.Mode().Perm())
	}
	var l client.ConnectorList
	d.DoJSON("GET", "/v1/connectors", &l)
	if len(l.Connectors) != 0 {
		b, _ := json.Marshal(l)
		t.Fatalf("connectors = %s, want none", b)
	}
	d.Stop()
	if _, err := os.Stat(d.Socket); !os.IsNotExist(err) {
		t.Errorf("socket %s left behind after stop (err %v)", d.Socket, err)
	}
}
