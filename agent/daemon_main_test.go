package agent

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/internal/testenv"
)

// TestDaemonHelpAndDocs: s3mountd --help writes every flag with two dashes
// (as the docs do), and docs/CONFIG.md lists every flag the binary has.
func TestDaemonHelpAndDocs(t *testing.T) {
	var o Options
	var help bytes.Buffer
	fs, _ := daemonFlags(&o, &help)
	if err := fs.Parse([]string{"--help"}); err != flag.ErrHelp {
		t.Fatalf("--help: %v", err)
	}
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "CONFIG.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		if !strings.Contains(help.String(), "\n  --"+f.Name+" ") {
			t.Errorf("--help lacks --%s:\n%s", f.Name, help.String())
		}
		if !strings.Contains(string(doc), "| `--"+f.Name) {
			t.Errorf("docs/CONFIG.md does not list the flag --%s in its table of flags", f.Name)
		}
	})
	if n < 9 {
		t.Errorf("only %d flags", n)
	}
	for _, l := range strings.Split(help.String(), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "-") && !strings.HasPrefix(strings.TrimSpace(l), "--") &&
			!strings.HasPrefix(strings.TrimSpace(l), "-h, --help") {
			t.Errorf("single-dash flag in --help: %q", l)
		}
	}
	// Both spellings still parse.
	fs, _ = daemonFlags(&o, &help)
	if err := fs.Parse([]string{"-socket", "/a", "--state-dir", "/b"}); err != nil || o.Socket != "/a" || o.StateDir != "/b" {
		t.Errorf("parse: %v %+v", err, o)
	}
}
