package worker

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/builtin"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// Backends is the registry of mount backends a worker picks from by
// Spec.Backend.
func Backends() map[string]mounts.Backend {
	return map[string]mounts.Backend{
		"default": probed{builtin.New()},
		"s3fs":    probed{mounts.NewS3FS(s3conn.ResolveCredentials)},
		"geesefs": probed{mounts.NewGeeseFS(s3conn.ResolveCredentials)},
	}
}

// probed proves, before its backend mounts, that the connector's
// credentials can list its prefix (s3conn.Probe): a wrong secret, a
// missing bucket or an unreachable endpoint is a failed mount with the
// connector test's wording, never a mount that serves only errors.
type probed struct{ mounts.Backend }

func (b probed) Mount(ctx context.Context, spec mounts.Spec) (mounts.Mount, error) {
	if err := s3conn.Probe(ctx, spec); err != nil {
		return nil, err
	}
	return b.Backend.Mount(ctx, spec)
}

// probeInterval is how often a worker re-runs the probe while mounted when
// its backend cannot say itself whether its requests fail (s3fs, geesefs):
// S3MOUNTS_PROBE_INTERVAL (a Go duration; "0" turns it off), default 30 s.
func probeInterval() time.Duration {
	if v := os.Getenv("S3MOUNTS_PROBE_INTERVAL"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return 30 * time.Second
}

// probeHealth is the health of a mount whose backend has none of its own:
// the outcome of the last periodic probe.
type probeHealth struct {
	mu    sync.Mutex
	p     *s3conn.Problem
	since time.Time
}

func (h *probeHealth) Health() (string, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.p == nil {
		return "", time.Time{}
	}
	return h.p.Since(h.since), h.since
}

// watch re-runs the probe every interval until ctx ends.
func (h *probeHealth) watch(ctx context.Context, spec mounts.Spec, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s3conn.Probe(ctx, spec)
		var p *s3conn.Problem
		if err != nil && (!errors.As(err, &p) || !p.Connector()) {
			continue // cancelled, or nothing about the connector as a whole
		}
		h.mu.Lock()
		switch {
		case p == nil && h.p != nil:
			log.Info("requests work again")
			h.p = nil
		case p != nil && (h.p == nil || h.p.Kind != p.Kind):
			log.Warn("the periodic probe fails", "err", p.Msg, "s3_code", p.Code, "request_id", s3conn.RequestID(p.Raw), "cause", p.Raw)
			h.p, h.since = p, time.Now()
		case p != nil:
			h.p = p
		}
		h.mu.Unlock()
	}
}

// specFD is the file descriptor the agent passes the Spec on.
const specFD = 3

// Main runs `s3mountd worker --id ID --state-dir DIR --runtime-dir DIR`:
// it reads the Spec from fd 3, mounts it, records itself, serves its
// control socket and returns the process exit code once the mount ends.
func Main(args []string, backends map[string]mounts.Backend, version string, log *slog.Logger) int {
	fs := flag.NewFlagSet("s3mountd worker", flag.ContinueOnError)
	id := fs.String("id", "", "connector id")
	stateDir := fs.String("state-dir", "", "state directory (worker records)")
	runtimeDir := fs.String("runtime-dir", "", "runtime directory (control sockets)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *id == "" || *stateDir == "" || *runtimeDir == "" {
		fmt.Fprintln(os.Stderr, "s3mountd worker: --id, --state-dir and --runtime-dir are required; this sub-command is started by s3mountd, not by hand")
		return 2
	}
	log = log.With("connector", *id, "worker_pid", os.Getpid())
	// A vanished reader of stdout/stderr (the agent's terminal or journal
	// stream) must not kill the mount.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)

	spec, err := readSpec()
	if err != nil {
		log.Error("reading the mount spec from the agent failed", "err", err)
		return 1
	}
	if spec.ID != *id {
		log.Error("spec id does not match --id", "spec_id", spec.ID)
		return 2
	}
	hash := SpecHash(spec)
	// Private files of this process go in a directory of its own under the
	// connector's runtime directory: a worker still draining a lazily
	// detached mount must never remove the files of its successor.
	if spec.RuntimeDir != "" {
		spec.RuntimeDir = filepath.Join(spec.RuntimeDir, strconv.Itoa(os.Getpid()))
	}
	w := &server{
		spec: spec, hash: hash, log: log, version: version,
		stateDir: *stateDir, runtimeDir: *runtimeDir,
		state: StateMounting, since: time.Now(),
		changed: make(chan struct{}), ended: make(chan struct{}),
	}
	return w.run(backends)
}

