package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// Timing of the reconciler.
const (
	backoffMin = time.Second
	backoffMax = 60 * time.Second
	// stableAfter: a worker that served this long before dying restarts
	// its backoff from the start.
	stableAfter = 30 * time.Second
	// mountTimeout bounds one mount attempt (start + mount).
	mountTimeout = 90 * time.Second
	// unmountTimeout bounds one unmount.
	unmountTimeout = 60 * time.Second
)

// backoff is the delay before retry number n (n >= 1): 1s, 2s, 4s … 60s.
func backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := backoffMin
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	if d > backoffMax {
		d = backoffMax
	}
	return d
}

// action is what one reconcile step does for a connector.
type action int

const (
	actNone    action = iota // in the desired state: leave it alone
	actStart                 // start a worker
	actStop                  // stop the worker
	actReplace               // spec changed: stop the worker, then start one
	actWait                  // start wanted but backing off until nextTry
)

func (a action) String() string {
	return [...]string{"none", "start", "stop", "replace", "wait"}[a]
}

// plan is the pure decision of one step: want is the desired activation,
// workerHash the spec hash of the live worker ("" if none), hash the spec
// hash desired.
func plan(want bool, workerHash, hash string, now, nextTry time.Time) action {
	switch {
	case !want && workerHash == "":
		return actNone
	case !want:
		return actStop
	case workerHash == hash:
		return actNone
	case workerHash != "":
		return actReplace
	case now.Before(nextTry):
		return actWait
	default:
		return actStart
	}
}

// reconciler is the agent.Controller: desired state from the connector
// files plus API overrides, actual state from mount workers; one goroutine
// per connector so that one slow mount never blocks another.
type reconciler struct {
	agent      *config.Agent
	runtimeDir string
	key        *config.NodeKey
	sup        *worker.Supervisor
	log        *slog.Logger
	ov         *overrides
	metrics    *Metrics
	now        func() time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	loadMu sync.Mutex

	ready chan struct{} // closed once adoption is settled

	mu            sync.Mutex
	dirErr        string // the connectors directory is missing or unsafe
	pendingNotify bool
	conns         map[string]*conn
	// holders maps each claimed mount_name to the id of the connector
	// that holds it (names.go).
	holders map[string]string
	// adopting holds the ids of live workers found at start, which hold
	// their mount_name before any file is compared.
	adopting map[string]bool
	// last persists the last good version of every connector (lastgood.go).
	last    *lastGoodStore
	subs    map[int]chan View
	nextSub int
	// onChange is called (without the lock) after any view changed; the
	// daemon keeps systemd's STATUS= current with it.
	onChange func()
}

// conn is one connector: its last good configuration and its runtime state.
// Every field is guarded by reconciler.mu.
type conn struct {
	id, file string
	good     *config.Connector // last good version; nil if never valid
	spec     mounts.Spec
	hash     string
	cfgErr   string // the file, or its secret, is broken now
	dupErr   string // mount_name held by another connector (dupOther)
	dupAnon  string // dupErr without the other connector's name
	dupOther string // the id of the connector holding c's mount_name
	removed  bool   // the file is gone
	// claimSince is when c started to claim its mount_name (desired
	// active, or holding a worker); zero while it claims none.
	claimSince time.Time

	phase     client.State
	phaseErr  string
	h         *worker.Handle
	mountedAt time.Time
	failures  int
	nextTry   time.Time
	// liveErr is what the mounted worker reports failing for the whole
	// mount (worker Status.Degraded): shown as the error while mounted.
	liveErr  string
	healthOf *worker.Handle // the worker pollHealth watches

	kick      chan struct{}
	changed   chan struct{} // closed and replaced on every view change
	last      client.Connector
	firstDone chan struct{}
	firstOnce sync.Once
}

func newReconciler(a *config.Agent, runtimeDir string, key *config.NodeKey, sup *worker.Supervisor, ov *overrides, log *slog.Logger) *reconciler {
	ctx, cancel := context.WithCancel(context.Background())
	return &reconciler{agent: a, runtimeDir: runtimeDir, key: key, sup: sup, ov: ov, log: log,
		now: time.Now, ctx: ctx, cancel: cancel, ready: make(chan struct{}), conns: map[string]*conn{}, subs: map[int]chan View{},
		holders: map[string]string{}, adopting: map[string]bool{}}
}

type loaded struct {
	id, file string
	cfg      *config.Connector
	spec     mounts.Spec
	hash     string
	err      error
}

