package agent

import (
	"path/filepath"
	"reflect"

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
// every field of the Spec named and typed as a field of the Connector
// (Region, StallTimeout, ListConcurrency, …: the connector keys, whose
// defaults come from config's key table) is copied from it; the others
// are derived below. Backends never re-default a field; TestSpecComplete
// checks that none is left out.
func specOf(c *config.Connector, a *config.Agent, cr config.Credentials, runtimeDir string) mounts.Spec {
	var s mounts.Spec
	copySameNamed(&s, c)
	s.MountPoint = filepath.Join(a.ProjectRoot, c.MountName)
	s.ReadOnly = c.Mode != "rw"
	s.PathStyle = c.PathStyle()
	s.CacheDir = filepath.Join(a.CacheDir, c.ID)
	s.RuntimeDir = filepath.Join(runtimeDir, "mounts", c.ID)
	s.Binary = a.Binaries[c.Backend]
	s.Credentials = cr
	return s
}

// copySameNamed sets every field of *dst that *src has with the same name
// and type.
func copySameNamed(dst, src any) {
	d, s := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := 0; i < d.NumField(); i++ {
		f := d.Type().Field(i)
		if sf, ok := s.Type().FieldByName(f.Name); ok && sf.Type == f.Type && len(sf.Index) == 1 {
			d.Field(i).Set(s.FieldByIndex(sf.Index))
		}
	}
}
