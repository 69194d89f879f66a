package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s3mounts/s3mounts/mounts"
)

// Supervisor starts and adopts mount workers (the agent's side).
type Supervisor struct {
	Exe        string // the s3mountd executable
	StateDir   string
	RuntimeDir string
	Log        *slog.Logger
	LogLevel   string // passed to workers as S3MOUNTS_LOG_LEVEL
}

// Handle is one live worker, started by this agent or adopted.
type Handle struct {
	ID         string
	PID        int
	SpecHash   string
	MountPoint string
	Adopted    bool

	startTime uint64
	recPath   string // the worker's record, when known
	sock      string
	hc        *http.Client
	log       *slog.Logger
	ready     chan struct{} // closed once the wait connection is established
	done      chan struct{} // closed when the worker is gone
	mu        sync.Mutex
	endErr    error
	last      *Status // the latest status pollStatus read
}

// statusEvery is how often a handle refreshes its worker's status (for
// the staging space shown in status and metrics).
const statusEvery = 5 * time.Second

// pollStatus keeps LastStatus fresh until the worker is gone.
func (h *Handle) pollStatus() {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := h.Status(ctx)
		cancel()
		if err == nil {
			h.mu.Lock()
			h.last = &st
			h.mu.Unlock()
		}
		select {
		case <-h.done:
			return
		case <-t.C:
		}
	}
}

// LastStatus is the worker's status as last polled (at most statusEvery
// old); false before the first answer.
func (h *Handle) LastStatus() (Status, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		return Status{}, false
	}
	return *h.last, true
}

func newHandle(id string, pid int, hash, mp, sock string, log *slog.Logger) *Handle {
	h := &Handle{ID: id, PID: pid, SpecHash: hash, MountPoint: mp, sock: sock, log: log,
		ready: make(chan struct{}), done: make(chan struct{})}
	h.hc = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
	return h
}

// workerEnv is the agent's environment without what belongs to the agent
// alone (systemd's notify socket, watchdog and socket-activation variables).
func workerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "S3MOUNTS_LOG_LEVEL", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// Start starts a worker for spec and returns once its control socket
// answers (the mount may still be in progress: see Handle.WaitMounted).
// The Spec, secrets included, travels on a pipe at fd 3, never argv or env.
func (s *Supervisor) Start(ctx context.Context, spec mounts.Spec) (*Handle, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	argv := []string{s.Exe, "worker", "--id", spec.ID, "--state-dir", s.StateDir, "--runtime-dir", s.RuntimeDir}
	proc, err := os.StartProcess(s.Exe, argv, &os.ProcAttr{
		Env:   append(workerEnv(), "S3MOUNTS_LOG_LEVEL="+s.LogLevel),
		Files: []*os.File{devnull, os.Stdout, os.Stderr, r},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	r.Close()
	devnull.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("start mount worker: %w", err)
	}
	pid := proc.Pid
	startTime, _, _ := ProcStartTime(pid)
	proc.Release() // reaped by reap() with wait4, like adopted children
	b, _ := json.Marshal(spec)
	_, werr := w.Write(b)
	w.Close()
	for i := range b { // do not keep the secret around longer than needed
		b[i] = 0
	}
	h := newHandle(spec.ID, pid, SpecHash(spec), spec.MountPoint, SocketPath(s.RuntimeDir, spec.ID), s.Log)
	h.startTime = startTime
	h.recPath = RecordPath(s.StateDir, spec.ID)
	go h.reap()
	if werr != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		return nil, fmt.Errorf("pass the spec to the mount worker: %w", werr)
	}
	// Wait for the control socket to answer with our worker's pid. This
	// ignores ctx (it is bounded by its own deadline): a worker is never
	// killed half-way through a mount; the caller stops it cleanly.
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := h.Status(context.Background())
		if err == nil && st.PID == pid {
			break
		}
		if !pidAlive(pid) {
			<-h.reaped()
			return nil, fmt.Errorf("mount worker exited at start (%s); see the agent's log for its message", h.exitString())
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			return nil, errors.New("mount worker did not answer on its control socket within 15s; killed it")
		}
		time.Sleep(20 * time.Millisecond)
	}
	go h.watch()
	go h.pollStatus()
	select {
	case <-h.ready:
	case <-h.done:
	case <-time.After(5 * time.Second):
	}
	return h, nil
}