// Load re-reads every connector file (and the secrets they use) and kicks
// every connector; unchanged ones are left untouched by their step.
func (r *reconciler) Load() {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	dir := r.agent.ConnectorsDir
	// A missing, replaced or unsafe connectors directory (a botched deploy)
	// changes nothing: every mount stays, the error is logged once and
	// shown by /v1/health until the directory is back.
	err := config.CheckConnectorsDir(dir, r.agent)
	var des []os.DirEntry
	if err == nil {
		des, err = os.ReadDir(dir)
		if err != nil {
			err = fmt.Errorf("connectors directory %s cannot be read (%v): every mount is kept as it is until it can be read again", dir, errors.Unwrap(err))
		}
	}
	if r.setDirErr(err) {
		return
	}
	var files []loaded
	for _, de := range des {
		name := de.Name()
		if !config.IsConnectorFile(name) {
			continue
		}
		l := loaded{id: config.ConnectorID(name), file: filepath.Join(dir, name)}
		// A name that is listed but cannot be read (a dangling symlink, a
		// directory, a fifo, a file root does not control) is an error of
		// that connector, never a deletion: a working mount is not torn
		// down for it. LoadConnector never blocks.
		l.cfg, l.err = config.LoadConnector(l.file, r.agent)
		if l.err == nil && l.cfg != nil {
			l.spec, l.err = r.buildSpec(l.cfg)
			if l.err == nil {
				l.hash = worker.SpecHash(l.spec)
			}
		}
		files = append(files, l)
	}

	r.mu.Lock()
	seen := map[string]bool{}
	for _, l := range files {
		seen[l.id] = true
		c := r.conns[l.id]
		if c == nil {
			c = r.newConnLocked(l.id)
		}
		c.file, c.removed = l.file, false
		if l.err != nil {
			msg := l.err.Error()
			if c.cfgErr != msg {
				r.log.Warn("connector file is invalid", "connector", l.id, "err", msg, "keeps_last_good", c.good != nil)
			}
			c.cfgErr = msg
		} else {
			if c.hash != "" && c.hash != l.hash {
				r.log.Info("connector changed", "connector", l.id)
			}
			c.good, c.spec, c.hash, c.cfgErr = l.cfg, l.spec, l.hash, ""
		}
	}
	for id, c := range r.conns {
		if !seen[id] && !c.removed {
			r.log.Info("connector file removed", "connector", id)
			c.removed = true
			r.ov.del(id)
		}
	}
	for id, c := range r.conns {
		if c.good != nil {
			if ov, ok := r.ov.get(id); ok {
				if _, stale := desiredActive(c.good.Active, ov, true); stale {
					r.log.Info("active changed in the file; it wins over the API activation", "connector", id)
					r.ov.del(id)
				}
			}
		}
	}
	r.claimNamesLocked()
	r.saveLastGoodLocked()
	for _, c := range r.conns {
		r.changedLocked(c)
		c.wake()
	}
	r.mu.Unlock()
	r.notify()
}

// setDirErr records the connectors directory's state after a look at it:
// err != nil logs the error once (again only when it changes) and returns
// true (the caller changes nothing); nil logs the directory's return once.
func (r *reconciler) setDirErr(err error) bool {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	r.mu.Lock()
	prev := r.dirErr
	r.dirErr = msg
	r.mu.Unlock()
	switch {
	case msg != "" && msg != prev:
		r.log.Error("the connectors directory is unusable; keeping every connector and mount as it is", "dir", r.agent.ConnectorsDir, "err", msg)
	case msg == "" && prev != "":
		r.log.Info("the connectors directory is usable again; re-reading it", "dir", r.agent.ConnectorsDir)
	}
	return msg != ""
}

// HealthError is what is wrong with the node as a whole ("" when
// nothing): today the connectors directory's error. /v1/health shows it.
func (r *reconciler) HealthError() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dirErr
}

// wake asks c's goroutine to reconcile; a wake already pending is enough.
func (c *conn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// wantLocked is the desired activation of c.
func (r *reconciler) wantLocked(c *conn) bool {
	return c.dupErr == "" && r.desiredLocked(c)
}

// desiredLocked is what the file and the API ask for, before mount_name
// conflicts are settled.
func (r *reconciler) desiredLocked(c *conn) bool {
	if c.removed || c.good == nil {
		return false
	}
	ov, ok := r.ov.get(c.id)
	active, _ := desiredActive(c.good.Active, ov, ok)
	return active
}

// newConnLocked adds connector id and starts its goroutine.
func (r *reconciler) newConnLocked(id string) *conn {
	c := &conn{id: id, phase: client.StateInactive, kick: make(chan struct{}, 1),
		changed: make(chan struct{}), firstDone: make(chan struct{})}
	r.conns[id] = c
	r.startConnLocked(c)
	return c
}

func (r *reconciler) startConnLocked(c *conn) {
	r.wg.Add(1)
	go r.loop(c)
}

func (r *reconciler) loop(c *conn) {
	defer r.wg.Done()
	select {
	case <-r.ready:
	case <-r.ctx.Done():
		return
	}
	var timer *time.Timer
	var timerC <-chan time.Time
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-c.kick:
		case <-timerC:
		}
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
		wake, gone := r.step(c)
		c.firstOnce.Do(func() { close(c.firstDone) })
		if gone {
			return
		}
		if !wake.IsZero() {
			timer = time.NewTimer(time.Until(wake))
			timerC = timer.C
		}
	}
}

