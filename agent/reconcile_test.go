package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second},
		{7, 60 * time.Second}, {8, 60 * time.Second}, {100, 60 * time.Second}} {
		if got := backoff(tc.n); got != tc.want {
			t.Errorf("backoff(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestPlan(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	later, earlier := now.Add(time.Second), now.Add(-time.Second)
	const (
		inactive   = client.StateInactive
		mounting   = client.StateMounting
		mounted    = client.StateMounted
		unmounting = client.StateUnmounting
		failed     = client.StateError
	)
	good := func(want bool, hash string) desired { return desired{want: want, hash: hash, good: true} }
	for _, tc := range []struct {
		name  string
		d     desired
		a     actual
		act   action
		phase phaseSet
	}{
		{"inactive stays", good(false, "h1"), actual{phase: inactive}, actNone, phaseSet{}},
		{"deactivate", good(false, "h1"), actual{workerHash: "h1", phase: mounted}, actStop, phaseSet{}},
		{"mounted unchanged is untouched", good(true, "h1"), actual{workerHash: "h1", phase: mounted}, actNone, phaseSet{}},
		{"mounted unchanged even while backing off", good(true, "h1"), actual{workerHash: "h1", phase: mounted, nextTry: later}, actNone, phaseSet{}},
		{"adopted worker shows mounted", good(true, "h1"), actual{workerHash: "h1", phase: mounting}, actNone, phaseSet{state: mounted}},
		{"spec changed (rotated secret): remount", good(true, "h2"), actual{workerHash: "h1", phase: mounted}, actReplace, phaseSet{}},
		{"activate", good(true, "h1"), actual{phase: inactive}, actStart, phaseSet{}},
		{"retry due", good(true, "h1"), actual{phase: failed, nextTry: earlier}, actStart, phaseSet{}},
		{"retry due exactly now", good(true, "h1"), actual{phase: failed, nextTry: now}, actStart, phaseSet{}},
		{"backing off", good(true, "h1"), actual{phase: failed, nextTry: later}, actWait, phaseSet{}},
		{"deleted while changed", desired{hash: "h2", good: true, removed: true}, actual{workerHash: "h1", phase: mounted}, actStop, phaseSet{}},
		{"deleted and stopped: forgotten", desired{hash: "h1", good: true, removed: true}, actual{phase: inactive}, actForget, phaseSet{state: inactive}},
		{"deleted broken file: forgotten", desired{broken: true, removed: true}, actual{phase: failed}, actForget, phaseSet{state: inactive}},
		{"adopted while its file is broken: kept", desired{hash: "h1", broken: true}, actual{workerHash: "h1", phase: mounted}, actNone, phaseSet{}},
		{"adopted, file broken, then deleted: stopped", desired{hash: "h1", broken: true, removed: true}, actual{workerHash: "h1", phase: mounted}, actStop, phaseSet{}},
		{"broken file with a good version: last good stays", desired{want: true, hash: "h1", good: true, broken: true}, actual{workerHash: "h1", phase: mounted}, actNone, phaseSet{}},
		{"broken file, good version, deactivated: stopped", desired{hash: "h1", good: true, broken: true}, actual{workerHash: "h1", phase: mounted}, actStop, phaseSet{}},
		{"failed, now undesired: rests", good(false, "h1"), actual{phase: failed, phaseErr: "boom", nextTry: later}, actNone, phaseSet{state: inactive, rest: true}},
		{"never valid: error stays", desired{broken: true}, actual{phase: failed, phaseErr: "bad"}, actNone, phaseSet{}},
		{"deactivated before the start: inactive, message kept", good(false, "h1"), actual{phase: mounting, phaseErr: "waiting"}, actNone, phaseSet{state: inactive, msg: "waiting"}},
		{"unmounted: inactive, message kept", good(false, "h1"), actual{phase: unmounting, phaseErr: "lazy"}, actNone, phaseSet{state: inactive, msg: "lazy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			act, ph := plan(tc.d, tc.a, now)
			if act != tc.act || ph != tc.phase {
				t.Errorf("plan = %v %+v, want %v %+v", act, ph, tc.act, tc.phase)
			}
		})
	}
}

func TestPlanBackoff(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		failures int
		n        int
		d        time.Duration
	}{{0, 1, time.Second}, {1, 2, 2 * time.Second}, {2, 3, 4 * time.Second}, {6, 7, 60 * time.Second}, {50, 51, 60 * time.Second}} {
		n, d, next := afterFailure(tc.failures, now)
		if n != tc.n || d != tc.d || !next.Equal(now.Add(tc.d)) {
			t.Errorf("afterFailure(%d) = %d %v %v, want %d %v", tc.failures, n, d, next, tc.n, tc.d)
		}
	}
	// a worker that served stableAfter or longer starts over at 1 s
	for _, tc := range []struct {
		name     string
		failures int
		served   time.Duration
		n        int
		d        time.Duration
	}{
		{"died at once", 3, time.Second, 4, 8 * time.Second},
		{"died just before stable", 3, stableAfter - time.Nanosecond, 4, 8 * time.Second},
		{"died after serving stableAfter", 3, stableAfter, 1, time.Second},
		{"died after serving long", 6, time.Hour, 1, time.Second},
	} {
		n, d, next := afterDeath(tc.failures, now.Add(-tc.served), now)
		if n != tc.n || d != tc.d || !next.Equal(now.Add(tc.d)) {
			t.Errorf("%s: afterDeath = %d %v %v, want %d %v", tc.name, n, d, next, tc.n, tc.d)
		}
	}
}

func TestPlanAdoption(t *testing.T) {
	for _, tc := range []struct {
		name         string
		d            desired
		workerHash   string
		keep, broken bool
	}{
		{"wanted, same spec: kept", desired{want: true, hash: "h1", good: true}, "h1", true, false},
		{"wanted, spec changed: replaced", desired{want: true, hash: "h2", good: true}, "h1", false, false},
		{"not wanted: stopped", desired{hash: "h1", good: true}, "h1", false, false},
		{"file broken, never a good version: kept", desired{broken: true}, "h1", true, true},
		{"file broken, last good version known and wanted: kept", desired{want: true, hash: "h1", good: true, broken: true}, "h1", true, false},
		{"file broken, last good version differs: replaced", desired{want: true, hash: "h2", good: true, broken: true}, "h1", false, false},
	} {
		keep, broken := adoptDecision(tc.d, tc.workerHash)
		if keep != tc.keep || broken != tc.broken {
			t.Errorf("%s: adoptDecision = %v %v, want %v %v", tc.name, keep, broken, tc.keep, tc.broken)
		}
	}
}

func TestDesiredActive(t *testing.T) {
	for _, tc := range []struct {
		name              string
		file              bool
		ov                override
		has               bool
		wantActive, stale bool
	}{
		{"no override: the file", true, override{}, false, true, false},
		{"no override: the file (off)", false, override{}, false, false, false},
		{"API activation of an inactive file", false, override{Active: true, FileActive: false}, true, true, false},
		{"API deactivation of an active file", true, override{Active: false, FileActive: true}, true, false, false},
		{"file changed to active later: file wins", true, override{Active: false, FileActive: false}, true, true, true},
		{"file changed to inactive later: file wins", false, override{Active: true, FileActive: true}, true, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, s := desiredActive(tc.file, tc.ov, tc.has)
			if a != tc.wantActive || s != tc.stale {
				t.Errorf("desiredActive = (%v, %v), want (%v, %v)", a, s, tc.wantActive, tc.stale)
			}
		})
	}
}