// reaping state, per handle
var (
	reapMu   sync.Mutex
	reapDone = map[int]chan struct{}{}
	reapStat = map[int]syscall.WaitStatus{}
)

func (h *Handle) reaped() <-chan struct{} {
	reapMu.Lock()
	defer reapMu.Unlock()
	ch, ok := reapDone[h.PID]
	if !ok {
		ch = make(chan struct{})
		close(ch)
	}
	return ch
}

func (h *Handle) exitString() string {
	s, _ := h.exitStatus()
	return s
}

// exitStatus describes how the reaped worker exited; known is false when
// it was not reaped by this process.
func (h *Handle) exitStatus() (s string, known bool) {
	reapMu.Lock()
	defer reapMu.Unlock()
	ws, ok := reapStat[h.PID]
	if !ok {
		return "exit status unknown", false
	}
	if ws.Signaled() {
		return "killed by signal " + ws.Signal().String(), true
	}
	return "exit status " + strconv.Itoa(ws.ExitStatus()), true
}

// reap waits for the worker if it is this process's child (our own, or
// inherited across a re-exec); ECHILD means someone else reaps it.
func (h *Handle) reap() {
	ch := make(chan struct{})
	reapMu.Lock()
	reapDone[h.PID] = ch
	reapMu.Unlock()
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(h.PID, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		reapMu.Lock()
		if err == nil {
			reapStat[h.PID] = ws
		}
		reapMu.Unlock()
		break
	}
	close(ch)
	go func() { // forget it after a while
		time.Sleep(time.Minute)
		reapMu.Lock()
		if reapDone[h.PID] == ch {
			delete(reapDone, h.PID)
			delete(reapStat, h.PID)
		}
		reapMu.Unlock()
	}()
}

// watch holds GET /v1/wait open; its answer or a broken connection means
// the worker is gone.
func (h *Handle) watch() {
	var endErr *EndError
	req, _ := http.NewRequest("GET", "http://worker"+PathWait, nil)
	resp, err := h.hc.Do(req)
	h.log.Debug("watching mount worker", "connector", h.ID, "pid", h.PID, "err", err)
	close(h.ready)
	if err != nil {
		endErr = &EndError{Code: EndUnreachable, Msg: fmt.Sprintf("mount worker unreachable: %v", err)}
	} else {
		var res WaitResult
		derr := json.NewDecoder(resp.Body).Decode(&res)
		resp.Body.Close()
		switch {
		case derr != nil:
			endErr = &EndError{Code: EndDied, Msg: "mount worker died"}
		case res.Error != "":
			endErr = &EndError{Code: EndFailed, Msg: res.Error}
		}
	}
	// A dead worker: make sure it is gone (and reaped, if ours) before
	// anyone acts on the mountpoint.
	for i := 0; i < 100 && h.alive(); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if endErr != nil && endErr.Code == EndDied {
		select {
		case <-h.reaped():
			if s, known := h.exitStatus(); known {
				endErr.Msg = fmt.Sprintf("mount worker died (%s)", s)
			}
		case <-time.After(time.Second):
		}
	}
	h.mu.Lock()
	if endErr != nil { // never a typed nil in the error interface
		h.endErr = endErr
	}
	h.mu.Unlock()
	h.log.Debug("mount worker gone", "connector", h.ID, "pid", h.PID, "reason", h.Err())
	close(h.done)
}

// Done is closed when the worker has gone; Err then says why (nil: a clean
// end, e.g. after Unmount).
func (h *Handle) Done() <-chan struct{} { return h.done }

// Err is why the worker ended (valid after Done): an *EndError, whose
// Code (EndCode) says how.
func (h *Handle) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.endErr
}

