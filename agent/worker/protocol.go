// Package worker is the mount worker: one process per active connector,
// the s3mountd binary run as the hidden sub-command `s3mountd worker`. It
// holds both sides of the worker protocol of docs/DESIGN.md: the worker
// (Main) and the agent's supervisor (Supervisor, Handle).
//
// A worker outlives the agent: it records itself in
// <state_dir>/workers/<id>.json and answers on its own root-only socket
// <runtime_dir>/workers/<id>.sock, so a restarted agent adopts it.
package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
)

// The worker protocol: HTTP/1.1 + JSON on the worker's root-only control
// socket (docs/DESIGN.md). The supervisor (supervisor.go) and the worker
// (worker.go) both use these names; nothing else spells them.

// Paths of the control socket.
const (
	// PathStatus (GET) answers Status; with ?wait=1 it first waits while
	// the worker is still mounting.
	PathStatus = "/v1/status"
	// PathWait (GET) sends its headers at once and answers WaitResult when
	// the mount has ended: the supervisor holds it open to notice the end.
	PathWait = "/v1/wait"
	// PathUnmount (POST) unmounts and answers UnmountResult; the worker
	// then exits (after the open files of a lazily detached mount close).
	PathUnmount = "/v1/unmount"
	// PathRefresh (POST ?path=P) drops what the mount caches under P.
	PathRefresh = "/v1/refresh"
	// PathFiles (GET ?path=P&cursor=C&limit=N) answers a mounts.Page.
	PathFiles = "/v1/files"
)

// Worker states reported by GET /v1/status.
const (
	StateMounting = "mounting"
	StateMounted  = "mounted"
	StateError    = "error" // the mount failed or ended; the worker exits soon
)

// Error codes of ErrorBody; each has one HTTP status (StatusOf). The
// reconciler turns them into the API's codes.
const (
	CodeInvalid  = "invalid"   // 400: a bad parameter, or a path that is a file or a link
	CodeNotFound = "not_found" // 404: no such file or directory
	CodeConflict = "conflict"  // 409: not mounted, or the mount point is no longer the mount
	CodeInternal = "internal"  // 500: anything else
)

// StatusOf is the HTTP status a worker answers an error code with.
func StatusOf(code string) int {
	switch code {
	case CodeInvalid:
		return 400
	case CodeNotFound:
		return 404
	case CodeConflict:
		return 409
	}
	return 500
}

// CodeOf is the error code of an HTTP status: the code of an error answer
// without one (from a worker of the previous daemon version, which sent
// {"error":"…"} alone, or a plain-text answer).
func CodeOf(status int) string {
	switch status {
	case 400:
		return CodeInvalid
	case 404:
		return CodeNotFound
	case 409:
		return CodeConflict
	}
	return CodeInternal
}

// ErrorBody is every error answer of a worker: {"code":…,"error":…}. The
// message keeps the key "error" of the protocol's first version, so a
// daemon of that version still reads a newer worker's messages (e.g. after
// a downgrade); the supervisor codes an answer that has no "code" by its
// HTTP status (CodeOf).
type ErrorBody struct {
	Code    string `json:"code,omitempty"`
	Message string `json:"error"`
}

// Why a worker ended: the Code of the *EndError that Handle.Err returns.
const (
	// EndFailed: the worker said why (its mount failed, or ended with an
	// error); the message is its own.
	EndFailed = "failed"
	// EndDied: the worker went without answering /v1/wait (it crashed or
	// was killed); the message names its exit status when known.
	EndDied = "died"
	// EndUnreachable: the worker's control socket could not be reached to
	// wait on it.
	EndUnreachable = "unreachable"
)

// EndError is why a worker ended (Handle.Err). Callers decide on Code;
// Msg is for people.
type EndError struct {
	Code string
	Msg  string
}

func (e *EndError) Error() string { return e.Msg }

// EndCode is the Code of err if it is an *EndError, else "".
func EndCode(err error) string {
	var ee *EndError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ""
}

