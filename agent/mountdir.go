package agent

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// absent reports whether nothing (not even a symlink) is at path now.
func absent(path string) bool {
	_, err := os.Lstat(path)
	return errors.Is(err, os.ErrNotExist)
}

// removeEmptyMountDir removes the directory mp that the daemon created for
// a mount that then failed, so that a connector in error (and then
// deleted) leaves nothing behind in the project root. It removes only an
// empty directory (rmdir, never unlink: a symlink or a file put there is
// left alone), relative to its parent opened without following a symlink,
// and never a mount point (rmdir of one fails with EBUSY).
func removeEmptyMountDir(mp string) {
	parent, err := unix.Open(filepath.Dir(mp), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(parent)
	_ = unix.Unlinkat(parent, filepath.Base(mp), unix.AT_REMOVEDIR)
}
