package mounts_test

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
)

// freezeProxy forwards TCP to target until frozen; frozen, it accepts
// connections and keeps every connection open without forwarding a byte
// in either direction (an endpoint that stopped answering).
type freezeProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen bool
	thaw   chan struct{}
	conns  []net.Conn
}

func startFreezeProxy(t *testing.T, target string) *freezeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: target, thaw: make(chan struct{})}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *freezeProxy) addr() string { return p.ln.Addr().String() }

func (p *freezeProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen, p.thaw = true, make(chan struct{})
	}
}

// unfreeze forwards again.
func (p *freezeProxy) unfreeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		close(p.thaw)
		p.frozen = false
	}
}

func (p *freezeProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		close(p.thaw)
		p.frozen = false
	}
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *freezeProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		p.mu.Unlock()
		go p.handle(c)
	}
}

// gate blocks while frozen.
func (p *freezeProxy) gate() {
	p.mu.Lock()
	frozen, thaw := p.frozen, p.thaw
	p.mu.Unlock()
	if frozen {
		<-thaw
	}
}

func (p *freezeProxy) handle(c net.Conn) {
	p.gate()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, u)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			p.gate()
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go pipe(u, c)
	pipe(c, u)
}

// TestS3FSFrozenEndpointWithinBound: with the endpoint frozen, a read of
// an open file, a read of a file not yet opened, a listing, a stat and a
// write+close on an s3fs mount each fail with EIO within 3 × stall_timeout
// (mounts.OpBound; the worker's guard answers, s3fs 1.90 alone takes
// mounts.S3FSOpBound = 24 s), plus slack for a loaded machine; once the
// endpoint answers again the mount serves again.
func TestS3FSFrozenEndpointWithinBound(t *testing.T) {
	testenv.RequireRoot(t)
	mi := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, mi)
	big := make([]byte, 4<<20)
	mi.MakeBucket(t, "stall", map[string]string{"small.txt": "hello\n", "dir/a.txt": "a\n", "big.bin": string(big),
		"big2.bin": string(big), "stat.txt": "s\n"})
	spec := s3fsSpec(t, mi, "stall")
	px := startFreezeProxy(t, mi.Endpoint[len("http://"):])
	spec.Endpoint = "http://" + px.addr()
	spec.StallTimeout = 2 * time.Second
	spec.MetadataTTL = 0
	m := mountS3FS(t, spec)
	mp := spec.MountPoint
	if b, err := os.ReadFile(filepath.Join(mp, "small.txt")); err != nil || string(b) != "hello\n" {
		t.Fatalf("read before freezing: %q %v", b, err)
	}
	open, err := os.Open(filepath.Join(mp, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	w, err := os.Create(filepath.Join(mp, "w.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	limit := mounts.OpBound(spec.StallTimeout)
	slack := 3 * time.Second
	px.freeze()
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"read of an open file", func() error { _, err := io.Copy(io.Discard, open); return err }},
		{"cat big2.bin", func() error { _, err := os.ReadFile(filepath.Join(mp, "big2.bin")); return err }},
		{"ls dir", func() error { _, err := os.ReadDir(filepath.Join(mp, "dir")); return err }},
		{"stat stat.txt", func() error { _, err := os.Stat(filepath.Join(mp, "stat.txt")); return err }},
		{"write 1 MiB + close", func() error {
			if _, err := w.Write(make([]byte, 1<<20)); err != nil {
				w.Close()
				return err
			}
			return w.Close()
		}},
	} {
		start := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- op.do() }()
		select {
		case err := <-errc:
			took := time.Since(start)
			t.Logf("%s on a frozen endpoint: %v after %.1f s (limit 3 × stall_timeout = %s; s3fs alone: up to %s)", op.name, err, took.Seconds(), limit, mounts.S3FSOpBound(spec.StallTimeout))
			if !errors.Is(err, syscall.EIO) {
				t.Errorf("%s on a frozen endpoint = %v, want EIO", op.name, err)
			}
			if took > limit+slack {
				t.Errorf("%s took %.1f s on a frozen endpoint, want within 3 × stall_timeout = %s (+%s slack)", op.name, took.Seconds(), limit, slack)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s still blocked after 3 min on a frozen endpoint", op.name)
		}
	}
	if st, ok := mounts.GuardStatsOf(m); ok {
		t.Logf("guard: %+v", st)
	} else {
		t.Error("the s3fs mount is not guarded")
	}
	px.unfreeze()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, err := os.ReadFile(filepath.Join(mp, "small.txt"))
		if err == nil && string(b) == "hello\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mount does not serve 2 min after the endpoint returned: %q %v", b, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := os.WriteFile(filepath.Join(mp, "after.txt"), []byte("back"), 0o644); err != nil {
		t.Fatalf("write after the endpoint returned: %v", err)
	}
	if got, err := getObject(t, mi, "stall", "after.txt"); err != nil || got != "back" {
		t.Errorf("after.txt in S3 = %q, %v", got, err)
	}
}
