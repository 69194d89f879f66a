package agent

import (
	"path/filepath"

	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
)

// buildSpec resolves the secret and turns a connector into a mount Spec.
func (r *reconciler) buildSpec(c *config.Connector) (mounts.Spec, error) {
	secret, err := config.ResolveSecret(c, r.agent, r.key)
	if err != nil {
		return mounts.Spec{}, err
	}
	cr := c.Credentials
	spec := mounts.Spec{
		ID: c.ID, Backend: c.Backend, MountPoint: filepath.Join(r.agent.ProjectRoot, c.MountName),
		Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix,
		ReadOnly: c.Mode != "rw", PathStyle: c.PathStyle(), UID: c.UID, GID: c.GID,
		FileMode: c.FileMode, DirMode: c.DirMode, StallTimeout: c.StallTimeout,
		MetadataTTL: c.MetadataTTL, NegativeTTL: c.NegativeTTL,
		MaxStaging: c.MaxStaging, MaxStagingPercent: c.MaxStagingPercent,
		CacheDir:   filepath.Join(r.agent.CacheDir, c.ID),
		RuntimeDir: filepath.Join(r.runtimeDir, "mounts", c.ID),
		Binary:     r.agent.Binaries[c.Backend],
		Credentials: mounts.Credentials{
			AccessKeyID: cr.AccessKeyID, SecretAccessKey: mounts.Secret(secret),
			SessionToken: mounts.Secret(cr.SessionToken), Profile: cr.Profile, RoleARN: cr.RoleARN,
			RoleSessionName: cr.RoleSessionName, ExternalID: cr.ExternalID, SourceIdentity: cr.SourceIdentity,
			WebIdentityTokenFile: cr.WebIdentityTokenFile, Anonymous: cr.Anonymous,
		},
	}
	return spec, nil
}
