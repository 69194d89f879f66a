package mounts

// External backends: a FUSE tool (s3fs, geesefs) run in the foreground as
// a child of the mount worker, watched until its mount ends.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// NewS3FS returns the s3fs-fuse backend (backend = "s3fs"). r resolves
// credentials that are not plain keys (profile, role, web identity); nil
// refuses them.
func NewS3FS(r CredentialResolver) Backend { return &external{tool: s3fsTool{}, resolve: r} }

// NewGeeseFS returns the GeeseFS backend (backend = "geesefs"); r as for
// NewS3FS.
func NewGeeseFS(r CredentialResolver) Backend { return &external{tool: geesefsTool{}, resolve: r} }

var (
	_ Backend    = (*external)(nil)
	_ Mount      = (*externalMount)(nil)
	_ Identified = (*externalMount)(nil)
)

// Timing of external mounts; variables so tests can shorten them.
var (
	// readyTimeout bounds the wait for the tool's mount to appear when the
	// caller's context has no earlier deadline.
	readyTimeout = 60 * time.Second
	// exitGrace is how long a tool gets to exit by itself after its mount
	// is gone, and again after SIGTERM, before SIGKILL.
	exitGrace = 5 * time.Second
	// busyRetry is how often a credentials remount retries a busy mount.
	busyRetry = 30 * time.Second
)

// tool is what differs between s3fs and geesefs.
type tool interface {
	name() string
	// plan writes the tool's credentials file(s) for k into
	// spec.RuntimeDir and returns its command line.
	plan(spec Spec, k keys) (toolPlan, error)
	// updateInPlace rewrites credentials the running tool re-reads by
	// itself; false means the tool must be remounted to use new keys.
	updateInPlace(spec Spec, k keys) (bool, error)
	// unsupported says why spec cannot be mounted with this tool, or "".
	unsupported(spec Spec) string
}

// toolPlan is one way to run a tool.
type toolPlan struct {
	args  []string // after the binary
	env   []string // besides the base environment
	files []string // runtime files to remove when the mount ends
}

type external struct {
	tool    tool
	resolve CredentialResolver
}

func (b *external) Name() string { return b.tool.name() }

// binary finds the tool: spec.Binary (agent.toml [binaries]) or PATH.
func (b *external) binary(spec Spec) (string, error) {
	name := b.tool.name()
	if spec.Binary != "" {
		st, err := os.Stat(spec.Binary)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("backend %s is not installed: %s (set in agent.toml [binaries]) is not an executable file; install %s there, fix the path, or use backend = \"default\"", name, spec.Binary, name)
		}
		return spec.Binary, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("backend %s is not installed: %s was not found on PATH (%s); install it, set its path in agent.toml [binaries], or use backend = \"default\"", name, name, os.Getenv("PATH"))
	}
	return p, nil
}

func (b *external) Available(spec Spec) error {
	if _, err := b.binary(spec); err != nil {
		return err
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("backend %s needs /dev/fuse: load the fuse module (modprobe fuse) or install fuse3", b.tool.name())
	}
	if why := b.tool.unsupported(spec); why != "" {
		return fmt.Errorf("backend %s cannot mount connector %s: %s", b.tool.name(), spec.ID, why)
	}
	return nil
}

func (b *external) Mount(ctx context.Context, spec Spec) (Mount, error) {
	bin, err := b.binary(spec)
	if err != nil {
		return nil, err
	}
	if why := b.tool.unsupported(spec); why != "" {
		return nil, fmt.Errorf("backend %s cannot mount connector %s: %s", b.tool.name(), spec.ID, why)
	}
	if err := CleanStale(spec.MountPoint); err != nil {
		return nil, err
	}
	if ok, err := IsMountPoint(spec.MountPoint); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("%s is already a mount point: unmount it first", spec.MountPoint)
	}
	if err := prepareDirs(spec); err != nil {
		return nil, err
	}
	k, err := resolveKeys(ctx, spec, b.resolve)
	if err != nil {
		return nil, err
	}
	m := &externalMount{
		b: b, spec: spec, bin: bin,
		log:  slog.Default().With("connector", spec.ID, "backend", b.tool.name()),
		done: make(chan struct{}),
		stop: make(chan struct{}),
	}
	if err := m.start(ctx, k); err != nil {
		return nil, err
	}
	go m.run()
	return m, nil
}