func (h *Handle) call(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://worker"+path, nil)
	if err != nil {
		return err
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != 200 {
		return callError(resp.StatusCode, body)
	}
	if out != nil {
		return json.NewDecoder(bytes.NewReader(body)).Decode(out)
	}
	return nil
}

// callError decodes an error answer: an ErrorBody, or from a worker of the
// previous daemon version {"error":…} without a code, or plain text; an
// answer without a code is coded by its status.
func callError(status int, body []byte) *CallError {
	ce := &CallError{Status: status}
	var eb ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Message != "" {
		ce.Code, ce.Msg = eb.Code, eb.Message
	} else {
		ce.Msg = strings.TrimSpace(string(body))
	}
	if ce.Code == "" {
		ce.Code = CodeOf(status)
	}
	return ce
}

// CallError is an error answer of a worker. Callers decide on Code (one of
// the Code* constants); Msg is for people.
type CallError struct {
	Status int
	Code   string
	Msg    string
}

func (e *CallError) Error() string { return e.Msg }

// Status is GET /v1/status.
func (h *Handle) Status(ctx context.Context) (Status, error) {
	var st Status
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	err := h.call(ctx, "GET", PathStatus, &st)
	return st, err
}

// WaitMounted waits until the worker leaves "mounting" and returns nil
// once mounted, else the reason the mount failed.
func (h *Handle) WaitMounted(ctx context.Context) error {
	var st Status
	errc := make(chan error, 1)
	go func() { errc <- h.call(ctx, "GET", PathStatus+"?wait=1", &st) }()
	select {
	case err := <-errc:
		if err != nil {
			select {
			case <-h.done:
				if h.Err() != nil {
					return h.Err()
				}
			case <-time.After(2 * time.Second):
			}
			return fmt.Errorf("mount worker: %w", err)
		}
	case <-h.done:
		if e := h.Err(); e != nil {
			return e
		}
		return errors.New("mount worker ended before mounting")
	case <-ctx.Done():
		return fmt.Errorf("mount not ready in time: %w", ctx.Err())
	}
	if st.State == StateMounted {
		h.mu.Lock()
		h.last = &st // the status at mount time (pollStatus may have read "mounting")
		h.mu.Unlock()
		return nil
	}
	if st.Error != "" {
		return errors.New(st.Error)
	}
	return fmt.Errorf("mount worker is %s", st.State)
}

// Unmount asks the worker to unmount and exit, and waits until it has gone.
// lazy reports a busy mount detached lazily. An unresponsive worker is
// killed and its mountpoint detached.
func (h *Handle) Unmount(ctx context.Context) (lazy bool, err error) {
	var res UnmountResult
	cerr := h.call(ctx, "POST", PathUnmount, &res)
	h.log.Debug("asked mount worker to unmount", "connector", h.ID, "pid", h.PID, "lazy", res.Lazy, "err", cerr)
	if cerr != nil {
		select {
		case <-h.done: // already gone: nothing mounted by it any more
			h.CleanStale()
			return false, nil
		default:
		}
		var ce *CallError
		if errors.As(cerr, &ce) {
			return false, fmt.Errorf("unmount %s: %s", h.MountPoint, ce.Msg)
		}
		h.log.Warn("mount worker did not answer unmount; killing it", "connector", h.ID, "pid", h.PID, "err", cerr)
		h.Kill()
	}
	if cerr == nil && res.Lazy {
		// The worker serves the open files of the detached mount until
		// they are closed, then exits by itself; it has given up its
		// record and socket already.
		return true, nil
	}
	select {
	case <-h.done:
	case <-ctx.Done():
		h.Kill()
		<-h.done
	}
	if cerr != nil {
		if h.recPath != "" {
			// By the id the worker recorded, wherever a user moved it.
			if rec, err := ReadRecord(h.recPath); err == nil && rec.PID == h.PID && rec.Mount != nil {
				if err := mounts.UnmountRef(context.Background(), *rec.Mount); errors.Is(err, mounts.ErrLazyUnmount) {
					lazy = true
				} else if err != nil {
					h.log.Error("unmounting the killed worker's mount failed", "connector", h.ID, "err", err)
				}
			}
		}
		if err := mounts.UnmountOurs(context.Background(), h.MountPoint); errors.Is(err, mounts.ErrLazyUnmount) {
			lazy = true
		}
	}
	return res.Lazy || lazy, nil
}

// CleanStale detaches the dead mount a worker that is gone left behind:
// found by the mount id in its record wherever a user moved it, else at
// its mount point (never through a link).
func (h *Handle) CleanStale() {
	if h.recPath != "" {
		if rec, err := ReadRecord(h.recPath); err == nil && rec.PID == h.PID && rec.Mount != nil {
			if m, ok, _ := mounts.FindMount(rec.Mount.ID); ok && mounts.IsStale(m.MountPoint) {
				if err := mounts.DetachRef(*rec.Mount); err != nil {
					h.log.Warn("could not detach the dead mount of a worker", "connector", h.ID, "mount_point", m.MountPoint, "err", err)
				}
			}
		}
	}
	mounts.CleanStale(h.MountPoint)
}

// Kill kills the worker (SIGKILL), if it is still the same process.
func (h *Handle) Kill() {
	if h.alive() {
		syscall.Kill(h.PID, syscall.SIGKILL)
	}
}

// Refresh asks the worker to drop cached data under path.
func (h *Handle) Refresh(ctx context.Context, path string) error {
	return h.call(ctx, "POST", PathRefresh+"?path="+url.QueryEscape(path), nil)
}

// Files lists one page of a directory of the mount.
func (h *Handle) Files(ctx context.Context, dir, cursor string, limit int) (mounts.Page, error) {
	var p mounts.Page
	q := url.Values{"path": {dir}, "cursor": {cursor}, "limit": {strconv.Itoa(limit)}}
	err := h.call(ctx, "GET", PathFiles+"?"+q.Encode(), &p)
	return p, err
}

// Adopt reads every worker record and returns the live workers (pid
// alive, not a zombie, same start time, socket answering with the recorded
// pid and spec hash). Records of dead workers are removed and their
// mountpoints cleaned if stale; a worker that lives but does not answer is
// killed.
func (s *Supervisor) Adopt(ctx context.Context) []*Handle {
	dir := filepath.Join(s.StateDir, "workers")
	des, _ := os.ReadDir(dir)
	var live []*Handle
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".json") || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, de.Name())
		rec, err := ReadRecord(path)
		if err != nil {
			s.Log.Warn("unreadable worker record removed", "path", path, "err", err)
			os.Remove(path)
			continue
		}
		h, err := s.adoptOne(ctx, rec)
		if err != nil {
			s.Log.Info("worker not adopted", "connector", rec.ID, "pid", rec.PID, "reason", err)
			os.Remove(path)
			if rec.Mount != nil {
				// A dead worker's mount, wherever it was moved: only if
				// it no longer answers.
				if m, ok, _ := mounts.FindMount(rec.Mount.ID); ok && mounts.IsStale(m.MountPoint) {
					mounts.DetachRef(*rec.Mount)
				}
			}
			if rec.MountPoint != "" {
				mounts.CleanStale(rec.MountPoint)
			}
			continue
		}
		live = append(live, h)
	}
	return live
}

