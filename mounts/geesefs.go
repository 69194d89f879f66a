package mounts

// The GeeseFS backend (backend = "geesefs"). Options are GeeseFS's own
// (its README and `geesefs --help`). GeeseFS uses the AWS SDK for Go v1,
// so it reads an AWS shared config file: --shared-config points it at a
// private one and --profile names the section.

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type geesefsTool struct{}

func (geesefsTool) name() string { return "geesefs" }

// geesefsProfile is the section of the private shared config file.
const geesefsProfile = "s3mounts"

func geesefsConfigFile(spec Spec) string {
	return filepath.Join(spec.RuntimeDir, "geesefs-credentials")
}

func geesefsProcessFile(spec Spec) string {
	return filepath.Join(spec.RuntimeDir, "geesefs-credentials.json")
}

func (geesefsTool) unsupported(spec Spec) string {
	if spec.Credentials.Anonymous {
		return `GeeseFS has no anonymous mode; use backend = "s3fs" or "default" for a public bucket`
	}
	if strings.ContainsAny(spec.RuntimeDir, "'\n") {
		return fmt.Sprintf("the runtime directory %q contains a quote or newline", spec.RuntimeDir)
	}
	return ""
}

// geesefsConfig is the shared config file's content. Plain keys (with a
// session token if any) are written as they are. Keys from a resolver
// (profile, AssumeRole, web identity) expire: the file then names a
// credential_process that prints a JSON file the worker rewrites before
// they expire, and the SDK inside GeeseFS runs it again when its keys
// expire, so GeeseFS picks up new keys without a remount.
func geesefsConfig(spec Spec, k keys, cat string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]\n", geesefsProfile)
	if k.Refreshable {
		fmt.Fprintf(&b, "credential_process = %s '%s'\n", cat, geesefsProcessFile(spec))
		return b.String()
	}
	fmt.Fprintf(&b, "aws_access_key_id = %s\n", k.AccessKeyID)
	fmt.Fprintf(&b, "aws_secret_access_key = %s\n", k.SecretAccessKey.Reveal())
	if k.SessionToken != "" {
		fmt.Fprintf(&b, "aws_session_token = %s\n", k.SessionToken.Reveal())
	}
	return b.String()
}

// geesefsProcessJSON is what a credential_process prints (AWS's format).
func geesefsProcessJSON(k keys) ([]byte, error) {
	v := struct {
		Version         int
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string `json:",omitempty"`
		Expiration      string `json:",omitempty"`
	}{Version: 1, AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey.Reveal(), SessionToken: k.SessionToken.Reveal()}
	if !k.Expires.IsZero() {
		v.Expiration = k.Expires.UTC().Format(time.RFC3339)
	}
	return json.Marshal(v)
}

func catBinary() string {
	if p, err := exec.LookPath("cat"); err == nil {
		return p
	}
	return "/bin/cat"
}

func (t geesefsTool) plan(spec Spec, k keys) (toolPlan, error) {
	var pl toolPlan
	if k.Anonymous {
		return pl, fmt.Errorf("connector %s: %s", spec.ID, t.unsupported(spec))
	}
	for _, s := range []string{k.AccessKeyID, k.SecretAccessKey.Reveal(), k.SessionToken.Reveal()} {
		if strings.ContainsAny(s, "\n\r") {
			return pl, fmt.Errorf("connector %s: the credentials contain a newline, which a shared config file cannot hold", spec.ID)
		}
	}
	if k.Refreshable {
		if _, err := t.updateInPlace(spec, k); err != nil {
			return pl, err
		}
		pl.files = append(pl.files, geesefsProcessFile(spec))
	}
	cfg := geesefsConfigFile(spec)
	if err := writePrivate(cfg, []byte(geesefsConfig(spec, k, catBinary()))); err != nil {
		removeFiles(pl.files...)
		return pl, err
	}
	pl.files = append(pl.files, cfg)
	pl.args = geesefsArgs(spec, cfg)
	return pl, nil
}

// updateInPlace rewrites the credential_process output; plain keys never
// change while mounted.
func (geesefsTool) updateInPlace(spec Spec, k keys) (bool, error) {
	if !k.Refreshable {
		return false, nil
	}
	b, err := geesefsProcessJSON(k)
	if err != nil {
		return false, err
	}
	if err := writePrivate(geesefsProcessFile(spec), b); err != nil {
		return false, err
	}
	return true, nil
}

// geesefsArgs is the command line for spec (after the binary). Pure, so
// each connector shape is tested exactly.
//
// GeeseFS is path-style unless --subdomain. Started as root with --uid
// set, it would drop to that uid after mounting; --setuid 0 --setgid 0
// keep it root, so the notebook user cannot trace the process that holds
// the keys.
func geesefsArgs(spec Spec, configFile string) []string {
	args := []string{}
	if spec.Endpoint != "" {
		args = append(args, "--endpoint", spec.Endpoint)
	}
	args = append(args, "--region", spec.Region)
	if !spec.PathStyle {
		args = append(args, "--subdomain")
	}
	args = append(args,
		"--shared-config", configFile, "--profile", geesefsProfile,
		"--uid", strconv.FormatUint(uint64(spec.UID), 10),
		"--gid", strconv.FormatUint(uint64(spec.GID), 10),
		"--setuid", "0", "--setgid", "0",
		"--file-mode", fmt.Sprintf("0%o", spec.FileMode.Perm()),
		"--dir-mode", fmt.Sprintf("0%o", spec.DirMode.Perm()),
	)
	if spec.CacheDir != "" {
		args = append(args, "--cache", spec.CacheDir)
	}
	args = append(args,
		// GeeseFS's TTL covers both found and missing entries.
		"--stat-cache-ttl", spec.MetadataTTL.String(),
		// A whole request, not a stall: three stall timeouts, as the
		// contract bounds any operation.
		"--http-timeout", OpBound(spec.StallTimeout).String(),
		// close() returns once the data is in S3 (or the upload error),
		// as with the other backends; GeeseFS otherwise flushes later.
		"--fsync-on-close",
		"-o", "allow_other", "-o", "default_permissions",
	)
	if spec.ReadOnly {
		args = append(args, "-o", "ro")
	}
	source := spec.Bucket
	if p := strings.Trim(spec.Prefix, "/"); p != "" {
		source += ":" + p + "/"
	}
	return append(args, "-f", source, spec.MountPoint)
}
