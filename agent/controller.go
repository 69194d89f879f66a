// Package agent is s3mountd: it watches the connectors directory, reconciles
// what is mounted with what the files (and API activations) ask for through
// per-connector mount workers, and serves the socket API.
package agent

import (
	"context"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
)

// Controller is what the socket API needs from the reconciler. The API
// layer does authorization (roles and each connector's Access policy) and
// fills Connector.Actions per caller; the Controller knows nothing of callers.
type Controller interface {
	// Connectors returns every known connector (valid, invalid, active or
	// not), sorted by id.
	Connectors() []View
	// Connector returns one, or ok == false.
	Connector(id string) (View, bool)
	// Activate sets an activation override (persisted in state_dir) and
	// waits, bounded by ctx, until the connector is mounted or failed.
	Activate(ctx context.Context, id string) (View, error)
	// Deactivate likewise, until unmounted.
	Deactivate(ctx context.Context, id string) (View, error)
	// Refresh drops cached metadata and data under path in the mount.
	Refresh(ctx context.Context, id, path string) error
	// Test checks endpoint, credentials, bucket, list, read and (rw) write
	// without mounting.
	Test(ctx context.Context, id string) (client.TestResult, error)
	// Files pages through a directory of a mounted connector.
	Files(ctx context.Context, id, path, cursor string, limit int) (client.Files, error)
	// Subscribe delivers a View on every state change until cancel is called.
	Subscribe() (events <-chan View, cancel func())
	// MountedCount is the number of connectors in state mounted (health).
	MountedCount() int
}

// View is a connector as the API shows it (Actions empty) together with the
// access policy the API enforces. Access is nil when the connector has no
// policy, or when its file is invalid and no good version was ever loaded.
type View struct {
	Connector client.Connector
	Access    []config.AccessRule
	// NameHolder is the id of the connector holding this one's mount_name
	// when that is (part of) its error; ErrorAnon is then the error
	// without the holder's name, for callers who may not view the holder.
	NameHolder string
	ErrorAnon  string
	// Stats are the mount's own counters while mounted (built-in backend),
	// for the per-connector metrics; nil otherwise. Not part of the API.
	Stats *mounts.Stats
}

// NameConflictError is Activate's answer for a connector whose mount_name
// another connector holds: Message names the holder, Anon does not (for
// callers who may not view it).
type NameConflictError struct {
	Holder, Message, Anon string
}

func (e *NameConflictError) Error() string { return e.Message }

// Errors a Controller returns, mapped by the API to its error codes.
var (
	ErrNotFound    = &CodedError{Code: client.CodeNotFound}
	ErrInvalid     = &CodedError{Code: client.CodeInvalid}
	ErrConflict    = &CodedError{Code: client.CodeConflict}
	ErrUnavailable = &CodedError{Code: client.CodeUnavailable}
)

// CodedError carries an API error code; errors.Is matches on Code.
type CodedError struct {
	Code    string
	Message string
}

func (e *CodedError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Message
}

// Is makes errors.Is(err, ErrNotFound) true for any CodedError with that code.
func (e *CodedError) Is(target error) bool {
	t, ok := target.(*CodedError)
	return ok && t.Code == e.Code
}

// Errorf returns a CodedError with a message.
func Errorf(code, format string, args ...any) error {
	return &CodedError{Code: code, Message: sprintf(format, args...)}
}