func readSpec() (mounts.Spec, error) {
	var spec mounts.Spec
	f := os.NewFile(specFD, "spec")
	if f == nil {
		return spec, errors.New("fd 3 is not open")
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return spec, fmt.Errorf("read fd 3: %w", err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return spec, fmt.Errorf("decode spec: %w", err)
	}
	return spec, nil
}

type server struct {
	spec                 mounts.Spec
	hash                 string
	log                  *slog.Logger
	version              string
	stateDir, runtimeDir string

	mu       sync.Mutex
	state    string
	errMsg   string
	since    time.Time
	changed  chan struct{} // closed and replaced on every state change
	mount    mounts.Mount
	ended    chan struct{} // closed when the mount has ended (or failed)
	endErr   string
	acked    bool // someone read the final status
	stopping bool
	release  func() // removes the record and socket path if still ours

	cancelMount context.CancelFunc
	probes      *probeHealth // set when the backend has no health of its own
}

func (w *server) setState(state, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.state, w.errMsg, w.since = state, msg, time.Now()
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *server) status() (Status, <-chan struct{}) {
	w.mu.Lock()
	st := Status{ID: w.spec.ID, PID: os.Getpid(), SpecHash: w.hash, State: w.state, Error: w.errMsg,
		MountPoint: w.spec.MountPoint, Since: w.since}
	ch, m := w.changed, w.mount
	w.mu.Unlock()
	var hr mounts.HealthReporter
	if r, ok := m.(mounts.HealthReporter); ok {
		hr = r
	} else if w.probes != nil {
		hr = w.probes
	}
	if hr != nil && st.State == StateMounted {
		if msg, since := hr.Health(); msg != "" {
			st.Degraded, st.DegradedSince = msg, &since
		}
	}
	if sr, ok := m.(mounts.StagingReporter); ok && st.State == StateMounted {
		used, limit := sr.Staging()
		st.Staging = &Staging{UsedBytes: used, LimitBytes: limit}
	}
	if sr, ok := m.(mounts.StatsReporter); ok && st.State == StateMounted {
		s := sr.Stats()
		st.Stats = &s
	}
	return st, ch
}

func (w *server) end(err error) {
	w.mu.Lock()
	select {
	case <-w.ended:
		w.mu.Unlock()
		return
	default:
	}
	if err != nil {
		w.endErr = err.Error()
	}
	close(w.ended)
	w.mu.Unlock()
}

func (w *server) run(backends map[string]mounts.Backend) int {
	sock := SocketPath(w.runtimeDir, w.spec.ID)
	ln, err := listenPrivate(sock)
	if err != nil {
		w.log.Error("control socket", "err", err)
		return 1
	}
	srv := &http.Server{Handler: w.routes(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)

	exe, _ := os.Executable()
	start, _, _ := ProcStartTime(os.Getpid())
	rec := Record{ID: w.spec.ID, PID: os.Getpid(), StartTime: start, SpecHash: w.hash, Backend: w.spec.Backend,
		MountPoint: w.spec.MountPoint, Socket: sock, Executable: exe, Version: w.version, StartedAt: time.Now().UTC()}
	recPath := RecordPath(w.stateDir, w.spec.ID)
	b, _ := json.MarshalIndent(rec, "", "  ")
	if err := WriteFileAtomic(recPath, b, 0o600); err != nil {
		w.log.Error("writing the worker record failed", "path", recPath, "err", err)
		ln.Close()
		os.Remove(sock)
		return 1
	}
	w.release = func() {
		// Only remove the record and socket if they are still ours (a
		// replacement worker may have taken the names over).
		if r, err := ReadRecord(recPath); err == nil && r.PID == os.Getpid() {
			os.Remove(recPath)
			os.Remove(sock)
		}
	}

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		w.log.Info("signal: unmounting")
		w.unmount(context.Background())
	}()

	code := 0
	if err := w.doMount(backends); err != nil {
		// The daemon logs the failure once, in plain words, with its retry;
		// the worker's line keeps the S3 code and request id.
		// Users get plain words; the log gets the S3 code and request id.
		var p *s3conn.Problem
		if errors.As(err, &p) {
			w.log.Warn("mount failed", "err", p.Msg, "kind", string(p.Kind), "s3_code", p.Code,
				"request_id", s3conn.RequestID(p.Raw), "cause", p.Raw)
		} else {
			w.log.Warn("mount failed", "err", err)
		}
		err = errors.New(s3conn.Plain(err))
		w.setState(StateError, err.Error())
		w.end(err)
		// Give the agent a moment to read the reason (it is waiting on
		// /v1/status?wait=1 or /v1/wait), then go.
		select {
		case <-w.ackedCh():
		case <-time.After(5 * time.Second):
		}
		code = 1
	} else {
		if id, ok := w.mount.(mounts.Identified); ok {
			// Record the mount's id so that the agent can take it down
			// by id should this process die or hang.
			if ref := id.Ref(); ref.ID != 0 {
				rec.Mount = &ref
				b, _ := json.MarshalIndent(rec, "", "  ")
				if err := WriteFileAtomic(recPath, b, 0o600); err != nil {
					w.log.Warn("recording the mount id failed", "path", recPath, "err", err)
				}
			}
		}
		w.log.Debug("mounted", "mount_point", w.spec.MountPoint, "backend", w.spec.Backend) // the daemon logs it once
		w.setState(StateMounted, "")
		pctx, pcancel := context.WithCancel(context.Background())
		w.mu.Lock()
		ph := w.probes
		w.mu.Unlock()
		if ph != nil {
			go ph.watch(pctx, w.spec, probeInterval(), w.log)
		}
		err := w.mount.Wait()
		pcancel()
		if err != nil {
			w.log.Error("mount ended", "err", err)
			w.setState(StateError, "mount ended: "+err.Error())
			code = 1
		} else {
			w.log.Info("mount ended")
			w.setState(StateError, "mount ended")
		}
		w.end(err)
	}
	w.release()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	srv.Shutdown(ctx) // lets /v1/wait and /v1/unmount answers go out
	cancel()
	if w.spec.RuntimeDir != "" {
		os.RemoveAll(w.spec.RuntimeDir)
		os.Remove(filepath.Dir(w.spec.RuntimeDir)) // only if no other worker's
	}
	return code
}

func (w *server) ackedCh() <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		for {
			w.mu.Lock()
			a := w.acked
			w.mu.Unlock()
			if a {
				close(ch)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return ch
}

func (w *server) doMount(backends map[string]mounts.Backend) error {
	be, ok := backends[w.spec.Backend]
	if !ok {
		return fmt.Errorf("unknown backend %q: use default, s3fs or geesefs", w.spec.Backend)
	}
	if err := be.Available(w.spec); err != nil {
		return err
	}
	if w.spec.RuntimeDir != "" {
		// A killed worker of this connector left its s3fs's private mount.
		mounts.CleanDeadWorkerDirs(filepath.Dir(w.spec.RuntimeDir))
		if err := os.MkdirAll(w.spec.RuntimeDir, 0o700); err != nil {
			return err
		}
	}
	if w.spec.CacheDir != "" {
		if err := os.MkdirAll(w.spec.CacheDir, 0o700); err != nil {
			return err
		}
	}
	timeout := mounts.OpBound(w.spec.StallTimeout) + 10*time.Second
	if timeout < 30*time.Second {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	w.mu.Lock()
	w.cancelMount = cancel
	stopping := w.stopping
	w.mu.Unlock()
	if stopping {
		return errors.New("told to unmount before mounting")
	}
	m, err := be.Mount(ctx, w.spec)
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.mount = m
	if _, own := m.(mounts.HealthReporter); !own && probeInterval() > 0 {
		if _, ok := be.(probed); ok {
			w.probes = &probeHealth{}
		}
	}
	stopping = w.stopping
	w.mu.Unlock()
	if stopping { // told to unmount while mounting
		go m.Unmount(context.Background())
	}
	return nil
}

// unmount detaches the mount; lazy reports a busy mount detached lazily.
func (w *server) unmount(ctx context.Context) (lazy bool, err error) {
	w.mu.Lock()
	w.stopping = true
	m, cancel := w.mount, w.cancelMount
	w.mu.Unlock()
	if m == nil {
		if cancel != nil {
			cancel() // abort a mount in progress
		}
		return false, nil // doMount sees stopping once it returns
	}
	err = m.Unmount(ctx)
	if errors.Is(err, mounts.ErrLazyUnmount) {
		return true, nil
	}
	return false, err
}

func (w *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(rw http.ResponseWriter, r *http.Request) {
		st, ch := w.status()
		if r.URL.Query().Get("wait") != "" && st.State == StateMounting {
			select {
			case <-ch:
			case <-r.Context().Done():
				return
			}
			st, _ = w.status()
		}
		if st.State != StateMounting {
			w.mu.Lock()
			w.acked = true
			w.mu.Unlock()
		}
		writeJSON(rw, 200, st)
	})
	mux.HandleFunc("GET "+PathWait, func(rw http.ResponseWriter, r *http.Request) {
		// Headers go out at once so the caller knows the worker is there.
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(200)
		if f, ok := rw.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-w.ended:
		case <-r.Context().Done():
			return
		}
		w.mu.Lock()
		res := WaitResult{Error: w.endErr}
		w.acked = true
		w.mu.Unlock()
		json.NewEncoder(rw).Encode(res)
	})
	mux.HandleFunc("POST "+PathUnmount, func(rw http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		lazy, err := w.unmount(ctx)
		if err != nil {
			writeError(rw, CodeInternal, err.Error())
			return
		}
		if lazy {
			// Detached but busy: this process goes on serving the open
			// files until the kernel lets go, but it is no longer the
			// connector's worker: give up the record and the socket path
			// so that a new worker can take them.
			w.log.Info("busy mount detached lazily; serving open files until they are closed")
			w.release()
		}
		writeJSON(rw, 200, UnmountResult{OK: true, Lazy: lazy})
	})
	mux.HandleFunc("POST "+PathRefresh, func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		m := w.mount
		w.mu.Unlock()
		if m == nil {
			writeError(rw, CodeConflict, "not mounted")
			return
		}
		if rf, ok := m.(mounts.Refresher); ok {
			if err := rf.Refresh(r.URL.Query().Get("path")); err != nil {
				writeError(rw, CodeInternal, err.Error())
				return
			}
		}
		// What was cached is dropped; a path that is not there is not a success.
		if rel, err := CleanRel(r.URL.Query().Get("path")); err == nil && rel != "" {
			root, err := w.openMountRoot(m)
			if err != nil {
				writeError(rw, CodeConflict, err.Error())
				return
			}
			err = checkExists(root, rel)
			root.Close()
			if missing(err) {
				writeError(rw, CodeNotFound, fmt.Sprintf("no such file or directory: /%s (anything cached for it was dropped)", rel))
				return
			}
		}
		writeJSON(rw, 200, map[string]bool{"ok": true})
	})
	mux.HandleFunc("GET "+PathFiles, func(rw http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, _ := strconv.Atoi(q.Get("limit"))
		if limit <= 0 || limit > 10000 {
			limit = 1000
		}
		page, code, err := w.files(r.Context(), q.Get("path"), q.Get("cursor"), limit)
		if err != nil {
			writeError(rw, code, err.Error())
			return
		}
		writeJSON(rw, 200, page)
	})
	return mux
}

