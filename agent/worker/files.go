package worker

// GET /v1/files for mounts without a mounts.Lister (s3fs, geesefs): the
// worker, root, reads the mounted directory. Whoever can write into the
// mount (or PUT a symlink object into the bucket) controls every name in
// it, so the walk never follows a link: each component is opened from its
// parent's fd with openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
// RESOLVE_NO_MAGICLINKS|RESOLVE_NO_XDEV, and the entries' metadata comes
// from fstatat(AT_SYMLINK_NOFOLLOW) on the directory's fd. A symbolic link
// is listed as a "file" entry (its own lstat) and never entered.

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/mounts"
)

// FilesError is a /files failure with the HTTP status the worker answers
// (400 invalid, 404 not found, 409 conflict, 500 otherwise).
type FilesError struct {
	Status int
	Msg    string
}

func (e *FilesError) Error() string { return e.Msg }

func filesErr(status int, format string, a ...any) error {
	return &FilesError{Status: status, Msg: fmt.Sprintf(format, a...)}
}

// CleanRel turns a user-supplied path inside a mount into a clean relative
// directory ("" for the root, else "a/b"), refusing escapes: ".." never
// climbs above the root, and a NUL byte is refused.
func CleanRel(p string) (string, error) {
	if strings.Contains(p, "\x00") {
		return "", errors.New("path contains a NUL byte")
	}
	c := path.Clean("/" + p)
	return strings.TrimPrefix(c, "/"), nil
}

// walkResolve is how each component of a /files path is opened.
const walkResolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openRel opens the directory rel ("" or "a/b", from CleanRel) below root
// one component at a time, never following a link.
func openRel(root *os.File, rel string) (*os.File, error) {
	fd, err := unix.Openat2(int(root.Fd()), ".", &unix.OpenHow{
		Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: walkResolve})
	if err != nil {
		return nil, filesErr(http.StatusInternalServerError, "opening the mount's root: %v", err)
	}
	if rel == "" {
		return os.NewFile(uintptr(fd), "/"), nil
	}
	walked := ""
	for _, c := range strings.Split(rel, "/") {
		walked += "/" + c
		nfd, err := openat2Retry(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, walkResolve)
		if err != nil {
			// Which: a link, a file or nothing (fstatat never follows).
			var st unix.Stat_t
			serr := unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW)
			unix.Close(fd)
			switch {
			case err == unix.ELOOP || (serr == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK):
				return nil, filesErr(http.StatusBadRequest, "%s is a symbolic link: the file browser lists links but never follows them; open the link's target path instead", walked)
			case err == unix.ENOENT:
				return nil, filesErr(http.StatusNotFound, "no such directory: %s", walked)
			case err == unix.ENOTDIR:
				return nil, filesErr(http.StatusBadRequest, "%s is a file, not a directory: list its parent instead", walked)
			case err == unix.ENAMETOOLONG:
				return nil, filesErr(http.StatusBadRequest, "a name in %s is longer than the filesystem allows (255 bytes)", walked)
			case err == unix.EXDEV:
				return nil, filesErr(http.StatusBadRequest, "%s is another mount inside this one: the file browser does not enter it", walked)
			}
			return nil, filesErr(http.StatusInternalServerError, "opening %s: %v", walked, err)
		}
		unix.Close(fd)
		fd = nfd
	}
	return os.NewFile(uintptr(fd), "/"+rel), nil
}

func openat2Retry(dirfd int, name string, flags int, resolve uint64) (int, error) {
	how := &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, name, how)
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 100 {
			continue
		}
		return fd, err
	}
}

// readDirPageAt pages through the directory rel of the mount whose root is
// open as root. Entries sort by name; the cursor is the last name of the
// previous page (any string is a valid cursor: the page starts after it).
func readDirPageAt(root *os.File, prefix, rel, cursor string, limit int) (mounts.Page, error) {
	var page mounts.Page
	if limit <= 0 {
		limit = 1
	}
	d, err := openRel(root, rel)
	if err != nil {
		return page, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return page, filesErr(http.StatusInternalServerError, "reading /%s: %v", rel, err)
	}
	sort.Strings(names)
	i := 0
	if cursor != "" {
		i = sort.SearchStrings(names, cursor)
		if i < len(names) && names[i] == cursor {
			i++
		}
	}
	keyDir := prefix
	if rel != "" {
		keyDir += rel + "/"
	}
	page.Entries = []mounts.Entry{}
	dfd := int(d.Fd())
	for ; i < len(names) && len(page.Entries) < limit; i++ {
		name := names[i]
		e := mounts.Entry{Name: name, Key: keyDir + name}
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			e.Dir = st.Mode&unix.S_IFMT == unix.S_IFDIR
			e.MTime = time.Unix(st.Mtim.Unix()).UTC()
			if !e.Dir {
				e.Size = st.Size
			}
		}
		if e.Dir {
			e.Key += "/"
		}
		page.Entries = append(page.Entries, e)
	}
	if i < len(names) && len(page.Entries) > 0 {
		page.NextCursor = page.Entries[len(page.Entries)-1].Name
	}
	return page, nil
}
