// Package builtin is s3mounts' own S3 filesystem (backend = "default"),
// built on go-fuse and aws-sdk-go-v2.
//
// The S3 side sits behind ObjectClient (s3client.go: deadlines, the
// S3-error→errno table); the FUSE side is node (fs.go, ops.go), dirHandle
// (dir.go: streaming listings), reader (read.go: readahead) and writeState
// (file.go: staged writes). docs/SEMANTICS.md describes what users see.
package builtin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// New returns the built-in backend.
func New() mounts.Backend { return backend{} }

type backend struct{}

var _ mounts.Backend = backend{}

func (backend) Name() string { return "default" }

func (backend) Available(mounts.Spec) error {
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("the built-in backend needs /dev/fuse: load the fuse module (modprobe fuse) or install fuse3")
	}
	return nil
}

// Mount mounts spec and returns once the kernel serves it.
func (backend) Mount(ctx context.Context, spec mounts.Spec) (mounts.Mount, error) {
	if spec.Prefix != "" && !strings.HasSuffix(spec.Prefix, "/") {
		return nil, fmt.Errorf("connector %s: prefix %q must end in \"/\"", spec.ID, spec.Prefix)
	}
	softMemoryLimit()
	cl, err := newS3Client(ctx, spec)
	if err != nil {
		return nil, err
	}
	return mountWith(ctx, spec, cl)
}

func mountWith(ctx context.Context, spec mounts.Spec, cl ObjectClient) (*Mount, error) {
	staging := spec.CacheDir
	if staging == "" && !spec.ReadOnly {
		d, err := os.MkdirTemp("", "s3mounts-staging-")
		if err != nil {
			return nil, fmt.Errorf("creating a write-staging directory: %w (set cache_dir)", err)
		}
		staging = d
	}
	if staging != "" {
		if err := os.MkdirAll(staging, 0o700); err != nil {
			return nil, fmt.Errorf("creating the write-staging directory %s: %w", staging, err)
		}
		_ = os.Chmod(staging, 0o700)
	}
	hl := &health{spec: spec}
	counts := new(requestCounts)
	cl = countClient{healthClient{cl, hl}, counts}
	fctx, cancel := context.WithCancel(context.Background())
	fsys := &FS{spec: spec, cl: cl, prefix: spec.Prefix, meta: newMetaCache(spec.MetadataTTL, spec.NegativeTTL, spec.MetadataMax), requests: counts,
		budget: newBufBudget(budgetBuffer), staging: staging, started: time.Now(), ctx: fctx,
		wbufFree: make(chan []byte, streamSlots+1), wslots: make(chan struct{}, streamSlots),
		stagingBudget: &stagingBudget{max: stagingLimit(staging, spec.MaxStaging, spec.MaxStagingPercent)}}
	fsys.root = &node{fsys: fsys, dir: true}

	ttl, neg := spec.MetadataTTL, spec.NegativeTTL
	mopts := []string{"default_permissions"}
	if spec.ReadOnly {
		mopts = append(mopts, "ro")
	}
	opts := &fs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther:    true,
			Options:       mopts,
			FsName:        "s3mounts:" + spec.Bucket,
			Name:          "s3mounts",
			MaxWrite:      1 << 20,
			MaxReadAhead:  1 << 20,
			MaxBackground: 64,
			// user.* xattrs are stored (xattr.go); security.capability,
			// asked before every write, is answered by go-fuse itself.
			IgnoreSecurityLabels: true,
			DirectMount:          true,
			// Replies come from memory; splice only costs a failed pipe resize
			// per 1 MiB read.
			DisableSplice: true,
			// O_TRUNC reaches Open (else the kernel strips it and sends a
			// setattr afterwards, and open would first download the object).
			ExtraCapabilities: fuse.CAP_ATOMIC_O_TRUNC,
		},
		EntryTimeout:    &ttl,
		AttrTimeout:     &ttl,
		NegativeTimeout: &neg,
		UID:             spec.UID,
		GID:             spec.GID,
	}
	if fsys.objectPerms() {
		// go-fuse puts Options.UID/GID in place of a 0 owner: in this
		// model uid 0 is an object's real owner.
		opts.UID, opts.GID = 0, 0
	}
	// As root, the mount point (which a user may be able to rename or
	// replace) is checked and held open, the filesystem mounted at a
	// private stage and then moved onto the checked directory.
	target := spec.MountPoint
	var md *mounts.MountDir
	var stage *mounts.Stage
	var err error
	if os.Geteuid() == 0 {
		md, err = mounts.PrepareMountPoint(spec.MountPoint)
		if err != nil {
			cancel()
			return nil, err
		}
		defer md.Close()
		stageDir := ""
		if spec.RuntimeDir != "" {
			stageDir = filepath.Join(spec.RuntimeDir, "stage")
		}
		if stage, err = mounts.NewStage(stageDir); err != nil {
			cancel()
			return nil, err
		}
		defer stage.Close() // detaches the mount too if it was never moved
		target = stage.Path
	}
	server, err := fs.Mount(target, fsys.root, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("mounting bucket %s at %s: %w", spec.Bucket, spec.MountPoint, err)
	}
	m := &Mount{fsys: fsys, server: server, cancel: cancel, done: make(chan struct{}), health: hl}
	go func() {
		server.Wait()
		cancel()
		close(m.done)
	}()
	if err := server.WaitMount(); err != nil {
		_ = m.Unmount(context.Background())
		return nil, fmt.Errorf("mounting bucket %s at %s: %w", spec.Bucket, spec.MountPoint, err)
	}
	setReadAhead(target)
	if stage != nil {
		ref, err := stage.MoveTo(md, "fuse.")
		if err != nil {
			stage.Close() // detaches the mount; the server then ends
			return nil, fmt.Errorf("mounting bucket %s at %s: %w", spec.Bucket, spec.MountPoint, err)
		}
		m.ref = ref
	}
	slog.Debug("mounted", "spec", spec) // the daemon logs the mount once
	return m, nil
}

