package agent

import (
	"errors"
	"fmt"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/agent/worker"
)

// TestWorkerErrCodes: a worker's coded error becomes the API's code; a
// CallError coded by its status alone (a worker of the previous daemon
// version, or one made by hand) maps the same; a worker that does not
// answer is unavailable.
func TestWorkerErrCodes(t *testing.T) {
	for _, tc := range []struct {
		in   error
		code string
	}{
		{&worker.CallError{Status: 404, Code: worker.CodeNotFound, Msg: "no such directory: /x"}, client.CodeNotFound},
		{&worker.CallError{Status: 400, Code: worker.CodeInvalid, Msg: "/a is a file"}, client.CodeInvalid},
		{&worker.CallError{Status: 409, Code: worker.CodeConflict, Msg: "not mounted"}, client.CodeConflict},
		{&worker.CallError{Status: 500, Code: worker.CodeInternal, Msg: "reading /: EIO"}, client.CodeInternal},
		{&worker.CallError{Status: 404, Msg: "no such directory: /x"}, client.CodeNotFound},
		{&worker.CallError{Status: 409, Msg: "not mounted"}, client.CodeConflict},
		{fmt.Errorf("mount worker: %w", &worker.CallError{Status: 400, Code: worker.CodeInvalid, Msg: "bad"}), client.CodeInvalid},
		{errors.New("dial unix /run/s3mounts/workers/x.sock: connection refused"), client.CodeUnavailable},
	} {
		got := toCoded(workerErr(tc.in))
		if got.Code != tc.code {
			t.Errorf("workerErr(%v) has code %q; want %q", tc.in, got.Code, tc.code)
		}
		var ce *worker.CallError
		if errors.As(tc.in, &ce) && got.Message != ce.Msg {
			t.Errorf("workerErr(%v) says %q; want the worker's own message", tc.in, got.Message)
		}
	}
}
