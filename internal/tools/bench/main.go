// Command bench (internal/tools/bench: a tool, not part of the filesystem package) measures the built-in S3 mount against the direct SDK, s3fs
// and GeeseFS (when on PATH) on a local MinIO, and prints a table of
// ratios. `make bench` runs it through scripts/bench.sh; it is not a test.
//
//	bench [-dir .bench] [-only builtin,s3fs] [-json out.json] [-cases seq_read,seq_write]
//	bench mount   (internal: serves one built-in mount read from stdin)
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/builtin"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

const (
	bucket    = "bench"
	bigKey    = "big/1GiB.bin"
	bigSize   = 1 << 30
	flatDir   = "flat100k"
	flatN     = 100_000
	smallDir  = "small1000"
	smallN    = 1000
	treeDir   = "tree10k"
	randReads = 300
	access    = "benchadmin"
	secret    = "benchadmin-secret"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "mount" {
		serveMount()
		return
	}
	dir := flag.String("dir", ".bench", "work directory (MinIO data is kept here between runs)")
	only := flag.String("only", "builtin,s3fs,geesefs", "mounts to measure")
	jsonOut := flag.String("json", "", "write results as JSON here")
	flag.DurationVar(&latency, "latency", 0, "one-way delay added by a proxy between every client and MinIO (e.g. 10ms: 20 ms round trips)")
	flag.IntVar(&repeat, "repeat", 3, "rounds; each case reports its best round (s3fs and geesefs run one round)")
	casesFlag := flag.String("cases", "", "measure only these cases (comma-separated: seq_read,rand_4k,ls,cat_find,seq_write); all when empty")
	flag.Parse()
	if *casesFlag != "" {
		onlyCases = map[string]bool{}
		for _, c := range strings.Split(*casesFlag, ",") {
			onlyCases[c] = true
		}
	}
	abs, _ := filepath.Abs(*dir)
	r := &run{dir: abs, results: map[string]map[string]float64{}}
	if err := r.main(strings.Split(*only, ",")); err != nil {
		log.Fatal(err)
	}
	r.print(os.Stdout)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(r.results, "", "  ")
		if err := os.WriteFile(*jsonOut, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

type run struct {
	dir      string
	endpoint string
	minio    *exec.Cmd
	c        *s3.Client
	// results[mount][case] = seconds (or MiB for rss)
	results map[string]map[string]float64
	order   []string
}

func (r *run) set(who, what string, v float64) {
	if r.results[who] == nil {
		r.results[who] = map[string]float64{}
		r.order = append(r.order, who)
	}
	if old, ok := r.results[who][what]; ok {
		// Repeated rounds: the best time, the worst memory.
		if strings.HasPrefix(what, "rss_") {
			v = max(v, old)
		} else {
			v = min(v, old)
		}
	}
	r.results[who][what] = v
	log.Printf("%-8s %-22s %.3f", who, what, v)
}

func (r *run) main(only []string) error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	if err := r.startMinIO(); err != nil {
		return err
	}
	defer r.stopMinIO()
	if latency > 0 {
		ep, err := latencyProxy(strings.TrimPrefix(r.endpoint, "http://"), latency)
		if err != nil {
			return err
		}
		log.Printf("latency: %v each way through %s", latency, ep)
		r.endpoint = ep
	}
	spec := r.spec()
	c, err := s3conn.NewClient(context.Background(), spec, s3conn.Options{MaxConnsPerHost: 64})
	if err != nil {
		return err
	}
	r.c = c
	if err := r.fixtures(); err != nil {
		return fmt.Errorf("preparing fixtures: %w", err)
	}
	if want("ls") {
		if err := r.lsFloor(); err != nil {
			return err
		}
	}
	for round := 0; round < repeat; round++ {
		if err := r.round(round, only); err != nil {
			return err
		}
	}
	return nil
}

var (
	repeat  = 3
	latency time.Duration
	// onlyCases limits the run to some case groups (-cases); nil: all.
	onlyCases map[string]bool
)

func want(group string) bool { return onlyCases == nil || onlyCases[group] }

// latencyProxy forwards TCP to upstream and delivers every chunk, in each
// direction, delay after it arrived: latency without a bandwidth cap (no
// netem on these machines).
func latencyProxy(upstream string, delay time.Duration) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	pipe := func(dst, src net.Conn) {
		type chunk struct {
			at   time.Time
			data []byte
		}
		ch := make(chan chunk, 1024)
		go func() {
			defer close(ch)
			for {
				buf := make([]byte, 256<<10)
				n, err := src.Read(buf)
				if n > 0 {
					ch <- chunk{time.Now(), buf[:n]}
				}
				if err != nil {
					return
				}
			}
		}()
		for c := range ch {
			time.Sleep(time.Until(c.at.Add(delay)))
			if _, err := dst.Write(c.data); err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				u, err := net.Dial("tcp", upstream)
				if err != nil {
					c.Close()
					return
				}
				go pipe(u, c)
				go pipe(c, u)
			}()
		}
	}()
	return "http://" + l.Addr().String(), nil
}

