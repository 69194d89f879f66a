// Command bench (internal/tools/bench: a tool, not part of the filesystem
// package) measures the built-in S3 mount against the direct SDK, s3fs,
// rclone and GeeseFS (when installed) on a local MinIO, optionally behind
// Toxiproxy with added latency (the profile of a real endpoint), in
// alternating rounds, and prints medians and ranges. `make bench` runs it
// through scripts/bench.sh; it is not a test.
//
//	bench [-dir .bench] [-latency 20ms] [-rounds 3] [-objects 100000] [-size 1GiB]
//	      [-small 10000] [-only builtin,s3fs,rclone,geesefs] [-cases ls,seq_read,small,rand_4k,seq_write]
//	      [-json out.json]
//	bench mount   (internal: serves one built-in mount read from stdin)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	bucket = "bench"
	access = "benchadmin"
	secret = "benchadmin-secret"
)

// cfg is what the flags set.
type cfg struct {
	dir         string
	latency     time.Duration
	rounds      int
	objects     int   // flat folder entries
	size        int64 // sequential read/write bytes
	small       int   // small files of smallSize
	smallSize   int
	readers     int // parallel readers of the small files
	randReads   int
	listWorkers int
	timeout     time.Duration
	only        []string
	cases       map[string]bool // nil: all
}

func (c *cfg) want(group string) bool { return c.cases == nil || c.cases[group] }

func main() {
	if len(os.Args) > 1 && os.Args[1] == "mount" {
		serveMount()
		return
	}
	var c cfg
	var size, only, cases, jsonOut string
	flag.StringVar(&c.dir, "dir", ".bench", "work directory (MinIO data is kept here between runs, so fixtures are uploaded once)")
	flag.DurationVar(&c.latency, "latency", 0, "delay Toxiproxy adds in each direction between every system and MinIO (20ms: a real endpoint's profile); 0: no proxy")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds; every system runs every case once per round, systems alternating; medians and ranges are reported")
	flag.IntVar(&c.objects, "objects", 100_000, "objects in the flat folder listed by ls -f / ls -l")
	flag.StringVar(&size, "size", "1GiB", "bytes of the sequential read and write (binary units: 256MiB, 1GiB)")
	flag.IntVar(&c.small, "small", 10_000, "small files (128 KiB each) read by the parallel readers")
	flag.IntVar(&c.readers, "readers", 16, "parallel readers of the small files (and GETs of the direct baseline)")
	flag.IntVar(&c.randReads, "rand", 300, "random 4 KiB reads")
	flag.IntVar(&c.listWorkers, "list-workers", 16, "workers of the direct key-range parallel listing (the built-in mount's default list_concurrency)")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "a case that takes longer is reported as timed out (and not run again)")
	flag.StringVar(&only, "only", "builtin,s3fs,rclone,geesefs", "mounts to measure besides the direct SDK")
	flag.StringVar(&cases, "cases", "", "case groups (comma-separated: ls,seq_read,small,rand_4k,seq_write); all when empty")
	flag.StringVar(&jsonOut, "json", "", "write every sample as JSON here")
	flag.Parse()
	var err error
	if c.size, err = parseSize(size); err != nil {
		log.Fatalf("-size %q: %v", size, err)
	}
	c.smallSize = 128 << 10
	c.only = strings.Split(only, ",")
	if cases != "" {
		c.cases = map[string]bool{}
		for _, k := range strings.Split(cases, ",") {
			c.cases[strings.TrimSpace(k)] = true
		}
	}
	if c.rounds < 1 || c.objects < 1 || c.small < 1 || c.readers < 1 || c.listWorkers < 1 || c.size < 1<<20 {
		log.Fatal("-rounds, -objects, -small, -readers and -list-workers must be ≥ 1 and -size ≥ 1MiB")
	}
	c.dir, _ = filepath.Abs(c.dir)
	r := &run{cfg: c, samples: map[string]map[string][]float64{}, started: time.Now().UTC()}
	r.args = strings.Join(os.Args[1:], " ")
	r.commit = gitDescribe()
	if err := r.main(); err != nil {
		r.stopAll()
		log.Fatal(err)
	}
	r.stopAll()
	r.print(os.Stdout)
	if jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"args": r.args, "commit": r.commit, "started": r.started, "loadavg": r.loads, "samples": r.samples}, "", "  ")
		if err := os.WriteFile(jsonOut, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// parseSize reads 256MiB, 1GiB, 4KiB or plain bytes.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suf string
		m   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suf) {
			s, mult = strings.TrimSuffix(s, u.suf), u.m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a size: use bytes or a number with KiB, MiB or GiB")
	}
	return n * mult, nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d B", n)
}

// loadavg is /proc/loadavg's first three fields.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
