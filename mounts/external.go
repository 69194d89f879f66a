package mounts

import (
	"context"
	"fmt"
)

// NewS3FS returns the s3fs-fuse backend (backend = "s3fs").
func NewS3FS() Backend { return stubBackend("s3fs") }

// NewGeeseFS returns the GeeseFS backend (backend = "geesefs").
func NewGeeseFS() Backend { return stubBackend("geesefs") }

type stubBackend string

func (b stubBackend) Name() string { return string(b) }
func (b stubBackend) Available(Spec) error {
	return fmt.Errorf("backend %s: not implemented yet", string(b))
}
func (b stubBackend) Mount(context.Context, Spec) (Mount, error) {
	return nil, fmt.Errorf("backend %s: not implemented yet", string(b))
}