// lsFloor measures `ls -l` of 100k empty files on tmpfs: what no network
// filesystem can beat on this machine.
func (r *run) lsFloor() error {
	d, err := os.MkdirTemp("/dev/shm", "bench-ls-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(d)
	for i := 0; i < flatN; i++ {
		f, err := os.Create(filepath.Join(d, fmt.Sprintf("f%06d", i)))
		if err != nil {
			return err
		}
		f.Close()
	}
	for i := 0; i < 3; i++ {
		s, err := timeIt(func() error { return exec.Command("bash", "-c", "ls -l "+d+" > /dev/null").Run() })
		if err != nil {
			return err
		}
		r.set("tmpfs", "ls_l_second", s)
	}
	return nil
}

func (r *run) round(round int, only []string) error {
	var err error
	if err := r.direct(); err != nil {
		return fmt.Errorf("direct baseline: %w", err)
	}
	for _, who := range only {
		if round > 0 && who != "builtin" {
			continue
		}
		switch who {
		case "builtin":
			err = r.measure(who, r.mountBuiltin)
		case "s3fs":
			if _, e := exec.LookPath("s3fs"); e != nil {
				log.Printf("s3fs not on PATH: skipped")
				continue
			}
			err = r.measure(who, r.mountS3FS)
		case "geesefs":
			if _, e := exec.LookPath("geesefs"); e != nil {
				log.Printf("geesefs not on PATH: skipped")
				continue
			}
			err = r.measure(who, r.mountGeeseFS)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", who, err)
		}
	}
	return nil
}

func (r *run) spec() mounts.Spec {
	return mounts.Spec{ID: "bench", Backend: "default", Endpoint: r.endpoint, Region: "us-east-1", Bucket: bucket,
		PathStyle: true, FileMode: 0o644, DirMode: 0o755, StallTimeout: 10 * time.Second,
		MetadataTTL: 5 * time.Minute, NegativeTTL: 5 * time.Second,
		Credentials: mounts.Credentials{AccessKeyID: access, SecretAccessKey: mounts.Secret(secret)}}
}

func (r *run) startMinIO() error {
	bin, err := testenv.MinioBinary()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r.endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	cmd := exec.Command(bin, "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", "127.0.0.1:0", filepath.Join(r.dir, "minio-data"))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+access, "MINIO_ROOT_PASSWORD="+secret, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, _ := os.Create(filepath.Join(r.dir, "minio.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return err
	}
	r.minio = cmd
	for i := 0; i < 300; i++ {
		if resp, err := http.Get(r.endpoint + "/minio/health/live"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("MinIO did not start; see " + logf.Name())
}

func (r *run) stopMinIO() {
	if r.minio != nil {
		r.minio.Process.Kill()
		r.minio.Wait()
	}
}

func (r *run) exists(key string) bool {
	_, err := r.c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err == nil
}

func (r *run) put(ctx context.Context, key string, body []byte) error {
	_, err := r.c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	return err
}

// fixtures uploads what is missing; a marker object says a set is complete.
func (r *run) fixtures() error {
	ctx := context.Background()
	_, _ = r.c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	if !r.exists("done/big") {
		log.Printf("fixture: 1 GiB object")
		if _, err := r.multipartUpload(ctx, bigKey, randomData(bigSize)); err != nil {
			return err
		}
		_ = r.put(ctx, "done/big", nil)
	}
	many := func(marker string, n int, key func(i int) string, size int) error {
		if r.exists(marker) {
			return nil
		}
		log.Printf("fixture: %s (%d objects)", marker, n)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(64)
		body := randomData(size)
		for i := 0; i < n; i++ {
			g.Go(func() error { return r.put(gctx, key(i), body) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		return r.put(ctx, marker, nil)
	}
	if err := many("done/flat", flatN, func(i int) string { return fmt.Sprintf("%s/f%06d", flatDir, i) }, 100); err != nil {
		return err
	}
	if err := many("done/small", smallN, func(i int) string { return fmt.Sprintf("%s/s%04d", smallDir, i) }, 16<<10); err != nil {
		return err
	}
	return many("done/tree", 10_000, func(i int) string {
		return fmt.Sprintf("%s/d%02d/e%02d/f%03d", treeDir, i/1000, i/100%10, i%100)
	}, 10)
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func timeIt(fn func() error) (float64, error) {
	t := time.Now()
	err := fn()
	return time.Since(t).Seconds(), err
}

// direct measures the SDK itself: the baseline every ratio is against.
func (r *run) direct() error {
	ctx := context.Background()
	var err error
	var s float64
	if want("seq_read") {
		if s, err = timeIt(func() error { return r.parallelGet(ctx, bigKey, bigSize, 8<<20, 16) }); err != nil {
			return err
		}
		r.set("direct", "seq_read", s)
		if s, err = timeIt(func() error {
			out, err := r.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(bigKey)})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, err = io.Copy(io.Discard, out.Body)
			return err
		}); err != nil {
			return err
		}
		r.set("direct", "seq_read_1stream", s)
	}
	if want("rand_4k") {
		if s, err = timeIt(func() error {
			rng := mrand.New(mrand.NewPCG(1, 2))
			buf := make([]byte, 4096)
			for i := 0; i < randReads; i++ {
				off := rng.Int64N(bigSize - 4096)
				out, err := r.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(bigKey),
					Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+4095))})
				if err != nil {
					return err
				}
				_, err = io.ReadFull(out.Body, buf)
				out.Body.Close()
				if err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		r.set("direct", "rand_4k", s)
	}
	if want("ls") {
		if s, err = timeIt(func() error {
			n, err := r.rawList(ctx, flatDir+"/", "/")
			if err == nil && n != flatN {
				err = fmt.Errorf("listed %d objects, want %d", n, flatN)
			}
			return err
		}); err != nil {
			return err
		}
		for _, c := range []string{"ls_f_first", "ls_l_first", "ls_l_second"} {
			r.set("direct", c, s)
		}
	}
	if want("cat_find") {
		if s, err = timeIt(func() error {
			for i := 0; i < smallN; i++ {
				out, err := r.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(fmt.Sprintf("%s/s%04d", smallDir, i))})
				if err != nil {
					return err
				}
				_, err = io.Copy(io.Discard, out.Body)
				out.Body.Close()
				if err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		r.set("direct", "cat_1000_small", s)
		if s, err = timeIt(func() error { _, err := r.rawList(ctx, treeDir+"/", ""); return err }); err != nil {
			return err
		}
		r.set("direct", "find_tree_10k", s)
	}
	if want("seq_write") {
		data := randomData(bigSize)
		if s, err = timeIt(func() error { _, err := r.multipartUpload(ctx, "direct-write.bin", data); return err }); err != nil {
			return err
		}
		r.set("direct", "seq_write", s)
	}
	return nil
}

func (r *run) parallelGet(ctx context.Context, key string, size, part int64, conns int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conns)
	var pool sync.Pool
	for off := int64(0); off < size; off += part {
		g.Go(func() error {
			b, _ := pool.Get().([]byte)
			if b == nil {
				b = make([]byte, part)
			}
			defer pool.Put(b)
			out, err := r.c.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
				Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, min(off+part, size)-1))})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, err = io.ReadFull(out.Body, b[:min(part, size-off)])
			return err
		})
	}
	return g.Wait()
}

func (r *run) rawList(ctx context.Context, prefix, delim string) (int, error) {
	n := 0
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	if delim != "" {
		in.Delimiter = aws.String(delim)
	}
	p := s3.NewListObjectsV2Paginator(r.c, in)
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return n, err
		}
		n += len(out.Contents) + len(out.CommonPrefixes)
	}
	return n, nil
}

