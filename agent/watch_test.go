package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatcher: every kind of change in the watched directory leads to a
// re-read, bursts are debounced, and a directory missing at start or
// replaced later is watched once it (re)appears.
func TestWatcher(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "connectors.d") // missing at start
	var n atomic.Int64
	started := make(chan struct{})
	w := &watcher{dirs: []string{dir}, resync: time.Hour, reload: func() { n.Add(1) }, log: slog.New(slog.DiscardHandler), started: started}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { w.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	<-started // the watches are in place

	expect := func(what string, f func()) {
		t.Helper()
		before := n.Load()
		f()
		deadline := time.Now().Add(60 * time.Second) // an event, not a bound: generous for a loaded machine
		for n.Load() == before {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no re-read", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(3 * debounce) // let the burst settle
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "a.toml")
	expect("directory created after start", func() { must(os.Mkdir(dir, 0o700)) })
	expect("file written", func() { must(os.WriteFile(p, []byte("x"), 0o600)) })
	expect("write then rename", func() {
		must(os.WriteFile(p+".tmp", []byte("y"), 0o600))
		must(os.Rename(p+".tmp", p))
	})
	expect("chmod", func() { must(os.Chmod(p, 0o640)) })
	expect("editor swap file dance", func() {
		sw := filepath.Join(dir, ".a.toml.swp")
		must(os.WriteFile(sw, []byte("s"), 0o600))
		must(os.Rename(p, p+"~"))
		must(os.WriteFile(p, []byte("z"), 0o600))
		must(os.Remove(p + "~"))
		must(os.Remove(sw))
	})
	expect("delete", func() { must(os.Remove(p)) })
	expect("kubernetes ..data swap", func() {
		d1 := filepath.Join(dir, "..2026_01_01")
		must(os.Mkdir(d1, 0o700))
		must(os.WriteFile(filepath.Join(d1, "k.toml"), []byte("1"), 0o600))
		must(os.Symlink("..2026_01_01", filepath.Join(dir, "..data_tmp")))
		must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		must(os.Symlink("..data/k.toml", filepath.Join(dir, "k.toml")))
	})
	expect("directory replaced", func() {
		nd := filepath.Join(root, "new")
		must(os.Mkdir(nd, 0o700))
		must(os.RemoveAll(dir))
		must(os.Rename(nd, dir))
	})
	expect("file in the replaced directory", func() { must(os.WriteFile(p, []byte("x"), 0o600)) })

	// a burst is one re-read (or very few), not one per event. On a loaded
	// machine the writes themselves may be spread over several debounce
	// periods; each such gap may legitimately end in a re-read.
	before := n.Load()
	start := time.Now()
	for i := 0; i < 50; i++ {
		must(os.WriteFile(p, []byte{byte(i)}, 0o600))
	}
	spread := time.Since(start)
	deadline := time.Now().Add(60 * time.Second)
	for n.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("50 quick writes: no re-read")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(5 * debounce) // let the burst settle
	limit := 3 + int64(spread/debounce)
	if got := n.Load() - before; got > limit {
		t.Errorf("50 quick writes (in %v) gave %d re-reads, want 1 (debounced; at most %d)", spread, got, limit)
	}
}