// step brings one connector one step towards its desired state. It returns
// when to look again (zero: on the next kick), and gone when the connector
// has been forgotten.
func (r *reconciler) step(c *conn) (wake time.Time, gone bool) {
	r.mu.Lock()
	r.claimNamesLocked()
	want := r.wantLocked(c)
	workerHash := ""
	if c.h != nil {
		workerHash = c.h.SpecHash
	}
	now := r.now()
	act := plan(want, workerHash, c.hash, now, c.nextTry)
	if c.h != nil && c.good == nil && c.cfgErr != "" && !c.removed {
		// adopted at start while its file is broken: a broken file never
		// unmounts a working mount, even across a restart of the agent
		act = actNone
	}
	spec, h := c.spec, c.h
	if act == actNone && !want && c.removed {
		delete(r.conns, c.id)
		c.phase, c.phaseErr = client.StateInactive, ""
		r.changedLocked(c)
		r.mu.Unlock()
		r.notify()
		return time.Time{}, true
	}
	if act == actNone && !want && c.h == nil && c.phase != client.StateInactive && c.phase != client.StateError {
		r.setPhaseLocked(c, client.StateInactive, c.phaseErr)
	}
	if act == actNone && !want && c.phase == client.StateError && c.good != nil {
		// a failed, now undesired connector rests
		r.setPhaseLocked(c, client.StateInactive, "")
		c.failures, c.nextTry = 0, time.Time{}
	}
	if act == actNone && want && c.phase != client.StateMounted {
		r.setPhaseLocked(c, client.StateMounted, "")
	}
	if act == actWait {
		wake = c.nextTry
	}
	r.mu.Unlock()
	r.notify()

	switch act {
	case actStop:
		if !r.stop(c, h) {
			return c.retryAt(r), false
		}
		return r.now(), false // look again: a removed connector is forgotten now
	case actReplace:
		r.log.Info("connector spec changed; remounting", "connector", c.id)
		if !r.stop(c, h) {
			return c.retryAt(r), false
		}
		return r.start(c, spec), false
	case actStart:
		return r.start(c, spec), false
	}
	return wake, false
}

func (c *conn) retryAt(r *reconciler) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return c.nextTry
}

// start starts a worker for spec and waits until it has mounted or failed.
func (r *reconciler) start(c *conn, spec mounts.Spec) (wake time.Time) {
	hash := worker.SpecHash(spec)
	// Never two mounts at one path: wait while another connector's worker
	// still holds it (a duplicate mount_name being resolved).
	r.mu.Lock()
	for _, o := range r.conns {
		if o != c && o.h != nil && o.h.MountPoint == spec.MountPoint {
			r.setPhaseLocked(c, client.StateMounting, "waiting for "+o.id+" to release "+spec.MountPoint)
			r.mu.Unlock()
			r.notify()
			return r.now().Add(time.Second)
		}
	}
	r.setPhaseLocked(c, client.StateMounting, "")
	r.mu.Unlock()
	r.notify()

	ctx, cancel := context.WithTimeout(r.ctx, mountTimeout)
	defer cancel()
	created := absent(spec.MountPoint) // launch makes it; a failure removes it again
	h, err := r.launch(ctx, spec)
	if err == nil {
		err = h.WaitMounted(ctx)
		if err != nil && r.ctx.Err() != nil {
			// the agent is stopping or re-executing: keep the worker for
			// Close(true) to stop or for the next image to adopt
			r.mu.Lock()
			c.h, c.mountedAt = h, r.now()
			r.mu.Unlock()
			go r.watchWorker(c, h)
			return time.Time{}
		}
		if err != nil {
			uctx, ucancel := context.WithTimeout(context.Background(), unmountTimeout)
			h.Unmount(uctx)
			ucancel()
		}
	}

	r.mu.Lock()
	defer func() { r.mu.Unlock(); r.notify() }()
	if err != nil {
		if r.ctx.Err() != nil {
			r.setPhaseLocked(c, client.StateInactive, "")
			return time.Time{}
		}
		if created {
			removeEmptyMountDir(spec.MountPoint)
		}
		c.failures++
		d := backoff(c.failures)
		c.nextTry = r.now().Add(d)
		r.setPhaseLocked(c, client.StateError, fmt.Sprintf("%v (retrying in %s)", err, d))
		r.log.Error("mount failed", "connector", c.id, "err", err, "retry_in", d.String())
		if r.metrics != nil {
			r.metrics.ReconcileErrors.WithLabelValues(c.id).Inc()
		}
		return c.nextTry
	}
	c.h, c.mountedAt = h, r.now()
	r.setPhaseLocked(c, client.StateMounted, "")
	r.log.Info("mounted", "connector", c.id, "mount_point", spec.MountPoint, "backend", spec.Backend, "worker_pid", h.PID, "spec_hash_prefix", hash[:15])
	go r.watchWorker(c, h)
	return time.Time{}
}

