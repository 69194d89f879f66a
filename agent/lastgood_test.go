package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/config"
)

// TestLastGoodSealsInlineSecrets: an inline secret_access_key and
// session_token are stored encrypted to the node key, never in the clear,
// and a new reconciler seeded from the file resolves the same spec.
func TestLastGoodSealsInlineSecrets(t *testing.T) {
	r, a := newTestReconciler(t)
	key, err := config.LoadOrCreateNodeKey(a.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	r.key, r.last = key, newLastGoodStore(a.StateDir)
	writeConn(t, a, "inline", `name = "N"
endpoint = "http://127.0.0.1:9"
bucket = "bucket"
mount_name = "inline"
[credentials]
access_key_id = "AKIDINLINE"
secret_access_key = "plain-secret-value-123"
session_token = "plain-session-token-456"
`)
	r.Load()
	r.mu.Lock()
	c := r.conns["inline"]
	wantHash := c.hash
	r.mu.Unlock()
	if c.good == nil {
		t.Fatalf("the connector did not load: %s", c.cfgErr)
	}
	p := filepath.Join(a.StateDir, lastGoodName)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"plain-secret-value-123", "plain-session-token-456"} {
		if strings.Contains(string(b), s) {
			t.Fatalf("%s holds %q in the clear", p, s)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("%s mode %v, want 0600", p, fi.Mode().Perm())
	}

	// a new agent, the file now broken: seeded from the last good version
	writeConn(t, a, "inline", "name = \"N\"\nbucket = = 1\n")
	r2 := newReconciler(a, r.runtimeDir, key, nil, r.ov, r.log)
	r2.last = newLastGoodStore(a.StateDir)
	close(r2.ready)
	t.Cleanup(func() { r2.Close(false) })
	r2.seedLastGood()
	r2.Load()
	r2.mu.Lock()
	c2 := r2.conns["inline"]
	r2.mu.Unlock()
	if c2 == nil || c2.good == nil || c2.cfgErr == "" {
		t.Fatalf("not seeded from the last good version: %+v", c2)
	}
	if c2.hash != wantHash || c2.spec.Credentials.SecretAccessKey.Reveal() != "plain-secret-value-123" ||
		c2.spec.Credentials.SessionToken.Reveal() != "plain-session-token-456" {
		t.Fatalf("the seeded spec differs from the last good one (hash %v)", c2.hash == wantHash)
	}
}
