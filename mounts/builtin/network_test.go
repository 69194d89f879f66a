package builtin_test

import (
	"bytes"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/builtin"
)

// These tests put Toxiproxy (in-process) between a real FUSE mount and a
// real MinIO, and inject the faults of a real network: a frozen endpoint,
// a slow but live link, connections cut mid-body.

// netStall is the stall_timeout of these tests; the bound of one syscall
// is 3 × netStall.
const netStall = 2 * time.Second

// slack is what a loaded 2-core machine may add to the bound.
const slack = 2 * time.Second

type toxic struct {
	t     *testing.T
	proxy *toxiproxy.Proxy
}

// startProxy starts a proxy in front of the MinIO of spec and points spec
// at it.
func startProxy(t *testing.T, spec *mounts.Spec) *toxic {
	t.Helper()
	u, err := url.Parse(spec.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	srv.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	p := toxiproxy.NewProxy(srv, "minio", "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		t.Fatalf("starting toxiproxy: %v", err)
	}
	t.Cleanup(p.Stop)
	spec.Endpoint = "http://" + p.Listen
	return &toxic{t: t, proxy: p}
}

// add adds a toxic; attrs is its JSON attributes.
func (x *toxic) add(name, typ, stream, attrs string) {
	x.t.Helper()
	js := `{"name":"` + name + `","type":"` + typ + `","stream":"` + stream + `","attributes":` + attrs + `}`
	if _, err := x.proxy.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		x.t.Fatalf("adding toxic %s: %v", js, err)
	}
}

func (x *toxic) reset() { x.proxy.Toxics.ResetToxics(x.t.Context()) }

// freeze makes the endpoint a black hole both ways (connections stay
// open, no byte passes) until reset.
func (x *toxic) freeze() {
	x.add("freeze_down", "timeout", "downstream", `{"timeout":0}`)
	x.add("freeze_up", "timeout", "upstream", `{"timeout":0}`)
}

func proxiedMount(t *testing.T, bucket string, objects map[string][]byte) (string, *toxic) {
	return proxiedMountStall(t, bucket, objects, netStall)
}

func proxiedMountStall(t *testing.T, bucket string, objects map[string][]byte, stall time.Duration) (string, *toxic) {
	t.Helper()
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, bucket, nil)
	c := m.Client(t)
	for k, v := range objects {
		putObject(t, c, bucket, k, v)
	}
	spec := m.Spec(bucket)
	spec.StallTimeout = stall
	x := startProxy(t, &spec)
	dir, _ := mount(t, spec)
	return dir, x
}

// A frozen endpoint during a sequential read: the read(2) in progress and
// every later one fail with EIO within 3 × stall_timeout each.
func TestFrozenEndpointDuringRead(t *testing.T) {
	data := randomBytes(t, 20<<20)
	dir, x := proxiedMount(t, "frozen", map[string][]byte{"big.bin": data})
	f, err := os.Open(filepath.Join(dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 128<<10)
	read := 0
	for read < 1<<20 {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], data[read:read+n]) {
			t.Fatalf("wrong bytes at %d before the freeze", read)
		}
		read += n
	}
	x.freeze()
	bound := 3*netStall + slack
	var longest time.Duration
	var failed error
	for i := 0; i < 400 && failed == nil; i++ {
		start := time.Now()
		n, err := f.Read(buf)
		took := time.Since(start)
		longest = max(longest, took)
		if took > bound {
			t.Fatalf("one read(2) took %v with the endpoint frozen; the bound is 3 × stall_timeout = %v (+%v slack)", took, 3*netStall, slack)
		}
		if err != nil {
			failed = err
			break
		}
		if !bytes.Equal(buf[:n], data[read:read+n]) {
			t.Fatalf("wrong bytes at %d", read)
		}
		read += n
	}
	equal(t, "read with the endpoint frozen", errnoOf(failed), syscall.EIO)
	// A fresh read of a part not fetched yet is bounded too.
	start := time.Now()
	_, err = f.ReadAt(buf, 19<<20)
	equal(t, "random read with the endpoint frozen", errnoOf(err), syscall.EIO)
	if took := time.Since(start); took > bound {
		t.Fatalf("a random read took %v with the endpoint frozen; bound %v", took, bound)
	}
	t.Logf("frozen after %d bytes: the longest read(2) took %v (bound 3 × %v)", read, longest, netStall)

	// Thawed: the same handle reads on, with the object's bytes (for
	// stall_timeout after a stall, reads that need the network fail at
	// once: retry until then).
	x.reset()
	var n int
	for deadline := time.Now().Add(bound); ; {
		if n, err = f.ReadAt(buf, 19<<20); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("read after the endpoint came back: %v", err)
	}
	if !bytes.Equal(buf[:n], data[19<<20:19<<20+n]) {
		t.Fatal("wrong bytes after the endpoint came back")
	}
}

