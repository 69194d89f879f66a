package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// timedOut is the sample of a case that ran past -timeout.
const timedOut = -1

type run struct {
	cfg
	args     string
	commit   string // of the checkout, when the run started
	started  time.Time
	endpoint string // what every measured system talks to (the proxy with -latency)
	direct   string // MinIO itself (fixtures are uploaded past the proxy)
	minio    *exec.Cmd
	proxy    *toxiproxy.Proxy
	c        *s3.Client // through endpoint
	fix      *s3.Client // straight to MinIO
	// samples[system][case]: one value per round (timedOut for a timeout).
	samples map[string]map[string][]float64
	order   []string
	skipped map[string]string // system → why it did not run
	loads   []string          // /proc/loadavg at the start and after every round
	floor   float64           // ls -l of as many empty files on tmpfs
}

func (r *run) add(sys, what string, v float64) {
	if r.samples[sys] == nil {
		r.samples[sys] = map[string][]float64{}
		r.order = append(r.order, sys)
	}
	r.samples[sys][what] = append(r.samples[sys][what], v)
	if v == timedOut {
		log.Printf("%-8s %-16s timed out after %v", sys, what, r.timeout)
	} else {
		log.Printf("%-8s %-16s %.3f", sys, what, v)
	}
}

// hasTimedOut: a case that timed out once is not run again.
func (r *run) hasTimedOut(sys, what string) bool {
	for _, v := range r.samples[sys][what] {
		if v == timedOut {
			return true
		}
	}
	return false
}

func (r *run) main() error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	r.loads = append(r.loads, loadavg())
	if err := r.startMinIO(); err != nil {
		return err
	}
	r.endpoint = r.direct
	if r.latency > 0 {
		if err := r.startProxy(); err != nil {
			return err
		}
	}
	ctx := context.Background()
	var err error
	if r.fix, err = s3conn.NewClient(ctx, r.spec(r.direct), s3conn.Options{MaxConnsPerHost: 64}); err != nil {
		return err
	}
	if r.c, err = s3conn.NewClient(ctx, r.spec(r.endpoint), s3conn.Options{MaxConnsPerHost: 64}); err != nil {
		return err
	}
	if err := r.fixtures(ctx); err != nil {
		return fmt.Errorf("preparing fixtures: %w", err)
	}
	if r.want("ls") {
		if r.floor, err = r.lsFloor(); err != nil {
			return err
		}
	}
	systems := []string{"direct"}
	r.skipped = map[string]string{}
	for _, s := range r.only {
		bin := map[string]string{"builtin": "", "s3fs": "s3fs", "rclone": "rclone", "geesefs": "geesefs"}
		b, known := bin[s]
		if !known {
			return fmt.Errorf("-only: unknown system %q (builtin, s3fs, rclone, geesefs)", s)
		}
		if b != "" {
			if _, err := exec.LookPath(b); err != nil {
				r.skipped[s] = "skipped: " + b + " not installed"
				log.Printf("%s", r.skipped[s])
				continue
			}
		}
		systems = append(systems, s)
	}
	for round := 0; round < r.rounds; round++ {
		// Alternate the order, so that a drift in the machine's load does
		// not always favour the same system.
		order := append([]string(nil), systems...)
		if round%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		log.Printf("round %d of %d: %s (load %s)", round+1, r.rounds, strings.Join(order, ", "), loadavg())
		for _, sys := range order {
			var err error
			if sys == "direct" {
				err = r.measureDirect(ctx)
			} else {
				err = r.measureMount(sys)
			}
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", sys, round+1, err)
			}
		}
		r.loads = append(r.loads, loadavg())
	}
	return nil
}

