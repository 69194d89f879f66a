package mounts

import (
	"strings"
	"time"
)

// SetUnmountRetries shortens the EBUSY retries for a test; it returns a
// function that restores them.
func SetUnmountRetries(n int, d time.Duration) func() {
	on, od := unmountRetries, unmountDelay
	unmountRetries, unmountDelay = n, d
	return func() { unmountRetries, unmountDelay = on, od }
}

// ParseMountInfo exposes the parser to the black-box tests.
func ParseMountInfo(s string) ([]MountInfo, error) { return parseMountInfo(strings.NewReader(s)) }

// ToolPID is the pid of the tool serving an external mount (0 if m is not one).
func ToolPID(m Mount) int {
	em, ok := m.(*externalMount)
	if !ok {
		return 0
	}
	em.mu.Lock()
	defer em.mu.Unlock()
	return em.p.cmd.Process.Pid
}

// SetRefreshMargin changes how long before expiry temporary credentials
// are refreshed at the latest; it returns a function that restores it.
func SetRefreshMargin(d time.Duration) func() {
	old := refreshMargin
	refreshMargin = d
	return func() { refreshMargin = old }
}

// ToolMountDir is where the tool behind a guarded external mount has its
// own (private) mount ("" when m is not guarded).
func ToolMountDir(m Mount) string {
	em, ok := m.(*externalMount)
	if !ok || !em.Guarded() {
		return ""
	}
	em.mu.Lock()
	defer em.mu.Unlock()
	return em.toolStage.Path
}
