package config

// Files the agent trusts. s3mountd runs as root on a node shared by users
// who must not be able to steer it: every file it takes instructions or
// secrets from (connector files, agent.toml, secret files, the node key)
// must be a regular file owned by root and not writable by group or others
// (secrets: not readable by them either). A file is checked with lstat,
// opened with O_NONBLOCK|O_NOFOLLOW (a fifo or a device never blocks the
// loader), and the opened file is checked again with fstat: same inode,
// regular, owner and mode. Symlinks in connectors_dir are followed only to
// a target inside connectors_dir (the Kubernetes "..data" layout) or inside
// a directory agent.toml's connectors_follow_symlinks names.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// trust is the rule one kind of file is read under.
type trust struct {
	what   string // "connector file", "agent settings file", "secret"
	secret bool   // not readable by group or others either
	// within, when not nil, lists the directories (symlinks resolved) a
	// symlink may lead into; nil follows symlinks anywhere (the target is
	// checked all the same).
	within []string
	// allowKey names the setting that widens within, for the error.
	allowKey string
}

// errNotTrusted marks a file refused by the rules above (wrapped).
var errNotTrusted = errors.New("not a file root controls")

// trustError is a refusal with a message that says what to run.
type trustError struct{ msg string }

func (e *trustError) Error() string { return e.msg }
func (e *trustError) Unwrap() error { return errNotTrusted }

// notExist is a message that errors.Is reports as fs.ErrNotExist without
// adding Go's "file does not exist" to it.
type notExist struct{ msg string }

func (e *notExist) Error() string        { return e.msg }
func (e *notExist) Is(target error) bool { return target == fs.ErrNotExist }

func refuse(format string, args ...any) error {
	return &trustError{msg: fmt.Sprintf(format, args...)}
}

// fileKind names what a non-regular file is.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a fifo (named pipe)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return "not a plain file"
}

func ownerName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return fmt.Sprintf("uid %d (%s)", uid, u.Username)
	}
	return fmt.Sprintf("uid %d", uid)
}

// checkOwnerMode applies the owner and mode rule to fi. shown is how the
// file is named in the message, fix the path the commands are given.
func checkOwnerMode(fi fs.FileInfo, shown, fix string, tr trust) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return refuse("%s: cannot tell its owner", shown)
	}
	perm := fi.Mode().Perm()
	badOwner := st.Uid != 0
	badMode := perm&0o022 != 0
	badRead := tr.secret && perm&0o044 != 0
	var probs, cmds []string
	if badOwner {
		probs = append(probs, "is owned by "+ownerName(st.Uid))
		cmds = append(cmds, "chown root:root "+fix)
	}
	switch {
	case badMode && tr.secret, badRead:
		probs = append(probs, fmt.Sprintf("has mode %04o (readable or writable by group or others)", perm))
		cmds = append(cmds, "chmod 600 "+fix)
	case badMode:
		probs = append(probs, fmt.Sprintf("has mode %04o (writable by group or others)", perm))
		cmds = append(cmds, "chmod go-w "+fix)
	}
	if len(probs) == 0 {
		return nil
	}
	rule := "owned by root and not writable by group or others"
	if tr.secret {
		rule = "owned by root and not readable or writable by group or others"
	}
	hint := ""
	if tr.secret && (badMode || badRead) {
		hint = " (in Kubernetes, set defaultMode: 0400 on the Secret volume)"
	}
	return refuse("%s %s: the agent trusts a %s only when it is %s: run `%s`%s",
		shown, strings.Join(probs, " and "), tr.what, rule, strings.Join(cmds, " && "), hint)
}

func within(p string, dirs []string) bool {
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if p == d || d == "/" || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// resolveDirs resolves symlinks of dirs (a missing one stays as written).
func resolveDirs(dirs []string) []string {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if r, err := filepath.EvalSymlinks(d); err == nil {
			out = append(out, r)
		} else {
			out = append(out, filepath.Clean(d))
		}
	}
	return out
}

