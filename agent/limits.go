package agent

// Per-uid bounds on the socket API (docs/SECURITY.md, "Per-caller
// bounds"): a uid may hold at most Limits.ConnectionsPerUID open
// connections and Limits.EventStreamsPerUID event streams. Connections are
// counted at Accept from SO_PEERCRED, so one over the bound costs no HTTP
// server goroutine: it gets a short 429 answer from a small, bounded pool
// (or is closed at once when that pool is busy). uid 0 is not limited.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
)

// Defaults of the [limits] table.
const (
	DefaultConnectionsPerUID  = 128
	DefaultEventStreamsPerUID = 32

	// rejectors bounds the goroutines answering 429 to connections over
	// the bound; beyond it such connections are closed without an answer.
	rejectors = 32
	// rejectTimeout bounds reading the refused request and writing the 429.
	rejectTimeout = 2 * time.Second
)

// streamWriteTimeout bounds writing one event (or keep-alive) to a stream:
// a reader that stops reading is dropped after it (a variable for tests).
var streamWriteTimeout = 10 * time.Second

type uidLimits struct {
	conns, streams int

	mu       sync.Mutex
	nConns   map[uint32]int
	nStreams map[uint32]int
	warned   map[uint32]time.Time
}

func newUIDLimits(l config.Limits) *uidLimits {
	if l.ConnectionsPerUID <= 0 {
		l.ConnectionsPerUID = DefaultConnectionsPerUID
	}
	if l.EventStreamsPerUID <= 0 {
		l.EventStreamsPerUID = DefaultEventStreamsPerUID
	}
	return &uidLimits{conns: l.ConnectionsPerUID, streams: l.EventStreamsPerUID,
		nConns: map[uint32]int{}, nStreams: map[uint32]int{}, warned: map[uint32]time.Time{}}
}

func (u *uidLimits) acquire(m map[uint32]int, max int, uid uint32) bool {
	if uid == 0 {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if m[uid] >= max {
		return false
	}
	m[uid]++
	return true
}

func (u *uidLimits) release(m map[uint32]int, uid uint32) {
	if uid == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if m[uid]--; m[uid] <= 0 {
		delete(m, uid)
	}
}

// warnOnce reports whether a refusal of uid should be logged (once a minute).
func (u *uidLimits) warnOnce(uid uint32) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	if t, ok := u.warned[uid]; ok && now.Sub(t) < time.Minute {
		return false
	}
	if len(u.warned) > 4096 {
		clear(u.warned)
	}
	u.warned[uid] = now
	return true
}

func tooManyConnsMsg(uid uint32, max int) string {
	return fmt.Sprintf("uid %d already holds %d open connections to the s3mountd socket (the limit, [limits] connections_per_uid in agent.toml): close some, or reuse one connection", uid, max)
}

func tooManyStreamsMsg(uid uint32, max int) string {
	return fmt.Sprintf("uid %d already holds %d event streams (the limit, [limits] event_streams_per_uid in agent.toml): close some; one stream per client is enough", uid, max)
}

// limitListener counts connections per uid at Accept.
type limitListener struct {
	net.Listener
	a   *API
	sem chan struct{}
}

func (a *API) limitListener(ln net.Listener) net.Listener {
	return &limitListener{Listener: ln, a: a, sem: make(chan struct{}, rejectors)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		pc := l.a.peer(c)
		lim := l.a.lim
		if pc.ok && !lim.acquire(lim.nConns, lim.conns, pc.uid) {
			l.a.o.Metrics.APIRefused.WithLabelValues("connections").Inc()
			if lim.warnOnce(pc.uid) {
				l.a.log.Warn("socket API: connection refused, uid over its connection limit", "uid", pc.uid, "pid", pc.pid, "limit", lim.conns)
			}
			select {
			case l.sem <- struct{}{}:
				go func() {
					defer func() { <-l.sem }()
					reject(c, tooManyConnsMsg(pc.uid, lim.conns))
				}()
			default:
				c.Close()
			}
			continue
		}
		lc := &limitConn{Conn: c, pc: pc}
		if pc.ok {
			lc.release = func() { lim.release(lim.nConns, pc.uid) }
		}
		return lc, nil
	}
}

// reject reads the request head (bounded) and answers 429 too_many.
func reject(c net.Conn, msg string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(rejectTimeout))
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 1024)
	for len(buf) < cap(buf) && !bytes.Contains(buf, []byte("\r\n\r\n")) {
		n, err := c.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if err != nil {
			break
		}
	}
	body, _ := json.Marshal(client.ErrorBody{Error: client.ErrorDetail{Code: client.CodeTooMany, Message: msg}})
	body = append(body, '\n')
	fmt.Fprintf(c, "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// limitConn carries the peer credentials read at Accept and gives its
// slot back on Close.
type limitConn struct {
	net.Conn
	pc      peerCred
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	c.once.Do(func() {
		if c.release != nil {
			c.release()
		}
	})
	return c.Conn.Close()
}

// mayViewAny reports whether the caller may view at least one connector
// now (a role of viewer or more views all of them).
func (a *API) mayViewAny(rq *request) bool {
	if rq.role >= RoleViewer {
		return true
	}
	for _, v := range a.o.Controller.Connectors() {
		if Allowed(rq.caller, rq.role, v.Access, config.ActionView) {
			return true
		}
	}
	return false
}
