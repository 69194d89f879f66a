package agent

// The last good version of every connector, persisted in
// <state_dir>/lastgood.json (0600, directory 0700), so that a file broken
// while the agent is down, or before a restart, still mounts from its last
// good version (docs/OPERATIONS.md, docs/SECURITY.md "Restarts").
//
// Secrets are not stored in the clear: a secret_name or
// secret_access_key_file is stored as the reference it is and resolved
// again at start; an inline secret_access_key or session_token (rare: the
// file itself is root-only then) is stored encrypted to the node key.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/config"
)

const lastGoodName = "lastgood.json"

type lastGoodStore struct {
	path string
	sig  string // of what was last written, to skip rewriting the same
}

type lastGoodFile struct {
	Connectors map[string]lastGoodRecord `json:"connectors"`
	// MountNames maps each held mount_name to its holder's id.
	MountNames map[string]string `json:"mount_names,omitempty"`
}

type lastGoodRecord struct {
	Connector *config.Connector `json:"connector"`
	// SessionTokenAge is an inline session_token, age-encrypted to the
	// node key (the Connector's own copy is blanked).
	SessionTokenAge string    `json:"session_token_age,omitempty"`
	SavedAt         time.Time `json:"saved_at"`
}

func newLastGoodStore(stateDir string) *lastGoodStore {
	return &lastGoodStore{path: filepath.Join(stateDir, lastGoodName)}
}

// saveLastGoodLocked writes the last good version of every present
// connector and the mount_name holders, when they changed.
func (r *reconciler) saveLastGoodLocked() {
	if r.last == nil {
		return
	}
	ids := make([]string, 0, len(r.conns))
	for id, c := range r.conns {
		if c.good != nil && !c.removed {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "%s\x00%s\x00", id, r.conns[id].hash)
	}
	names := make([]string, 0, len(r.holders))
	for n := range r.holders {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%s\x00", n, r.holders[n])
	}
	sig := hex.EncodeToString(h.Sum(nil))
	if sig == r.last.sig {
		return
	}
	f := lastGoodFile{Connectors: map[string]lastGoodRecord{}, MountNames: map[string]string{}}
	for n, id := range r.holders {
		f.MountNames[n] = id
	}
	now := r.now().UTC()
	for _, id := range ids {
		rec, err := r.sealLocked(r.conns[id].good, now)
		if err != nil {
			r.log.Error("last good version not persisted", "connector", id, "err", err)
			continue
		}
		f.Connectors[id] = rec
	}
	if err := writeFile0600(r.last.path, f); err != nil {
		r.log.Error("last good versions not persisted: a broken file will not survive a restart", "path", r.last.path, "err", err)
		return
	}
	r.last.sig = sig
}

// sealLocked copies c with its inline secrets encrypted to the node key.
func (r *reconciler) sealLocked(c *config.Connector, now time.Time) (lastGoodRecord, error) {
	cp := *c
	rec := lastGoodRecord{Connector: &cp, SavedAt: now}
	cr := &cp.Credentials
	if cr.SecretAccessKey != "" || cr.SessionToken != "" {
		if r.key == nil {
			return rec, errors.New("no node key to encrypt its inline secret")
		}
		if cr.SecretAccessKey != "" {
			enc, err := config.Encrypt(r.key.Recipient(), []byte(cr.SecretAccessKey))
			if err != nil {
				return rec, err
			}
			cr.SecretAccessKey, cr.SecretAccessKeyEncrypted = "", enc
		}
		if cr.SessionToken != "" {
			enc, err := config.Encrypt(r.key.Recipient(), []byte(cr.SessionToken))
			if err != nil {
				return rec, err
			}
			cr.SessionToken, rec.SessionTokenAge = "", enc
		}
	}
	return rec, nil
}

func writeFile0600(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return worker.WriteFileAtomic(path, b, 0o600)
}

// seedLastGood loads the persisted last good versions before the first
// Load: a connector whose file is broken now starts from it (and a file
// that parses replaces it at once). Records whose secret cannot be
// resolved any more are skipped with a log line.
func (r *reconciler) seedLastGood() {
	if r.last == nil {
		return
	}
	b, err := os.ReadFile(r.last.path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		r.log.Error("cannot read the last good versions; broken files start unmounted", "path", r.last.path, "err", err)
		return
	}
	if fi, err := os.Stat(r.last.path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		os.Chmod(r.last.path, 0o600)
	}
	var f lastGoodFile
	if err := json.Unmarshal(b, &f); err != nil {
		r.log.Error("the last good versions are unreadable; broken files start unmounted (the file is rewritten at the next change)",
			"path", r.last.path, "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, rec := range f.Connectors {
		c := rec.Connector
		if c == nil || c.ID != id || r.conns[id] != nil {
			continue
		}
		if _, err := os.Lstat(c.File); errors.Is(err, os.ErrNotExist) {
			continue // removed while the agent was down: forgotten
		}
		if rec.SessionTokenAge != "" {
			if r.key == nil {
				continue
			}
			plain, err := r.key.Decrypt([]byte(rec.SessionTokenAge))
			if err != nil {
				r.log.Error("last good version unusable: its session token does not decrypt", "connector", id, "err", err)
				continue
			}
			c.Credentials.SessionToken = config.Secret(plain)
		}
		spec, err := r.buildSpec(c)
		if err != nil {
			r.log.Error("last good version unusable: its secret does not resolve", "connector", id, "err", err)
			continue
		}
		cn := &conn{id: id, file: c.File, good: c, spec: spec, hash: worker.SpecHash(spec), phase: client.StateInactive,
			kick: make(chan struct{}, 1), changed: make(chan struct{}), firstDone: make(chan struct{})}
		r.conns[id] = cn
		r.startConnLocked(cn)
	}
	for n, id := range f.MountNames {
		if r.conns[id] != nil {
			r.holders[n] = id
		}
	}
}