// launch prepares the mount point and starts a worker.
func (r *reconciler) launch(ctx context.Context, spec mounts.Spec) (*worker.Handle, error) {
	// The project root may be in a user's home: no link on the way is
	// followed, and the worker checks the mount point again and mounts on
	// the directory it checked (docs/SECURITY.md, "Paths a user controls").
	mp := spec.MountPoint
	mounts.CleanStale(mp)
	if ok, _ := mounts.IsMountPoint(mp); ok {
		// mounted by nobody we know (a worker whose record was lost):
		// never mount twice. Only a mount of ours is taken down.
		r.log.Warn("mount point is mounted by an unknown process; unmounting it first", "mount_point", mp)
		if err := mounts.UnmountOurs(ctx, mp); err != nil && !errors.Is(err, mounts.ErrLazyUnmount) {
			return nil, fmt.Errorf("%s is already mounted and could not be unmounted: %w", mp, err)
		}
	}
	md, err := mounts.PrepareMountPoint(mp)
	if err != nil {
		return nil, err
	}
	md.Close()
	return r.sup.Start(ctx, spec)
}

// stop unmounts through the worker and waits until it is gone. When the
// unmount fails the worker stays in charge and ok is false; the step is
// retried with backoff.
func (r *reconciler) stop(c *conn, h *worker.Handle) (ok bool) {
	r.mu.Lock()
	c.h = nil // the watcher of h now knows the end is ours
	r.setPhaseLocked(c, client.StateUnmounting, "")
	r.mu.Unlock()
	r.notify()
	ctx, cancel := context.WithTimeout(context.Background(), unmountTimeout)
	lazy, err := h.Unmount(ctx)
	cancel()
	msg := ""
	if err != nil {
		r.log.Error("unmount failed", "connector", c.id, "err", err)
		if r.metrics != nil {
			r.metrics.ReconcileErrors.WithLabelValues(c.id).Inc()
		}
		r.mu.Lock()
		defer func() { r.mu.Unlock(); r.notify() }()
		select {
		case <-h.Done():
			// the worker is gone after all: fall through to inactive
		default:
			c.h = h
			c.failures++
			d := backoff(c.failures)
			c.nextTry = r.now().Add(d)
			r.setPhaseLocked(c, client.StateError, fmt.Sprintf("unmount failed: %v (retrying in %s)", err, d))
			go r.watchWorker(c, h)
			return false
		}
		c.failures, c.nextTry = 0, time.Time{}
		r.setPhaseLocked(c, client.StateInactive, "unmount: "+err.Error())
		return true
	}
	switch {
	case lazy:
		msg = "the mount was busy and has been detached lazily; open files keep working until they are closed"
		r.log.Warn("busy mount detached lazily", "connector", c.id, "mount_point", h.MountPoint)
	default:
		r.log.Info("unmounted", "connector", c.id, "mount_point", h.MountPoint)
	}
	if ok, _ := mounts.IsMountPoint(h.MountPoint); !ok {
		mounts.RemoveMountPoint(h.MountPoint) // only if empty, never through a link
	}
	r.mu.Lock()
	c.failures, c.nextTry = 0, time.Time{}
	r.setPhaseLocked(c, client.StateInactive, msg)
	r.mu.Unlock()
	r.notify()
	return true
}

// healthPoll is how often the agent asks a mounted worker whether its
// requests fail for the whole mount (a key revoked, the endpoint gone).
var healthPoll = 2 * time.Second

