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

// Run is s3mountd: it adopts live mount workers, reconciles the connector
// files, serves the socket API, and on cancellation of ctx (SIGTERM)
// unmounts everything and returns nil. SIGHUP re-reads every file, and
// re-executes the binary in place when it changed on disk (an upgrade),
// keeping every worker and mount.
func Run(ctx context.Context, o Options) error {
	a, runtimeDir, err := LoadSettings(o)
	if err != nil {
		return err
	}
	log := o.Log
	if log == nil {
		log = NewLogger(a.LogLevel, os.Stderr)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	exeInfo, _ := os.Stat("/proc/self/exe")

	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{a.StateDir, 0o700}, {runtimeDir, 0o755}, {a.CacheDir, 0o700}, {a.ProjectRoot, 0o755}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("create %s: %w", d.path, err)
		}
	}
	key, err := config.LoadOrCreateNodeKey(a.StateDir)
	if err != nil {
		return fmt.Errorf("node key: %w", err)
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
		return err
	}
	log.Info("s3mountd starting", "version", Version, "pid", os.Getpid(), "socket", a.Socket,
		"socket_activated", activated, "connectors_dir", a.ConnectorsDir, "project_root", a.ProjectRoot)

	// The API answers from the start (connectors appear as they load).
	apiCtx, apiCancel := context.WithCancel(context.Background())
	defer apiCancel()
	api := NewAPI(APIOptions{Controller: rec, Agent: a, Metrics: metrics, Log: log, Recipient: key.Recipient()})
	apiErr := make(chan error, 1)
	// A dup of the listening socket, handed to a re-executed image.
	lnFile, err := ln.(*net.UnixListener).File()
	if err != nil {
		return fmt.Errorf("dup the API socket: %w", err)
	}
	defer lnFile.Close()
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	go func() { apiErr <- api.Serve(apiCtx, ln) }()

	var metricsSrv *http.Server
	if a.MetricsListen != "" {
		mln, err := net.Listen("tcp", a.MetricsListen)
		if err != nil {
			log.Error("metrics_listen: cannot listen; metrics are off", "addr", a.MetricsListen, "err", err)
		} else {
			mux := http.NewServeMux()
			mux.Handle("/metrics", api.MetricsHandler())
			metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			go metricsSrv.Serve(mln)
		}
	}

	var statusMu sync.Mutex
	lastStatus := ""
	updateStatus := func() {
		m, t := rec.counts()
		s := fmt.Sprintf("STATUS=%d of %d connectors mounted", m, t)
		statusMu.Lock()
		defer statusMu.Unlock()
		if s != lastStatus {
			lastStatus = s
			sdNotify(log, s)
		}
	}
	rec.OnChange(updateStatus)

	// The watcher starts before the first load so that no change made
	// while the agent starts is missed (its re-reads wait for adoption).
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	w := &watcher{dirs: []string{a.ConnectorsDir, a.SecretsDir}, resync: a.ResyncInterval, reload: rec.Load, log: log,
		started: make(chan struct{})}
	go w.run(wctx)
	<-w.started

	startCtx, startCancel := context.WithTimeout(ctx, 2*time.Minute)
	rec.Start(startCtx)
	startCancel()
	updateStatus()
	sdNotify(log, daemon.SdNotifyReady)
	log.Info("ready", "connectors", len(rec.Connectors()), "mounted", rec.MountedCount())

	go watchdog(wctx, log, func() bool { return rec.Responsive(5 * time.Second) })

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping: unmounting every connector")
			sdNotify(log, daemon.SdNotifyStopping)
			wcancel()
			rec.Close(true)
			apiCancel()
			<-apiErr
			ln.Close()
			if !activated {
				os.Remove(a.Socket)
			}
			if metricsSrv != nil {
				metricsSrv.Close()
			}
			log.Info("stopped")
			return nil
		case err := <-apiErr:
			wcancel()
			rec.Close(true)
			return fmt.Errorf("socket API stopped: %w", err)
		case <-hup:
			sdNotify(log, "RELOADING=1\nMONOTONIC_USEC="+daemon.SdNotifyMonotonicUsec())
			settingsChanged := false
			if na, _, err := LoadSettings(o); err != nil {
				log.Error("reload: agent settings are invalid; keeping the current ones", "err", err)
			} else if !sameSettings(a, na) {
				settingsChanged = true
			}
			if settingsChanged || upgraded(exe, exeInfo) {
				if settingsChanged {
					log.Info("agent settings changed: re-executing in place to apply them; unchanged mounts stay", "config", a.File)
				} else {
					log.Info("executable changed on disk: re-executing in place; workers and mounts stay", "exe", exe)
				}
				wcancel()
				rec.Close(false)
				apiCancel()
				<-apiErr
				err := reexec(exe, o.Args, lnFile, !activated)
				// only reached when exec failed: exit non-zero so that systemd
				// restarts the agent, which adopts every worker
				log.Error("re-exec failed; exiting (workers and mounts stay for the next start)", "err", err)
				return fmt.Errorf("re-exec %s: %w", exe, err)
			}
			log.Info("reload: re-reading every connector file")
			rec.Load()
			sdNotify(log, daemon.SdNotifyReady)
		}
	}
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