// A frozen endpoint while a written file is closed: close returns EIO
// within 3 × stall_timeout, and nothing is published.
func TestFrozenEndpointDuringClose(t *testing.T) {
	dir, x := proxiedMount(t, "frozenw", map[string][]byte{"keep": []byte("k")})
	f, err := os.Create(filepath.Join(dir, "new.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randomBytes(t, 1<<20)); err != nil {
		t.Fatal(err)
	}
	x.freeze()
	start := time.Now()
	err = f.Close()
	took := time.Since(start)
	equal(t, "close with the endpoint frozen", errnoOf(err), syscall.EIO)
	if bound := 3*netStall + slack; took > bound {
		t.Fatalf("close took %v with the endpoint frozen; the bound is 3 × stall_timeout = %v (+%v slack)", took, 3*netStall, slack)
	}
	x.reset()
	if _, err := os.Stat(filepath.Join(dir, "keep")); err != nil {
		t.Fatalf("the mount after the endpoint came back: %v", err)
	}
	t.Logf("close failed after %v", took)
}

// A live link at 100 KB/s: a read and a write that take longer than the
// stall bound succeed, with the right bytes.
func TestSlowLinkReadAndWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short: moves 4 MiB at 100 KB/s (~45 s)")
	}
	// stall_timeout 5 s, bound 15 s: each transfer takes ~21 s. (At 2 s and
	// 3 s, a machine at load average 50, or a systemd container booting
	// beside the test, paused the in-process proxy's byte flow for longer
	// than stall_timeout: that is a stall by definition, not a slow link.)
	const stall = 5 * time.Second
	size := 2 << 20 // S3MOUNTS_SLOW_MIB=3 for the 3 MiB
	if v, err := strconv.Atoi(os.Getenv("S3MOUNTS_SLOW_MIB")); err == nil && v > 0 {
		size = v << 20
	}
	data := randomBytes(t, size)
	dir, x := proxiedMountStall(t, "slow", map[string][]byte{"in.bin": data}, stall)
	x.add("slow_down", "bandwidth", "downstream", `{"rate":100}`)
	x.add("slow_up", "bandwidth", "upstream", `{"rate":100}`)

	start := time.Now()
	got, err := os.ReadFile(filepath.Join(dir, "in.bin"))
	if err != nil {
		t.Fatalf("reading at 100 KB/s: %v after %v", err, time.Since(start))
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("reading at 100 KB/s: wrong bytes (%d bytes read)", len(got))
	}
	t.Logf("read %.1f MiB at 100 KB/s in %v (bound %v)", float64(size)/(1<<20), time.Since(start), 3*stall)

	out := randomBytes(t, size)
	start = time.Now()
	if err := os.WriteFile(filepath.Join(dir, "out.bin"), out, 0o644); err != nil {
		t.Fatalf("writing at 100 KB/s: %v after %v", err, time.Since(start))
	}
	t.Logf("wrote %.1f MiB at 100 KB/s in %v (bound %v)", float64(size)/(1<<20), time.Since(start), 3*stall)
	x.reset()
	f, err := os.Open(filepath.Join(dir, "out.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	back, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(back, out) {
		t.Fatalf("the written file reads back wrong (%d bytes, %v)", len(back), err)
	}
}

// Connections cut while a GET body streams (each connection closed after
// 700 KB, or 300 KB, of the answer): the read goes on from the last byte
// received, pinned to the same ETag, and the bytes are the object's.
func TestResetMidBodyResumes(t *testing.T) {
	data := randomBytes(t, 3<<20)
	dir, x := proxiedMount(t, "reset", map[string][]byte{"a.bin": data, "b.bin": data})
	for _, tc := range []struct{ file, bytes string }{{"a.bin", "700000"}, {"b.bin", "300000"}} {
		t.Run(tc.bytes, func(t *testing.T) {
			x.reset()
			x.add("cut", "limit_data", "downstream", `{"bytes":`+tc.bytes+`}`)
			start, before := time.Now(), builtin.Resumes()
			got, err := os.ReadFile(filepath.Join(dir, tc.file))
			x.reset()
			if err != nil {
				t.Fatalf("read with connections cut mid-body: %v after %v", err, time.Since(start))
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("read with connections cut mid-body: wrong bytes (%d of %d)", len(got), len(data))
			}
			resumed := builtin.Resumes() - before
			if resumed < 3 {
				t.Fatalf("only %d GET bodies were resumed: the toxic did not cut the reads", resumed)
			}
			t.Logf("3 MiB read with every connection cut after %s bytes in %v: %d resumptions", tc.bytes, time.Since(start), resumed)
		})
	}
}

// Latency is not a stall: with 400 ms added each way (every request waits
// 0.8 s+ for its first byte, well under stall_timeout), listing, reading
// and writing work with the right bytes.
func TestLatencyIsNotAStall(t *testing.T) {
	data := randomBytes(t, 3<<20)
	dir, x := proxiedMount(t, "latency", map[string][]byte{"d/a.bin": data})
	x.add("lat_down", "latency", "downstream", `{"latency":400}`)
	x.add("lat_up", "latency", "upstream", `{"latency":400}`)
	equal(t, "listing with latency", strings.Join(readDir(t, filepath.Join(dir, "d")), ","), "a.bin")
	got, err := os.ReadFile(filepath.Join(dir, "d/a.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with latency: %d bytes, %v", len(got), err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d/b.bin"), data[:1<<20], 0o644); err != nil {
		t.Fatalf("write with latency: %v", err)
	}
}