// pollHealth copies a mounted worker's Degraded into c.liveErr (the
// connector's error while it stays mounted) until the worker is gone.
func (r *reconciler) pollHealth(c *conn, h *worker.Handle) {
	r.mu.Lock()
	if c.healthOf == h {
		r.mu.Unlock()
		return
	}
	c.healthOf = h
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		if c.healthOf == h {
			c.healthOf = nil
			if c.liveErr != "" {
				c.liveErr = ""
				r.changedLocked(c)
			}
		}
		r.mu.Unlock()
		r.notify()
	}()
	t := time.NewTicker(healthPoll)
	defer t.Stop()
	for {
		select {
		case <-h.Done():
			return
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		st, err := h.Status(r.ctx)
		if err != nil {
			continue // the worker's end is watchWorker's business
		}
		r.mu.Lock()
		if c.healthOf != h {
			r.mu.Unlock()
			return
		}
		if c.liveErr != st.Degraded {
			if st.Degraded != "" {
				r.log.Warn("mount degraded", "connector", c.id, "problem", st.Degraded)
			} else {
				r.log.Info("mount recovered", "connector", c.id)
			}
			c.liveErr = st.Degraded
			r.changedLocked(c)
		}
		r.mu.Unlock()
		r.notify()
	}
}

// watchWorker notices a worker's death and schedules its restart.
func (r *reconciler) watchWorker(c *conn, h *worker.Handle) {
	go r.pollHealth(c, h)
	<-h.Done()
	r.mu.Lock()
	if c.h != h {
		r.mu.Unlock()
		return // stopped on purpose
	}
	c.h = nil
	r.mu.Unlock()
	if r.ctx.Err() != nil {
		return
	}
	h.CleanStale() // by its recorded id, wherever a user moved it
	reason := "mount ended"
	if err := h.Err(); err != nil {
		reason = err.Error()
	}
	r.mu.Lock()
	if r.now().Sub(c.mountedAt) >= stableAfter {
		c.failures = 1
	} else {
		c.failures++
	}
	d := backoff(c.failures)
	c.nextTry = r.now().Add(d)
	r.setPhaseLocked(c, client.StateError, fmt.Sprintf("%s; restarting in %s", reason, d))
	r.mu.Unlock()
	r.notify()
	r.log.Error("mount worker ended", "connector", c.id, "pid", h.PID, "reason", reason, "restart_in", d.String())
	if r.metrics != nil {
		r.metrics.WorkerRestarts.WithLabelValues(c.id).Inc()
	}
	c.wake()
}

func (r *reconciler) setPhaseLocked(c *conn, p client.State, msg string) {
	c.phase, c.phaseErr = p, msg
	r.changedLocked(c)
}

// changedLocked publishes c's view if it changed.
func (r *reconciler) changedLocked(c *conn) {
	v := r.viewLocked(c)
	if reflect.DeepEqual(v.Connector, c.last) {
		return
	}
	c.last = v.Connector
	close(c.changed)
	c.changed = make(chan struct{})
	for _, ch := range r.subs {
		select {
		case ch <- v:
		default: // a slow subscriber misses an event rather than stall mounts
		}
	}
	r.pendingNotify = true
}

func (r *reconciler) notify() {
	r.mu.Lock()
	p := r.pendingNotify
	r.pendingNotify = false
	f := r.onChange
	r.mu.Unlock()
	if p && f != nil {
		f()
	}
}

func (r *reconciler) viewLocked(c *conn) View {
	cc := client.Connector{ID: c.id, File: c.file, State: c.phase, Error: c.phaseErr}
	if c.phase == client.StateMounted && c.phaseErr == "" && c.h != nil {
		cc.Error = c.liveErr // what fails while mounted (the mount stays)
	}
	var v View
	if g := c.good; g != nil {
		cc.Name, cc.Description, cc.Endpoint, cc.Region = g.Name, g.Description, g.Endpoint, g.Region
		cc.Bucket, cc.Prefix, cc.MountName, cc.Mode, cc.Backend = g.Bucket, g.Prefix, g.MountName, g.Mode, g.Backend
		cc.MountPath = filepath.Join(r.agent.ProjectRoot, g.MountName)
		cc.Active = r.wantLocked(c)
		cc.CreatedBy = g.CreatedBy
		if !g.CreatedAt.IsZero() {
			t := g.CreatedAt
			cc.CreatedAt = &t
		}
		if !g.UpdatedAt.IsZero() {
			t := g.UpdatedAt
			cc.UpdatedAt = &t
		}
		cc.Owner, cc.Group = g.Owner, g.Group
		if cc.Owner == "" {
			cc.Owner = strconv.FormatUint(uint64(g.UID), 10)
		}
		if cc.Group == "" {
			cc.Group = strconv.FormatUint(uint64(g.GID), 10)
		}
		cc.FileMode = fmt.Sprintf("%04o", uint32(g.FileMode.Perm()))
		cc.DirMode = fmt.Sprintf("%04o", uint32(g.DirMode.Perm()))
		v.Access = g.Access
	} else if c.h != nil {
		cc.MountPath = c.h.MountPoint
	}
	if c.h != nil {
		if st, ok := c.h.LastStatus(); ok && st.Staging != nil {
			used := st.Staging.UsedBytes
			cc.StagingBytes = &used
		}
		if st, ok := c.h.LastStatus(); ok && st.Stats != nil {
			v.Stats = st.Stats
		}
	}
	errMsg := func(dup string) string {
		var probs []string
		if c.cfgErr != "" {
			probs = append(probs, c.cfgErr)
		}
		if dup != "" {
			probs = append(probs, dup)
		}
		msg := strings.Join(probs, "; ")
		if c.cfgErr != "" && c.h != nil && c.phase == client.StateMounted {
			msg += " (the last good version stays mounted until the file is fixed)"
		}
		return msg
	}
	if (c.cfgErr != "" || c.dupErr != "") && !c.removed {
		cc.State, cc.Error = client.StateError, errMsg(c.dupErr)
		if c.dupErr != "" {
			v.NameHolder, v.ErrorAnon = c.dupOther, errMsg(c.dupAnon)
		}
	}
	cc.Actions = []string{}
	v.Connector = cc
	return v
}

