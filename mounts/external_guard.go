package mounts

// An external tool's mount behind the guard (guard.go): as root, the tool
// mounts at a private directory in the mount's runtime directory (0700,
// root's) and the worker serves the user's mount point with the guard,
// whose every operation ends within 3 × stall_timeout.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Guarded reports whether the mount point is served by the guard.
func (m *externalMount) Guarded() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.guard != nil
}

// toolDir is where the gen-th run of the tool mounts.
func (m *externalMount) toolDir(gen int) string {
	return filepath.Join(m.spec.RuntimeDir, fmt.Sprintf("tool-%d", gen))
}

// startTool runs the tool on a new private directory and waits until its
// mount answers; it returns the tool, its stage and an O_PATH fd of its
// mount's root.
func (m *externalMount) startTool(ctx context.Context, k keys) (*proc, *Stage, int, MountRef, []string, error) {
	m.mu.Lock()
	gen := m.gen
	m.gen++
	m.mu.Unlock()
	dir := m.toolDir(gen)
	detachAll(dir) // a dead mount a killed worker left behind
	st, err := NewStage(dir)
	if err != nil {
		return nil, nil, -1, MountRef{}, nil, err
	}
	spec := m.spec
	spec.MountPoint = st.Path
	pl, err := m.b.tool.plan(spec, k)
	if err != nil {
		st.Close()
		return nil, nil, -1, MountRef{}, nil, err
	}
	p, err := startProc(procConfig{
		name: m.b.tool.name(), bin: m.bin, args: pl.args, log: m.log,
		// S3MOUNTS_MOUNT_POINT tells an operator (and the tests) which
		// mount point the tool serves.
		env:    append(append(baseEnv(m.spec), "S3MOUNTS_MOUNT_POINT="+m.spec.MountPoint), pl.env...),
		redact: m.secrets(k),
	})
	if err != nil {
		st.Close()
		removeFiles(pl.files...)
		return nil, nil, -1, MountRef{}, nil, err
	}
	m.log.Info("started", "pid", p.cmd.Process.Pid, "mount_point", m.spec.MountPoint, "tool_mount", st.Path)
	fail := func(err error) (*proc, *Stage, int, MountRef, []string, error) {
		st.Close()
		p.stop(context.Background(), 0)
		removeFiles(pl.files...)
		return nil, nil, -1, MountRef{}, nil, err
	}
	if err := m.waitReady(ctx, p, st.Path); err != nil {
		return fail(err)
	}
	fd, err := unix.Open(st.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("%s: opening its mount at %s: %w", m.b.tool.name(), st.Path, err))
	}
	f := os.NewFile(uintptr(fd), st.Path)
	id, err := MntID(f)
	var mi MountInfo
	ok := false
	if err == nil {
		mi, ok, err = FindMount(id)
	}
	if err != nil || !ok || !strings.HasPrefix(mi.FSType, "fuse") {
		f.Close()
		if err == nil {
			err = fmt.Errorf("no FUSE mount at %s", st.Path)
		}
		return fail(fmt.Errorf("%s: checking its mount: %w", m.b.tool.name(), err))
	}
	// The fd now belongs to the guard (os.File must not close it).
	nfd, err := unix.Dup(fd)
	f.Close()
	if err != nil {
		return fail(err)
	}
	unix.CloseOnExec(nfd)
	return p, st, nfd, mi.Ref(), pl.files, nil
}

