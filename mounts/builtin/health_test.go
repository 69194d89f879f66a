package builtin

import (
	"context"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/s3mounts/s3mounts/mounts"
)

// stubClient answers every Head with its err.
type stubClient struct {
	ObjectClient
	err error
}

func (s *stubClient) Head(context.Context, string) (ObjInfo, error) { return ObjInfo{}, s.err }

// TestHealthRecordsWholeMountFailures: a refused key or an unreachable
// endpoint is recorded with the time it began, in plain words; an S3
// answer about one object (NoSuchKey) or a success clears it; a
// cancelled call changes nothing.
func TestHealthRecordsWholeMountFailures(t *testing.T) {
	stub := &stubClient{}
	h := &health{spec: mounts.Spec{Bucket: "data", Endpoint: "http://127.0.0.1:9000", PathStyle: true}}
	c := healthClient{stub, h}
	m := &Mount{health: h}
	head := func(err error) {
		stub.err = err
		c.Head(context.Background(), "k")
	}
	if msg, _ := m.Health(); msg != "" {
		t.Fatalf("fresh mount reports %q", msg)
	}
	head(&smithy.GenericAPIError{Code: "SignatureDoesNotMatch", Message: "The request signature we calculated does not match"})
	msg, since := m.Health()
	if !strings.HasPrefix(msg, "the endpoint refuses the key since ") || !strings.Contains(msg, "SignatureDoesNotMatch") || since.IsZero() {
		t.Fatalf("after a refused key: %q %v", msg, since)
	}
	head(context.Canceled)
	if msg2, since2 := m.Health(); msg2 != msg || !since2.Equal(since) {
		t.Fatalf("a cancelled call changed the health: %q", msg2)
	}
	head(&smithy.GenericAPIError{Code: "NoSuchKey"})
	if msg, _ := m.Health(); msg != "" {
		t.Fatalf("an S3 answer did not clear it: %q", msg)
	}
	head(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	if msg, _ := m.Health(); !strings.HasPrefix(msg, "the endpoint cannot be reached since ") || !strings.Contains(msg, "connection refused") {
		t.Fatalf("after a refused connection: %q", msg)
	}
	head(&smithy.GenericAPIError{Code: "AccessDenied"})
	if msg, _ := m.Health(); !strings.HasPrefix(msg, "access is denied since ") || !strings.Contains(msg, "s3:GetObject") {
		t.Fatalf("after a denial: %q", msg)
	}
	head(nil)
	if msg, _ := m.Health(); msg != "" {
		t.Fatalf("a success did not clear it: %q", msg)
	}
	head(errors.New("something else"))
	if msg, _ := m.Health(); msg != "" {
		t.Fatalf("an unclassified error set it: %q", msg)
	}
}