// ---- agent.Controller ----

var _ Controller = (*reconciler)(nil)

func (r *reconciler) Connectors() []View {
	r.mu.Lock()
	defer r.mu.Unlock()
	// A removed connector stays visible (unmounting) until its mount is gone.
	ids := make([]string, 0, len(r.conns))
	for id := range r.conns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]View, 0, len(ids))
	for _, id := range ids {
		out = append(out, r.viewLocked(r.conns[id]))
	}
	return out
}

func (r *reconciler) Connector(id string) (View, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.conns[id]
	if !ok {
		return View{}, false
	}
	return r.viewLocked(c), true
}

func (r *reconciler) lookupLocked(id string) (*conn, error) {
	c, ok := r.conns[id]
	if !ok || c.removed {
		return nil, Errorf(client.CodeNotFound, "no connector %q: its file %s.toml is not in %s", id, id, r.agent.ConnectorsDir)
	}
	return c, nil
}

func (r *reconciler) Activate(ctx context.Context, id string) (View, error) {
	return r.setActive(ctx, id, true)
}

func (r *reconciler) Deactivate(ctx context.Context, id string) (View, error) {
	return r.setActive(ctx, id, false)
}

func (r *reconciler) setActive(ctx context.Context, id string, active bool) (View, error) {
	r.mu.Lock()
	c, err := r.lookupLocked(id)
	if err != nil {
		r.mu.Unlock()
		return View{}, err
	}
	if c.good == nil {
		msg := c.cfgErr
		r.mu.Unlock()
		return View{}, Errorf(client.CodeInvalid, "connector %s cannot be used until its file is fixed: %s", id, msg)
	}
	if active && c.dupErr != "" {
		e := &NameConflictError{Holder: c.dupOther, Message: c.dupErr, Anon: c.dupAnon}
		r.mu.Unlock()
		return View{}, e
	}
	if err := r.ov.set(id, override{Active: active, FileActive: c.good.Active, At: r.now().UTC()}); err != nil {
		r.log.Error("activation is not persisted", "connector", id, "err", err)
	}
	r.claimNamesLocked()
	if active && c.dupErr != "" {
		// another connector claimed the name in the same instant
		r.ov.del(id)
		e := &NameConflictError{Holder: c.dupOther, Message: c.dupErr, Anon: c.dupAnon}
		r.mu.Unlock()
		return View{}, e
	}
	if active {
		c.failures, c.nextTry = 0, time.Time{} // asked for explicitly: try now
		if c.h == nil && (c.phase == client.StateInactive || c.phase == client.StateError) {
			r.setPhaseLocked(c, client.StateMounting, "")
		}
	} else if c.h != nil {
		r.setPhaseLocked(c, client.StateUnmounting, "")
	} else if c.phase == client.StateError {
		// a failed connector asked to stop trying rests at once (the
		// answer is "inactive", not the last mount error)
		c.failures, c.nextTry = 0, time.Time{}
		r.setPhaseLocked(c, client.StateInactive, "")
	} else {
		r.changedLocked(c)
	}
	c.wake()
	r.mu.Unlock()
	r.notify()
	for {
		r.mu.Lock()
		v := r.viewLocked(c)
		done := false
		if active {
			done = (c.phase == client.StateMounted && c.h != nil) || c.phase == client.StateError
		} else {
			done = c.h == nil && c.phase != client.StateUnmounting && c.phase != client.StateMounting
		}
		ch := c.changed
		r.mu.Unlock()
		if done {
			return v, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return v, nil // bounded: the caller sees the state reached so far
		}
	}
}

