package agent

// The reconciler's decisions, pure functions of what is asked and what
// runs: plan for each step, backoff after failures, adoption at start.

import (
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
)

// Timing of the reconciler.
const (
	backoffMin = time.Second
	backoffMax = 60 * time.Second
	// stableAfter: a worker that served this long before dying restarts
	// its backoff from the start.
	stableAfter = 30 * time.Second
	// mountTimeout bounds one mount attempt (start + mount).
	mountTimeout = 90 * time.Second
	// unmountTimeout bounds one unmount.
	unmountTimeout = 60 * time.Second
)

// realTimer is the reconciler's timer on the wall clock.
func realTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}

// backoff is the delay before retry number n (n >= 1): 1s, 2s, 4s … 60s.
func backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := backoffMin
	for i := 1; i < n && d < backoffMax; i++ {
		d *= 2
	}
	if d > backoffMax {
		d = backoffMax
	}
	return d
}

// action is what one reconcile step does for a connector.
type action int

const (
	actNone    action = iota // in the desired state: leave it alone
	actStart                 // start a worker
	actStop                  // stop the worker
	actReplace               // spec changed: stop the worker, then start one
	actWait                  // start wanted but backing off until nextTry
	actForget                // the file is gone and nothing runs: forget it
)

func (a action) String() string {
	return [...]string{"none", "start", "stop", "replace", "wait", "forget"}[a]
}

// desired is what the files, the API and the mount_name claims ask of one
// connector.
type desired struct {
	want    bool   // active, and holding its mount_name
	hash    string // spec hash of the version to run
	good    bool   // a good version is known
	broken  bool   // its file (or its secret) is broken now
	removed bool   // its file is gone
}

// actual is what runs for one connector.
type actual struct {
	workerHash string // spec hash of the live worker; "" if none
	phase      client.State
	phaseErr   string
	nextTry    time.Time // no start before (backoff)
}

// phaseSet is the phase plan sets before its action; a zero state leaves
// the phase as it is.
type phaseSet struct {
	state client.State
	msg   string
	rest  bool // forget the failures and the next try
}

// plan is the pure decision of one step.
func plan(d desired, a actual, now time.Time) (action, phaseSet) {
	running := a.workerHash != ""
	switch {
	case running && !d.good && d.broken && !d.removed:
		// adopted at start while its file is broken: a broken file never
		// unmounts a working mount, even across a restart of the agent
		return actNone, phaseSet{}
	case !d.want && running:
		return actStop, phaseSet{}
	case !d.want && d.removed:
		return actForget, phaseSet{state: client.StateInactive}
	case !d.want && a.phase == client.StateError && d.good:
		// a failed, now undesired connector rests
		return actNone, phaseSet{state: client.StateInactive, rest: true}
	case !d.want && a.phase != client.StateInactive && a.phase != client.StateError:
		return actNone, phaseSet{state: client.StateInactive, msg: a.phaseErr}
	case !d.want:
		return actNone, phaseSet{}
	case a.workerHash == d.hash:
		if a.phase != client.StateMounted {
			return actNone, phaseSet{state: client.StateMounted}
		}
		return actNone, phaseSet{}
	case running:
		return actReplace, phaseSet{}
	case now.Before(a.nextTry):
		return actWait, phaseSet{}
	default:
		return actStart, phaseSet{}
	}
}

// afterFailure counts one more failure (of a mount or an unmount) and says
// how long to back off and until when.
func afterFailure(failures int, now time.Time) (n int, d time.Duration, next time.Time) {
	n = failures + 1
	d = backoff(n)
	return n, d, now.Add(d)
}

// afterDeath is afterFailure for a worker that ended by itself: one that
// served at least stableAfter restarts its backoff from the start.
func afterDeath(failures int, mountedAt, now time.Time) (n int, d time.Duration, next time.Time) {
	if now.Sub(mountedAt) >= stableAfter {
		failures = 0
	}
	return afterFailure(failures, now)
}

// adoptDecision is whether a live worker found at start (running
// workerHash) is kept: when its connector wants exactly that spec, or when
// the connector's file is broken and no good version is known (broken:
// the worker's spec becomes the connector's).
func adoptDecision(d desired, workerHash string) (keep, broken bool) {
	if !d.good && d.broken {
		return true, true
	}
	return d.want && d.hash == workerHash, false
}