func TestOverridesPersist(t *testing.T) {
	dir := t.TempDir()
	o, err := loadOverrides(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.set("a", override{Active: true, FileActive: false}); err != nil {
		t.Fatal(err)
	}
	if err := o.set("b", override{Active: false, FileActive: true}); err != nil {
		t.Fatal(err)
	}
	o.del("b")
	fi, err := os.Stat(filepath.Join(dir, "overrides.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("overrides.json: %v %v", fi, err)
	}
	o2, err := loadOverrides(dir)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := o2.get("a"); !ok || !v.Active || v.FileActive {
		t.Errorf("a = %+v %v after reload", v, ok)
	}
	if _, ok := o2.get("b"); ok {
		t.Error("deleted override b came back")
	}
	// a corrupt file is reported and starts empty
	os.WriteFile(filepath.Join(dir, "overrides.json"), []byte("{"), 0o600)
	o3, err := loadOverrides(dir)
	if err == nil {
		t.Error("corrupt overrides.json gave no error")
	}
	if _, ok := o3.get("a"); ok {
		t.Error("corrupt file yielded an override")
	}
}

// newTestReconciler is a reconciler on temporary directories whose
// workers are never started (no connector is active in these tests).
func newTestReconciler(t *testing.T) (*reconciler, *config.Agent) {
	t.Helper()
	dir := t.TempDir()
	a := config.DefaultAgent()
	a.ConnectorsDir = filepath.Join(dir, "c")
	a.ProjectRoot = filepath.Join(dir, "mnt")
	a.StateDir = filepath.Join(dir, "state")
	a.CacheDir = filepath.Join(dir, "cache")
	a.SecretsDir = filepath.Join(dir, "secrets")
	a.MountUID, a.MountGID = 0, 0
	os.MkdirAll(a.ConnectorsDir, 0o700)
	ov, _ := loadOverrides(a.StateDir)
	r := newReconciler(a, filepath.Join(dir, "run"), nil, nil, ov, slog.New(slog.DiscardHandler))
	close(r.ready)
	t.Cleanup(func() { r.Close(false) })
	return r, a
}

func writeConn(t *testing.T, a *config.Agent, id, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(a.ConnectorsDir, id+".toml"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

const inactiveConn = `name = "N"
endpoint = "http://127.0.0.1:9"
bucket = "bucket"
mount_name = "%s"
active = false
[credentials]
anonymous = true
`

func connBody(mountName string) string {
	return sprintf(inactiveConn, mountName)
}

func waitView(t *testing.T, r *reconciler, id string, cond func(View, bool) bool) View {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, ok := r.Connector(id)
		if cond(v, ok) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("connector %s: condition not met; last %+v (found %v)", id, v.Connector, ok)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReconcilerFiles: the file-level rules without mounting: invalid file
// (file:line error, terminal), last good version kept, duplicate
// mount_name on the later file, ignored names, deletion, events.
func TestReconcilerFiles(t *testing.T) {
	r, a := newTestReconciler(t)
	events, cancel := r.Subscribe()
	defer cancel()
	var mu sync.Mutex
	var seen []client.Connector
	go func() {
		for v := range events {
			mu.Lock()
			seen = append(seen, v.Connector)
			mu.Unlock()
		}
	}()

	writeConn(t, a, "a", connBody("data"))
	writeConn(t, a, "b", connBody("data")) // same mount_name, later file
	writeConn(t, a, "broken", "name = \"x\"\nbucket = = 1\n")
	for _, junk := range []string{".a.toml.swp", "a.toml~", "x.tmp", "..data", "notes.txt"} {
		os.WriteFile(filepath.Join(a.ConnectorsDir, junk), []byte("garbage ="), 0o600)
	}
	r.Load()

	got := r.Connectors()
	if len(got) != 3 {
		t.Fatalf("connectors: %d, want a, b, broken: %+v", len(got), got)
	}
	va := waitView(t, r, "a", func(v View, ok bool) bool { return ok && v.Connector.State == client.StateInactive })
	if va.Connector.MountPath != filepath.Join(a.ProjectRoot, "data") || va.Connector.Active {
		t.Errorf("a = %+v", va.Connector)
	}
	vb, _ := r.Connector("b")
	if vb.Connector.State != client.StateInactive || vb.Connector.Error != "" {
		// an inactive file never claims a mount_name (names_test.go)
		t.Errorf("two inactive files with one mount_name: b = %+v, want inactive without error", vb.Connector)
	}
	vx, _ := r.Connector("broken")
	if vx.Connector.State != client.StateError || !strings.Contains(vx.Connector.Error, "broken.toml:2") {
		t.Errorf("broken = %+v, want error naming broken.toml:2", vx.Connector)
	}
	if _, err := r.Activate(context.Background(), "broken"); err == nil {
		t.Error("activating a never-valid connector succeeded")
	}

	// a good file turning bad keeps its last good version, with the error
	writeConn(t, a, "a", "name = \"a\"\nmount_name = \"data\"\nbucket = [\n")
	r.Load()
	va, _ = r.Connector("a")
	if va.Connector.State != client.StateError || !strings.Contains(va.Connector.Error, "a.toml") || va.Connector.MountName != "data" {
		t.Errorf("a after breaking = %+v", va.Connector)
	}
	writeConn(t, a, "a", connBody("data"))
	r.Load()
	waitView(t, r, "a", func(v View, ok bool) bool {
		return v.Connector.State == client.StateInactive && v.Connector.Error == ""
	})

	// a dangling symlink in place of a file is an error, not a deletion
	os.Rename(filepath.Join(a.ConnectorsDir, "a.toml"), filepath.Join(a.ConnectorsDir, "a.saved"))
	os.Symlink("..data/a.toml", filepath.Join(a.ConnectorsDir, "a.toml"))
	r.Load()
	va, ok := r.Connector("a")
	if !ok || va.Connector.State != client.StateError || va.Connector.MountName != "data" || !strings.Contains(va.Connector.Error, "cannot read") {
		t.Errorf("a as a dangling symlink = %+v (found %v)", va.Connector, ok)
	}
	os.Remove(filepath.Join(a.ConnectorsDir, "a.toml"))
	os.Rename(filepath.Join(a.ConnectorsDir, "a.saved"), filepath.Join(a.ConnectorsDir, "a.toml"))
	r.Load()
	waitView(t, r, "a", func(v View, ok bool) bool {
		return v.Connector.State == client.StateInactive && v.Connector.Error == ""
	})

	// deleting a leaves b alone
	os.Remove(filepath.Join(a.ConnectorsDir, "a.toml"))
	r.Load()
	waitView(t, r, "a", func(v View, ok bool) bool { return !ok })
	waitView(t, r, "b", func(v View, ok bool) bool { return ok && v.Connector.State == client.StateInactive })
	if _, err := r.Activate(context.Background(), "nope"); err == nil {
		t.Error("activating an unknown connector succeeded")
	}
	mu.Lock()
	n := len(seen)
	mu.Unlock()
	if n == 0 {
		t.Error("no events published")
	}
}