func (r *reconciler) mounted(id string) (*conn, *worker.Handle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, err := r.lookupLocked(id)
	if err != nil {
		return nil, nil, err
	}
	if c.h == nil || c.phase != client.StateMounted {
		return nil, nil, Errorf(client.CodeConflict, "connector %s is not mounted: activate it first", id)
	}
	return c, c.h, nil
}

func workerErr(err error) error {
	var ce *worker.CallError
	if errors.As(err, &ce) {
		switch ce.Status {
		case 400:
			return Errorf(client.CodeInvalid, "%s", ce.Msg)
		case 404:
			return Errorf(client.CodeNotFound, "%s", ce.Msg)
		case 409:
			return Errorf(client.CodeConflict, "%s", ce.Msg)
		}
		return errors.New(ce.Msg)
	}
	return Errorf(client.CodeUnavailable, "the connector's mount worker did not answer: %v", err)
}

func (r *reconciler) Refresh(ctx context.Context, id, path string) error {
	_, h, err := r.mounted(id)
	if err != nil {
		return err
	}
	rel, err := worker.CleanRel(path)
	if err != nil {
		return Errorf(client.CodeInvalid, "path %q: %v", path, err)
	}
	if err := h.Refresh(ctx, rel); err != nil {
		return workerErr(err)
	}
	return nil
}

func (r *reconciler) Test(ctx context.Context, id string) (client.TestResult, error) {
	r.mu.Lock()
	c, err := r.lookupLocked(id)
	var good *config.Connector
	var cfgErr string
	if err == nil {
		good, cfgErr = c.good, c.cfgErr
	}
	r.mu.Unlock()
	if err != nil {
		return client.TestResult{}, err
	}
	if good == nil {
		return client.TestResult{}, Errorf(client.CodeInvalid, "connector %s cannot be tested until its file is fixed: %s", id, cfgErr)
	}
	spec, err := r.buildSpec(good)
	if err != nil {
		return client.TestResult{OK: false, Checks: []client.Check{{Name: "credentials", Error: err.Error()}}}, nil
	}
	res := client.TestResult{OK: true, Checks: []client.Check{}}
	for _, ck := range s3conn.Check(ctx, spec) {
		res.Checks = append(res.Checks, client.Check{Name: ck.Name, OK: ck.OK, Error: ck.Err, MS: ck.Duration.Milliseconds()})
		if !ck.OK {
			res.OK = false
		}
	}
	if len(res.Checks) == 0 {
		res.OK = false
	}
	return res, nil
}

func (r *reconciler) Files(ctx context.Context, id, path, cursor string, limit int) (client.Files, error) {
	c, h, err := r.mounted(id)
	if err != nil {
		return client.Files{}, err
	}
	rel, err := worker.CleanRel(path)
	if err != nil {
		return client.Files{}, Errorf(client.CodeInvalid, "path %q: %v", path, err)
	}
	r.mu.Lock()
	bucket, prefix, mp := c.spec.Bucket, c.spec.Prefix, c.spec.MountPoint
	r.mu.Unlock()
	page, err := h.Files(ctx, rel, cursor, limit)
	if err != nil {
		return client.Files{}, workerErr(err)
	}
	out := client.Files{Path: "/" + rel, Entries: make([]client.Entry, 0, len(page.Entries)), NextCursor: page.NextCursor}
	for _, e := range page.Entries {
		key := e.Key
		if !strings.HasPrefix(key, prefix) {
			key = prefix + key
		}
		typ := "file"
		if e.Dir {
			typ = "dir"
		}
		out.Entries = append(out.Entries, client.Entry{Name: e.Name, Type: typ, Size: e.Size, MTime: e.MTime,
			Path: filepath.Join(mp, filepath.FromSlash(rel), e.Name), S3URI: "s3://" + bucket + "/" + key})
	}
	return out, nil
}

func (r *reconciler) Subscribe() (<-chan View, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan View, 256)
	id := r.nextSub
	r.nextSub++
	r.subs[id] = ch
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			r.mu.Lock()
			delete(r.subs, id)
			r.mu.Unlock()
		})
	}
}

func (r *reconciler) MountedCount() int {
	n, _ := r.counts()
	return n
}

// counts returns how many connectors are mounted and how many are known.
func (r *reconciler) counts() (mounted, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		if c.removed {
			continue
		}
		total++
		if c.h != nil && c.phase == client.StateMounted {
			mounted++
		}
	}
	return
}