// openTrusted opens path for reading if it is a file root controls (see the
// top of this file). It returns the open file and its fstat, and shown, the
// name to use in messages ("path (→ target)" for a symlink). It never
// blocks: a fifo or a device is refused before it is opened, and opened
// with O_NONBLOCK if it replaced the file in between.
func openTrusted(path string, tr trust) (f *os.File, fi fs.FileInfo, shown string, err error) {
	shown = path
	li, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, shown, &notExist{path + " does not exist"}
		}
		return nil, nil, shown, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	real := path
	if li.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return nil, nil, shown, fmt.Errorf("%s is a broken symlink: cannot read its target (%v): fix the link or remove it", path, unwrapPath(err))
		}
		shown = fmt.Sprintf("%s (→ %s)", path, target)
		if tr.within != nil && !within(target, tr.within) {
			return nil, nil, shown, refuse("%s is a symlink out of its directory: the agent follows a symlink there only to a file inside the directory (as Kubernetes' ..data layout does); copy the file into the directory, or add the target's directory to %s in agent.toml",
				shown, tr.allowKey)
		}
		real = target
		if li, err = os.Lstat(real); err != nil {
			return nil, nil, shown, fmt.Errorf("cannot read %s: %v", shown, unwrapPath(err))
		}
	}
	if !li.Mode().IsRegular() {
		return nil, nil, shown, refuse("%s is not a regular file (it is %s): a %s must be a plain file; remove it", shown, fileKind(li.Mode()), tr.what)
	}
	if err := checkOwnerMode(li, shown, real, tr); err != nil {
		return nil, nil, shown, err
	}
	fd, err := unix.Open(real, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, shown, refuse("%s was replaced by a symlink while it was read: check who changes it", shown)
		}
		return nil, nil, shown, fmt.Errorf("cannot open %s: %v", shown, err)
	}
	f = os.NewFile(uintptr(fd), real)
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, shown, fmt.Errorf("cannot stat %s: %v", shown, unwrapPath(err))
	}
	if !os.SameFile(li, fi) {
		f.Close()
		return nil, nil, shown, refuse("%s was replaced while it was read: check who changes it (the agent reads it again on the next change)", shown)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, shown, refuse("%s is not a regular file (it is %s): a %s must be a plain file; remove it", shown, fileKind(fi.Mode()), tr.what)
	}
	if err := checkOwnerMode(fi, shown, real, tr); err != nil {
		f.Close()
		return nil, nil, shown, err
	}
	return f, fi, shown, nil
}

// readTrusted reads a whole file under tr, at most limit bytes (more is an
// error naming the limit).
func readTrusted(path string, tr trust, limit int64) ([]byte, fs.FileInfo, string, error) {
	f, fi, shown, err := openTrusted(path, tr)
	if err != nil {
		return nil, nil, shown, err
	}
	defer f.Close()
	if fi.Size() > limit {
		return nil, fi, shown, fmt.Errorf("%s is %d bytes: a %s must be under %s", shown, fi.Size(), tr.what, sizeName(limit))
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fi, shown, fmt.Errorf("cannot read %s: %v", shown, unwrapPath(err))
	}
	if int64(len(data)) > limit {
		return nil, fi, shown, fmt.Errorf("%s is larger than %s: a %s must be under that", shown, sizeName(limit), tr.what)
	}
	return data, fi, shown, nil
}

