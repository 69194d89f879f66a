package mounts

// The s3fs-fuse backend (backend = "s3fs"), for s3fs 1.90 as Debian 12
// ships it. Options are s3fs's own (`s3fs --help`, man s3fs).

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type s3fsTool struct{}

func (s3fsTool) name() string { return "s3fs" }

// unsupported: s3fs splits -o values at commas, so none of the values it
// gets may hold one.
func (s3fsTool) unsupported(spec Spec) string {
	for _, v := range []struct{ what, val string }{
		{"the connector id", spec.ID}, {"the endpoint", spec.Endpoint},
		{"the runtime directory", spec.RuntimeDir}, {"the cache directory", spec.CacheDir},
	} {
		if strings.Contains(v.val, ",") {
			return fmt.Sprintf("%s %q contains a comma, which s3fs's -o options cannot carry", v.what, v.val)
		}
	}
	return ""
}

// s3fsPasswdFile is the passwd file of a mount, in its runtime directory.
func s3fsPasswdFile(spec Spec) string { return filepath.Join(spec.RuntimeDir, "passwd-s3fs") }

// How s3fs 1.90 takes credentials (its get_access_keys):
//   - plain keys: passwd_file=FILE holding "ACCESS:SECRET" (mode 0600;
//     s3fs refuses a file others may read). This format has no room for a
//     session token.
//   - keys with a session token: only the environment (AWSACCESSKEYID,
//     AWSSECRETACCESSKEY, AWSSESSIONTOKEN) or ~/.aws/credentials, which s3fs
//     finds through getpwuid (root's home), not $HOME, so it cannot be
//     pointed at a private file. The environment of the s3fs process is
//     readable only by root (/proc/PID/environ is 0400, owned by the
//     process's uid, and s3fs runs as root), so tokens go there.
//   - anonymous: public_bucket=1.

func (t s3fsTool) plan(spec Spec, k keys) (toolPlan, error) {
	var pl toolPlan
	var cred []string
	switch {
	case k.Anonymous:
		cred = []string{"public_bucket=1"}
	case k.SessionToken != "":
		cred = []string{"use_session_token"}
		pl.env = []string{
			"AWSACCESSKEYID=" + k.AccessKeyID,
			"AWSSECRETACCESSKEY=" + k.SecretAccessKey.Reveal(),
			"AWSSESSIONTOKEN=" + k.SessionToken.Reveal(),
		}
	default:
		if strings.ContainsAny(k.AccessKeyID, ":\n") || strings.ContainsAny(k.SecretAccessKey.Reveal(), "\n") {
			return pl, fmt.Errorf("connector %s: the access key id or secret contains a character s3fs's passwd file cannot hold (':' in the key id, or a newline)", spec.ID)
		}
		f := s3fsPasswdFile(spec)
		if err := writePrivate(f, []byte(k.AccessKeyID+":"+k.SecretAccessKey.Reveal()+"\n")); err != nil {
			return pl, err
		}
		pl.files = []string{f}
		cred = []string{"passwd_file=" + f}
	}
	pl.args = s3fsArgs(spec, cred)
	return pl, nil
}

// s3fs reads its keys once at start: new temporary keys need a remount.
func (s3fsTool) updateInPlace(Spec, keys) (bool, error) { return false, nil }

// s3fsArgs is the command line for spec (after the binary), with cred the
// credential options. Pure, so each connector shape is tested exactly.
//
// Modes: s3fs has one umask for files and directories, and shows an object
// without x-amz-meta-mode (anything not written by s3fs) as 0777 &^ umask.
// So the umask is the one that gives dir_mode, and files show
// file_mode|dir_mode (e.g. 0755 for 0644/0755): the kernel still enforces
// who may read and write, but files look executable. mp_umask gives the
// mount point itself dir_mode.
func s3fsArgs(spec Spec, cred []string) []string {
	source := spec.Bucket
	if p := strings.Trim(spec.Prefix, "/"); p != "" {
		source += ":/" + p
	}
	perm := (spec.FileMode | spec.DirMode).Perm()
	umask := fmt.Sprintf("%04o", 0o777&^uint32(perm))
	mpUmask := fmt.Sprintf("%04o", 0o777&^uint32(spec.DirMode.Perm()))
	stall := spec.StallTimeout
	opts := []string{}
	if spec.Endpoint != "" {
		opts = append(opts, "url="+strings.TrimSuffix(spec.Endpoint, "/"))
	}
	opts = append(opts, "endpoint="+spec.Region)
	if spec.PathStyle {
		opts = append(opts, "use_path_request_style")
	}
	if spec.ReadOnly {
		opts = append(opts, "ro")
	}
	opts = append(opts,
		"allow_other", "default_permissions",
		"uid="+strconv.FormatUint(uint64(spec.UID), 10),
		"gid="+strconv.FormatUint(uint64(spec.GID), 10),
		"umask="+umask, "mp_umask="+mpUmask,
	)
	opts = append(opts, cred...)
	// Write staging goes to the connector's cache directory, not /tmp.
	// No use_cache: s3fs's file cache never shrinks by itself and would
	// serve a file's old bytes for as long as size and mtime match.
	if spec.CacheDir != "" {
		opts = append(opts, "tmpdir="+spec.CacheDir)
	}
	if spec.MetadataTTL > 0 {
		opts = append(opts, "stat_cache_expire="+strconv.Itoa(ceilSeconds(spec.MetadataTTL)))
	} else {
		opts = append(opts, "max_stat_cache_size=0")
	}
	// One attempt per request (retries=1): s3fs 1.90 pauses a fixed 4 s
	// after each timed-out attempt, so every retry adds stall + 4 s. Its
	// progress check has a 1 s granularity and aborts after
	// readwrite_timeout + 1 s without a byte, hence stall - 1.
	rw := max(1, ceilSeconds(stall)-1)
	opts = append(opts,
		"connect_timeout="+strconv.Itoa(ceilSeconds(stall)),
		"readwrite_timeout="+strconv.Itoa(rw),
		"retries=1",
		"instance_name="+spec.ID,
		"dbglevel=err",
	)
	args := []string{source, spec.MountPoint, "-f"}
	for _, o := range opts {
		args = append(args, "-o", o)
	}
	return args
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

// S3FSOpBound is the longest one operation on an s3fs mount lasts against
// a frozen endpoint with s3fsArgs' options: s3fs 1.90 gives up on a request
// about max(2 s, stall) after its last byte, pauses a fixed 4 s (its
// curl.cpp), and one lookup makes up to 4 requests (HEAD name, name/,
// name_$folder$, then a listing). It is above 3 × stall_timeout, the
// built-in backend's bound: s3fs's options cannot do better, so as root
// the worker's guard answers every operation within OpBound instead
// (guard.go, docs/BACKENDS.md).
func S3FSOpBound(stall time.Duration) time.Duration {
	detect := time.Duration(max(1, ceilSeconds(stall)-1)+1) * time.Second
	return 4 * (detect + 4*time.Second)
}