// externalMount is one mount served by a tool; the tool may be restarted
// underneath it to take new temporary credentials.
type externalMount struct {
	b    *external
	spec Spec
	bin  string
	log  *slog.Logger

	mu       sync.Mutex
	p        *proc
	ref      MountRef // the kernel mount the tool serves (ID 0 when not root)
	keys     keys
	files    []string
	stopping bool
	// unmounting is the tool Unmount unmounts and reaps.
	unmounting *proc
	// As root the tool mounts on a private directory (toolStage) and the
	// worker serves the mount point with a guard over it (guard.go).
	guard      *guardFS
	server     *fuse.Server
	serverDone chan struct{} // closed when the guard's server has ended
	toolStage  *Stage
	toolRef    MountRef // the tool's own (hidden) mount
	gen        int      // tool stages made so far
	stopOnce   sync.Once
	stop       chan struct{} // closed by Unmount

	done chan struct{} // closed when the mount has ended
	err  error         // why, valid after done
}

func (m *externalMount) secrets(k keys) []string {
	return []string{k.SecretAccessKey.Reveal(), k.SessionToken.Reveal()}
}

// start writes the credentials, runs the tool and waits until its mount
// serves. As root, the mount point is checked and held open first
// (PrepareMountPoint), the tool mounts at a private stage, and the mount is
// then moved onto the checked directory: the tool never sees a path a user
// could redirect (s3fs realpath()s and mounts by path).
func (m *externalMount) start(ctx context.Context, k keys) error {
	if os.Geteuid() == 0 {
		return m.startGuarded(ctx, k)
	}
	spec := m.spec
	var md *MountDir
	var stage *Stage
	if os.Geteuid() == 0 {
		var err error
		if md, err = PrepareMountPoint(spec.MountPoint); err != nil {
			return err
		}
		defer md.Close()
		dir := ""
		if spec.RuntimeDir != "" {
			dir = filepath.Join(spec.RuntimeDir, "stage")
		}
		if stage, err = NewStage(dir); err != nil {
			return err
		}
		defer stage.Close() // detaches the tool's mount too if never moved
		spec.MountPoint = stage.Path
	}
	pl, err := m.b.tool.plan(spec, k)
	if err != nil {
		return err
	}
	p, err := startProc(procConfig{
		name: m.b.tool.name(), bin: m.bin, args: pl.args, log: m.log,
		// The tool mounts at the stage: S3MOUNTS_MOUNT_POINT tells an
		// operator (and the tests) which mount point it serves.
		env:    append(append(baseEnv(m.spec), "S3MOUNTS_MOUNT_POINT="+m.spec.MountPoint), pl.env...),
		redact: m.secrets(k),
	})
	if err != nil {
		removeFiles(pl.files...)
		return err
	}
	m.log.Info("started", "pid", p.cmd.Process.Pid, "mount_point", m.spec.MountPoint)
	fail := func(err error) error {
		if stage != nil {
			stage.Close()
		} else if ok, _ := IsMountPoint(spec.MountPoint); ok {
			Unmount(context.Background(), spec.MountPoint)
		}
		p.stop(context.Background(), 0)
		removeFiles(pl.files...)
		return err
	}
	if err := m.waitReady(ctx, p, spec.MountPoint); err != nil {
		return fail(err)
	}
	var ref MountRef
	if stage != nil {
		if ref, err = stage.MoveTo(md, "fuse"); err != nil {
			return fail(fmt.Errorf("%s: %w", m.b.tool.name(), err))
		}
	}
	m.mu.Lock()
	m.p, m.keys, m.files, m.ref = p, k, pl.files, ref
	m.mu.Unlock()
	m.log.Debug("mounted", "pid", p.cmd.Process.Pid, "mount_point", m.spec.MountPoint) // the daemon logs the mount once
	return nil
}

// waitReady waits for the tool's FUSE mount in mountinfo, then checks it
// answers: a lookup of a name that does not exist must give ENOENT (one
// round trip to S3 through the tool).
func (m *externalMount) waitReady(ctx context.Context, p *proc, at string) error {
	name := m.b.tool.name()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, readyTimeout)
		defer cancel()
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		mi, ok, err := MountedAt(at)
		if err != nil {
			return err
		}
		if ok && strings.HasPrefix(mi.FSType, "fuse") {
			break
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s failed to mount %s: %w", name, at, p.exitError())
		case <-ctx.Done():
			return fmt.Errorf("%s did not mount %s in time (%v); its last output: %s", name, at, context.Cause(ctx), p.tail)
		case <-tick.C:
		}
	}
	probe := make(chan error, 1)
	go func() {
		_, err := os.Lstat(filepath.Join(at, ".s3mounts-ready-probe"))
		probe <- err
	}()
	select {
	case err := <-probe:
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s mounted %s but it does not answer (%v); its last output: %s", name, at, err, p.tail)
		}
		if p.exited() {
			return fmt.Errorf("%s failed to mount %s: %w", name, at, p.exitError())
		}
		return nil
	case <-p.done:
		return fmt.Errorf("%s failed to mount %s: %w", name, at, p.exitError())
	case <-ctx.Done():
		return fmt.Errorf("%s mounted %s but it does not answer in time (%v); its last output: %s", name, at, context.Cause(ctx), p.tail)
	}
}