func (r *run) spec(endpoint string) mounts.Spec {
	d := config.DefaultConnector() // every default from config's key table
	return mounts.Spec{ID: "bench", Backend: "default", Endpoint: endpoint, Region: d.Region, Bucket: bucket,
		PathStyle: true, FileMode: d.FileMode, DirMode: d.DirMode, StallTimeout: d.StallTimeout,
		MetadataTTL: 5 * time.Minute, NegativeTTL: d.NegativeTTL,
		MaxStaging: d.MaxStaging, MaxStagingPercent: d.MaxStagingPercent,
		Permissions: d.Permissions, MetadataMax: d.MetadataMax, ListConcurrency: d.ListConcurrency,
		Credentials: mounts.Credentials{AccessKeyID: access, SecretAccessKey: mounts.Secret(secret)}}
}

// minioBinary: $S3MOUNTS_MINIO, or .tools/bin/minio (scripts/setup.sh).
func minioBinary() (string, error) {
	if p := os.Getenv("S3MOUNTS_MINIO"); p != "" {
		return p, nil
	}
	p, _ := filepath.Abs(filepath.Join(".tools", "bin", "minio"))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("MinIO not found at %s: run scripts/setup.sh, or set S3MOUNTS_MINIO", p)
	}
	return p, nil
}

func (r *run) startMinIO() error {
	bin, err := minioBinary()
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r.direct = fmt.Sprintf("http://127.0.0.1:%d", port)
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
		if resp, err := http.Get(r.direct + "/minio/health/live"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("MinIO did not start; see " + logf.Name())
}

// startProxy puts Toxiproxy (in-process) in front of MinIO with a latency
// toxic in each direction: every measured system, the direct SDK included,
// talks to MinIO through it.
func (r *run) startProxy() error {
	u, err := url.Parse(r.direct)
	if err != nil {
		return err
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	srv.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	p := toxiproxy.NewProxy(srv, "minio", "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		return fmt.Errorf("starting toxiproxy: %w", err)
	}
	r.proxy = p
	ms := r.latency.Milliseconds()
	for _, stream := range []string{"upstream", "downstream"} {
		js := fmt.Sprintf(`{"name":"latency_%s","type":"latency","stream":"%s","attributes":{"latency":%d}}`, stream, stream, ms)
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
			return fmt.Errorf("adding the latency toxic: %w", err)
		}
	}
	r.endpoint = "http://" + p.Listen
	log.Printf("toxiproxy %s → %s: +%d ms each way", r.endpoint, r.direct, ms)
	return nil
}

func (r *run) stopAll() {
	if r.proxy != nil {
		r.proxy.Stop()
		r.proxy = nil
	}
	if r.minio != nil {
		r.minio.Process.Kill()
		r.minio.Wait()
		r.minio = nil
	}
}

// lsFloor times `ls -l` of as many empty files on tmpfs: what no network
// filesystem can beat on this machine (the best of 3).
func (r *run) lsFloor() (float64, error) {
	d, err := os.MkdirTemp("/dev/shm", "bench-ls-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(d)
	for i := 0; i < r.objects; i++ {
		f, err := os.Create(filepath.Join(d, fmt.Sprintf("f%07d", i)))
		if err != nil {
			return 0, err
		}
		f.Close()
	}
	best := math.Inf(1)
	for i := 0; i < 3; i++ {
		t := time.Now()
		if err := exec.Command("bash", "-c", "ls -l "+d+" > /dev/null").Run(); err != nil {
			return 0, err
		}
		best = min(best, time.Since(t).Seconds())
	}
	return best, nil
}

// stat is the median and range of samples, timeouts apart.
type stat struct {
	med, lo, hi float64
	n, timeouts int
}

func summarize(v []float64) (s stat) {
	var ok []float64
	for _, x := range v {
		if x == timedOut {
			s.timeouts++
		} else {
			ok = append(ok, x)
		}
	}
	s.n = len(ok)
	if s.n == 0 {
		return s
	}
	sort.Float64s(ok)
	s.lo, s.hi = ok[0], ok[s.n-1]
	if s.n%2 == 1 {
		s.med = ok[s.n/2]
	} else {
		s.med = (ok[s.n/2-1] + ok[s.n/2]) / 2
	}
	return s
}
