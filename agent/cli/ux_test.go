package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
)

// fakeDaemon answers the API from a map of path → JSON body; the App's
// client dials it whatever the socket path says, and records the socket
// path it was asked for.
func fakeDaemon(t *testing.T, answers map[string]any) (*App, *bytes.Buffer, *bytes.Buffer, *[]string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := answers[r.URL.Path]
		if !ok {
			w.WriteHeader(404)
			json.NewEncoder(w).Encode(client.ErrorBody{Error: client.ErrorDetail{Code: client.CodeNotFound, Message: "no " + r.URL.Path}})
			return
		}
		json.NewEncoder(w).Encode(v)
	}))
	t.Cleanup(srv.Close)
	var o, e bytes.Buffer
	var sockets []string
	a := &App{Stdin: strings.NewReader(""), Stdout: &o, Stderr: &e, Getenv: func(string) string { return "" },
		NewClient: func(socket string) *client.Client {
			sockets = append(sockets, socket)
			c := client.New(socket)
			c.Dial = func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
			}
			return c
		}}
	return a, &o, &e, &sockets
}

func TestVersionFlag(t *testing.T) {
	old := Version
	Version = "1.2.3-test"
	t.Cleanup(func() { Version = old })
	for _, args := range [][]string{{"--version"}, {"-version"}, {"version"}} {
		code, out, errOut := run(t, "", args...)
		if code != 0 || out != "s3mountctl 1.2.3-test\n" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
}

// TestVersionLdflags builds s3mountctl and s3mountd the way the Makefile
// does and checks that both print the version given to the linker.
func TestVersionLdflags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var ldflags string
	for _, l := range strings.Split(string(mk), "\n") {
		if rest, ok := strings.CutPrefix(l, "LDFLAGS := "); ok {
			ldflags = strings.ReplaceAll(rest, "$(VERSION)", "v9.9.9-ldflags")
		}
	}
	if !strings.Contains(ldflags, "agent/cli.Version=") {
		t.Fatalf("the Makefile's LDFLAGS do not set agent/cli.Version: %q", ldflags)
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", dir+"/", "./agent/cmd/s3mountctl", "./agent/cmd/s3mountd")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, bin := range []string{"s3mountctl", "s3mountd"} {
		out, err := exec.Command(filepath.Join(dir, bin), "--version").Output()
		if err != nil || string(out) != bin+" v9.9.9-ldflags\n" {
			t.Errorf("%s --version: %q, %v", bin, out, err)
		}
	}
}

func TestUnknownCommandSuggests(t *testing.T) {
	for _, tc := range []struct{ typed, want string }{
		{"lst", `did you mean "list"?`},
		{"stauts", `did you mean "status"?`},
		{"activte", `did you mean "activate"?`},
		{"deact", `did you mean "deactivate"?`},
		{"validat", `did you mean "validate"?`},
	} {
		code, out, errOut := run(t, "", tc.typed)
		if code != 2 || out != "" {
			t.Errorf("%s: exit %d, stdout %q", tc.typed, code, out)
		}
		if !strings.Contains(errOut, `unknown command "`+tc.typed+`": `+tc.want) ||
			!strings.Contains(errOut, "commands: list, status, activate, deactivate, test, ls, refresh, validate") {
			t.Errorf("%s: stderr %q", tc.typed, errOut)
		}
	}
	// Nothing close: no guess, but the list.
	_, _, errOut := run(t, "", "frobnicate")
	if strings.Contains(errOut, "did you mean") || !strings.Contains(errOut, "commands: list,") {
		t.Errorf("frobnicate: stderr %q", errOut)
	}
}

// TestValidatePathOnce: every line names its file exactly once, as the
// user typed it (relative or absolute), errors and warnings alike.
func TestValidatePathOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "typo.toml"), "bukcet = \"x\"\n"+connector("typo", "t"))
	writeFile(t, filepath.Join(dir, "pol.toml"), connector("pol", "p")+"[[access.allow]]\nusers = [\"alice\"]\n")
	cfg := agentTOML(t)
	wd, _ := os.Getwd()
	t.Cleanup(func() { os.Chdir(wd) })
	if err := os.Chdir(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{dir, filepath.Base(dir), "./" + filepath.Base(dir) + "/typo.toml"} {
		_, out, _ := run(t, "", "validate", "--config", cfg, target)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		for _, l := range lines[:len(lines)-1] {
			if n := strings.Count(l, "typo.toml") + strings.Count(l, "pol.toml"); n != 1 {
				t.Errorf("validate %s: line names a file %d times: %q", target, n, l)
			}
			if !strings.HasPrefix(l, target) && !strings.HasPrefix(l, filepath.Join(target, "")) {
				t.Errorf("validate %s: line does not start with the path as given: %q", target, l)
			}
		}
		if !strings.Contains(out, "typo.toml:1: bukcet: unknown key") {
			t.Errorf("validate %s: no line-numbered error:\n%s", target, out)
		}
	}
}