func (r *run) multipartUpload(ctx context.Context, key string, data []byte) (string, error) {
	const part = 16 << 20
	out, err := r.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	n := (len(data) + part - 1) / part
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			chunk := data[i*part : min((i+1)*part, len(data))]
			o, err := r.c.UploadPart(gctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: out.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk), ContentLength: aws.Int64(int64(len(chunk)))})
			if err != nil {
				return err
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: o.ETag}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	_, err = r.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: out.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return key, err
}

// A mounted filesystem under test: its mountpoint, the pid whose peak RSS
// counts, and how to end it.
type mounted struct {
	dir  string
	pid  int
	stop func()
}

type mounter func(rw bool) (*mounted, error)

func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func sh(dir, script string) error {
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

// measure runs every case through one kind of mount. Each phase gets a
// fresh mount so that "first" means first.
func (r *run) measure(who string, mount mounter) error {
	var rss float64
	// No drop_caches: it would also empty MinIO's own cache and measure
	// its disk instead. Every phase has a fresh mount, so the mount's page
	// cache starts empty anyway.
	phase := func(rw bool, fn func(m *mounted) error) error {
		m, err := mount(rw)
		if err != nil {
			return err
		}
		err = fn(m)
		rss = max(rss, peakRSS(m.pid))
		m.stop()
		return err
	}
	timed := func(what string, fn func() error) error {
		s, err := timeIt(fn)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		r.set(who, what, s)
		return nil
	}
	// Reads.
	if want("seq_read") {
		if err := phase(false, func(m *mounted) error {
			return timed("seq_read", func() error {
				return sh(m.dir, "dd if="+bigKey+" of=/dev/null bs=1M status=none")
			})
		}); err != nil {
			return err
		}
	}
	if want("rand_4k") {
		if err := phase(false, func(m *mounted) error {
			return timed("rand_4k", func() error {
				f, err := os.Open(filepath.Join(m.dir, bigKey))
				if err != nil {
					return err
				}
				defer f.Close()
				rng := mrand.New(mrand.NewPCG(3, 4))
				buf := make([]byte, 4096)
				for i := 0; i < randReads; i++ {
					if _, err := f.ReadAt(buf, rng.Int64N(bigSize-4096)); err != nil {
						return err
					}
				}
				return nil
			})
		}); err != nil {
			return err
		}
	}
	r.set(who, "rss_read_mib", rss)
	rss = 0
	countLines := func(dir, cmd string, want int) error {
		out, err := exec.Command("bash", "-c", cmd).Output()
		if err != nil {
			return err
		}
		if n := bytes.Count(out, []byte("\n")); n < want {
			return fmt.Errorf("%s listed %d lines, want %d", cmd, n, want)
		}
		return nil
	}
	// Listings: ls -f on a fresh mount; ls -l first on another fresh mount, then again.
	if want("ls") {
		if err := phase(false, func(m *mounted) error {
			return timed("ls_f_first", func() error { return countLines(m.dir, "ls -f "+m.dir+"/"+flatDir, flatN) })
		}); err != nil {
			return err
		}
		if err := phase(false, func(m *mounted) error {
			if err := timed("ls_l_first", func() error { return countLines(m.dir, "ls -l "+m.dir+"/"+flatDir, flatN) }); err != nil {
				return err
			}
			return timed("ls_l_second", func() error { return countLines(m.dir, "ls -l "+m.dir+"/"+flatDir, flatN) })
		}); err != nil {
			return err
		}
	}
	r.set(who, "rss_list_mib", rss)
	rss = 0
	if want("cat_find") {
		if err := phase(false, func(m *mounted) error {
			if err := timed("cat_1000_small", func() error { return sh(m.dir, "cat "+smallDir+"/* > /dev/null") }); err != nil {
				return err
			}
			return timed("find_tree_10k", func() error { return countLines(m.dir, "find "+m.dir+"/"+treeDir, 10_000) })
		}); err != nil {
			return err
		}
	}
	// Write 1 GiB and close (dd exits only after close returns).
	if want("seq_write") {
		src := filepath.Join(r.dir, "write-src.bin")
		if st, err := os.Stat(src); err != nil || st.Size() != bigSize {
			if err := os.WriteFile(src, randomData(bigSize), 0o644); err != nil {
				return err
			}
		}
		if err := phase(true, func(m *mounted) error {
			_ = sh(m.dir, "cat "+src+" > /dev/null") // source in page cache
			name := "written-" + who + ".bin"
			return timed("seq_write", func() error {
				return sh(m.dir, "dd if="+src+" of="+name+" bs=1M status=none")
			})
		}); err != nil {
			return err
		}
	}
	r.set(who, "rss_write_mib", rss)
	return nil
}

func waitMounted(dir string, cmd *exec.Cmd) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- mounts.WaitMounted(ctx, dir) }()
	return <-done
}

