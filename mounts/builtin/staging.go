package builtin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/mounts"
)

// errStagingFull is a staging write refused by the mount's max_staging cap.
var errStagingFull = errors.New("the mount's write staging is full (max_staging)")

// stagingBudget caps the disk space a mount's staging files take: one
// connector's writers cannot fill the cache filesystem for every other.
type stagingBudget struct {
	max  int64 // bytes; 0: no cap of our own (the filesystem's size still is one)
	used atomic.Int64
}

// stagingLimit turns the connector's setting into bytes: maxBytes when
// set, else percent (1 to 100, the key's default share when the connector
// sets none) of the size of the filesystem holding dir. 0 means no cap
// (the size is unknown, or the spec holds neither).
func stagingLimit(dir string, maxBytes int64, percent int) int64 {
	if maxBytes > 0 {
		return maxBytes
	}
	if percent <= 0 || percent > 100 {
		return 0
	}
	var st unix.Statfs_t
	if dir == "" || unix.Statfs(dir, &st) != nil {
		return 0
	}
	return int64(st.Blocks) * int64(st.Bsize) * int64(percent) / 100
}

// reserve charges n bytes, or refuses when that passes the cap.
func (b *stagingBudget) reserve(n int64) bool {
	if b.used.Add(n) > b.max && b.max > 0 && n > 0 {
		b.used.Add(-n)
		return false
	}
	return true
}

// stagedFile is an unlinked staging file whose disk use is charged to the
// mount's stagingBudget: a write reserves its length first (refused with
// errStagingFull past the cap), and the charge then follows the space the
// file really takes (st_blocks), so overwrites and holes cost nothing.
type stagedFile struct {
	f *os.File
	b *stagingBudget

	mu   sync.Mutex
	held int64 // bytes charged for this file
	done bool
}

func (f *FS) stagingFile() (*stagedFile, error) {
	tmp, err := os.CreateTemp(f.staging, "w-*")
	if err != nil {
		return nil, err
	}
	os.Remove(tmp.Name()) // unlinked: nothing is left behind by a crash
	return &stagedFile{f: tmp, b: f.stagingBudget}, nil
}

func (s *stagedFile) ReadAt(p []byte, off int64) (int, error) { return s.f.ReadAt(p, off) }

func (s *stagedFile) WriteAt(p []byte, off int64) (int, error) {
	need := int64(len(p))
	if !s.b.reserve(need) {
		return 0, fmt.Errorf("staging %d bytes at offset %d: %w", len(p), off, errStagingFull)
	}
	n, err := s.f.WriteAt(p, off)
	s.settle(need)
	return n, err
}

func (s *stagedFile) Truncate(size int64) error {
	err := s.f.Truncate(size)
	s.settle(0)
	return err
}

// settle replaces the reservation by what the file takes on disk now.
func (s *stagedFile) settle(reserved int64) {
	var st unix.Stat_t
	alloc := int64(-1)
	if unix.Fstat(int(s.f.Fd()), &st) == nil {
		alloc = st.Blocks * 512
	}
	s.mu.Lock()
	delta := int64(0)
	if alloc >= 0 && !s.done {
		delta = alloc - s.held
		s.held = alloc
	}
	s.mu.Unlock()
	s.b.used.Add(delta - reserved)
}

// Close removes the file's charge.
func (s *stagedFile) Close() error {
	s.mu.Lock()
	held := s.held
	s.held, s.done = 0, true
	s.mu.Unlock()
	s.b.used.Add(-held)
	return s.f.Close()
}

var _ io.ReaderAt = (*stagedFile)(nil)

// stagingErrno is the errno a user gets for a failed staging write: ENOSPC
// for a full disk, quota or max_staging, EFBIG past the file size limit,
// else EIO.
func stagingErrno(err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errStagingFull), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return syscall.ENOSPC
	case errors.Is(err, syscall.EFBIG):
		return syscall.EFBIG
	}
	return syscall.EIO
}

var _ mounts.StagingReporter = (*Mount)(nil)

// Staging reports the disk space the mount's write staging takes and its
// max_staging in bytes.
func (m *Mount) Staging() (used, limit int64) { return m.StagingBytes(), m.StagingLimit() }

// StagingBytes is the disk space this mount's write staging takes now.
func (m *Mount) StagingBytes() int64 { return m.fsys.stagingBudget.used.Load() }

// StagingLimit is the mount's max_staging in bytes (0: none).
func (m *Mount) StagingLimit() int64 { return m.fsys.stagingBudget.max }
