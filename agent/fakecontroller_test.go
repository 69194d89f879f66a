package agent

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
)

// fakeController is an in-memory Controller for the API's tests: it keeps
// connectors in a map, mounts instantly (or fails when told), pages a
// synthetic directory and broadcasts every state change.
type fakeController struct {
	mu        sync.Mutex
	views     map[string]View
	subs      map[int]chan View
	next      int
	failMount map[string]string // id → error message of a failed mount
	err       error             // returned by every call that can fail
	refreshed []string          // "id:path" of Refresh calls
	dirSize   int               // entries in every directory
	block     chan struct{}     // when set, Activate waits for it (or ctx)

	browseUnmounted bool // Files works whatever the state
}

func newFake(n int) *fakeController {
	f := &fakeController{views: map[string]View{}, subs: map[int]chan View{}, failMount: map[string]string{}, dirSize: 1234}
	for i := range n {
		f.add(fmt.Sprintf("c%03d", i), nil)
	}
	return f
}

func fakeConnector(id string) client.Connector {
	t := time.Date(2022, 7, 18, 14, 23, 0, 0, time.UTC)
	return client.Connector{
		ID: id, Name: "Connector " + id, Description: "test connector", Endpoint: "http://127.0.0.1:9000",
		Region: "us-east-1", Bucket: "bucket-" + id, MountName: id, MountPath: "/mnt/s3/" + id, Mode: "ro",
		Backend: "default", State: client.StateInactive, CreatedBy: "alice", CreatedAt: &t, UpdatedAt: &t,
		File: "/etc/s3mounts/connectors.d/" + id + ".toml", Owner: "1000", Group: "100",
		FileMode: "0644", DirMode: "0755",
	}
}

func (f *fakeController) add(id string, access []config.AccessRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.views[id] = View{Connector: fakeConnector(id), Access: access}
}

func (f *fakeController) setAccess(id string, access []config.AccessRule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.views[id]
	v.Access = access
	f.views[id] = v
}

func (f *fakeController) Connectors() []View {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, 0, len(f.views))
	for id := range f.views {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]View, len(ids))
	for i, id := range ids {
		out[i] = f.views[id]
	}
	return out
}

func (f *fakeController) Connector(id string) (View, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.views[id]
	return v, ok
}

// setState changes a connector's state and tells the subscribers.
func (f *fakeController) setState(id string, st client.State, active bool, msg string) View {
	f.mu.Lock()
	v := f.views[id]
	v.Connector.State, v.Connector.Active, v.Connector.Error = st, active, msg
	f.views[id] = v
	subs := make([]chan View, 0, len(f.subs))
	for _, ch := range f.subs {
		subs = append(subs, ch)
	}
	f.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- v:
		default: // a slow subscriber loses events, as the real one may
		}
	}
	return v
}

func (f *fakeController) lookup(id string) error {
	if f.err != nil {
		return f.err
	}
	if _, ok := f.Connector(id); !ok {
		return ErrNotFound
	}
	return nil
}

func (f *fakeController) Activate(ctx context.Context, id string) (View, error) {
	if err := f.lookup(id); err != nil {
		return View{}, err
	}
	f.setState(id, client.StateMounting, true, "")
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return View{}, ctx.Err()
		}
	}
	f.mu.Lock()
	msg := f.failMount[id]
	f.mu.Unlock()
	if msg != "" {
		return f.setState(id, client.StateError, true, msg), nil
	}
	return f.setState(id, client.StateMounted, true, ""), nil
}

func (f *fakeController) Deactivate(ctx context.Context, id string) (View, error) {
	if err := f.lookup(id); err != nil {
		return View{}, err
	}
	f.setState(id, client.StateUnmounting, false, "")
	return f.setState(id, client.StateInactive, false, ""), nil
}

func (f *fakeController) Refresh(ctx context.Context, id, path string) error {
	if err := f.lookup(id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refreshed = append(f.refreshed, id+":"+path)
	return nil
}

func (f *fakeController) Test(ctx context.Context, id string) (client.TestResult, error) {
	if err := f.lookup(id); err != nil {
		return client.TestResult{}, err
	}
	f.mu.Lock()
	msg := f.failMount[id]
	f.mu.Unlock()
	res := client.TestResult{OK: msg == ""}
	for _, n := range []string{"endpoint", "credentials", "bucket", "list", "read"} {
		c := client.Check{Name: n, OK: true, MS: 3}
		if msg != "" && n == "credentials" {
			c.OK, c.Error = false, msg
		}
		res.Checks = append(res.Checks, c)
	}
	return res, nil
}

// Files pages through a synthetic directory of dirSize entries; the
// cursor is the index of the next entry.
func (f *fakeController) Files(ctx context.Context, id, path, cursor string, limit int) (client.Files, error) {
	if err := f.lookup(id); err != nil {
		return client.Files{}, err
	}
	v, _ := f.Connector(id)
	if v.Connector.State != client.StateMounted && !f.browseUnmounted {
		return client.Files{}, Errorf(client.CodeConflict, "connector %q is not mounted; activate it first", id)
	}
	start := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil {
			return client.Files{}, Errorf(client.CodeInvalid, "bad cursor %q", cursor)
		}
		start = n
	}
	out := client.Files{Path: path}
	end := min(start+limit, f.dirSize)
	for i := start; i < end; i++ {
		name := fmt.Sprintf("f%05d.csv", i)
		out.Entries = append(out.Entries, client.Entry{Name: name, Type: "file", Size: int64(i),
			MTime: time.Unix(1600000000, 0).UTC(), Path: v.Connector.MountPath + path + name,
			S3URI: "s3://" + v.Connector.Bucket + path + name})
	}
	if end < f.dirSize {
		out.NextCursor = strconv.Itoa(end)
	}
	return out, nil
}

func (f *fakeController) Subscribe() (<-chan View, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan View, 64)
	id := f.next
	f.next++
	f.subs[id] = ch
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

func (f *fakeController) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeController) MountedCount() int {
	n := 0
	for _, v := range f.Connectors() {
		if v.Connector.State == client.StateMounted {
			n++
		}
	}
	return n
}

var _ Controller = (*fakeController)(nil)

// StartFakeAPI serves the API with n fake connectors on a temporary Unix
// socket and returns its path (for the benchmarks in package agent_test).
func StartFakeAPI(tb testing.TB, n int) string { return startAPI(tb, newFake(n), APIOptions{}).socket }
