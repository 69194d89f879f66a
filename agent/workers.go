package agent

import (
	"context"

	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/mounts"
)

// workers starts and adopts mount workers: the reconciler's only way to
// reach them. The real implementation is the worker.Supervisor
// (supervisorWorkers); the tests use an in-process fake
// (fakeworkers_test.go).
type workers interface {
	// Start starts a worker for spec and returns once it answers (the
	// mount may still be in progress: see mountWorker.WaitMounted).
	Start(ctx context.Context, spec mounts.Spec) (mountWorker, error)
	// Adopt returns the live workers a previous agent left running.
	Adopt(ctx context.Context) []mountWorker
}

// mountWorker is one live worker, started by this agent or adopted, as the
// reconciler uses it.
type mountWorker interface {
	ID() string
	PID() int
	SpecHash() string
	MountPoint() string
	// WaitMounted returns nil once mounted, else why the mount failed.
	WaitMounted(ctx context.Context) error
	// Unmount asks the worker to unmount and exit and waits until it has
	// gone; lazy reports a busy mount detached lazily.
	Unmount(ctx context.Context) (lazy bool, err error)
	// Done is closed when the worker has gone; Err then says why.
	Done() <-chan struct{}
	Err() error
	// CleanStale detaches the dead mount a gone worker left behind.
	CleanStale()
	Refresh(ctx context.Context, path string) error
	Files(ctx context.Context, dir, cursor string, limit int) (mounts.Page, error)
	// Status asks the worker now; LastStatus is its latest polled answer.
	Status(ctx context.Context) (worker.Status, error)
	LastStatus() (worker.Status, bool)
}

// supervisorWorkers is the real workers: processes run by a
// worker.Supervisor.
type supervisorWorkers struct{ sup *worker.Supervisor }

func (s supervisorWorkers) Start(ctx context.Context, spec mounts.Spec) (mountWorker, error) {
	h, err := s.sup.Start(ctx, spec)
	if err != nil {
		return nil, err // never a typed nil in the interface
	}
	return handle{h}, nil
}

func (s supervisorWorkers) Adopt(ctx context.Context) []mountWorker {
	var out []mountWorker
	for _, h := range s.sup.Adopt(ctx) {
		out = append(out, handle{h})
	}
	return out
}

// handle is a *worker.Handle as a mountWorker. Two handles of one
// worker.Handle compare equal.
type handle struct{ h *worker.Handle }

func (w handle) ID() string                            { return w.h.ID }
func (w handle) PID() int                              { return w.h.PID }
func (w handle) SpecHash() string                      { return w.h.SpecHash }
func (w handle) MountPoint() string                    { return w.h.MountPoint }
func (w handle) WaitMounted(ctx context.Context) error { return w.h.WaitMounted(ctx) }
func (w handle) Unmount(ctx context.Context) (bool, error) {
	return w.h.Unmount(ctx)
}
func (w handle) Done() <-chan struct{}                          { return w.h.Done() }
func (w handle) Err() error                                     { return w.h.Err() }
func (w handle) CleanStale()                                    { w.h.CleanStale() }
func (w handle) Refresh(ctx context.Context, path string) error { return w.h.Refresh(ctx, path) }
func (w handle) Files(ctx context.Context, dir, cursor string, limit int) (mounts.Page, error) {
	return w.h.Files(ctx, dir, cursor, limit)
}
func (w handle) Status(ctx context.Context) (worker.Status, error) { return w.h.Status(ctx) }
func (w handle) LastStatus() (worker.Status, bool)                 { return w.h.LastStatus() }
