package agent

// The level-based loop: one goroutine per connector brings it, one step
// at a time, towards its desired state; workers are started, stopped and
// watched here.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/mounts"
)

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
	var stopTimer func() bool
	var timerC <-chan time.Time
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-c.kick:
		case <-timerC:
		}
		if stopTimer != nil {
			stopTimer()
			stopTimer, timerC = nil, nil
		}
		wake, gone := r.step(c)
		c.firstOnce.Do(func() { close(c.firstDone) })
		if gone {
			return
		}
		if !wake.IsZero() {
			timerC, stopTimer = r.newTimer(wake.Sub(r.now()))
		}
	}
}

// step brings one connector one step towards its desired state. It returns
// when to look again (zero: on the next kick), and gone when the connector
// has been forgotten.
func (r *reconciler) step(c *conn) (wake time.Time, gone bool) {
	r.mu.Lock()
	r.claimNamesLocked()
	d, a := r.stateLocked(c)
	act, ph := plan(d, a, r.now())
	spec, h := c.spec, c.h
	if ph.state != "" {
		r.setPhaseLocked(c, ph.state, ph.msg)
		if ph.rest {
			c.failures, c.nextTry = 0, time.Time{}
		}
	}
	if act == actForget {
		delete(r.conns, c.id)
		r.mu.Unlock()
		r.notify()
		return time.Time{}, true
	}
	if act == actWait {
		wake = c.nextTry
	}
	r.mu.Unlock()
	r.notify()

	switch act {
	case actStop:
		if !r.stop(context.Background(), c, h) {
			return c.retryAt(r), false
		}
		return r.now(), false // look again: a removed connector is forgotten now
	case actReplace:
		r.log.Info("connector spec changed; remounting", "connector", c.id)
		if !r.stop(context.Background(), c, h) {
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
		if o != c && o.h != nil && o.h.MountPoint() == spec.MountPoint {
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
		var d time.Duration
		c.failures, d, c.nextTry = afterFailure(c.failures, r.now())
		r.setPhaseLocked(c, client.StateError, fmt.Sprintf("%v (retrying in %s)", err, d))
		r.log.Error("mount failed", "connector", c.id, "err", err, "retry_in", d.String())
		if r.metrics != nil {
			r.metrics.ReconcileErrors.WithLabelValues(c.id).Inc()
		}
		return c.nextTry
	}
	c.h, c.mountedAt = h, r.now()
	r.setPhaseLocked(c, client.StateMounted, "")
	r.log.Info("mounted", "connector", c.id, "mount_point", spec.MountPoint, "backend", spec.Backend, "worker_pid", h.PID(), "spec_hash_prefix", hash[:15])
	go r.watchWorker(c, h)
	return time.Time{}
}

// launch prepares the mount point and starts a worker.
func (r *reconciler) launch(ctx context.Context, spec mounts.Spec) (mountWorker, error) {
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
	return r.workers.Start(ctx, spec)
}

// stop unmounts through the worker and waits until it is gone. When the
// unmount fails the worker stays in charge and ok is false; the step is
// retried with backoff.
func (r *reconciler) stop(parent context.Context, c *conn, h mountWorker) (ok bool) {
	r.mu.Lock()
	c.h = nil // the watcher of h now knows the end is ours
	r.setPhaseLocked(c, client.StateUnmounting, "")
	r.mu.Unlock()
	r.notify()
	ctx, cancel := context.WithTimeout(parent, unmountTimeout)
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
			var d time.Duration
			c.failures, d, c.nextTry = afterFailure(c.failures, r.now())
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
		r.log.Warn("busy mount detached lazily", "connector", c.id, "mount_point", h.MountPoint())
	default:
		r.log.Info("unmounted", "connector", c.id, "mount_point", h.MountPoint())
	}
	if ok, _ := mounts.IsMountPoint(h.MountPoint()); !ok {
		mounts.RemoveMountPoint(h.MountPoint()) // only if empty, never through a link
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
func (r *reconciler) pollHealth(c *conn, h mountWorker) {
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
	t := time.NewTicker(r.healthEvery)
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
func (r *reconciler) watchWorker(c *conn, h mountWorker) {
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
	var d time.Duration
	c.failures, d, c.nextTry = afterDeath(c.failures, c.mountedAt, r.now())
	r.setPhaseLocked(c, client.StateError, fmt.Sprintf("%s; restarting in %s", reason, d))
	r.mu.Unlock()
	r.notify()
	r.log.Error("mount worker ended", "connector", c.id, "pid", h.PID(), "reason", reason, "restart_in", d.String())
	if r.metrics != nil {
		r.metrics.WorkerRestarts.WithLabelValues(c.id).Inc()
	}
	c.wake()
}