// startGuarded mounts the tool privately and, the first time, the guard
// over it on the checked mount point; later (a remount for new
// credentials) the guard switches to the new tool mount.
func (m *externalMount) startGuarded(ctx context.Context, k keys) error {
	spec := m.spec
	first := !m.Guarded()
	var md *MountDir
	if first {
		var err error
		if md, err = PrepareMountPoint(spec.MountPoint); err != nil {
			return err
		}
		defer md.Close()
	}
	p, ts, rootFd, toolRef, files, err := m.startTool(ctx, k)
	if err != nil {
		return err
	}
	if !first {
		// New operations go to the new tool; the old one is detached and
		// stopped before the new one is published (ToolPID).
		m.mu.Lock()
		m.guard.setRoot(rootFd)
		oldP, oldStage, oldFiles := m.p, m.toolStage, m.files
		m.mu.Unlock()
		oldStage.Close()
		oldP.stop(ctx, exitGrace)
		for _, f := range oldFiles {
			if !slices.Contains(files, f) {
				removeFiles(f)
			}
		}
		m.mu.Lock()
		m.p, m.keys, m.files, m.toolStage, m.toolRef = p, k, files, ts, toolRef
		m.mu.Unlock()
		return nil
	}
	g := newGuardFS(rootFd, OpBound(spec.StallTimeout))
	fail := func(err error) error {
		g.close()
		ts.Close()
		p.stop(context.Background(), 0)
		removeFiles(files...)
		return err
	}
	stage, err := NewStage(filepath.Join(spec.RuntimeDir, "stage"))
	if err != nil {
		return fail(err)
	}
	defer stage.Close() // detaches the guard too if it was never moved
	ttl := min(max(spec.MetadataTTL, 0), time.Second)
	var neg time.Duration
	mopts := []string{"default_permissions"}
	if spec.ReadOnly {
		mopts = append(mopts, "ro")
	}
	name := m.b.tool.name()
	server, err := fs.Mount(stage.Path, &guardNode{g: g}, &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:    true,
			Options:       mopts,
			FsName:        name + ":" + spec.Bucket,
			Name:          name,
			MaxWrite:      1 << 20,
			MaxReadAhead:  1 << 20,
			MaxBackground: 64,
			DisableXAttrs: true,
			DirectMount:   true,
			DisableSplice: true,
			// READDIRPLUS would look up every entry inside one request:
			// unbounded on a frozen endpoint. Each stat is its own call.
			DisableReadDirPlus: true,
		},
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &neg,
	})
	if err != nil {
		return fail(fmt.Errorf("mounting the guard of %s at %s: %w", name, spec.MountPoint, err))
	}
	serverDone := make(chan struct{})
	go func() {
		server.Wait()
		close(serverDone)
	}()
	if err := server.WaitMount(); err != nil {
		stage.Close()
		return fail(fmt.Errorf("mounting the guard of %s at %s: %w", name, spec.MountPoint, err))
	}
	ref, err := stage.MoveTo(md, "fuse.")
	if err != nil {
		stage.Close()
		return fail(fmt.Errorf("%s: %w", name, err))
	}
	m.mu.Lock()
	m.p, m.keys, m.files, m.toolStage, m.toolRef = p, k, files, ts, toolRef
	m.guard, m.server, m.serverDone, m.ref = g, server, serverDone, ref
	m.mu.Unlock()
	m.log.Debug("mounted", "pid", p.cmd.Process.Pid, "mount_point", spec.MountPoint, "limit", g.limit)
	return nil
}

// refreshGuarded gives the tool new keys: a new tool on a new private
// mount, the guard switched to it, the old one detached and stopped. Files
// open through the old one would lose it, so a mount with open files is
// retried (errBusy) until a minute before the old keys expire.
func (m *externalMount) refreshGuarded(ctx context.Context, old keys, k keys) error {
	lastChance := time.Until(old.Expires) < 2*busyRetry
	m.mu.Lock()
	g := m.guard
	m.mu.Unlock()
	if n := g.open.Load(); n > 0 && !lastChance {
		return fmt.Errorf("remounting for new credentials: %w (%d open files)", errBusy, n)
	}
	if err := m.startGuarded(ctx, k); err != nil {
		return err
	}
	m.log.Info("remounted with refreshed temporary credentials", "expires", k.Expires)
	return nil
}

// unmountTool detaches the tool's private mount (the guard's root is
// closed first, so nothing new reaches it); the tool then exits.
func (m *externalMount) unmountTool() {
	m.mu.Lock()
	g, ts := m.guard, m.toolStage
	m.mu.Unlock()
	if g != nil {
		g.close()
	}
	ts.Close()
}

// detachAll detaches every mount stacked on path (not following a link).
func detachAll(path string) {
	for i := 0; i < 16; i++ {
		if err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil {
			return
		}
	}
}

// GuardStats are a guarded mount's counters.
type GuardStats struct {
	Stranded int64 // calls still blocked on the tool's mount
	Timeouts int64 // operations answered EIO at the limit
	Refused  int64 // answered EIO at once: too many stranded calls
}

// GuardStatsOf returns m's guard counters; false when m is not guarded.
func GuardStatsOf(m Mount) (GuardStats, bool) {
	em, ok := m.(*externalMount)
	if !ok || !em.Guarded() {
		return GuardStats{}, false
	}
	g := em.guard
	return GuardStats{Stranded: g.stranded.Load(), Timeouts: g.timeouts.Load(), Refused: g.refused.Load()}, true
}

// CleanDeadWorkerDirs removes the runtime directories under parent
// (parent/<pid>, one per worker) of workers that no longer run: a worker
// killed with SIGKILL leaves its tool's dead private mount (and its stage)
// there. Every mount under such a directory is detached first; a directory
// that still has a mount afterwards is left alone (nothing is ever removed
// through a mount).
func CleanDeadWorkerDirs(parent string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() || pid == os.Getpid() || pid <= 0 {
			continue
		}
		if _, err := os.Stat("/proc/" + e.Name()); err == nil {
			continue // alive (or a pid reused: left alone)
		}
		dir := filepath.Join(parent, e.Name())
		under := func() []string {
			mis, err := ReadMountInfo()
			if err != nil {
				return []string{dir} // unknown: treat as mounted
			}
			var out []string
			for _, mi := range mis {
				if mi.MountPoint == dir || strings.HasPrefix(mi.MountPoint, dir+"/") {
					out = append(out, mi.MountPoint)
				}
			}
			// Deepest first.
			slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
			return out
		}
		for _, mp := range under() {
			detachAll(mp)
		}
		if len(under()) == 0 {
			os.RemoveAll(dir)
		}
	}
}
