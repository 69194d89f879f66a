package worker

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// filesError maps an error of listing /rel to the worker's error code
// (which the daemon turns into the API's): a missing path is not_found, a
// file's path invalid, anything else internal.
func filesError(rel string, err error) (string, error) {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return CodeNotFound, fmt.Errorf("no such directory: /%s (list its parent to see what is there)", rel)
	case errors.Is(err, syscall.ENOTDIR):
		return CodeInvalid, fmt.Errorf("/%s is a file, not a directory: list its parent, or read the file through the mount", rel)
	}
	return CodeInternal, err
}

// checkExists reports ENOENT when rel does not exist beneath root (the
// mount's root, opened without following links). It never follows a
// symlink (a symlink found on the way counts as existing).
func checkExists(root *os.File, rel string) error {
	if rel == "" {
		return nil
	}
	fd, err := unix.Openat2(int(root.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// missing is true for the errors of a path that is not there (a file in
// the middle of it included).
func missing(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
