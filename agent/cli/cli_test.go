package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/config"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var o, e bytes.Buffer
	a := &App{Stdin: strings.NewReader(stdin), Stdout: &o, Stderr: &e, Getenv: func(k string) string {
		if k == "S3MOUNTS_SOCKET" {
			return filepath.Join(t.TempDir(), "no-daemon.sock")
		}
		return ""
	}}
	code := a.Run(context.Background(), args)
	return code, o.String(), e.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

const goodConnector = `name = "%s"
endpoint = "http://127.0.0.1:9000"
bucket = "bucket-%s"
mount_name = "%s"
[credentials]
anonymous = true
`

func connector(name, mount string) string {
	return strings.ReplaceAll(strings.Replace(strings.Replace(goodConnector, "%s", name, 1), "%s", name, 1), "%s", mount)
}

// agentTOML writes an empty agent.toml (all defaults) so that tests never
// read the node's /etc/s3mounts/agent.toml.
func agentTOML(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "agent.toml")
	writeFile(t, p, "")
	return p
}

func TestValidateDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.toml"), connector("a", "data"))
	writeFile(t, filepath.Join(dir, "b.toml"), connector("b", "data")) // duplicate mount_name: error on the later file
	writeFile(t, filepath.Join(dir, "c.toml"), "bukcet = \"x\"\n"+connector("c", "c"))
	writeFile(t, filepath.Join(dir, "d.toml"), connector("d", "d")+"[[access.allow]]\nusers = [\"alice\"]\n")
	writeFile(t, filepath.Join(dir, ".hidden.toml"), "garbage")
	writeFile(t, filepath.Join(dir, "e.toml~"), "garbage")
	writeFile(t, filepath.Join(dir, "notes.txt"), "garbage")
	cfg := agentTOML(t)

	code, out, errOut := run(t, "", "validate", "--config", cfg, dir)
	if code != 1 {
		t.Fatalf("validate: exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		filepath.Join(dir, "b.toml") + ":4: mount_name:",
		filepath.Join(dir, "c.toml") + ":1: bukcet: unknown key",
		filepath.Join(dir, "d.toml") + ": warning: has an access policy",
		"4 connector file(s) checked: 2 valid, 2 invalid, 1 warning(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\n"+filepath.Join(dir, "a.toml")) || strings.HasPrefix(out, filepath.Join(dir, "a.toml")) ||
		strings.Contains(out, "hidden") || strings.Contains(out, "notes") {
		t.Errorf("validate reported a good or ignored file:\n%s", out)
	}

	code, out, _ = run(t, "", "--json", "validate", "--config", cfg, dir)
	var rep validateReport
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.OK || len(rep.Files) != 4 ||
		!rep.Files[0].OK || rep.Files[1].OK || rep.Files[2].OK || !rep.Files[3].OK || len(rep.Files[3].Warnings) != 1 {
		t.Fatalf("validate --json: %d %s", code, out)
	}

	code, out, _ = run(t, "", "validate", "--config", cfg, filepath.Join(dir, "a.toml"))
	if code != 0 || !strings.Contains(out, "1 connector file(s) checked: 1 valid, 0 invalid") {
		t.Fatalf("validate one good file: %d %s", code, out)
	}
	empty := t.TempDir()
	code, out, _ = run(t, "", "validate", "--config", cfg, empty)
	if code != 0 || !strings.Contains(out, "no connector files") {
		t.Fatalf("validate empty dir: %d %s", code, out)
	}
	code, _, errOut = run(t, "", "validate", "--config", cfg, filepath.Join(dir, "missing"))
	if code != 1 || !strings.Contains(errOut, "missing") {
		t.Fatalf("validate missing: %d %s", code, errOut)
	}
}

func TestValidateUsesConnectorsDirOfConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "x.toml"), connector("x", "x"))
	cfg := filepath.Join(t.TempDir(), "agent.toml")
	writeFile(t, cfg, "connectors_dir = \""+dir+"\"\n")
	code, out, errOut := run(t, "", "validate", "--config", cfg)
	if code != 0 || !strings.Contains(out, "1 connector file(s) checked: 1 valid") {
		t.Fatalf("validate with connectors_dir from --config: %d %s %s", code, out, errOut)
	}
}

func TestEncryptToNodeKeyRoundTrip(t *testing.T) {
	state := t.TempDir()
	key, err := config.LoadOrCreateNodeKey(state)
	if err != nil {
		t.Fatal(err)
	}
	cfg := agentTOML(t)
	// Local node key (readable here): pubkey and encrypt need no daemon.
	code, out, errOut := run(t, "", "pubkey", "--config", cfg, "--state-dir", state)
	if code != 0 || strings.TrimSpace(out) != key.Recipient() {
		t.Fatalf("pubkey: %d %q %q", code, out, errOut)
	}
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	code, out, errOut = run(t, secret+"\n", "encrypt", "--config", cfg, "--state-dir", state)
	if code != 0 || !strings.HasPrefix(out, "-----BEGIN AGE ENCRYPTED FILE-----") {
		t.Fatalf("encrypt: %d %q %q", code, out, errOut)
	}
	if strings.Contains(out+errOut, secret) {
		t.Fatal("the secret appears in the output")
	}
	plain, err := key.Decrypt([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != secret {
		t.Fatalf("decrypted %q, want the secret without its newline", plain)
	}
	// --recipient needs neither key nor daemon.
	code, out, _ = run(t, secret, "encrypt", "--recipient", key.Recipient(), "--state-dir", "/nonexistent")
	if plain, err := key.Decrypt([]byte(out)); code != 0 || err != nil || string(plain) != secret {
		t.Fatalf("encrypt --recipient: %d %v", code, err)
	}
	code, _, errOut = run(t, "", "encrypt", "--recipient", key.Recipient())
	if code != 1 || !strings.Contains(errOut, "no secret on stdin") {
		t.Fatalf("empty stdin: %d %q", code, errOut)
	}
}

func TestEncryptWithoutKeyOrDaemon(t *testing.T) {
	code, _, errOut := run(t, "x", "encrypt", "--config", agentTOML(t), "--state-dir", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "no node key") || !strings.Contains(errOut, "cannot reach s3mountd") {
		t.Fatalf("encrypt without a key: %d %q", code, errOut)
	}
}

func TestParseInterspersedFlags(t *testing.T) {
	a := &App{}
	fs := newFlagSet(a)
	pos, err := parse(fs, []string{"id1", "--json", "path/x", "--page", "7", "--", "--literal"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, " ") != "id1 path/x --literal" || !a.json || a.lsPage != 7 {
		t.Fatalf("pos %v json %v page %d", pos, a.json, a.lsPage)
	}
}

func newFlagSet(a *App) *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	a.globals(fs)
	lsOptions(a, fs)
	return fs
}
