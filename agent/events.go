package agent

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
)

// events is GET /v1/events: a text/event-stream with one
// "data: <Connector JSON>" event per state change of a connector the caller
// may view (Actions filled for the caller), and a comment every KeepAlive
// so that idle streams stay open. The stream has no timeout; it ends when
// the client goes away or the server shuts down.
func (a *API) events(w http.ResponseWriter, rq *request) error {
	if !a.mayViewAny(rq) {
		return Errorf(client.CodeForbidden, "%s may view no connector on this node (no role, and no connector's access policy names them), so there are no events to stream; ask an admin for a role, and open the stream again once a connector is shared with you", rq.caller)
	}
	pc := peerCredFrom(rq.Context())
	if pc.ok {
		lim := a.lim
		if !lim.acquire(lim.nStreams, lim.streams, pc.uid) {
			a.o.Metrics.APIRefused.WithLabelValues("event_streams").Inc()
			if lim.warnOnce(pc.uid) {
				a.log.Warn("socket API: event stream refused, uid over its stream limit", "uid", pc.uid, "pid", pc.pid, "limit", lim.streams)
			}
			return Errorf(client.CodeTooMany, "%s", tooManyStreamsMsg(pc.uid, lim.streams))
		}
		defer lim.release(lim.nStreams, pc.uid)
	}
	rc := http.NewResponseController(w)
	// Lift the server's read deadline for this long-lived answer; every
	// write gets its own deadline so that a reader that stops reading is
	// dropped instead of holding the stream forever.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))

	ch, cancel := a.o.Controller.Subscribe()
	defer cancel()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte(": s3mountd events\n\n")); err != nil {
		return nil
	}
	if err := rc.Flush(); err != nil {
		return nil
	}

	closing, _ := rq.Context().Value(closingKey{}).(chan struct{})
	tick := time.NewTicker(a.o.KeepAlive)
	defer tick.Stop()
	for {
		var out []byte
		select {
		case <-rq.Context().Done():
			return nil
		case <-closing:
			return nil
		case <-tick.C:
			out = []byte(": keep-alive\n\n")
		case v, ok := <-ch:
			if !ok {
				return nil
			}
			// Re-resolve the caller (cached briefly) so that a change of
			// group membership applies to a long stream too.
			caller := a.ids.caller(pc)
			c, visible := a.present(caller, RoleOf(caller, a.roles()), v)
			if !visible {
				continue
			}
			b, err := json.Marshal(c)
			if err != nil {
				continue
			}
			out = make([]byte, 0, len(b)+8)
			out = append(out, "data: "...)
			out = append(out, b...)
			out = append(out, '\n', '\n')
		}
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(out); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}
