package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/config"
)

// Options are s3mountd's command-line settings; non-empty values override
// agent.toml.
type Options struct {
	Config        string // agent.toml ("" = /etc/s3mounts/agent.toml, optional)
	ConnectorsDir string
	ProjectRoot   string
	Socket        string
	StateDir      string
	RuntimeDir    string // worker sockets and per-mount runtime files (default /run/s3mounts)
	CacheDir      string
	SecretsDir    string
	// Args is the command line, for re-executing an upgraded binary.
	Args []string
	// Log is the logger; nil builds one from log_level.
	Log *slog.Logger
}

// DefaultRuntimeDir is where worker sockets live unless systemd's
// RUNTIME_DIRECTORY or --runtime-dir says otherwise.
const DefaultRuntimeDir = "/run/s3mounts"

// LoadSettings reads agent.toml and applies the command-line overrides.
func LoadSettings(o Options) (*config.Agent, string, error) {
	a, err := config.LoadAgent(o.Config)
	if err != nil {
		return nil, "", err
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&a.ConnectorsDir, o.ConnectorsDir)
	set(&a.ProjectRoot, o.ProjectRoot)
	set(&a.Socket, o.Socket)
	set(&a.StateDir, o.StateDir)
	set(&a.CacheDir, o.CacheDir)
	set(&a.SecretsDir, o.SecretsDir)
	for _, p := range []*string{&a.ConnectorsDir, &a.ProjectRoot, &a.Socket, &a.StateDir, &a.CacheDir, &a.SecretsDir} {
		if *p != "" {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
	rt := o.RuntimeDir
	if rt == "" {
		rt = os.Getenv("RUNTIME_DIRECTORY")
	}
	if rt == "" {
		rt = DefaultRuntimeDir
	}
	rt, _ = filepath.Abs(rt)
	return a, rt, nil
}

// shutdownTimeout bounds a shutdown: the connector steps in flight
// (unmountTimeout), then the unmounts (unmountTimeout, in parallel), then
// the API; within the unit's TimeoutStopSec=3min.
const shutdownTimeout = 2*unmountTimeout + 30*time.Second

// stopMode is why s3mountd stops.
type stopMode int

const (
	stopSignal stopMode = iota // SIGTERM: unmount everything, remove the socket
	stopFailed                 // a part (the socket API) failed: unmount everything
	stopReexec                 // re-exec: workers, mounts and the socket stay for the next image
)

// parts are s3mountd's running parts: the socket API, the optional TCP
// metrics server, the file watcher and the systemd watchdog run in an
// errgroup beside the reconciler; shutdown stops them in one order.
type parts struct {
	o         Options
	a         *config.Agent
	log       *slog.Logger
	exe       string
	exeInfo   os.FileInfo
	rec       *reconciler
	api       *API
	ln        net.Listener
	lnFile    *os.File // a dup of ln, handed to a re-executed image
	activated bool     // ln came from systemd: the socket file is not ours
	metrics   *http.Server
	metricsLn net.Listener
	watch     *watcher

	g         *errgroup.Group
	failed    context.Context // done when a part failed
	watchCtx  context.Context // the watcher's and the watchdog's
	stopWatch context.CancelFunc
	stopAPI   context.CancelFunc
	apiDone   chan struct{}

	statusMu   sync.Mutex
	lastStatus string
}

// Run is s3mountd: it adopts live mount workers, reconciles the connector
// files, serves the socket API, and on cancellation of ctx (SIGTERM)
// unmounts everything and returns nil. SIGHUP re-reads every file, and
// re-executes the binary in place when it changed on disk (an upgrade),
// keeping every worker and mount.
func Run(ctx context.Context, o Options) error {
	p, err := build(o)
	if err != nil {
		return err
	}
	defer p.lnFile.Close()
	p.log.Info("s3mountd starting", "version", Version, "pid", os.Getpid(), "socket", p.a.Socket,
		"socket_activated", p.activated, "connectors_dir", p.a.ConnectorsDir, "project_root", p.a.ProjectRoot)
	p.serve()

	startCtx, startCancel := context.WithTimeout(ctx, 2*time.Minute)
	p.rec.Start(startCtx)
	startCancel()
	p.updateStatus()
	sdNotify(p.log, daemon.SdNotifyReady)
	p.log.Info("ready", "connectors", len(p.rec.Connectors()), "mounted", p.rec.MountedCount())
	p.watchdog()

	stop := func(mode stopMode) error {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return p.shutdown(sctx, mode)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return stop(stopSignal)
		case <-p.failed.Done():
			return stop(stopFailed)
		case <-hup:
			if !p.reload() {
				continue
			}
			stop(stopReexec)
			err := reexec(p.exe, o.Args, p.lnFile, !p.activated)
			// only reached when exec failed: exit non-zero so that systemd
			// restarts the agent, which adopts every worker
			p.log.Error("re-exec failed; exiting (workers and mounts stay for the next start)", "err", err)
			return fmt.Errorf("re-exec %s: %w", p.exe, err)
		}
	}
}

// build makes s3mountd's parts: settings, directories, node key,
// reconciler, metrics, the socket API and its listener.
func build(o Options) (*parts, error) {
	a, runtimeDir, err := LoadSettings(o)
	if err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = NewLogger(a.LogLevel, os.Stderr)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable: %w", err)
	}
	exeInfo, _ := os.Stat("/proc/self/exe")

	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{a.StateDir, 0o700}, {runtimeDir, 0o755}, {a.CacheDir, 0o700}, {a.ProjectRoot, 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return nil, fmt.Errorf("create %s: %w", d.path, err)
		}
	}
	key, err := config.LoadOrCreateNodeKey(a.StateDir)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	ov, err := loadOverrides(a.StateDir)
	if err != nil {
		log.Error("activation overrides unreadable", "err", err)
	}
	sup := &worker.Supervisor{Exe: exe, StateDir: a.StateDir, RuntimeDir: runtimeDir, Log: log, LogLevel: a.LogLevel}
	rec := newReconciler(a, runtimeDir, key, supervisorWorkers{sup}, ov, log)
	rec.last = newLastGoodStore(a.StateDir)
	metrics := NewMetrics(rec)
	rec.metrics = metrics

	ln, activated, err := listen(a.Socket, a.SocketGroup, log)
	if err != nil {
		return nil, err
	}
	p := &parts{o: o, a: a, log: log, exe: exe, exeInfo: exeInfo, rec: rec, ln: ln, activated: activated}
	p.api = NewAPI(APIOptions{Controller: rec, Agent: a, Metrics: metrics, Log: log, Recipient: key.Recipient()})
	// A dup of the listening socket, handed to a re-executed image.
	p.lnFile, err = ln.(*net.UnixListener).File()
	if err != nil {
		return nil, fmt.Errorf("dup the API socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)

	if a.MetricsListen != "" {
		mln, err := net.Listen("tcp", a.MetricsListen)
		if err != nil {
			log.Error("metrics_listen: cannot listen; metrics are off", "addr", a.MetricsListen, "err", err)
		} else {
			mux := http.NewServeMux()
			mux.Handle("/metrics", p.api.MetricsHandler())
			p.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			p.metricsLn = mln
		}
	}
	p.watch = &watcher{dirs: []string{a.ConnectorsDir, a.SecretsDir}, resync: a.ResyncInterval, reload: rec.Load, log: log,
		started: make(chan struct{})}
	return p, nil
}

// serve starts the parts in the errgroup (the watchdog only once the
// agent is ready): the API answers from the start (connectors appear as
// they load), and the watcher starts before the first load so that no
// change made while the agent starts is missed (its re-reads wait for
// adoption).
func (p *parts) serve() {
	g, failed := errgroup.WithContext(context.Background())
	p.g, p.failed = g, failed
	apiCtx, stopAPI := context.WithCancel(failed)
	p.stopAPI, p.apiDone = stopAPI, make(chan struct{})
	g.Go(func() error {
		defer close(p.apiDone)
		err := p.api.Serve(apiCtx, p.ln)
		if apiCtx.Err() != nil {
			return nil // stopped by shutdown
		}
		return fmt.Errorf("socket API stopped: %w", err)
	})
	if p.metrics != nil {
		g.Go(func() error { p.metrics.Serve(p.metricsLn); return nil })
	}
	p.rec.OnChange(p.updateStatus)

	wctx, stopWatch := context.WithCancel(failed)
	p.stopWatch = stopWatch
	g.Go(func() error { p.watch.run(wctx); return nil })
	<-p.watch.started
	p.watchCtx = wctx
}

// watchdog pings systemd's watchdog (when it is on) while the reconciler
// answers; it stops with the watcher.
func (p *parts) watchdog() {
	p.g.Go(func() error {
		watchdog(p.watchCtx, p.log, func() bool { return p.rec.Responsive(5 * time.Second) })
		return nil
	})
}

// updateStatus keeps systemd's STATUS= current.
func (p *parts) updateStatus() {
	m, t := p.rec.counts()
	s := fmt.Sprintf("STATUS=%d of %d connectors mounted", m, t)
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	if s != p.lastStatus {
		p.lastStatus = s
		sdNotify(p.log, s)
	}
}

// reload is SIGHUP: it re-reads every connector file, or reports that the
// agent must re-execute (its settings or its executable changed).
func (p *parts) reload() (reexec bool) {
	log := p.log
	sdNotify(log, "RELOADING=1\nMONOTONIC_USEC="+daemon.SdNotifyMonotonicUsec())
	settingsChanged := false
	if na, _, err := LoadSettings(p.o); err != nil {
		log.Error("reload: agent settings are invalid; keeping the current ones", "err", err)
	} else if !sameSettings(p.a, na) {
		settingsChanged = true
	}
	if settingsChanged || upgraded(p.exe, p.exeInfo) {
		if settingsChanged {
			log.Info("agent settings changed: re-executing in place to apply them; unchanged mounts stay", "config", p.a.File)
		} else {
			log.Info("executable changed on disk: re-executing in place; workers and mounts stay", "exe", p.exe)
		}
		return true
	}
	log.Info("reload: re-reading every connector file")
	p.rec.Load()
	sdNotify(log, daemon.SdNotifyReady)
	return false
}

// shutdown stops s3mountd's parts in one order, bounded by ctx: the
// watcher and watchdog (no reload during teardown), the reconciler (which
// unmounts every connector unless the agent re-executes), the socket API,
// then the listener, the socket file and the metrics server. On re-exec
// the workers and the listening socket stay for the next image.
func (p *parts) shutdown(ctx context.Context, mode stopMode) error {
	if mode == stopSignal {
		p.log.Info("stopping: unmounting every connector")
		sdNotify(p.log, daemon.SdNotifyStopping)
	}
	p.stopWatch()
	p.rec.Shutdown(ctx, mode != stopReexec)
	p.stopAPI()
	select {
	case <-p.apiDone:
	case <-ctx.Done():
		p.log.Warn("the socket API did not stop in time")
	}
	if mode == stopReexec {
		return nil
	}
	p.ln.Close()
	if mode == stopSignal && !p.activated {
		os.Remove(p.a.Socket)
	}
	if p.metrics != nil {
		p.metrics.Close()
	}
	done := make(chan error, 1)
	go func() { done <- p.g.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		p.log.Warn("some parts did not stop in time")
	}
	if mode == stopSignal {
		p.log.Info("stopped")
		return nil // a stop asked for is not an error
	}
	if err == nil {
		err = fmt.Errorf("s3mountd stopping: %w", context.Cause(p.failed))
	}
	return err
}

// sameSettings reports whether two agent settings are equal.
func sameSettings(a, b *config.Agent) bool {
	return reflect.DeepEqual(a, b)
}

// upgraded reports whether the executable file at exe is no longer the one
// this process runs (a package upgrade replaced it).
func upgraded(exe string, running os.FileInfo) bool {
	now, err := os.Stat(exe)
	if err != nil || running == nil {
		return false
	}
	return !os.SameFile(now, running)
}

// reexec replaces this process with exe, passing the listener on fd 3 as
// systemd would (LISTEN_FDS=1, LISTEN_PID = our pid, which exec keeps).
// Workers are untouched: they stay children of this pid.
func reexec(exe string, args []string, f *os.File, own bool) error {
	if fd := int(f.Fd()); fd != 3 { // dup3 refuses equal fds
		if err := unix.Dup2(fd, 3); err != nil {
			return err
		}
	}
	if _, _, e := unix.Syscall(unix.SYS_FCNTL, 3, unix.F_SETFD, 0); e != 0 {
		return e
	}
	env := []string{}
	for _, kv := range os.Environ() {
		switch {
		case len(kv) >= 20 && kv[:20] == "S3MOUNTD_OWN_SOCKET=",
			len(kv) >= 11 && kv[:11] == "LISTEN_FDS=",
			len(kv) >= 11 && kv[:11] == "LISTEN_PID=",
			len(kv) >= 15 && kv[:15] == "LISTEN_FDNAMES=":
			continue
		}
		env = append(env, kv)
	}
	if own {
		env = append(env, "S3MOUNTD_OWN_SOCKET=1")
	}
	env = append(env, "LISTEN_FDS=1", "LISTEN_PID="+strconv.Itoa(os.Getpid()), "LISTEN_FDNAMES=s3mountd")
	if len(args) == 0 {
		args = os.Args
	}
	return syscall.Exec(exe, args, env)
}
