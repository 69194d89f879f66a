package agent

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newTestParts builds s3mountd's parts on temporary directories and
// starts them (no connector, no worker).
func newTestParts(t *testing.T) *parts {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("s3mountd's parts need root (the socket's group, the state directory)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(conf, []byte("socket_group = \"root\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "c"), 0o700)
	p, err := build(Options{Config: conf, ConnectorsDir: filepath.Join(dir, "c"), ProjectRoot: filepath.Join(dir, "mnt"),
		Socket: filepath.Join(dir, "agent.sock"), StateDir: filepath.Join(dir, "state"), RuntimeDir: filepath.Join(dir, "run"),
		CacheDir: filepath.Join(dir, "cache"), SecretsDir: filepath.Join(dir, "secrets"), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.lnFile.Close() })
	p.serve()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.rec.Start(ctx)
	if c, err := net.Dial("unix", p.a.Socket); err != nil {
		t.Fatalf("the API does not answer after start: %v", err)
	} else {
		c.Close()
	}
	return p
}

// TestDaemonShutdownOnSignal: a stop stops every part (the errgroup is
// empty afterwards), removes the socket it created and is not an error.
func TestDaemonShutdownOnSignal(t *testing.T) {
	p := newTestParts(t)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := p.shutdown(ctx, stopSignal); err != nil {
		t.Fatalf("shutdown on a signal: %v, want nil", err)
	}
	if _, err := os.Stat(p.a.Socket); !os.IsNotExist(err) {
		t.Errorf("socket %s left behind (err %v)", p.a.Socket, err)
	}
	if err := p.g.Wait(); err != nil {
		t.Errorf("a part failed: %v", err)
	}
	if p.rec.ctx.Err() == nil {
		t.Error("the reconciler still runs after shutdown")
	}
}

// TestDaemonShutdownOnAPIFailure: when the socket API fails, the failure
// is seen (the parts' context ends), shutdown stops the rest and returns
// the API's error; the socket file is left for the next start.
func TestDaemonShutdownOnAPIFailure(t *testing.T) {
	p := newTestParts(t)
	p.ln.Close() // the API's listener fails under it
	select {
	case <-p.failed.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the API's failure was not noticed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := p.shutdown(ctx, stopFailed)
	if err == nil || !strings.Contains(err.Error(), "socket API stopped") {
		t.Fatalf("shutdown after an API failure: %v, want the API's error", err)
	}
	if p.rec.ctx.Err() == nil {
		t.Error("the reconciler still runs after shutdown")
	}
	if _, err := os.Stat(p.a.Socket); err != nil {
		t.Errorf("the socket file was removed after an API failure (err %v); only a stop removes it", err)
	}
}

// TestDaemonShutdownForReexec: the parts stop but the listening socket
// stays open for the next image (its dup is what re-exec passes on).
func TestDaemonShutdownForReexec(t *testing.T) {
	p := newTestParts(t)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := p.shutdown(ctx, stopReexec); err != nil {
		t.Fatalf("shutdown for re-exec: %v", err)
	}
	if p.rec.ctx.Err() == nil {
		t.Error("the reconciler still runs after shutdown")
	}
	// the socket still accepts connections through the dup that re-exec
	// passes on (the kernel queues them for the next image)
	c, err := net.Dial("unix", p.a.Socket)
	if err != nil {
		t.Fatalf("the socket was closed for re-exec: %v", err)
	}
	c.Close()
}
