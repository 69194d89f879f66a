package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
)

// TestDocsGenerated keeps the key tables of docs/CONFIG.md equal to the
// key table.
func TestDocsGenerated(t *testing.T) {
	const path = "../docs/CONFIG.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := GenerateDocs(string(b))
	if err != nil {
		t.Fatalf("docs/CONFIG.md: %v", err)
	}
	if want != string(b) {
		t.Fatal("docs/CONFIG.md's key tables differ from config's key table: run `go run ./internal/tools/configdoc` (or `go generate ./config/`) and commit docs/CONFIG.md")
	}
}

// TestKeyTable checks the table itself: every default parses through the
// key's own rules, every simple key names a field, and no path repeats.
func TestKeyTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []Key
		dst  any
	}{{"connector", ConnectorKeys, &Connector{}}, {"agent", AgentKeys, &Agent{}}} {
		seen := map[string]bool{}
		for _, k := range tc.keys {
			if seen[k.Path] {
				t.Errorf("%s: key %s is listed twice", tc.name, k.Path)
			}
			seen[k.Path] = true
			if k.Default != "" {
				if _, ok := k.parseDefault(); !ok {
					t.Errorf("%s: the default %s of %s does not pass its own rules", tc.name, k.Default, k.Path)
				}
			}
			if k.Default != "" && k.Required != "" {
				t.Errorf("%s: %s is required and has a default", tc.name, k.Path)
			}
			if !k.NoDoc && k.JoinPrev == "" && k.Doc == "" {
				t.Errorf("%s: %s has no doc", tc.name, k.Path)
			}
			if i := strings.LastIndexByte(k.Path, '.'); i > 0 && k.Path != "access.allow" && !strings.HasPrefix(k.Path, "access.allow.") && !seen[k.Path[:i]] {
				t.Errorf("%s: the table of %s is not listed before it", tc.name, k.Path)
			}
		}
		applyDefaults(tc.keys, tc.dst) // panics on a field that does not exist
	}
	if d, _ := KeyDefault(ConnectorKeys, "stall_timeout").(time.Duration); d != DefaultConnector().StallTimeout || d <= 0 {
		t.Fatalf("stall_timeout default %v", d)
	}
	// agent/client may not import config (it is the CLI's light client):
	// its copy of the socket's default must stay equal to the table's.
	if s := KeyDefault(AgentKeys, "socket"); s != client.DefaultSocket {
		t.Errorf("agent/client.DefaultSocket is %q, the key table says %q", client.DefaultSocket, s)
	}
}