// run watches the tool until the mount ends, refreshing temporary
// credentials on the way.
func (m *externalMount) run() {
	defer close(m.done)
	for {
		m.mu.Lock()
		p, k, serverDone := m.p, m.keys, m.serverDone
		m.mu.Unlock()
		var refresh <-chan time.Time
		var timer *time.Timer
		if at := k.refreshAt(time.Now()); !at.IsZero() {
			timer = time.NewTimer(time.Until(at))
			refresh = timer.C
		}
		select {
		case <-serverDone:
			// The guard was unmounted by someone else: the tool goes too.
			m.mu.Lock()
			stopping := m.stopping
			m.mu.Unlock()
			if !stopping {
				m.err = fmt.Errorf("mount %s was unmounted from outside s3mounts; %s was stopped", m.spec.MountPoint, m.b.tool.name())
				m.log.Error("mount ended", "err", m.err)
				m.mu.Lock()
				m.stopping = true
				m.mu.Unlock()
				m.unmountTool()
				p.stop(context.Background(), exitGrace)
				removeFiles(m.files...)
				return
			}
			<-p.done
			m.mu.Lock()
			files := m.files
			m.mu.Unlock()
			removeFiles(files...)
			return
		case <-p.done:
			m.mu.Lock()
			stopping := m.stopping
			files := m.files
			m.mu.Unlock()
			if err := removeFiles(files...); err != nil {
				m.log.Warn("removing the credentials file failed", "err", err)
			}
			if stopping {
				m.log.Info("tool exited after unmount", "pid", p.cmd.Process.Pid)
				return
			}
			if p.err == nil {
				m.err = fmt.Errorf("mount %s was unmounted from outside s3mounts (%s exited cleanly)", m.spec.MountPoint, m.b.tool.name())
			} else {
				m.err = fmt.Errorf("mount %s ended: %w", m.spec.MountPoint, p.exitError())
			}
			m.log.Error("tool exited unexpectedly", "pid", p.cmd.Process.Pid, "err", m.err)
			if m.Guarded() {
				// Nothing serves behind the guard any more: take it
				// down too rather than leave a mount that fails.
				m.mu.Lock()
				m.stopping = true
				m.mu.Unlock()
				m.unmountMine(context.Background())
			}
			return
		case <-m.stop:
			// Unmount reaps the tool it knows; one a refresh started
			// meanwhile is unmounted and reaped here.
			m.mu.Lock()
			mine := m.unmounting != p
			m.mu.Unlock()
			if mine {
				m.unmountMine(context.Background())
				p.stop(context.Background(), exitGrace)
			}
			<-p.done
		case <-refresh:
			if err := m.refresh(k); err != nil {
				m.log.Error("refreshing temporary credentials failed; retrying", "err", err, "expires", k.Expires, "retry_in", busyRetry)
				select {
				case <-time.After(busyRetry):
				case <-m.stop:
				case <-p.done:
				}
			}
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// refresh fetches new temporary credentials and gives them to the tool:
// in place if it re-reads them, else by remounting when the mount is idle
// (a busy mount is retried until a minute before expiry, then detached
// lazily).
func (m *externalMount) refresh(old keys) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	k, err := resolveKeys(ctx, m.spec, m.b.resolve)
	if err != nil {
		return err
	}
	inPlace, err := m.b.tool.updateInPlace(m.spec, k)
	if err != nil {
		return err
	}
	if inPlace {
		m.mu.Lock()
		m.keys = k
		m.mu.Unlock()
		m.log.Info("temporary credentials refreshed in place", "expires", k.Expires)
		return nil
	}
	if m.Guarded() {
		return m.refreshGuarded(ctx, old, k)
	}
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return nil
	}
	p, files := m.p, m.files
	m.stopping = true // the old tool's exit is expected
	m.mu.Unlock()
	lastChance := time.Until(old.Expires) < 2*busyRetry
	m.mu.Lock()
	ref := m.ref
	m.mu.Unlock()
	if ref.ID != 0 {
		retries := -1 // busy: errBusy
		if lastChance {
			retries = 0 // busy: detach lazily
		}
		err = unmountRef(context.Background(), ref, retries, 0)
	} else {
		err = unmountOnce(m.spec.MountPoint, lastChance)
	}
	if err != nil && !errors.Is(err, ErrLazyUnmount) {
		m.mu.Lock()
		m.stopping = false
		m.mu.Unlock()
		return fmt.Errorf("remounting for new credentials: %w", err)
	}
	p.stop(ctx, exitGrace)
	removeFiles(files...)
	m.mu.Lock()
	stopped := false
	select {
	case <-m.stop:
		stopped = true
	default:
		m.stopping = false
	}
	m.mu.Unlock()
	if stopped {
		return nil
	}
	if err := m.start(ctx, k); err != nil {
		return err
	}
	m.log.Info("remounted with refreshed temporary credentials", "expires", k.Expires)
	return nil
}

// unmountOnce unmounts path without waiting: a busy mount gives errBusy,
// or is detached lazily (ErrLazyUnmount) when lazy is allowed.
func unmountOnce(path string, lazy bool) error {
	if lazy {
		return unmount(context.Background(), path, 0, 0, nil)
	}
	err := unix.Unmount(path, 0)
	switch {
	case err == nil, errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		return errBusy
	}
	return fmt.Errorf("unmounting %s: %w", path, err)
}

var errBusy = errors.New("the mount is busy (open files or working directories in it)")

// Ref is the kernel mount the tool serves now.
func (m *externalMount) Ref() MountRef {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ref
}

// unmountMine unmounts the tool's mount: by its id wherever it is now, or
// by its path when it was made without root.
func (m *externalMount) unmountMine(ctx context.Context) error {
	if m.Guarded() {
		err := UnmountRef(ctx, m.Ref())
		m.unmountTool()
		return err
	}
	if ref := m.Ref(); ref.ID != 0 {
		return UnmountRef(ctx, ref)
	}
	return Unmount(ctx, m.spec.MountPoint)
}

// Wait blocks until the tool has exited: nil after Unmount, else why.
func (m *externalMount) Wait() error {
	<-m.done
	return m.err
}

// Unmount detaches the mount (lazily if busy: the error then wraps
// ErrLazyUnmount), then reaps the tool: it exits by itself once its mount
// is gone; SIGTERM, then SIGKILL, after a grace period each. A lazily
// detached mount loses its open files when the tool is stopped.
func (m *externalMount) Unmount(ctx context.Context) error {
	m.mu.Lock()
	m.stopping = true
	p := m.p
	m.unmounting = p
	m.mu.Unlock()
	m.stopOnce.Do(func() { close(m.stop) })
	err := m.unmountMine(ctx)
	if err != nil && !errors.Is(err, ErrLazyUnmount) {
		m.log.Warn("unmount failed; stopping the tool anyway", "err", err)
	}
	p.stop(ctx, exitGrace)
	select {
	case <-m.done:
	case <-ctx.Done():
		return fmt.Errorf("unmounting %s: %w", m.spec.MountPoint, context.Cause(ctx))
	}
	// A tool killed before it unmounted leaves a dead mount behind.
	if cerr := CleanStale(m.spec.MountPoint); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// baseEnv is the whole environment of a tool: nothing of the agent's own
// (no AWS_* variable can leak a credential the connector did not name),
// HOME in the private runtime directory, and the CA bundle settings the
// node uses, passed on only when the file they name is readable (s3fs
// refuses to start on an unreadable CURL_CA_BUNDLE, the AWS SDK on an
// unreadable AWS_CA_BUNDLE).
func baseEnv(spec Spec) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := []string{"PATH=" + path, "HOME=" + spec.RuntimeDir}
	for _, v := range []string{"SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if s := os.Getenv(v); s != "" {
			env = append(env, v+"="+s)
		}
	}
	readable := func(v string) string {
		s := os.Getenv(v)
		if s == "" {
			return ""
		}
		f, err := os.Open(s)
		if err != nil {
			return ""
		}
		f.Close()
		return s
	}
	if s := readable("AWS_CA_BUNDLE"); s != "" {
		env = append(env, "AWS_CA_BUNDLE="+s)
	}
	// s3fs (libcurl) reads CURL_CA_BUNDLE; AWS_CA_BUNDLE is what a node
	// sets for S3 clients, so it stands in when CURL_CA_BUNDLE is unset.
	if s := readable("CURL_CA_BUNDLE"); s != "" {
		env = append(env, "CURL_CA_BUNDLE="+s)
	} else if s := readable("AWS_CA_BUNDLE"); s != "" {
		env = append(env, "CURL_CA_BUNDLE="+s)
	}
	return env
}