// files lists a page of dir, or answers the error code and the error.
func (w *server) files(ctx context.Context, dir, cursor string, limit int) (mounts.Page, string, error) {
	w.mu.Lock()
	m := w.mount
	state := w.state
	w.mu.Unlock()
	if m == nil || state != StateMounted {
		return mounts.Page{}, CodeConflict, errors.New("not mounted")
	}
	rel, err := CleanRel(dir)
	if err != nil {
		return mounts.Page{}, CodeInvalid, err
	}
	if l, ok := m.(mounts.Lister); ok {
		p, err := l.List(ctx, rel, cursor, limit)
		if err != nil {
			code, err := filesError(rel, err)
			return p, code, err
		}
		return p, "", nil
	}
	root, err := w.openMountRoot(m)
	if err != nil {
		return mounts.Page{}, CodeConflict, err
	}
	defer root.Close()
	p, err := readDirPageAt(root, w.spec.Prefix, rel, cursor, limit)
	if err != nil {
		var fe *FilesError
		if errors.As(err, &fe) {
			return p, CodeOf(fe.Status), err
		}
		code, err := filesError(rel, err)
		return p, code, err
	}
	return p, "", nil
}

// openMountRoot opens the root of the mount: the mount point resolved from
// "/" without following a link, and, when the mount knows its kernel mount
// id, checked to be that mount (not whatever a user renamed into place).
func (w *server) openMountRoot(m mounts.Mount) (*os.File, error) {
	root, err := mounts.OpenNoFollow(w.spec.MountPoint, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("the mount point cannot be opened safely: %w", err)
	}
	if id, ok := m.(mounts.Identified); ok {
		want := id.Ref().ID
		got, err := mounts.MntID(root)
		if err != nil || (want != 0 && got != want) {
			root.Close()
			return nil, fmt.Errorf("%s is no longer this connector's mount (a directory on its path was moved or replaced): deactivate and activate the connector to mount it again", w.spec.MountPoint)
		}
	}
	return root, nil
}

// writeError answers an error: ErrorBody with the code's HTTP status.
func writeError(rw http.ResponseWriter, code, msg string) {
	writeJSON(rw, StatusOf(code), ErrorBody{Code: code, Message: msg})
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	json.NewEncoder(rw).Encode(v)
}

// listenPrivate listens on a Unix socket only root can use: its directory is
// 0700 and the socket 0600. A stale socket file is replaced.
func listenPrivate(sock string) (net.Listener, error) {
	dir := filepath.Dir(sock)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another worker already answers on %s", sock)
	}
	os.Remove(sock)
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", sock)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", sock, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