func stopper(dir string, cmd *exec.Cmd) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := mounts.Unmount(ctx, dir); err != nil {
			log.Printf("unmount %s: %v", dir, err)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		waitCh := make(chan struct{})
		go func() { cmd.Wait(); close(waitCh) }()
		select {
		case <-waitCh:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-waitCh
		}
	}
}

var mountSeq atomic.Int32

func (r *run) mountDir(who string) (string, error) {
	d := filepath.Join(r.dir, fmt.Sprintf("mnt-%s-%d", who, mountSeq.Add(1)))
	_ = mounts.CleanStale(d)
	os.RemoveAll(d)
	return d, os.MkdirAll(d, 0o755)
}

// mountBuiltin runs the built-in mount in a child process (this binary,
// "mount"), like the agent's mount worker, so its RSS is its own.
func (r *run) mountBuiltin(rw bool) (*mounted, error) {
	dir, err := r.mountDir("builtin")
	if err != nil {
		return nil, err
	}
	spec := r.spec()
	spec.MountPoint = dir
	spec.ReadOnly = !rw
	spec.CacheDir = filepath.Join(r.dir, "cache")
	b, _ := json.Marshal(spec)
	self, _ := os.Executable()
	cmd := exec.Command(self, "mount")
	cmd.Stdin = bytes.NewReader(b)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitMounted(dir, cmd); err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	return &mounted{dir: dir, pid: cmd.Process.Pid, stop: stopper(dir, cmd)}, nil
}