// Mount is one live built-in mount. It also pages through directories
// (mounts.Lister) and drops cached metadata on request (mounts.Refresher).
type Mount struct {
	fsys   *FS
	ref    mounts.MountRef // what the kernel made of it (ID 0 when not root)
	server *fuse.Server
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	health *health
}

var (
	_ mounts.Mount          = (*Mount)(nil)
	_ mounts.Lister         = (*Mount)(nil)
	_ mounts.Refresher      = (*Mount)(nil)
	_ mounts.Identified     = (*Mount)(nil)
	_ mounts.HealthReporter = (*Mount)(nil)
)

// Ref is the kernel mount this Mount made.
func (m *Mount) Ref() mounts.MountRef { return m.ref }

// Wait blocks until the kernel no longer serves the mount.
func (m *Mount) Wait() error {
	<-m.done
	return nil
}

// Unmount detaches the mount, lazily when busy (the error then wraps
// mounts.ErrLazyUnmount).
func (m *Mount) Unmount(ctx context.Context) error {
	var err error
	if m.ref.ID != 0 {
		// Found by its id wherever a user moved it, never through a link.
		err = mounts.UnmountRef(ctx, m.ref)
	} else {
		err = mounts.Unmount(ctx, m.fsys.spec.MountPoint)
	}
	if err != nil && !errors.Is(err, mounts.ErrLazyUnmount) {
		if err2 := m.server.Unmount(); err2 != nil {
			return err
		}
		err = nil
	}
	if !errors.Is(err, mounts.ErrLazyUnmount) {
		select {
		case <-m.done:
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
	return err
}

// Refresh drops what is cached at or under path, in this process and in
// the kernel, so the next access asks S3.
func (m *Mount) Refresh(path string) error {
	rel := strings.Trim(path, "/")
	if rel == "." {
		rel = ""
	}
	m.fsys.meta.drop(rel)
	root := m.fsys.root.EmbeddedInode()
	invalidate := func(parent *fs.Inode, name string, ch *fs.Inode) {
		if cn, ok := ch.Operations().(*node); ok {
			cn.mu.Lock()
			cn.infoExp = time.Time{}
			cn.kernelListing = nil
			cn.mu.Unlock()
			if cn.dir {
				_ = ch.NotifyContent(0, 0) // the kernel's readdir cache
			}
		}
		_ = parent.NotifyEntry(name)
	}
	if rel == "" {
		m.fsys.root.mu.Lock()
		m.fsys.root.kernelListing = nil
		m.fsys.root.mu.Unlock()
		_ = root.NotifyContent(0, 0)
		for name, ch := range root.Children() {
			invalidate(root, name, ch)
		}
		return nil
	}
	parent := root
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		ch := parent.GetChild(name)
		if ch == nil {
			return nil // not known to the kernel either
		}
		if i == len(parts)-1 {
			invalidate(parent, name, ch)
			for cname, cc := range ch.Children() {
				invalidate(ch, cname, cc)
			}
			return nil
		}
		parent = ch
	}
	return nil
}

// List pages through dir (relative to the mount) straight from
// ListObjectsV2; cursor is the continuation token.
func (m *Mount) List(ctx context.Context, dir, cursor string, limit int) (mounts.Page, error) {
	rel := strings.Trim(dir, "/")
	if rel == "." {
		rel = ""
	}
	for _, c := range strings.Split(rel, "/") {
		if rel != "" && !validName(c) {
			return mounts.Page{}, fmt.Errorf("listing %q: %q is not a valid path component", dir, c)
		}
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	f := m.fsys
	prefix := f.dirKey(rel)
	p, err := f.cl.List(ctx, prefix, "/", cursor, int32(limit))
	if err != nil {
		// plain words for the API (s3mountctl ls, the panel); the raw
		// error, with its request id, for the worker's log
		p := s3conn.Explain(ctx, f.spec, s3conn.ReqList, err)
		slog.Warn("listing failed", "prefix", prefix, "s3_code", p.Code, "request_id", s3conn.RequestID(err), "err", err)
		return mounts.Page{}, p
	}
	page := mounts.Page{NextCursor: p.Next}
	sh := shadower{dirPrefix: prefix}
	emit := func(e dirent) {
		f.meta.enrich(rel, &e)
		key := prefix + e.name
		if e.dir {
			key += "/"
		}
		page.Entries = append(page.Entries, mounts.Entry{Name: e.name, Dir: e.dir, Size: e.size, MTime: e.time(), Key: key})
	}
	sh.feed(p, emit)
	sh.finish(emit)
	if len(page.Entries) == 0 && cursor == "" && rel != "" && p.Next == "" {
		if e, errno := f.stat(ctx, rel); errno != 0 {
			return mounts.Page{}, fmt.Errorf("listing %q: %w", dir, errno)
		} else if !e.dir {
			return mounts.Page{}, fmt.Errorf("listing %q: %w", dir, syscall.ENOTDIR)
		}
	}
	return page, nil
}

// readAheadKB is the kernel readahead for the mount: larger than FUSE's
// default 128 KiB so that a sequential reader keeps several 1 MiB FUSE
// reads in flight (our own readahead then keeps S3 busy).
var readAheadKB = 8192

// setReadAhead raises the readahead of the mount's backing device (needs
// root; without it the kernel default stays, which is only slower).
func setReadAhead(mountPoint string) {
	if v, err := strconv.Atoi(os.Getenv("S3MOUNTS_READ_AHEAD_KB")); err == nil {
		readAheadKB = v
	}
	var st syscall.Stat_t
	if err := syscall.Stat(mountPoint, &st); err != nil {
		return
	}
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	if err := os.WriteFile(p, []byte(strconv.Itoa(readAheadKB)), 0o644); err != nil {
		slog.Debug("could not raise the mount's readahead", "path", p, "err", err)
	}
}

// softMemoryLimit makes the garbage collector work harder before a mount
// worker passes ~120 MiB (readahead buffers are capped at 80 MiB, the rest
// is metadata and SDK garbage). It is a soft limit: never an OOM. Skipped
// when GOMEMLIMIT is set or someone set a limit already.
func softMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if debug.SetMemoryLimit(-1) == math.MaxInt64 {
		debug.SetMemoryLimit(120 << 20)
	}
}
