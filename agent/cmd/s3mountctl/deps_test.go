package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps s3mountctl light: a client of the socket, not a second
// daemon. It must never link FUSE, the AWS SDK, the daemon package or the
// metrics library.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), out)
	}
	forbidden := []string{
		"github.com/hanwen/go-fuse",
		"github.com/aws/",
		"github.com/prometheus/",
		"github.com/s3mounts/s3mounts/mounts",
		"github.com/s3mounts/s3mounts/agent/worker",
	}
	for _, d := range deps {
		if d == "github.com/s3mounts/s3mounts/agent" {
			t.Errorf("s3mountctl imports the daemon package %s", d)
		}
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("s3mountctl depends on %s (forbidden: %s)", d, f)
			}
		}
	}
}