func serveMount() {
	var spec mounts.Spec
	if err := json.NewDecoder(os.Stdin).Decode(&spec); err != nil {
		log.Fatal(err)
	}
	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	m, err := builtin.New().Mount(context.Background(), spec)
	if err != nil {
		log.Fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Unmount(ctx)
	}()
	_ = m.Wait()
}

func (r *run) mountS3FS(rw bool) (*mounted, error) {
	dir, err := r.mountDir("s3fs")
	if err != nil {
		return nil, err
	}
	pw := filepath.Join(r.dir, "s3fs.passwd")
	if err := os.WriteFile(pw, []byte(access+":"+secret+"\n"), 0o600); err != nil {
		return nil, err
	}
	opts := "passwd_file=" + pw + ",use_path_request_style,url=" + r.endpoint + ",allow_other,parallel_count=16,multipart_size=16,max_stat_cache_size=200000,stat_cache_expire=300"
	if !rw {
		opts += ",ro"
	}
	cmd := exec.Command("s3fs", bucket, dir, "-f", "-o", opts)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitMounted(dir, cmd); err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	return &mounted{dir: dir, pid: cmd.Process.Pid, stop: stopper(dir, cmd)}, nil
}

func (r *run) mountGeeseFS(rw bool) (*mounted, error) {
	dir, err := r.mountDir("geesefs")
	if err != nil {
		return nil, err
	}
	args := []string{"-f", "--endpoint", r.endpoint, "--stat-cache-ttl", "5m", "-o", "allow_other"}
	if !rw {
		args = append(args, "-o", "ro")
	}
	cmd := exec.Command("geesefs", append(args, bucket, dir)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+access, "AWS_SECRET_ACCESS_KEY="+secret)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitMounted(dir, cmd); err != nil {
		cmd.Process.Kill()
		return nil, err
	}
	return &mounted{dir: dir, pid: cmd.Process.Pid, stop: stopper(dir, cmd)}, nil
}

