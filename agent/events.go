package agent

import (
	"encoding/json"
	"net/http"
	"time"
)

// events is GET /v1/events: a text/event-stream with one
// "data: <Connector JSON>" event per state change of a connector the caller
// may view (Actions filled for the caller), and a comment every KeepAlive
// so that idle streams stay open. The stream has no timeout; it ends when
// the client goes away or the server shuts down.
func (a *API) events(w http.ResponseWriter, rq *request) error {
	rc := http.NewResponseController(w)
	// Lift the server's read and write deadlines for this long-lived answer.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})

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
	pc := peerCredFrom(rq.Context())
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
		if _, err := w.Write(out); err != nil {
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}
