package mounts_test

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
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

// TestS3FSFrozenEndpointWithinBound: with the endpoint frozen, a read and a
// listing through an s3fs mount fail within mounts.S3FSOpBound (24 s for
// stall_timeout = 2s; it was 84 s with s3fs's retries=3), plus slack for a
// loaded machine. 3 × stall_timeout, the built-in backend's bound, is out
// of reach of s3fs 1.90's options (a fixed 4 s pause after each timed-out
// request, up to 4 requests per lookup): the log line says how far.
func TestS3FSFrozenEndpointWithinBound(t *testing.T) {
	mi := testenv.StartMinIO(t)
	testenv.WaitS3Ready(t, mi)
	big := make([]byte, 4<<20)
	mi.MakeBucket(t, "stall", map[string]string{"small.txt": "hello\n", "dir/a.txt": "a\n", "big.bin": string(big)})
	spec := s3fsSpec(t, mi, "stall")
	px := startFreezeProxy(t, mi.Endpoint[len("http://"):])
	spec.Endpoint = "http://" + px.addr()
	spec.StallTimeout = 2 * time.Second
	spec.MetadataTTL = 0
	mountS3FS(t, spec)
	mp := spec.MountPoint
	if b, err := os.ReadFile(filepath.Join(mp, "small.txt")); err != nil || string(b) != "hello\n" {
		t.Fatalf("read before freezing: %q %v", b, err)
	}
	bound := mounts.S3FSOpBound(spec.StallTimeout)
	slack := 10 * time.Second
	px.freeze()
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"read big.bin", func() error {
			f, err := os.Open(filepath.Join(mp, "big.bin"))
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(io.Discard, f)
			return err
		}},
		{"ls dir", func() error { _, err := os.ReadDir(filepath.Join(mp, "dir")); return err }},
	} {
		start := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- op.do() }()
		select {
		case err := <-errc:
			took := time.Since(start)
			t.Logf("%s on a frozen endpoint: %v after %.1f s (s3fs bound %s; 3 × stall_timeout = %s)", op.name, err, took.Seconds(), bound, 3*spec.StallTimeout)
			if err == nil {
				t.Errorf("%s succeeded on a frozen endpoint", op.name)
			}
			if took > bound+slack {
				t.Errorf("%s took %.1f s on a frozen endpoint, want within mounts.S3FSOpBound = %s (+%s slack)", op.name, took.Seconds(), bound, slack)
			}
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s still blocked after 3 min on a frozen endpoint", op.name)
		}
	}
}