// ---- lifecycle ----

// Start adopts live workers, cleans stale mounts under project_root, loads
// every file, stops unwanted workers and waits (bounded by ctx) until every
// connector has had its first step.
func (r *reconciler) Start(ctx context.Context) {
	// never with ctx: a stop signal during start must not make live
	// workers look unresponsive (they would be killed)
	handles := r.sup.Adopt(context.Background())
	r.cleanStale()
	r.mu.Lock()
	for _, h := range handles {
		r.adopting[h.ID] = true // a live worker keeps its mount_name
	}
	r.mu.Unlock()
	r.seedLastGood()
	r.Load() // connector goroutines wait for r.ready before acting

	var wg sync.WaitGroup
	for _, h := range handles {
		r.mu.Lock()
		c := r.conns[h.ID]
		if c == nil && r.dirErr != "" {
			// the connectors directory is unusable at start: every live
			// mount is kept, showing the directory's error, until it is back
			c = r.newConnLocked(h.ID)
			c.file, c.cfgErr = filepath.Join(r.agent.ConnectorsDir, h.ID+".toml"), r.dirErr
		}
		keep := c != nil && r.wantLocked(c) && c.hash == h.SpecHash && c.h == nil
		if c != nil && c.good == nil && c.cfgErr != "" && c.h == nil {
			// its file is broken now and this agent never saw a good
			// version: keep the working mount, show the error
			keep = true
			c.hash = h.SpecHash
		}
		if keep {
			c.h, c.mountedAt = h, r.now()
		}
		r.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if keep {
				wctx, cancel := context.WithTimeout(ctx, mountTimeout)
				err := h.WaitMounted(wctx)
				cancel()
				if err == nil {
					r.log.Info("adopted a live mount worker", "connector", h.ID, "pid", h.PID, "mount_point", h.MountPoint)
					r.mu.Lock()
					r.setPhaseLocked(c, client.StateMounted, "")
					r.mu.Unlock()
					r.notify()
					go r.watchWorker(c, h)
					return
				}
				if ctx.Err() != nil {
					// stopping while it mounts: Close(true) stops it
					go r.watchWorker(c, h)
					return
				}
				r.log.Warn("adopted worker failed to mount; replacing it", "connector", h.ID, "err", err)
				r.mu.Lock()
				c.h = nil
				r.mu.Unlock()
			} else {
				r.log.Info("stopping a mount worker that is no longer wanted or whose connector changed", "connector", h.ID, "pid", h.PID)
			}
			uctx, cancel := context.WithTimeout(context.Background(), unmountTimeout)
			h.Unmount(uctx)
			cancel()
			if ok, _ := mounts.IsMountPoint(h.MountPoint); !ok {
				os.Remove(h.MountPoint)
			}
		}()
	}
	wg.Wait()
	r.mu.Lock()
	clear(r.adopting)
	r.claimNamesLocked()
	r.saveLastGoodLocked()
	r.mu.Unlock()
	close(r.ready)

	r.mu.Lock()
	var firsts []chan struct{}
	for _, c := range r.conns {
		firsts = append(firsts, c.firstDone)
	}
	r.mu.Unlock()
	for _, f := range firsts {
		select {
		case <-f:
		case <-ctx.Done():
			return
		}
	}
}

// cleanStale detaches dead FUSE mounts (ENOTCONN) under project_root.
func (r *reconciler) cleanStale() {
	mis, err := mounts.ReadMountInfo()
	if err != nil {
		r.log.Warn("cannot read the mount table", "err", err)
		return
	}
	root := filepath.Clean(r.agent.ProjectRoot) + "/"
	for _, mi := range mis {
		if strings.HasPrefix(mi.MountPoint, root) && mounts.IsStale(mi.MountPoint) {
			r.log.Info("cleaning a dead mount", "mount_point", mi.MountPoint)
			if err := mounts.CleanStale(mi.MountPoint); err != nil {
				r.log.Warn("could not clean a dead mount", "mount_point", mi.MountPoint, "err", err)
			}
		}
	}
}

// Close stops the connector goroutines. With unmount, every worker is told
// to unmount and exit (SIGTERM); without, workers keep serving (re-exec).
func (r *reconciler) Close(unmount bool) {
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(unmountTimeout):
		r.log.Warn("some connector steps did not finish in time")
	}
	if !unmount {
		return
	}
	r.mu.Lock()
	var cs []*conn
	for _, c := range r.conns {
		if c.h != nil {
			cs = append(cs, c)
		}
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		r.mu.Lock()
		h := c.h
		r.mu.Unlock()
		if h == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.stop(c, h) }() // best effort at exit
	}
	wg.Wait()
}