// TestStatusOfUnparsableFile: a connector whose file never loaded shows
// its id, state, error and file, and nothing made up ("typo - -").
func TestStatusOfUnparsableFile(t *testing.T) {
	a, out, errOut, _ := fakeDaemon(t, map[string]any{
		"/v1/connectors/typo": client.Connector{ID: "typo", State: client.StateError,
			Error: "/etc/s3mounts/connectors.d/typo.toml:3: bukcet: unknown key: did you mean \"bucket\"?\n/etc/s3mounts/connectors.d/typo.toml: bucket: is required",
			File:  "/etc/s3mounts/connectors.d/typo.toml", Actions: []string{"view"}},
	})
	if code := a.Run(context.Background(), []string{"status", "typo"}); code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	want := `typo (its file has no valid version yet)
  State:   error
  Error:   /etc/s3mounts/connectors.d/typo.toml:3: bukcet: unknown key: did you mean "bucket"?
           /etc/s3mounts/connectors.d/typo.toml: bucket: is required
  File:    /etc/s3mounts/connectors.d/typo.toml
  You may: view
`
	if out.String() != want {
		t.Errorf("status of an unparsable file:\n%s\nwant:\n%s", out, want)
	}
}

// TestSocketFromEnv: S3MOUNTS_SOCKET is used when --socket is absent, and
// --socket wins over it.
func TestSocketFromEnv(t *testing.T) {
	a, out, _, sockets := fakeDaemon(t, map[string]any{"/v1/health": client.Health{Status: "ok", Version: "v1", Mounts: 2}})
	a.Getenv = func(k string) string {
		if k == "S3MOUNTS_SOCKET" {
			return "/tmp/demo/agent.sock"
		}
		return ""
	}
	if code := a.Run(context.Background(), []string{"health"}); code != 0 {
		t.Fatal("health failed")
	}
	if got := (*sockets)[0]; got != "/tmp/demo/agent.sock" {
		t.Errorf("socket from the environment: %q", got)
	}
	if !strings.Contains(out.String(), "at /tmp/demo/agent.sock: ok, 2 mounted") {
		t.Errorf("health: %q", out)
	}
	a.Run(context.Background(), []string{"health", "--socket", "/x.sock"})
	if got := (*sockets)[1]; got != "/x.sock" {
		t.Errorf("--socket did not win over S3MOUNTS_SOCKET: %q", got)
	}
	// Without either: the default.
	a.Getenv = func(string) string { return "" }
	a.Run(context.Background(), []string{"health"})
	if got := (*sockets)[2]; got != client.DefaultSocket {
		t.Errorf("default socket: %q", got)
	}
}

// TestEmptyListSaysWhy: an empty list explains itself from the caller's
// role in /v1/health.
func TestEmptyListSaysWhy(t *testing.T) {
	for role, want := range map[string]string{
		"user":     "No connectors you may view: you, bob (uid 1234), have no role on this node and no connector's access policy names you.\nAsk an admin",
		"viewer":   "have the role viewer on this node, but there are no connectors, or their access policies do not name you",
		"admin":    "No connectors on this node: drop a connector file",
		"":         "", // an older daemon: no reason, no error
		"operator": "have the role operator",
	} {
		a, out, _, _ := fakeDaemon(t, map[string]any{
			"/v1/connectors": client.ConnectorList{Connectors: []client.Connector{}},
			"/v1/health":     client.Health{Status: "ok", Caller: "bob (uid 1234)", Role: role},
		})
		if code := a.Run(context.Background(), []string{"list"}); code != 0 {
			t.Fatalf("list: exit %d", code)
		}
		if !strings.Contains(out.String(), "0 connectors listed.\n") || !strings.Contains(out.String(), want) {
			t.Errorf("role %q: list says\n%s\nwant it to say %q", role, out, want)
		}
		if role == "" && strings.Contains(out.String(), "No connectors") {
			t.Errorf("older daemon: %q", out)
		}
	}
}

// repoRoot is the repository, from this package's directory.
const repoRoot = "../.."
