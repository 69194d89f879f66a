package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/coreos/go-systemd/v22/journal"
)

// sdNotify sends a state to systemd's NOTIFY_SOCKET; nothing without one.
// The variable stays set, so a re-executed image can notify too.
func sdNotify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Debug("sd_notify failed", "err", err)
	}
}

// listen returns the API listener: the one systemd passes (socket
// activation, or our own across a re-exec), else a socket created at path
// with mode 0660 and group, replacing a stale socket file.
func listen(path, group string, log *slog.Logger) (ln net.Listener, activated bool, err error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, false, fmt.Errorf("systemd socket activation: %w", err)
	}
	for _, l := range lns {
		if l == nil {
			continue
		}
		if _, ok := l.(*net.UnixListener); ok {
			if os.Getenv("S3MOUNTD_OWN_SOCKET") == "1" { // our own, across a re-exec
				os.Unsetenv("S3MOUNTD_OWN_SOCKET")
				log.Info("using the socket kept across re-exec", "addr", l.Addr().String())
				return l, false, nil
			}
			log.Info("using the socket passed by systemd", "addr", l.Addr().String())
			return l, true, nil
		}
		l.Close()
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, fmt.Errorf("create the socket's directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, false, fmt.Errorf("%s: another s3mountd already answers on this socket; stop it first", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	old := syscall.Umask(0o117)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, false, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, false, err
	}
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			log.Warn("socket_group does not exist; only root can use the socket", "group", group, "socket", path,
				"fix", "groupadd "+group+" and add the operators to it, or set socket_group in agent.toml")
		} else if gid, err := strconv.Atoi(g.Gid); err == nil {
			if err := os.Chown(path, -1, gid); err != nil {
				log.Warn("cannot set the socket's group", "group", group, "err", err)
			}
		}
	}
	return l, false, nil
}

// watchdog pings systemd's watchdog at half its interval while alive()
// says the agent is healthy.
func watchdog(ctx context.Context, log *slog.Logger, alive func() bool) {
	iv, err := daemon.SdWatchdogEnabled(false)
	if err != nil || iv <= 0 {
		return
	}
	t := time.NewTicker(iv / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive() {
				sdNotify(log, daemon.SdNotifyWatchdog)
			} else {
				log.Error("reconciler is stuck; not pinging the watchdog")
			}
		}
	}
}

// NewLogger returns the agent's logger: journald with structured fields
// when stderr is the journal (JOURNAL_STREAM matches), text on stderr
// otherwise.
func NewLogger(level string, w io.Writer) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn", "warning":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	if ok, _ := journal.StderrIsJournalStream(); ok && journal.Enabled() {
		return slog.New(&journalHandler{level: lv, mu: &sync.Mutex{}})
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv}))
}

// journalHandler sends each record to journald with its attributes as
// fields (S3MOUNTS_CONNECTOR=…).
type journalHandler struct {
	level  slog.Level
	attrs  []slog.Attr
	groups string
	mu     *sync.Mutex
}

func (h *journalHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *journalHandler) Handle(_ context.Context, r slog.Record) error {
	vars := map[string]string{"SYSLOG_IDENTIFIER": filepath.Base(os.Args[0])}
	var text strings.Builder
	text.WriteString(r.Message)
	add := func(prefix string, a slog.Attr) {}
	add = func(prefix string, a slog.Attr) {
		a.Value = a.Value.Resolve()
		if a.Value.Kind() == slog.KindGroup {
			for _, g := range a.Value.Group() {
				add(prefix+a.Key+"_", g)
			}
			return
		}
		k := journalKey(prefix + a.Key)
		if k == "" {
			return
		}
		vars["S3MOUNTS_"+k] = a.Value.String()
		fmt.Fprintf(&text, " %s=%s", prefix+a.Key, a.Value.String())
	}
	for _, a := range h.attrs {
		add(h.groups, a)
	}
	r.Attrs(func(a slog.Attr) bool { add(h.groups, a); return true })
	pri := journal.PriInfo
	switch {
	case r.Level >= slog.LevelError:
		pri = journal.PriErr
	case r.Level >= slog.LevelWarn:
		pri = journal.PriWarning
	case r.Level < slog.LevelInfo:
		pri = journal.PriDebug
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return journal.Send(text.String(), pri, vars)
}

func journalKey(k string) string {
	var b strings.Builder
	for _, c := range strings.ToUpper(k) {
		if (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return strings.TrimLeft(b.String(), "_")
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &n
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	n := *h
	n.groups += name + "_"
	return &n
}
