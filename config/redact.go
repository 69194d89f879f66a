package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

const redacted = "[redacted]"

// Secret is a string that never prints: fmt (every verb), slog and errors
// built from it show "[redacted]". JSON keeps the value, since the Spec
// must carry it to the worker over its pipe; Reveal gives it to the code
// that signs requests or writes an external tool's credentials file.
type Secret string

func (Secret) String() string                { return redacted }
func (Secret) GoString() string              { return redacted }
func (Secret) Format(f fmt.State, verb rune) { fmt.Fprint(f, redacted) }
func (Secret) LogValue() slog.Value          { return slog.StringValue(redacted) }
func (s Secret) Reveal() string              { return string(s) }

// Credentials are a connector's [credentials], from the file to the mount
// worker: as written (where the secret comes from) in a Connector, and
// resolved (the secret itself, in SecretAccessKey, and no source) in a
// mounts.Spec. Whatever prints them — fmt with any verb (also as a field
// of a Connector or Spec), slog — shows where the secret comes from, never
// the secret; JSON keeps the secrets for the worker pipe.
type Credentials struct {
	AccessKeyID              string `json:"access_key_id,omitempty"`
	SecretName               string `json:"secret_name,omitempty"`
	SecretAccessKeyFile      string `json:"secret_access_key_file,omitempty"`
	SecretAccessKeyEncrypted string `json:"secret_access_key_encrypted,omitempty"` // age armored, to the node key
	// SecretAccessKey is inline in the file (only when the file is not
	// readable by others), or the resolved secret in a Spec.
	SecretAccessKey      Secret `json:"secret_access_key,omitempty"`
	SessionToken         Secret `json:"session_token,omitempty"`
	Profile              string `json:"profile,omitempty"`
	RoleARN              string `json:"role_arn,omitempty"`
	RoleSessionName      string `json:"role_session_name,omitempty"`
	ExternalID           string `json:"external_id,omitempty"`
	SourceIdentity       string `json:"source_identity,omitempty"`
	WebIdentityTokenFile string `json:"web_identity_token_file,omitempty"`
	Anonymous            bool   `json:"anonymous,omitempty"`
}

// String describes the credentials without any secret.
func (cs Credentials) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("access_key_id", cs.AccessKeyID)
	add("secret_name", cs.SecretName)
	add("secret_access_key_file", cs.SecretAccessKeyFile)
	if cs.SecretAccessKeyEncrypted != "" {
		add("secret_access_key_encrypted", "(age)")
	}
	if cs.SecretAccessKey != "" {
		add("secret_access_key", redacted)
	}
	if cs.SessionToken != "" {
		add("session_token", redacted)
	}
	add("profile", cs.Profile)
	add("role_arn", cs.RoleARN)
	add("role_session_name", cs.RoleSessionName)
	add("external_id", cs.ExternalID)
	add("source_identity", cs.SourceIdentity)
	add("web_identity_token_file", cs.WebIdentityTokenFile)
	if cs.Anonymous {
		parts = append(parts, "anonymous=true")
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// GoString is String: %#v must not reveal the secret either.
func (cs Credentials) GoString() string { return "config.Credentials" + cs.String() }

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, %d, %x…) print the
// redacted form.
func (cs Credentials) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, cs.GoString())
		return
	}
	fmt.Fprint(f, cs.String())
}

// LogValue keeps secrets out of slog output.
func (cs Credentials) LogValue() slog.Value { return slog.StringValue(cs.String()) }

// MarshalJSON writes a connector with its secret values replaced: a
// Connector is never the way a secret travels (a Spec is).
func (c Connector) MarshalJSON() ([]byte, error) {
	type plain Connector
	p := plain(c)
	if p.Credentials.SecretAccessKey != "" {
		p.Credentials.SecretAccessKey = redacted
	}
	if p.Credentials.SessionToken != "" {
		p.Credentials.SessionToken = redacted
	}
	return json.Marshal(p)
}

// LogValue logs a connector by what identifies it, without credentials.
func (c *Connector) LogValue() slog.Value {
	if c == nil {
		return slog.StringValue("<nil>")
	}
	return slog.GroupValue(slog.String("id", c.ID), slog.String("file", c.File),
		slog.String("endpoint", c.Endpoint), slog.String("bucket", c.Bucket),
		slog.String("prefix", c.Prefix), slog.String("mount_name", c.MountName),
		slog.String("mode", c.Mode), slog.String("backend", c.Backend))
}
