package mounts

// Supervision of an external FUSE tool (s3fs, geesefs) run in the
// foreground as a child of the mount worker.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tailLines is how many of the tool's last output lines an error quotes.
const tailLines = 12

// tail keeps the last lines a tool printed.
type tail struct {
	mu    sync.Mutex
	lines []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

// String is the lines joined with " | ", or a note that there were none.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return "(it printed nothing)"
	}
	return strings.Join(t.lines, " | ")
}

// proc is one run of a tool.
type proc struct {
	name string
	cmd  *exec.Cmd
	tail *tail
	done chan struct{} // closed once the process is reaped
	err  error         // exit status, valid after done
}

// procConfig says how to run a tool.
type procConfig struct {
	name   string // "s3fs", for messages
	bin    string
	args   []string
	env    []string
	log    *slog.Logger
	redact []string // values that must never reach the log (secrets)
}

// startProc runs the tool with its stdout and stderr captured line by line
// into the log (and the tail). The tool gets SIGKILL if the worker dies
// (Pdeathsig), so it never outlives the process that supervises it; the
// dead mount it leaves is cleaned by whoever restarts the worker.
func startProc(c procConfig) (*proc, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", c.name, err)
	}
	cmd := exec.Command(c.bin, c.args...)
	cmd.Env = c.env
	cmd.Dir = "/"
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", c.name, c.bin, err)
	}
	pw.Close()
	p := &proc{name: c.name, cmd: cmd, tail: &tail{}, done: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		p.copyOutput(pr, c)
	}()
	go func() {
		err := cmd.Wait()
		// The tool may have left children holding the pipe: don't wait for
		// its EOF for ever.
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
			pr.Close()
		}
		p.err = err
		close(p.done)
	}()
	return p, nil
}

func (p *proc) copyOutput(r io.ReadCloser, c procConfig) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		for _, s := range c.redact {
			if s != "" {
				line = strings.ReplaceAll(line, s, "[redacted]")
			}
		}
		p.tail.add(line)
		c.log.Info(c.name+" output", "pid", p.cmd.Process.Pid, "line", line)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		c.log.Warn("reading "+c.name+" output failed", "err", err)
	}
}

// exited reports whether the process has been reaped.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitError describes how the tool ended, with its last output.
func (p *proc) exitError() error {
	st := "exited"
	if p.err != nil {
		st = p.err.Error()
	} else {
		st = "exited with status 0"
	}
	return fmt.Errorf("%s (pid %d) %s; its last output: %s", p.name, p.cmd.Process.Pid, st, p.tail)
}

// stop ends the process: it waits up to grace for it to exit by itself
// (after an unmount it does), then sends SIGTERM, then SIGKILL after
// another grace period. It always reaps: no zombie is left.
func (p *proc) stop(ctx context.Context, grace time.Duration) {
	wait := func(d time.Duration) bool {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-p.done:
			return true
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	if wait(grace) {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if wait(grace) {
		return
	}
	p.cmd.Process.Kill()
	<-p.done
}