func sizeName(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// unwrapPath drops the *PathError's "op path:" prefix (the message names
// the path already).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// connectorTrust is the rule for the files of the connectors directory dir.
func connectorTrust(dir string, a *Agent) trust {
	dirs := resolveDirs([]string{dir})
	if a != nil {
		dirs = append(dirs, resolveDirs(a.ConnectorsFollowSymlinks)...)
	}
	return trust{what: "connector file", within: dirs, allowKey: "connectors_follow_symlinks"}
}

// CheckConnectorsDir checks that dir, the connectors directory, exists and
// is a directory root controls: owned by root, not writable by group or
// others, and not a symlink (unless it is Kubernetes' ..data layout or
// a.ConnectorsFollowSymlinks allows its target). The error says what is
// wrong and the command that fixes it; errors.Is(err, fs.ErrNotExist) when
// the directory is missing.
func CheckConnectorsDir(dir string, a *Agent) error {
	const keep = "every mount is kept as it is until the directory is back"
	li, err := os.Lstat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &notExist{fmt.Sprintf("connectors directory %s is missing: %s; restore it (mkdir -m 0755 %s and put the connector files back) or fix connectors_dir in agent.toml",
				dir, keep, dir)}
		}
		return fmt.Errorf("connectors directory %s cannot be read (%v): %s; check it and its parents", dir, unwrapPath(err), keep)
	}
	real := dir
	shown := dir
	if li.Mode()&fs.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return fmt.Errorf("connectors directory %s is a symlink whose target cannot be read (%v): %s; fix the link or replace it with the directory",
				dir, unwrapPath(err), keep)
		}
		shown = fmt.Sprintf("%s (→ %s)", dir, target)
		var allow []string
		if a != nil {
			allow = resolveDirs(a.ConnectorsFollowSymlinks)
		}
		if !kubernetesLink(dir) && !within(target, allow) {
			return refuse("connectors directory %s is a symlink: the agent follows it only when connectors_follow_symlinks in agent.toml names its target; %s; replace the link with the directory (rm %s && mkdir -m 0755 %s), or add %q to connectors_follow_symlinks",
				shown, keep, dir, dir, target)
		}
		real = target
		if li, err = os.Lstat(real); err != nil {
			return fmt.Errorf("connectors directory %s cannot be read (%v): %s", shown, unwrapPath(err), keep)
		}
	}
	if !li.IsDir() {
		return refuse("connectors directory %s is not a directory (it is %s): %s; replace it with a directory (mkdir -m 0755)", shown, fileKind(li.Mode()), keep)
	}
	st, ok := li.Sys().(*syscall.Stat_t)
	if !ok {
		return refuse("connectors directory %s: cannot tell its owner", shown)
	}
	var probs, cmds []string
	if st.Uid != 0 {
		probs = append(probs, "is owned by "+ownerName(st.Uid))
		cmds = append(cmds, "chown root:root "+real)
	}
	if perm := li.Mode().Perm(); perm&0o022 != 0 {
		probs = append(probs, fmt.Sprintf("has mode %04o (writable by group or others)", perm))
		cmds = append(cmds, "chmod go-w "+real)
	}
	if len(probs) > 0 {
		return refuse("connectors directory %s %s: the agent trusts it only when it is owned by root and not writable by group or others; %s; run `%s`",
			shown, strings.Join(probs, " and "), keep, strings.Join(cmds, " && "))
	}
	return nil
}

// kubernetesLink reports whether dir is a symlink of kubelet's atomic
// writer layout: "<dir> → ..data/<name>" with "..data" a symlink, beside it,
// to a "..<timestamp>" directory beside it (a ConfigMap volume whose items
// put the files in a subdirectory).
func kubernetesLink(dir string) bool {
	t, err := os.Readlink(dir)
	if err != nil || filepath.IsAbs(t) {
		return false
	}
	first, rest, ok := strings.Cut(filepath.Clean(t), "/")
	if !ok || first != "..data" || rest == "" || strings.Contains(rest, "..") {
		return false
	}
	parent := filepath.Dir(dir)
	d, err := os.Readlink(filepath.Join(parent, "..data"))
	if err != nil || filepath.IsAbs(d) || strings.Contains(d, "/") || !strings.HasPrefix(d, "..") || d == ".." {
		return false
	}
	fi, err := os.Lstat(filepath.Join(parent, d))
	return err == nil && fi.IsDir()
}
