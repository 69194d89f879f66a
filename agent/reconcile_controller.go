package agent

// The reconciler as the API's Controller.

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

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

func (r *reconciler) mounted(id string) (*conn, mountWorker, error) {
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
		code := ce.Code
		if code == "" { // a CallError made by hand carries its status only
			code = worker.CodeOf(ce.Status)
		}
		switch code {
		case worker.CodeInvalid:
			return Errorf(client.CodeInvalid, "%s", ce.Msg)
		case worker.CodeNotFound:
			return Errorf(client.CodeNotFound, "%s", ce.Msg)
		case worker.CodeConflict:
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