var cases = []struct{ key, label, target string }{
	{"seq_read", "sequential read 1 GiB (dd bs=1M)", "≤ 1.25 (≥ 0.8× speed)"},
	{"rand_4k", "300 random 4 KiB reads", ""},
	{"ls_f_first", "`ls -f` 100k dir, first", "≤ 1.3"},
	{"ls_l_first", "`ls -l` 100k dir, first", "≤ 1.5"},
	{"ls_l_second", "`ls -l` 100k dir, second", "≤ 0.1"},
	{"cat_1000_small", "cat 1000 small files (16 KiB)", ""},
	{"find_tree_10k", "find over a 10k-entry tree", ""},
	{"seq_write", "sequential write 1 GiB + close", "≤ 1.43 (≥ 0.7× speed)"},
}

// print writes the table: seconds per mount and time ratios to direct.
func (r *run) print(w io.Writer) {
	var mountsOrder []string
	for _, who := range r.order {
		if who != "direct" && who != "tmpfs" {
			mountsOrder = append(mountsOrder, who)
		}
	}
	fmt.Fprintf(w, "\n| case | direct SDK (s) |")
	for _, m := range mountsOrder {
		fmt.Fprintf(w, " %s (s) | %s ÷ direct |", m, m)
	}
	fmt.Fprintf(w, " target (builtin ÷ direct) |\n|---|---:|")
	for range mountsOrder {
		fmt.Fprintf(w, "---:|---:|")
	}
	fmt.Fprintf(w, "---|\n")
	d := r.results["direct"]
	for _, c := range cases {
		fmt.Fprintf(w, "| %s | %.2f |", c.label, d[c.key])
		for _, m := range mountsOrder {
			v, ok := r.results[m][c.key]
			if !ok {
				fmt.Fprintf(w, " – | – |")
				continue
			}
			fmt.Fprintf(w, " %.2f | %.2f |", v, v/d[c.key])
		}
		fmt.Fprintf(w, " %s |\n", c.target)
	}
	if f, ok := r.results["tmpfs"]["ls_l_second"]; ok {
		fmt.Fprintf(w, "| `ls -l` of 100k files on tmpfs (floor) | %.2f |", d["ls_l_second"])
		for range mountsOrder {
			fmt.Fprintf(w, " %.2f | %.2f |", f, f/d["ls_l_second"])
		}
		fmt.Fprintf(w, " |\n")
	}
	for _, k := range []string{"rss_read_mib", "rss_list_mib", "rss_write_mib"} {
		fmt.Fprintf(w, "| peak RSS MiB (%s) | – |", strings.TrimSuffix(strings.TrimPrefix(k, "rss_"), "_mib"))
		for _, m := range mountsOrder {
			fmt.Fprintf(w, " %.0f | |", r.results[m][k])
		}
		fmt.Fprintf(w, " ≤ 150 |\n")
	}
	if s3fs, ok := r.results["s3fs"]; ok {
		if b, ok := r.results["builtin"]; ok && b["seq_read"] > 0 {
			fmt.Fprintf(w, "\nbuiltin sequential read is %.2f× s3fs's speed (target ≥ 2).\n", s3fs["seq_read"]/b["seq_read"])
		}
	}
	fmt.Fprintf(w, "direct parallel GET: %.0f MB/s; one stream: %.0f MB/s\n", bigSize/1e6/d["seq_read"], bigSize/1e6/d["seq_read_1stream"])
}
