package mounts

// Credentials for external tools: resolved in the worker, handed to the
// tool in a 0600 file in a 0700 directory, never in argv.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// CredentialResolver turns a Spec's credentials (profile, AssumeRole, web
// identity) into keys an external tool can use, and says when they expire
// (zero: never). The worker passes s3conn.ResolveCredentials (the SDK's
// providers) to NewS3FS and NewGeeseFS.
type CredentialResolver func(ctx context.Context, spec Spec) (Credentials, time.Time, error)

// keys are credentials an external tool can use as they are: Anonymous,
// or AccessKeyID with SecretAccessKey (and SessionToken).
type keys struct {
	Credentials
	// Expires is when temporary credentials stop working; zero: never
	// (or unknown, for a session token given in the connector file).
	Expires time.Time
	// Refreshable: the keys came from a resolver that can be asked again.
	Refreshable bool
}

// needsResolver reports whether c is more than plain keys.
func needsResolver(c Credentials) bool {
	if c.Anonymous {
		return false
	}
	return c.AccessKeyID == "" || c.RoleARN != "" || c.WebIdentityTokenFile != ""
}

// resolveKeys returns keys for spec: plain keys as they are, anything else
// through r.
func resolveKeys(ctx context.Context, spec Spec, r CredentialResolver) (keys, error) {
	c := spec.Credentials
	switch {
	case c.Anonymous:
		return keys{Credentials: Credentials{Anonymous: true}}, nil
	case !needsResolver(c):
		if c.SecretAccessKey == "" {
			return keys{}, fmt.Errorf("connector %s has access_key_id but no secret: set secret_name, secret_access_key_file or secret_access_key", spec.ID)
		}
		return keys{Credentials: Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}}, nil
	}
	if r == nil {
		return keys{}, fmt.Errorf("connector %s uses profile, role or web identity credentials, which backend %s resolves with the AWS SDK, but it was built without a credential resolver (pass s3conn.ResolveCredentials to NewS3FS/NewGeeseFS)", spec.ID, spec.Backend)
	}
	rc, exp, err := r(ctx, spec)
	if err != nil {
		return keys{}, fmt.Errorf("resolving credentials of connector %s: %w", spec.ID, err)
	}
	if rc.AccessKeyID == "" || rc.SecretAccessKey == "" {
		return keys{}, fmt.Errorf("resolving credentials of connector %s: the provider returned no keys", spec.ID)
	}
	return keys{Credentials: Credentials{AccessKeyID: rc.AccessKeyID, SecretAccessKey: rc.SecretAccessKey,
		SessionToken: rc.SessionToken}, Expires: exp, Refreshable: true}, nil
}

// refreshMargin is how long before expiry keys are refreshed at the latest.
var refreshMargin = time.Minute

// refreshAt is when to fetch new keys: two thirds into their remaining
// life, and at least refreshMargin before they expire. Zero: never.
func (k keys) refreshAt(now time.Time) time.Time {
	if !k.Refreshable || k.Expires.IsZero() {
		return time.Time{}
	}
	left := k.Expires.Sub(now)
	at := now.Add(left * 2 / 3)
	if latest := k.Expires.Add(-refreshMargin); at.After(latest) {
		at = latest
	}
	if at.Before(now) {
		at = now
	}
	return at
}

// prepareDirs creates the runtime directory 0700 (and fixes its mode if it
// existed) and the cache directory 0700.
func prepareDirs(spec Spec) error {
	if spec.RuntimeDir == "" {
		return fmt.Errorf("connector %s: the mount spec has no runtime_dir for the credentials file", spec.ID)
	}
	for _, d := range []string{spec.RuntimeDir, spec.CacheDir} {
		if d == "" {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("securing %s: %w", d, err)
		}
	}
	return nil
}

// writePrivate writes data to path atomically, mode 0600, so a reader
// never sees half a file and nobody else can ever read it.
func writePrivate(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// removeFiles removes paths; missing files are fine.
func removeFiles(paths ...string) error {
	var errs []error
	for _, p := range paths {
		if p == "" {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
