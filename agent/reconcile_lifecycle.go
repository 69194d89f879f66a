package agent

// The reconciler's lifecycle: adoption of live workers at start, stale
// mounts, shutdown.

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/mounts"
)

// Start adopts live workers, cleans stale mounts under project_root, loads
// every file, stops unwanted workers and waits (bounded by ctx) until every
// connector has had its first step.
func (r *reconciler) Start(ctx context.Context) {
	// never with ctx: a stop signal during start must not make live
	// workers look unresponsive (they would be killed)
	handles := r.workers.Adopt(context.Background())
	r.cleanStale()
	r.mu.Lock()
	for _, h := range handles {
		r.adopting[h.ID()] = true // a live worker keeps its mount_name
	}
	r.mu.Unlock()
	r.seedLastGood()
	r.Load() // connector goroutines wait for r.ready before acting

	var wg sync.WaitGroup
	for _, h := range handles {
		r.mu.Lock()
		c := r.conns[h.ID()]
		if c == nil && r.dirErr != "" {
			// the connectors directory is unusable at start: every live
			// mount is kept, showing the directory's error, until it is back
			c = r.newConnLocked(h.ID())
			c.file, c.cfgErr = filepath.Join(r.agent.ConnectorsDir, h.ID()+".toml"), r.dirErr
		}
		keep := false
		if c != nil && c.h == nil {
			d, _ := r.stateLocked(c)
			var broken bool
			keep, broken = adoptDecision(d, h.SpecHash())
			if broken {
				// its file is broken now and this agent never saw a good
				// version: keep the working mount, show the error
				c.hash = h.SpecHash()
			}
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
					r.log.Info("adopted a live mount worker", "connector", h.ID(), "pid", h.PID(), "mount_point", h.MountPoint())
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
				r.log.Warn("adopted worker failed to mount; replacing it", "connector", h.ID(), "err", err)
				r.mu.Lock()
				c.h = nil
				r.mu.Unlock()
			} else {
				r.log.Info("stopping a mount worker that is no longer wanted or whose connector changed", "connector", h.ID(), "pid", h.PID())
			}
			uctx, cancel := context.WithTimeout(context.Background(), unmountTimeout)
			h.Unmount(uctx)
			cancel()
			if ok, _ := mounts.IsMountPoint(h.MountPoint()); !ok {
				os.Remove(h.MountPoint())
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

// Close is Shutdown without a bound of its own (tests).
func (r *reconciler) Close(unmount bool) {
	r.Shutdown(context.Background(), unmount)
}

// Shutdown stops the connector goroutines. With unmount, every worker is
// told to unmount and exit (SIGTERM); without, workers keep serving
// (re-exec). ctx bounds it, on top of unmountTimeout for each wait.
func (r *reconciler) Shutdown(ctx context.Context, unmount bool) {
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(unmountTimeout):
		r.log.Warn("some connector steps did not finish in time")
	case <-ctx.Done():
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
		go func() { defer wg.Done(); r.stop(ctx, c, h) }() // best effort at exit
	}
	wg.Wait()
}

// OnChange sets f to be called (without the reconciler's lock) after any
// connector's view changed; the daemon keeps systemd's STATUS= current
// with it.
func (r *reconciler) OnChange(f func()) {
	r.mu.Lock()
	r.onChange = f
	r.mu.Unlock()
}

// Responsive reports whether the reconciler's lock can be taken within
// timeout (the systemd watchdog is pinged only then).
func (r *reconciler) Responsive(timeout time.Duration) bool {
	ok := make(chan struct{})
	go func() { r.mu.Lock(); r.mu.Unlock(); close(ok) }()
	select {
	case <-ok:
		return true
	case <-time.After(timeout):
		return false
	}
}
