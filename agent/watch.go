package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long the watcher waits for a burst of events (an editor's
// write-then-rename, a Kubernetes ..data swap) to settle before re-reading.
const debounce = 100 * time.Millisecond

// watcher re-reads the connectors (via reload) when anything changes in the
// connectors directory or the secrets directory, and every resync period
// regardless. It watches the directories, not the files, so renames over a
// file and symlink swaps are seen; a directory missing at start or replaced
// later is watched again as soon as it (re)appears, through its parent.
type watcher struct {
	dirs   []string
	resync time.Duration
	reload func()
	log    *slog.Logger
	// started, if not nil, is closed once the watches are in place.
	started chan struct{}
}

func (w *watcher) markStarted() {
	if w.started != nil {
		close(w.started)
	}
}

func (w *watcher) run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		w.log.Error("file watching unavailable; relying on the periodic resync", "err", err)
		w.markStarted()
		return w.poll(ctx)
	}
	defer fw.Close()
	watched := map[string]bool{}
	ensure := func() {
		for _, d := range w.dirs {
			if d == "" {
				continue
			}
			// Watch the parent too, to see the directory appear or be replaced.
			if p := filepath.Dir(d); !watched[p] {
				if err := fw.Add(p); err == nil {
					watched[p] = true
				}
			}
			fi, err := os.Stat(d)
			if err != nil || !fi.IsDir() {
				if watched[d] {
					fw.Remove(d)
					delete(watched, d)
				}
				continue
			}
			if !watched[d] {
				if err := fw.Add(d); err != nil {
					w.log.Warn("cannot watch directory", "dir", d, "err", err)
					continue
				}
				watched[d] = true
			}
		}
	}
	ensure()
	w.markStarted()
	isTarget := func(p string) bool {
		for _, d := range w.dirs {
			if p == d || filepath.Dir(p) == d {
				return true
			}
		}
		return false
	}

	resync := w.resync
	if resync <= 0 {
		resync = time.Minute
	}
	tick := time.NewTicker(resync)
	defer tick.Stop()
	var deb *time.Timer
	var debC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if !isTarget(ev.Name) {
				continue // a sibling of a watched directory
			}
			for _, d := range w.dirs {
				if ev.Name == d && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0 {
					// the directory itself went away (or was renamed):
					// forget the old watch so the new one is added
					fw.Remove(d)
					delete(watched, d)
				}
			}
			if deb == nil {
				deb = time.NewTimer(debounce)
				debC = deb.C
			} else {
				deb.Reset(debounce)
			}
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.log.Warn("file watch error; re-reading everything", "err", err)
			watched = map[string]bool{}
			ensure()
			w.reload()
		case <-debC:
			deb, debC = nil, nil
			ensure()
			w.reload()
		case <-tick.C:
			ensure()
			w.reload()
		}
	}
}

// poll is the fallback without inotify: re-read every few seconds.
func (w *watcher) poll(ctx context.Context) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.reload()
		}
	}
}
