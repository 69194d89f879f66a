// Package builtin is s3mounts' own S3 filesystem (backend = "default"),
// built on go-fuse and aws-sdk-go-v2.
package builtin

import (
	"context"
	"errors"

	"github.com/s3mounts/s3mounts/mounts"
)

// New returns the built-in backend.
func New() mounts.Backend { return backend{} }

type backend struct{}

var _ mounts.Backend = backend{}

func (backend) Name() string                { return "default" }
func (backend) Available(mounts.Spec) error { return nil }
func (backend) Mount(ctx context.Context, spec mounts.Spec) (mounts.Mount, error) {
	return nil, errors.New("built-in backend: not implemented yet")
}
