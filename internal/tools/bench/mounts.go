package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/builtin"
)

// A mounted filesystem under test: its mountpoint, the pid whose memory
// counts, its Stats (nil when it keeps none) and how to end it.
type mounted struct {
	dir   string
	pid   int
	stats func() *mounts.Stats
	stop  func()
}

type mounter func(rw bool) (*mounted, error)

// procStatus reads a "Vm…:" line of /proc/pid/status in MiB.
func procStatus(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// shTimed runs script in dir and times it; ok is false if it ran past
// the timeout (it is killed).
func (r *run) shTimed(dir, script string) (secs float64, ok bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	// A timeout kills the whole pipeline (ls | wc …), not only bash.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t := time.Now()
	err = cmd.Run()
	secs = time.Since(t).Seconds()
	if ctx.Err() != nil {
		return secs, false, nil
	}
	if err != nil {
		return secs, true, fmt.Errorf("%s: %w", script, err)
	}
	return secs, true, nil
}

// measureMount runs every case through one system; each phase gets a fresh
// mount, so that "first" and "cold" mean it.
func (r *run) measureMount(sys string) error {
	mount := map[string]mounter{"builtin": r.mountBuiltin, "s3fs": r.mountS3FS, "rclone": r.mountRclone, "geesefs": r.mountGeeseFS}[sys]
	phase := func(rw bool, fn func(m *mounted) error) error {
		m, err := mount(rw)
		if err != nil {
			return fmt.Errorf("mounting: %w", err)
		}
		defer m.stop()
		return fn(m)
	}
	// idle settles a fresh mount and returns its RSS (MiB).
	idle := func(m *mounted) float64 {
		_, _ = os.Stat(m.dir)
		time.Sleep(time.Second)
		return procStatus(m.pid, "VmRSS")
	}
	mbps := func(bytes int64, secs float64) float64 { return float64(bytes) / 1e6 / secs }
	// timed runs a shell case; a timeout is recorded and the case is not run again.
	timed := func(m *mounted, what, script string, value func(secs float64) float64) (bool, error) {
		if r.hasTimedOut(sys, what) {
			return false, nil
		}
		s, ok, err := r.shTimed(m.dir, script)
		if err != nil {
			return false, fmt.Errorf("%s: %w", what, err)
		}
		if !ok {
			r.add(sys, what, timedOut)
			return false, nil
		}
		r.add(sys, what, value(s))
		return true, nil
	}
	secs := func(s float64) float64 { return s }
	countCheck := fmt.Sprintf(" | wc -l | { read n; [ \"$n\" -ge %d ] || { echo \"listed $n entries, want %d\" >&2; exit 1; }; }", r.objects, r.objects)
	flat := filepath.Join(r.flatDir())
	if r.want("ls") {
		if err := phase(false, func(m *mounted) error {
			r.add(sys, "idle_rss", idle(m))
			_, err := timed(m, "ls_f", "ls -f "+flat+countCheck, secs)
			return err
		}); err != nil {
			return err
		}
		if err := phase(false, func(m *mounted) error {
			base := idle(m)
			var before *mounts.Stats
			if m.stats != nil {
				before = m.stats()
			}
			ok, err := timed(m, "ls_l", "ls -l "+flat+countCheck, secs)
			if err != nil || !ok {
				return err
			}
			if before != nil {
				if after := m.stats(); after != nil {
					r.add(sys, "ls_l_heads", float64(after.Requests["HeadObject"]-before.Requests["HeadObject"]))
				}
			}
			r.add(sys, "bytes_per_entry", (procStatus(m.pid, "VmRSS")-base)*(1<<20)/float64(r.objects))
			_, err = timed(m, "ls_l_again", "ls -l "+flat+countCheck, secs)
			return err
		}); err != nil {
			return err
		}
	}
	if r.want("seq_read") {
		if err := phase(false, func(m *mounted) error {
			ok, err := timed(m, "seq_read", "dd if="+r.bigKey()+" of=/dev/null bs=1M status=none", func(s float64) float64 { return mbps(r.size, s) })
			if ok {
				r.add(sys, "seq_read_rss", procStatus(m.pid, "VmHWM"))
			}
			return err
		}); err != nil {
			return err
		}
	}
	if r.want("small") && !r.hasTimedOut(sys, "small_parallel") {
		if err := phase(false, func(m *mounted) error {
			// The folder is listed first (not timed), as a data loader does;
			// the data is cold.
			dir := filepath.Join(m.dir, r.smallDir())
			ents, err := os.ReadDir(dir)
			if err != nil {
				return err
			}
			if len(ents) != r.small {
				return fmt.Errorf("%s: %d entries, want %d", dir, len(ents), r.small)
			}
			s, err := timeIt(func() error {
				var g errgroup.Group
				g.SetLimit(r.readers)
				for _, e := range ents {
					g.Go(func() error {
						b, err := os.ReadFile(filepath.Join(dir, e.Name()))
						if err == nil && len(b) != r.smallSize {
							err = fmt.Errorf("%s: %d bytes, want %d", e.Name(), len(b), r.smallSize)
						}
						return err
					})
				}
				return g.Wait()
			})
			if err != nil {
				return fmt.Errorf("small files: %w", err)
			}
			r.add(sys, "small_parallel", mbps(int64(r.small)*int64(r.smallSize), s))
			return nil
		}); err != nil {
			return err
		}
	}
	if r.want("rand_4k") {
		if err := phase(false, func(m *mounted) error {
			f, err := os.Open(filepath.Join(m.dir, r.bigKey()))
			if err != nil {
				return err
			}
			defer f.Close()
			rng := mrand.New(mrand.NewPCG(3, 4))
			buf := make([]byte, 4096)
			s, err := timeIt(func() error {
				for i := 0; i < r.randReads; i++ {
					if _, err := f.ReadAt(buf, rng.Int64N(r.size-4096)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("random reads: %w", err)
			}
			r.add(sys, "rand_4k", s*1000/float64(r.randReads))
			return nil
		}); err != nil {
			return err
		}
	}
	if r.want("seq_write") {
		src := filepath.Join(r.dir, "write-src.bin")
		if st, err := os.Stat(src); err != nil || st.Size() != r.size {
			if err := os.WriteFile(src, randomData(int(r.size)), 0o644); err != nil {
				return err
			}
		}
		if err := phase(true, func(m *mounted) error {
			_, _, _ = r.shTimed(m.dir, "cat "+src+" > /dev/null") // the source in page cache
			// dd exits after close returned: the object is in the bucket.
			ok, err := timed(m, "seq_write", "dd if="+src+" of=written-"+sys+".bin bs=1M status=none", func(s float64) float64 { return mbps(r.size, s) })
			if ok {
				r.add(sys, "seq_write_rss", procStatus(m.pid, "VmHWM"))
			}
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

func waitMounted(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return mounts.WaitMounted(ctx, dir)
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
		os.Remove(dir)
	}
}

var mountSeq atomic.Int32

func (r *run) mountDir(who string) (string, error) {
	d := filepath.Join(r.dir, fmt.Sprintf("mnt-%s-%d", who, mountSeq.Add(1)))
	_ = mounts.CleanStale(d)
	os.RemoveAll(d)
	return d, os.MkdirAll(d, 0o755)
}

// start starts a mounting process and waits for its mount.
func start(dir string, cmd *exec.Cmd) (*mounted, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitMounted(dir); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	return &mounted{dir: dir, pid: cmd.Process.Pid, stop: stopper(dir, cmd)}, nil
}

// mountBuiltin runs the built-in mount in a child process (this binary,
// "mount"), like the agent's mount worker, so its RSS is its own. The
// child answers GET /stats on a Unix socket with the mount's Stats when it
// keeps them (mounts.StatsReporter).
func (r *run) mountBuiltin(rw bool) (*mounted, error) {
	dir, err := r.mountDir("builtin")
	if err != nil {
		return nil, err
	}
	spec := r.spec(r.endpoint)
	spec.MountPoint = dir
	spec.ReadOnly = !rw
	spec.CacheDir = filepath.Join(r.dir, "cache")
	b, _ := json.Marshal(spec)
	sock := dir + ".stats.sock"
	os.Remove(sock)
	self, _ := os.Executable()
	cmd := exec.Command(self, "mount")
	cmd.Stdin = bytes.NewReader(b)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), "BENCH_STATS_SOCK="+sock)
	m, err := start(dir, cmd)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	m.stats = func() *mounts.Stats {
		resp, err := hc.Get("http://mount/stats")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil // the mount keeps no Stats
		}
		var s mounts.Stats
		if json.NewDecoder(resp.Body).Decode(&s) != nil {
			return nil
		}
		return &s
	}
	stop := m.stop
	m.stop = func() { stop(); os.Remove(sock) }
	return m, nil
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
	var mnt atomic.Value // mounts.Mount
	if sock := os.Getenv("BENCH_STATS_SOCK"); sock != "" {
		l, err := net.Listen("unix", sock)
		if err != nil {
			log.Fatal(err)
		}
		go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			sr, ok := mnt.Load().(mounts.StatsReporter)
			if !ok {
				http.Error(w, "this mount keeps no Stats", http.StatusNotImplemented)
				return
			}
			_ = json.NewEncoder(w).Encode(sr.Stats())
		}))
	}
	m, err := builtin.New().Mount(context.Background(), spec)
	if err != nil {
		log.Fatal(err)
	}
	mnt.Store(m)
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

// mountS3FS: Debian's s3fs with a 0600 passwd_file (no secret in argv).
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
	return start(dir, cmd)
}

// mountRclone: rclone mount, configured through RCLONE_CONFIG_* variables
// (no secret in argv), with a 5-minute directory cache like the others.
func (r *run) mountRclone(rw bool) (*mounted, error) {
	dir, err := r.mountDir("rclone")
	if err != nil {
		return nil, err
	}
	args := []string{"mount", "bench:" + bucket, dir, "--dir-cache-time", "5m", "--allow-other",
		"--vfs-cache-mode", "writes", "--cache-dir", filepath.Join(r.dir, "rclone-cache")}
	if !rw {
		args = append(args, "--read-only")
	}
	cmd := exec.Command("rclone", args...)
	cmd.Env = append(os.Environ(), "RCLONE_CONFIG_BENCH_TYPE=s3", "RCLONE_CONFIG_BENCH_PROVIDER=Minio",
		"RCLONE_CONFIG_BENCH_ENDPOINT="+r.endpoint, "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="+access,
		"RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="+secret, "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	return start(dir, cmd)
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
	return start(dir, cmd)
}
