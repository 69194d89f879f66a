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
