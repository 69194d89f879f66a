package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/mounts"
)

// fakeWorkers is an in-process workers: no process, no mount. A test
// scripts failures and kills and reads what the reconciler asked.
type fakeWorkers struct {
	mu      sync.Mutex
	started []*fakeWorker // every worker Start made, in order
	adopt   []*fakeWorker // what Adopt returns
	// mountErrs: the next workers' WaitMounted fail with these, in order.
	mountErrs []error
	// startErr: Start fails with it (nil: Start works).
	startErr error
	nextPID  int
}

var _ workers = (*fakeWorkers)(nil)

func (f *fakeWorkers) Start(ctx context.Context, spec mounts.Spec) (mountWorker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.startErr != nil {
		return nil, f.startErr
	}
	w := f.newWorkerLocked(spec.ID, worker.SpecHash(spec), spec.MountPoint)
	w.spec = spec
	if len(f.mountErrs) > 0 {
		w.mountErr, f.mountErrs = f.mountErrs[0], f.mountErrs[1:]
	}
	f.started = append(f.started, w)
	return w, nil
}

func (f *fakeWorkers) Adopt(ctx context.Context) []mountWorker {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []mountWorker
	for _, w := range f.adopt {
		out = append(out, w)
	}
	return out
}

// newWorker is a live fake worker, e.g. one to be adopted.
func (f *fakeWorkers) newWorker(id, hash, mountPoint string) *fakeWorker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newWorkerLocked(id, hash, mountPoint)
}

func (f *fakeWorkers) newWorkerLocked(id, hash, mountPoint string) *fakeWorker {
	f.nextPID++
	return &fakeWorker{id: id, hash: hash, mp: mountPoint, pid: 1000 + f.nextPID, done: make(chan struct{})}
}

// starts is how many workers Start made.
func (f *fakeWorkers) starts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.started)
}

// last is the latest worker Start made (nil if none).
func (f *fakeWorkers) last() *fakeWorker {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.started) == 0 {
		return nil
	}
	return f.started[len(f.started)-1]
}

// fakeWorker is one fake mount worker.
type fakeWorker struct {
	id, hash, mp string
	pid          int
	spec         mounts.Spec // as started (zero when adopted)
	mountErr     error       // WaitMounted's answer

	mu         sync.Mutex
	unmountErr error // Unmount's answer while set (the worker stays)
	unmounts   int   // Unmount calls
	degraded   string
	refreshed  []string    // Refresh paths
	page       mounts.Page // what Files answers
	listed     []string    // Files directories
	done       chan struct{}
	endErr     error
	once       sync.Once
}

var _ mountWorker = (*fakeWorker)(nil)

func (w *fakeWorker) ID() string         { return w.id }
func (w *fakeWorker) PID() int           { return w.pid }
func (w *fakeWorker) SpecHash() string   { return w.hash }
func (w *fakeWorker) MountPoint() string { return w.mp }

func (w *fakeWorker) WaitMounted(ctx context.Context) error {
	select {
	case <-w.done:
		return errors.New("mount worker ended before mounting")
	default:
	}
	return w.mountErr
}

func (w *fakeWorker) Unmount(ctx context.Context) (bool, error) {
	w.mu.Lock()
	w.unmounts++
	err := w.unmountErr
	w.mu.Unlock()
	if err != nil {
		return false, err
	}
	w.end(nil)
	return false, nil
}

// die ends the worker by itself (a crash) with err.
func (w *fakeWorker) die(err error) { w.end(err) }

func (w *fakeWorker) end(err error) {
	w.once.Do(func() {
		w.mu.Lock()
		w.endErr = err
		w.mu.Unlock()
		close(w.done)
	})
}

// gone reports whether the worker has ended.
func (w *fakeWorker) gone() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

func (w *fakeWorker) unmountCalls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.unmounts
}

func (w *fakeWorker) setUnmountErr(err error) {
	w.mu.Lock()
	w.unmountErr = err
	w.mu.Unlock()
}

func (w *fakeWorker) Done() <-chan struct{} { return w.done }

func (w *fakeWorker) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.endErr
}

func (w *fakeWorker) CleanStale() {}
func (w *fakeWorker) Refresh(ctx context.Context, path string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refreshed = append(w.refreshed, path)
	return nil
}

func (w *fakeWorker) Files(ctx context.Context, dir, cursor string, limit int) (mounts.Page, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.listed = append(w.listed, dir)
	return w.page, nil
}

func (w *fakeWorker) setDegraded(msg string) {
	w.mu.Lock()
	w.degraded = msg
	w.mu.Unlock()
}

func (w *fakeWorker) Status(ctx context.Context) (worker.Status, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return worker.Status{PID: w.pid, SpecHash: w.hash, State: worker.StateMounted, Degraded: w.degraded}, nil
}

func (w *fakeWorker) LastStatus() (worker.Status, bool) { return worker.Status{}, false }

// fakeClock is the reconciler's clock in tests: time moves only by
// Advance, which fires the timers that are due.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	c       chan time.Time
	stopped bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) NewTimer(d time.Duration) (<-chan time.Time, func() bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTimer{at: f.now.Add(d), c: make(chan time.Time, 1)}
	if d <= 0 {
		t.c <- f.now
	} else {
		f.timers = append(f.timers, t)
	}
	return t.c, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock by d and fires every timer due.
func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	var keep []*fakeTimer
	for _, t := range f.timers {
		switch {
		case t.stopped:
		case !t.at.After(f.now):
			t.c <- f.now
		default:
			keep = append(keep, t)
		}
	}
	f.timers = keep
}

// pending is how many timers wait to fire; nextAt is the earliest.
func (f *fakeClock) pending() (n int, nextAt time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.timers {
		if t.stopped {
			continue
		}
		if n == 0 || t.at.Before(nextAt) {
			nextAt = t.at
		}
		n++
	}
	return n, nextAt
}
