package agent

import (
	"path/filepath"

	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
)

// buildSpec resolves the secret and turns a connector into a mount Spec.
func (r *reconciler) buildSpec(c *config.Connector) (mounts.Spec, error) {
	cr, err := config.ResolveCredentials(c, r.agent, r.key)
	if err != nil {
		return mounts.Spec{}, err
	}
	return specOf(c, r.agent, cr, r.runtimeDir), nil
}

// specOf is the complete Spec of a connector with its resolved credentials:
// every field comes from the connector (whose defaults come from config's
// key table) or the agent; backends never re-default one.
func specOf(c *config.Connector, a *config.Agent, cr config.Credentials, runtimeDir string) mounts.Spec {
	return mounts.Spec{
		ID: c.ID, Backend: c.Backend, MountPoint: filepath.Join(a.ProjectRoot, c.MountName),
		Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix,
		ReadOnly: c.Mode != "rw", PathStyle: c.PathStyle(), UID: c.UID, GID: c.GID,
		FileMode: c.FileMode, DirMode: c.DirMode, StallTimeout: c.StallTimeout,
		MetadataTTL: c.MetadataTTL, NegativeTTL: c.NegativeTTL,
		MaxStaging: c.MaxStaging, MaxStagingPercent: c.MaxStagingPercent,
		Permissions: c.Permissions, MetadataMax: c.MetadataMax, ListConcurrency: c.ListConcurrency,
		CacheDir:    filepath.Join(a.CacheDir, c.ID),
		RuntimeDir:  filepath.Join(runtimeDir, "mounts", c.ID),
		Binary:      a.Binaries[c.Backend],
		Credentials: cr,
	}
}
