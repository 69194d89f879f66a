package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// The credentials spec may hold an inline secret key and a session token.
// Whatever prints it — fmt with any verb (also as a field of a Connector),
// slog, encoding/json — shows where the secret comes from, never the secret.

const redacted = "[redacted]"

// String describes the credentials without any secret.
func (cs CredentialsSpec) String() string {
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
func (cs CredentialsSpec) GoString() string { return "config.CredentialsSpec" + cs.String() }

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, %d, %x…) print the
// redacted form.
func (cs CredentialsSpec) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, cs.GoString())
		return
	}
	fmt.Fprint(f, cs.String())
}

// LogValue keeps secrets out of slog output.
func (cs CredentialsSpec) LogValue() slog.Value { return slog.StringValue(cs.String()) }

// MarshalJSON writes the credentials with the secret values replaced.
func (cs CredentialsSpec) MarshalJSON() ([]byte, error) {
	type plain CredentialsSpec
	p := plain(cs)
	if p.SecretAccessKey != "" {
		p.SecretAccessKey = redacted
	}
	if p.SessionToken != "" {
		p.SessionToken = redacted
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