// Record is <state_dir>/workers/<id>.json (0600): what a restarted agent
// needs to find and trust a live worker.
type Record struct {
	ID         string    `json:"id"`
	PID        int       `json:"pid"`
	StartTime  uint64    `json:"start_time"` // field 22 of /proc/<pid>/stat
	SpecHash   string    `json:"spec_hash"`
	Backend    string    `json:"backend"`
	MountPoint string    `json:"mount_point"`
	Socket     string    `json:"socket"`
	Executable string    `json:"executable"`
	Version    string    `json:"version"`
	StartedAt  time.Time `json:"started_at"`
	// Mount is the kernel mount the worker made (id, type, source), set
	// once mounted: the agent unmounts by it if the worker cannot.
	Mount *mounts.MountRef `json:"mount,omitempty"`
}

// Status is GET /v1/status.
type Status struct {
	ID         string    `json:"id"`
	PID        int       `json:"pid"`
	SpecHash   string    `json:"spec_hash"`
	State      string    `json:"state"`
	Error      string    `json:"error,omitempty"`
	MountPoint string    `json:"mount_point"`
	Since      time.Time `json:"since"`
	// Degraded is, while mounted, what fails for the whole mount in plain
	// words ("the endpoint refuses the key since 12:03:04 UTC: …"), from
	// the backend's mounts.HealthReporter; "" when requests work.
	Degraded      string     `json:"degraded,omitempty"`
	DegradedSince *time.Time `json:"degraded_since,omitempty"`
	// Staging is the write staging space of a backend that has one.
	Staging *Staging `json:"staging,omitempty"`
	// Stats are the backend's own counters (S3 requests by operation,
	// metadata cache size), from its mounts.StatsReporter.
	Stats *mounts.Stats `json:"stats,omitempty"`
}

// Staging is the disk space a mount's write staging takes in cache_dir.
type Staging struct {
	UsedBytes  int64 `json:"used_bytes"`
	LimitBytes int64 `json:"limit_bytes,omitempty"` // [cache] max_staging; 0: none
}

// WaitResult is the answer of GET /v1/wait, sent when the mount has ended.
type WaitResult struct {
	Error string `json:"error,omitempty"`
}

// UnmountResult is the answer of POST /v1/unmount.
type UnmountResult struct {
	OK   bool `json:"ok"`
	Lazy bool `json:"lazy,omitempty"`
}

// SpecHash is the sha256 of the Spec's JSON, secrets included (so a rotated
// secret changes it). It is only ever stored root-only.
//
// A Spec field added in a later version hashes as absent while it holds
// the value the earlier versions implied (hashForm), so a daemon upgrade
// adopts the workers it finds instead of remounting every connector.
func SpecHash(spec mounts.Spec) string {
	b, err := json.Marshal(hashForm(spec))
	if err != nil { // cannot happen: Spec has only plain fields
		panic(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// hashForm zeroes the fields added after workers were first adopted across
// upgrades when they hold their default, i.e. what a Spec without them
// meant. Every key added later belongs here (docs/DESIGN.md, "Adding a
// configuration key").
func hashForm(s mounts.Spec) mounts.Spec {
	d := config.DefaultConnector()
	if s.Permissions == d.Permissions {
		s.Permissions = ""
	}
	if s.MetadataMax == d.MetadataMax {
		s.MetadataMax = 0
	}
	if s.ListConcurrency == d.ListConcurrency {
		s.ListConcurrency = 0
	}
	return s
}

// RecordPath is where the worker of connector id records itself.
func RecordPath(stateDir, id string) string {
	return filepath.Join(stateDir, "workers", id+".json")
}

// SocketPath is the control socket of the worker of connector id.
func SocketPath(runtimeDir, id string) string {
	return filepath.Join(runtimeDir, "workers", id+".sock")
}

// ReadRecord reads one record file.
func ReadRecord(path string) (Record, error) {
	var r Record
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("worker record %s: %w (the file is rewritten by the next worker; delete it if it stays)", path, err)
	}
	return r, nil
}

// WriteFileAtomic writes data to path with mode via a temporary file, an
// fsync and a rename, so a reader never sees half a file (the directory is
// made 0700 if missing). The agent's own state files use it too.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ProcStartTime returns field 22 of /proc/<pid>/stat (start time in clock
// ticks since boot) and whether the process is a zombie.
func ProcStartTime(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false, errors.New("malformed /proc stat")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field 22 is f[19].
	if len(f) < 20 {
		return 0, false, errors.New("short /proc stat")
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0] == "Z" || f[0] == "X", err
}
