package testenv

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mounts/s3mounts/agent/client"
)

// DaemonOptions configure StartDaemon. Every field is optional.
type DaemonOptions struct {
	// AgentTOML is extra agent.toml content (e.g. `mount_uid = 0`). The
	// directories are always set by StartDaemon.
	AgentTOML string
	// Env is extra environment for the daemon (e.g. NOTIFY_SOCKET=…).
	Env []string
	// Args are extra command-line arguments.
	Args []string
	// ProjectRoot replaces the default <dir>/mnt; "{dir}" in it is the
	// daemon's temporary directory.
	ProjectRoot string
	// NoWait skips waiting for the socket to answer.
	NoWait bool
	// Bin runs this s3mountd executable instead of testenv.Binaries'.
	Bin string
	// Wrapper is a command put before s3mountd, e.g.
	// {"systemd-socket-activate", "-l", SOCKET} (use Daemon.Socket's value:
	// StartDaemon replaces the word SOCKET with it).
	Wrapper []string
}

// Daemon is a running s3mountd with its own temporary directories.
type Daemon struct {
	Bin, Ctl      string
	Dir           string // holds everything below
	ConfigPath    string
	ConnectorsDir string
	StateDir      string
	RuntimeDir    string
	CacheDir      string
	SecretsDir    string
	ProjectRoot   string
	Socket        string
	LogPath       string

	t    testing.TB
	o    DaemonOptions
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartDaemon starts the real s3mountd (testenv.Binaries) on temporary
// directories and waits until its socket answers GET /v1/health. At the
// end of the test the daemon is stopped, every worker it left is killed
// and nothing stays mounted.
func StartDaemon(t testing.TB, o DaemonOptions) *Daemon {
	t.Helper()
	RequireRoot(t)
	bin, ctl := Binaries(t)
	// Short paths: Unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "s3md-")
	if err != nil {
		t.Fatal(err)
	}
	if o.Bin != "" {
		bin = o.Bin
	}
	d := &Daemon{Bin: bin, Ctl: ctl, Dir: dir, t: t, o: o,
		ConfigPath:    filepath.Join(dir, "agent.toml"),
		ConnectorsDir: filepath.Join(dir, "connectors.d"),
		StateDir:      filepath.Join(dir, "state"),
		RuntimeDir:    filepath.Join(dir, "run"),
		CacheDir:      filepath.Join(dir, "cache"),
		SecretsDir:    filepath.Join(dir, "secrets"),
		ProjectRoot:   filepath.Join(dir, "mnt"),
		Socket:        filepath.Join(dir, "agent.sock"),
		LogPath:       filepath.Join(dir, "s3mountd.log"),
	}
	if o.ProjectRoot != "" {
		d.ProjectRoot = strings.ReplaceAll(o.ProjectRoot, "{dir}", dir)
	}
	for _, p := range []string{d.ConnectorsDir, d.SecretsDir} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	toml := fmt.Sprintf("connectors_dir = %q\nproject_root = %q\nsocket = %q\nstate_dir = %q\ncache_dir = %q\nsecrets_dir = %q\nsocket_group = \"root\"\n%s\n",
		d.ConnectorsDir, d.ProjectRoot, d.Socket, d.StateDir, d.CacheDir, d.SecretsDir, o.AgentTOML)
	if err := os.WriteFile(d.ConfigPath, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.cleanup)
	d.start()
	return d
}

func (d *Daemon) start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	args := append([]string{"--config", d.ConfigPath, "--runtime-dir", d.RuntimeDir}, d.o.Args...)
	argv := []string{d.Bin}
	for _, w := range d.o.Wrapper {
		if w == "SOCKET" {
			w = d.Socket
		}
		argv = append(argv, w)
	}
	if len(d.o.Wrapper) > 0 {
		argv = append(argv[1:], d.Bin)
	}
	cmd := exec.Command(argv[0], append(argv[1:], args...)...)
	cmd.Env = append(os.Environ(), d.o.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		d.t.Fatalf("start s3mountd: %v", err)
	}
	logf.Close()
	done := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.done = cmd, done
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.err = err
		d.mu.Unlock()
		close(done)
	}()
	if d.o.NoWait {
		return
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, _, err := d.do("GET", "/v1/health", nil)
		if err == nil && code == 200 {
			return
		}
		select {
		case <-done:
			d.t.Fatalf("s3mountd exited at start (%v); log:\n%s", d.err, d.Log())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("s3mountd did not answer on %s within 2 min (last error %v); log:\n%s", d.Socket, err, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the daemon's process id (0 if not running).
func (d *Daemon) Pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	select {
	case <-d.done:
		return 0
	default:
	}
	return d.cmd.Process.Pid
}

// Done is closed when the daemon process has exited.
func (d *Daemon) Done() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done
}

// ExitErr is how the daemon's last run ended (nil: exit 0; valid after Done).
func (d *Daemon) ExitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// Log returns the daemon's (and its workers') log so far.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.LogPath)
	return string(b)
}

