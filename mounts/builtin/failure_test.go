package builtin_test

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/internal/testenv"
)

// within fails the test if fn does not return in limit: a hang is the bug
// these tests look for.
func within(t *testing.T, limit time.Duration, what string, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("%s hung for more than %v", what, limit)
		return nil
	}
}

func TestServerStoppedMidReadListWrite(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "fail", map[string]string{"small": "small"})
	c := m.Client(t)
	data := randomBytes(t, 64<<20)
	putObject(t, c, "fail", "big.bin", data)
	putMany(t, c, "fail", "many/", 1200)
	spec := m.Spec("fail")
	spec.StallTimeout = 2 * time.Second
	spec.MetadataTTL = time.Second
	dir, _ := mount(t, spec)
	p := func(s string) string { return filepath.Join(dir, s) }
	bound := 10 * spec.StallTimeout // generous; the design bound is 3 × StallTimeout

	f, err := os.Open(p("big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	w, err := os.Create(p("written"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(randomBytes(t, 20<<20)); err != nil {
		t.Fatal(err)
	}

	m.Stop()
	err = within(t, bound, "read with the server stopped", func() error { _, err := f.ReadAt(buf, 63<<20); return err })
	equal(t, "read with the server stopped", errnoOf(err), syscall.EIO)
	err = within(t, bound, "listing with the server stopped", func() error { _, err := os.ReadDir(p("many")); return err })
	equal(t, "listing with the server stopped", errnoOf(err), syscall.EIO)
	err = within(t, bound, "close with the server stopped", w.Close)
	equal(t, "close with the server stopped", errnoOf(err), syscall.EIO)
	time.Sleep(spec.MetadataTTL)
	err = within(t, bound, "stat with the server stopped", func() error { _, err := os.Stat(p("small2")); return err })
	equal(t, "stat with the server stopped", errnoOf(err), syscall.EIO)

	m.Restart()
	testenv.WaitS3Ready(t, m) // health answers before S3 does, on a loaded machine
	if _, err := getObject(t, c, "fail", "written"); err == nil {
		t.Fatal("a failed upload left an object behind")
	}
	// Recovery, not its speed: a loaded machine may still stall a request
	// past the 2 s stall_timeout right after the restart.
	got, err := os.ReadFile(p("big.bin"))
	for deadline := time.Now().Add(time.Minute); err != nil && time.Now().Before(deadline); {
		time.Sleep(time.Second)
		got, err = os.ReadFile(p("big.bin"))
	}
	if err != nil {
		t.Fatalf("the mount did not recover: %v", err)
	}
	equal(t, "read after restart", len(got), len(data))
	ents, err := os.ReadDir(p("many"))
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "listing after restart", len(ents), 1200)
	if err := os.WriteFile(p("after"), []byte("ok"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := getObject(t, c, "fail", "after")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, "write after restart", s, "ok")
}

// A black hole: an endpoint that accepts connections and never answers.
func TestSilentEndpointGivesEIO(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t) // only for credentials shape
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	spec := m.Spec("hole")
	spec.Endpoint = "http://" + l.Addr().String()
	spec.StallTimeout = time.Second
	dir, _ := mount(t, spec)
	bound := 10 * spec.StallTimeout
	err = within(t, bound, "stat on a silent endpoint", func() error { _, err := os.Stat(filepath.Join(dir, "x")); return err })
	equal(t, "stat on a silent endpoint", errnoOf(err), syscall.EIO)
	err = within(t, bound, "ls on a silent endpoint", func() error { _, err := os.ReadDir(dir); return err })
	equal(t, "ls on a silent endpoint", errnoOf(err), syscall.EIO)
}