func (s *Supervisor) adoptOne(ctx context.Context, rec Record) (*Handle, error) {
	if rec.PID <= 1 {
		return nil, errors.New("bad pid")
	}
	start, zombie, err := ProcStartTime(rec.PID)
	if err != nil {
		return nil, errors.New("process is gone")
	}
	if start != rec.StartTime {
		return nil, errors.New("pid was reused by another process")
	}
	h := newHandle(rec.ID, rec.PID, rec.SpecHash, rec.MountPoint, rec.Socket, s.Log)
	h.startTime = start
	h.recPath = RecordPath(s.StateDir, rec.ID)
	if zombie {
		go h.reap()
		return nil, errors.New("process is a zombie")
	}
	st, err := h.Status(ctx)
	if err != nil || st.PID != rec.PID || st.SpecHash != rec.SpecHash {
		syscall.Kill(rec.PID, syscall.SIGKILL)
		go h.reap()
		return nil, fmt.Errorf("worker does not answer on its socket (%v); killed it", err)
	}
	if st.State == StateError {
		return nil, errors.New("worker is ending: " + st.Error)
	}
	h.Adopted = true
	go h.reap()
	go h.watch()
	go h.pollStatus()
	select {
	case <-h.ready:
	case <-time.After(5 * time.Second):
	}
	return h, nil
}

// pidAlive reports whether pid exists and is not a zombie.
func pidAlive(pid int) bool {
	_, zombie, err := ProcStartTime(pid)
	return err == nil && !zombie
}

// alive reports whether the worker's process still runs (same pid and
// start time, not a zombie).
func (h *Handle) alive() bool {
	st, zombie, err := ProcStartTime(h.PID)
	return err == nil && !zombie && st == h.startTime
}