// WriteConnector writes <connectors_dir>/<id>.toml atomically (a temporary
// file renamed over it), mode 0600.
func (d *Daemon) WriteConnector(id, toml string) {
	d.t.Helper()
	tmp := filepath.Join(d.ConnectorsDir, "."+id+".toml.tmp")
	if err := os.WriteFile(tmp, []byte(toml), 0o600); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.ConnectorsDir, id+".toml")); err != nil {
		d.t.Fatal(err)
	}
}

// RemoveConnector deletes <connectors_dir>/<id>.toml.
func (d *Daemon) RemoveConnector(id string) {
	d.t.Helper()
	if err := os.Remove(filepath.Join(d.ConnectorsDir, id+".toml")); err != nil {
		d.t.Fatal(err)
	}
}

// WriteSecret writes <secrets_dir>/<name> (0600).
func (d *Daemon) WriteSecret(name, value string) {
	d.t.Helper()
	tmp := filepath.Join(d.SecretsDir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(value), 0o600); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.SecretsDir, name)); err != nil {
		d.t.Fatal(err)
	}
}

// MinIOConnector is a connector file for bucket on m, with its secret in
// secrets_dir (written here as "<id>-key"). extra is appended (top-level
// keys such as `mode = "rw"`; use Replace for more).
func (d *Daemon) MinIOConnector(id string, m *MinIO, bucket, mountName string, active bool, extra string) string {
	d.t.Helper()
	d.WriteSecret(id+"-key", m.SecretKey)
	return fmt.Sprintf(`name = "Test %s"
endpoint = %q
region = "us-east-1"
bucket = %q
mount_name = %q
active = %v
%s

[credentials]
access_key_id = %q
secret_name = %q
`, id, m.Endpoint, bucket, mountName, active, extra, m.AccessKey, id+"-key")
}

func (d *Daemon) httpClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, "unix", d.Socket)
		},
		DisableKeepAlives: true,
	}}
}

