package s3conn

import (
	"context"
	"errors"
	"time"

	"github.com/s3mounts/s3mounts/mounts"
)

// CheckResult is one step of a connector test.
type CheckResult struct {
	Name     string // endpoint|credentials|bucket|list|read|write
	OK       bool
	Err      string // what failed and what to do; never a secret
	Duration time.Duration
}

// Check tests spec without mounting: the endpoint answers, the credentials
// are accepted, the bucket exists, a listing works, an object can be read
// (if any), and, unless spec.ReadOnly, an object can be written and deleted
// under the prefix. Steps after a failed one are reported as skipped (not OK).
func Check(ctx context.Context, spec mounts.Spec) []CheckResult {
	return []CheckResult{{Name: "endpoint", Err: errors.New("stub: not implemented yet").Error()}}
}
