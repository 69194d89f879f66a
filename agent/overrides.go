package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// override is an activation set through the API. It holds the file's own
// `active` value at the time, so that a later change of `active` in the
// file wins (SPEC: "a later change of active in the file wins").
type override struct {
	Active     bool      `json:"active"`
	FileActive bool      `json:"file_active"`
	At         time.Time `json:"at"`
}

// overrides persists activation overrides in <state_dir>/overrides.json.
type overrides struct {
	path string
	mu   sync.Mutex
	m    map[string]override
}

type overridesFile struct {
	Connectors map[string]override `json:"connectors"`
}

func loadOverrides(stateDir string) (*overrides, error) {
	o := &overrides{path: filepath.Join(stateDir, "overrides.json"), m: map[string]override{}}
	b, err := os.ReadFile(o.path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return o, err
	}
	var f overridesFile
	if err := json.Unmarshal(b, &f); err != nil {
		return o, fmt.Errorf("%s: %v (activations made through the API are lost; the file is rewritten at the next activation)", o.path, err)
	}
	if f.Connectors != nil {
		o.m = f.Connectors
	}
	return o, nil
}

func (o *overrides) get(id string) (override, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.m[id]
	return v, ok
}

func (o *overrides) set(id string, v override) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m[id] = v
	return o.saveLocked()
}

func (o *overrides) del(id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.m[id]; !ok {
		return nil
	}
	delete(o.m, id)
	return o.saveLocked()
}

func (o *overrides) saveLocked() error {
	b, err := json.MarshalIndent(overridesFile{Connectors: o.m}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.path), 0o700); err != nil {
		return err
	}
	tmp := o.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save activation overrides: %w", err)
	}
	return os.Rename(tmp, o.path)
}

// desiredActive combines a connector file's `active` with an API override.
// It returns the effective value and whether the override is stale (the
// file's value changed since the override was made: the file wins).
func desiredActive(fileActive bool, ov override, hasOverride bool) (active, stale bool) {
	if !hasOverride {
		return fileActive, false
	}
	if ov.FileActive != fileActive {
		return fileActive, true
	}
	return ov.Active, false
}
