package s3conn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/s3mounts/s3mounts/mounts"
)

// ResolveCredentials is the mounts.CredentialResolver of the external
// backends (s3fs, geesefs), which cannot run the SDK's credential providers
// themselves: the worker passes it to mounts.NewS3FS and NewGeeseFS. It
// retrieves keys for spec with the SDK's own providers
// (shared profile, AssumeRole, web identity) and says when they expire
// (zero: they do not).
func ResolveCredentials(ctx context.Context, spec mounts.Spec) (mounts.Credentials, time.Time, error) {
	cfg, err := NewConfig(ctx, spec, Options{StallTimeout: spec.StallTimeout})
	if err != nil {
		return mounts.Credentials{}, time.Time{}, err
	}
	if cfg.Credentials == nil {
		return mounts.Credentials{}, time.Time{}, errors.New("no credential provider for this connector")
	}
	c, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return mounts.Credentials{}, time.Time{}, fmt.Errorf("retrieving credentials for connector %s: %w", spec.ID, err)
	}
	var exp time.Time
	if c.CanExpire {
		exp = c.Expires
	}
	return mounts.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: mounts.Secret(c.SecretAccessKey),
		SessionToken: mounts.Secret(c.SessionToken)}, exp, nil
}