func (d *Daemon) do(method, path string, body io.Reader) (int, []byte, error) {
	req, err := http.NewRequest(method, "http://s3mountd"+path, body)
	if err != nil {
		return 0, nil, err
	}
	resp, err := d.httpClient(3 * time.Minute).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Do sends an HTTP request over the socket and returns the status and body.
func (d *Daemon) Do(method, path string) (int, []byte) {
	d.t.Helper()
	code, b, err := d.do(method, path, nil)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	return code, b
}

// DoJSON sends a request, requires status 200 and decodes the answer into v.
func (d *Daemon) DoJSON(method, path string, v any) {
	d.t.Helper()
	code, b := d.Do(method, path)
	if code != 200 {
		d.t.Fatalf("%s %s: HTTP %d: %s", method, path, code, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			d.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// Connector returns GET /v1/connectors/{id}; ok is false on 404.
func (d *Daemon) Connector(id string) (c client.Connector, ok bool) {
	d.t.Helper()
	code, b := d.Do("GET", "/v1/connectors/"+id)
	if code == 404 {
		return c, false
	}
	if code != 200 {
		d.t.Fatalf("GET connector %s: HTTP %d: %s", id, code, b)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		d.t.Fatal(err)
	}
	return c, true
}

// WaitS3Ready waits (up to 2 min) until m answers S3 requests: MinIO's
// health endpoint answers a moment before it accepts requests
// ("XMinioServerNotInitialized") on a loaded machine.
func WaitS3Ready(t testing.TB, m *MinIO) {
	t.Helper()
	c := m.Client(t)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO at %s not ready within 2 min: %v", m.Endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// WaitState waits (up to 2 min) until connector id is in state; "" waits
// for the connector to be gone (404).
func (d *Daemon) WaitState(id string, state client.State) client.Connector {
	d.t.Helper()
	return d.WaitFor(id, fmt.Sprintf("state %q", state), func(c client.Connector, ok bool) bool {
		if state == "" {
			return !ok
		}
		return ok && c.State == state
	})
}

// WaitFor waits (up to 2 min) until cond holds for connector id.
func (d *Daemon) WaitFor(id, what string, cond func(c client.Connector, ok bool) bool) client.Connector {
	d.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last client.Connector
	var lastOK bool
	for {
		code, b, err := d.do("GET", "/v1/connectors/"+id, nil)
		if err == nil {
			last, lastOK = client.Connector{}, code == 200
			if code == 200 {
				json.Unmarshal(b, &last)
			}
			if cond(last, lastOK) {
				return last
			}
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("connector %s: no %s within 2 min; last seen %+v (found %v, err %v); daemon log:\n%s",
				id, what, last, lastOK, err, tail(d.Log(), 60))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Ctl runs s3mountctl against this daemon and returns its combined output
// and exit code.
func (d *Daemon) RunCtl(args ...string) (string, int) {
	d.t.Helper()
	cmd := exec.Command(d.Ctl, append([]string{"--socket", d.Socket}, args...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("s3mountctl: %v", err)
	}
	return string(out), code
}

// Signal sends sig to the daemon.
func (d *Daemon) Signal(sig syscall.Signal) {
	d.t.Helper()
	if pid := d.Pid(); pid > 0 {
		syscall.Kill(pid, sig)
	}
}

// Kill9 kills the daemon with SIGKILL (its workers keep running) and waits
// for it to be gone.
func (d *Daemon) Kill9() {
	d.t.Helper()
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Restart starts the daemon again on the same directories (after Kill9 or
// Stop) and waits for its socket.
func (d *Daemon) Restart() {
	d.t.Helper()
	select {
	case <-d.Done():
	default:
		d.t.Fatal("Restart: the daemon is still running; Kill9 or Stop it first")
	}
	d.start()
}

// Stop sends SIGTERM, waits (up to 2 min) and asserts exit status 0.
func (d *Daemon) Stop() {
	d.t.Helper()
	if err := d.stop(); err != nil {
		d.t.Fatalf("%v; log:\n%s", err, tail(d.Log(), 80))
	}
}

func (d *Daemon) stop() error {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
	default:
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(2 * time.Minute):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			return fmt.Errorf("s3mountd did not exit within 2 min of SIGTERM")
		}
	}
	d.mu.Lock()
	err := d.err
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("s3mountd exited with %v after SIGTERM, want status 0", err)
	}
	return nil
}

// WorkerPids returns connector id → pid from the worker records.
func (d *Daemon) WorkerPids() map[string]int {
	out := map[string]int{}
	des, _ := os.ReadDir(filepath.Join(d.StateDir, "workers"))
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d.StateDir, "workers", de.Name()))
		if err != nil {
			continue
		}
		var r struct {
			ID  string `json:"id"`
			PID int    `json:"pid"`
		}
		if json.Unmarshal(b, &r) == nil {
			out[r.ID] = r.PID
		}
	}
	return out
}

// Mounts lists the mount points under ProjectRoot, from mountinfo.
func (d *Daemon) Mounts() []string {
	return mountsUnder(d.ProjectRoot)
}

func mountsUnder(root string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeOctal(fields[4])
		if mp == root || strings.HasPrefix(mp, root+"/") {
			out = append(out, mp)
		}
	}
	return out
}

func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b bytes.Buffer
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (d *Daemon) cleanup() {
	if err := d.stop(); err != nil {
		d.t.Errorf("cleanup: %v", err)
	}
	if os.Getenv("S3MOUNTS_DAEMON_LOG") == "1" {
		d.t.Logf("s3mountd log (%s):\n%s", d.LogPath, d.Log())
	} else if d.t.Failed() {
		d.t.Logf("s3mountd log (%s):\n%s", d.LogPath, tail(d.Log(), 150))
	}
	// Workers a failed test left behind, then mounts.
	for _, pid := range d.WorkerPids() {
		if pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// Everything under the daemon's directory: mount points, and the
	// private mounts s3fs makes in a worker's runtime directory (a killed
	// worker leaves them dead). Deepest first.
	all := mountsUnder(d.Dir)
	sort.Slice(all, func(i, j int) bool { return len(all[i]) > len(all[j]) })
	for _, mp := range all {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			exec.Command("fusermount3", "-u", "-z", mp).Run()
		}
	}
	if left := mountsUnder(d.Dir); len(left) > 0 {
		// never RemoveAll through a mount: it would delete bucket objects
		d.t.Errorf("cleanup: still mounted after unmount: %v; left %s in place", left, d.Dir)
		return
	}
	os.RemoveAll(d.Dir)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
