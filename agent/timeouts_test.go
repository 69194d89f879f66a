package agent

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
)

// TestIdleAndSlowClientsDropped: a connection that never sends a request
// is closed (ReadHeaderTimeout), and an event stream whose reader stopped
// reading is dropped once a write cannot complete, which gives its slot
// back to the uid.
func TestIdleAndSlowClientsDropped(t *testing.T) {
	old := streamWriteTimeout
	streamWriteTimeout = 300 * time.Millisecond
	t.Cleanup(func() { streamWriteTimeout = old })
	f := newFake(1)
	s := startAPI(t, f, APIOptions{Agent: &config.Agent{Roles: testRoles,
		Limits: config.Limits{ConnectionsPerUID: 8, EventStreamsPerUID: 1}}})
	fakeIdentities(s.api, vic)
	s.api.peer = func(net.Conn) peerCred { return peerCred{ok: true, uid: vic.UID} }
	s.api.connCtx = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, peerCredKey{}, peerCred{ok: true, uid: vic.UID})
	}

	// idle: no request at all
	idle, err := net.Dial("unix", s.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	idle.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := idle.Read(make([]byte, 1)); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Errorf("an idle connection was not closed by the server within 1 min: %v", err)
	}

	// a stream that is never read
	slow, err := net.Dial("unix", s.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte("GET /v1/events HTTP/1.1\r\nHost: s3mountd\r\n\r\n"))
	for f.subscribers() < 1 {
		time.Sleep(time.Millisecond)
	}
	// the second stream is refused while the first holds the only slot
	if _, err := s.cl.Events(context.Background()); err == nil {
		t.Fatal("a second stream was accepted over a limit of 1")
	} else if _, code := apiCode(t, err); code != client.CodeTooMany {
		t.Fatalf("second stream: %v, want too_many", err)
	}
	// push events until the stalled stream is dropped
	long := strings.Repeat("x", 4000)
	deadline := time.Now().Add(time.Minute)
	for f.subscribers() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("a stream whose reader stopped was not dropped within 1 min")
		}
		for i := 0; i < 50; i++ {
			f.setState("c000", client.StateError, false, long)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// its slot is free again
	var ev *client.EventStream
	for {
		ev, err = s.cl.Events(context.Background())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dropped stream's slot was not given back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ev.Close()
}
