package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
)

// reconciler is the agent.Controller: desired state from the connector
// files plus API overrides, actual state from mount workers; one goroutine
// per connector so that one slow mount never blocks another.
type reconciler struct {
	agent      *config.Agent
	runtimeDir string
	key        *config.NodeKey
	workers    workers
	log        *slog.Logger
	ov         *overrides
	metrics    *Metrics
	// now and newTimer are the reconciler's clock (a fake one in tests).
	now      func() time.Time
	newTimer func(time.Duration) (<-chan time.Time, func() bool)
	// healthEvery is how often a mounted worker's health is polled.
	healthEvery time.Duration

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
	h         mountWorker
	mountedAt time.Time
	failures  int
	nextTry   time.Time
	// liveErr is what the mounted worker reports failing for the whole
	// mount (worker Status.Degraded): shown as the error while mounted.
	liveErr  string
	healthOf mountWorker // the worker pollHealth watches

	kick      chan struct{}
	changed   chan struct{} // closed and replaced on every view change
	last      client.Connector
	firstDone chan struct{}
	firstOnce sync.Once
}

func newReconciler(a *config.Agent, runtimeDir string, key *config.NodeKey, ws workers, ov *overrides, log *slog.Logger) *reconciler {
	ctx, cancel := context.WithCancel(context.Background())
	return &reconciler{agent: a, runtimeDir: runtimeDir, key: key, workers: ws, ov: ov, log: log,
		now: time.Now, newTimer: realTimer, healthEvery: healthPoll, ctx: ctx, cancel: cancel, ready: make(chan struct{}), conns: map[string]*conn{}, subs: map[int]chan View{},
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

// stateLocked is what is asked of c and what runs for it, as plan and
// adoptDecision read them.
func (r *reconciler) stateLocked(c *conn) (desired, actual) {
	d := desired{want: r.wantLocked(c), hash: c.hash, good: c.good != nil, broken: c.cfgErr != "", removed: c.removed}
	a := actual{phase: c.phase, phaseErr: c.phaseErr, nextTry: c.nextTry}
	if c.h != nil {
		a.workerHash = c.h.SpecHash()
	}
	return d, a
}

// newConnLocked adds connector id and starts its goroutine.
func (r *reconciler) newConnLocked(id string) *conn {
	c := &conn{id: id, phase: client.StateInactive, kick: make(chan struct{}, 1),
		changed: make(chan struct{}), firstDone: make(chan struct{})}
	r.conns[id] = c
	r.startConnLocked(c)
	return c
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
		cc.MountPath = c.h.MountPoint()
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
