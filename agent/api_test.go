package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/mounts"
)

type testServer struct {
	api    *API
	ctrl   *fakeController
	socket string
	cl     *client.Client
	stop   func() error // ends Serve and returns its result
}

// startAPI serves the API with ctrl on a Unix socket in a temp dir.
func startAPI(t testing.TB, ctrl *fakeController, o APIOptions) *testServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "s3m-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	o.Controller = ctrl
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	api := NewAPI(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln) }()
	var stopped bool
	var serr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			serr = <-done
		}
		return serr
	}
	t.Cleanup(func() { stop() })
	return &testServer{api: api, ctrl: ctrl, socket: sock, cl: client.New(sock), stop: stop}
}

func apiCode(t *testing.T, err error) (int, string) {
	t.Helper()
	var ae *client.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want an *client.APIError, got %T: %v", err, err)
	}
	return ae.Status, ae.Code
}

// raw sends a request over the socket and returns status, headers and body.
func raw(t *testing.T, sock, method, path string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest(method, "http://s3mountd"+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestRoutesSorted(t *testing.T) {
	less := func(a, b route) int {
		if c := strings.Compare(a.pattern, b.pattern); c != 0 {
			return c
		}
		return strings.Compare(a.method, b.method)
	}
	if !slices.IsSortedFunc(routes, less) {
		var got []string
		for _, r := range routes {
			got = append(got, r.pattern+" "+r.method)
		}
		t.Fatalf("routes must stay sorted by pattern, then method:\n%s", strings.Join(got, "\n"))
	}
	for i := 1; i < len(routes); i++ {
		if less(routes[i-1], routes[i]) == 0 {
			t.Errorf("route %s %s is listed twice", routes[i].method, routes[i].pattern)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		method, path, pattern, id string
		allowed                   []string
	}{
		{"GET", "/v1/health", "/v1/health", "", nil},
		{"HEAD", "/v1/health", "/v1/health", "", nil},
		{"GET", "/v1/connectors", "/v1/connectors", "", nil},
		{"GET", "/v1/connectors/a.b-c", "/v1/connectors/{id}", "a.b-c", nil},
		{"GET", "/v1/connectors/sp%20ace", "/v1/connectors/{id}", "sp ace", nil},
		{"POST", "/v1/connectors/x/activate", "/v1/connectors/{id}/activate", "x", nil},
		{"GET", "/v1/connectors/x/activate", "", "", []string{"POST"}},
		{"GET", "/v1/connectors/a%2Fb", "", "", nil},
		{"GET", "/v1/connectors/", "", "", nil},
		{"GET", "/v1/connectors//files", "", "", nil},
		{"GET", "/v2/health", "", "", nil},
		{"GET", "/metrics", "/metrics", "", nil},
		{"HEAD", "/v1/events", "", "", []string{"GET"}},
	} {
		rt, id, allowed := match(tc.method, tc.path)
		got := ""
		if rt != nil {
			got = rt.pattern
		}
		if got != tc.pattern || id != tc.id || !slices.Equal(allowed, tc.allowed) {
			t.Errorf("match(%s %s) = %q, %q, %v; want %q, %q, %v", tc.method, tc.path, got, id, allowed,
				tc.pattern, tc.id, tc.allowed)
		}
	}
}

func TestHealth(t *testing.T) {
	s := startAPI(t, newFake(3), APIOptions{})
	s.ctrl.setState("c001", client.StateMounted, true, "")
	h, err := s.cl.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != "ok" || h.Version != Version || h.Mounts != 1 {
		t.Fatalf("health = %+v, want ok, %s, 1 mount", h, Version)
	}
}

func TestListAndGetAsAdmin(t *testing.T) {
	s := startAPI(t, newFake(3), APIOptions{})
	ctx := context.Background()
	cs, err := s.cl.Connectors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 || cs[0].ID != "c000" || cs[2].ID != "c002" {
		t.Fatalf("list = %+v", cs)
	}
	all := []string{"view", "browse", "test", "activate", "deactivate"}
	for _, c := range cs {
		if !slices.Equal(c.Actions, all) {
			t.Errorf("%s: actions = %v, want %v (root is admin)", c.ID, c.Actions, all)
		}
	}
	c, err := s.cl.Connector(ctx, "c001")
	if err != nil {
		t.Fatal(err)
	}
	if c.Bucket != "bucket-c001" || c.MountPath != "/mnt/s3/c001" || !slices.Equal(c.Actions, all) {
		t.Fatalf("get = %+v", c)
	}
	_, err = s.cl.Connector(ctx, "nope")
	if st, code := apiCode(t, err); st != 404 || code != client.CodeNotFound {
		t.Fatalf("get nope: %d %s", st, code)
	}
}

func TestEmptyListIsArray(t *testing.T) {
	s := startAPI(t, newFake(0), APIOptions{})
	st, _, body := raw(t, s.socket, "GET", "/v1/connectors", nil)
	if st != 200 || strings.TrimSpace(body) != `{"connectors":[]}` {
		t.Fatalf("empty list: %d %s", st, body)
	}
}

func TestErrorShapeAndUnknownRoutes(t *testing.T) {
	s := startAPI(t, newFake(1), APIOptions{})
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/v1/nope", 404, "not_found"},
		{"GET", "/", 404, "not_found"},
		{"DELETE", "/v1/connectors/c000", 405, "invalid"},
		{"GET", "/v1/connectors/c000/activate", 405, "invalid"},
		{"GET", "/v1/connectors/missing", 404, "not_found"},
		{"GET", "/v1/connectors/c000/files?limit=abc", 400, "invalid"},
		{"GET", "/v1/connectors/c000/files?limit=0", 400, "invalid"},
	} {
		st, hdr, body := raw(t, s.socket, tc.method, tc.path, nil)
		if st != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) || !strings.Contains(body, `"message":"`) {
			t.Errorf("%s %s: %d %s; want %d with code %s", tc.method, tc.path, st, body, tc.status, tc.code)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, ct)
		}
		if tc.status == 405 && hdr.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tc.method, tc.path)
		}
	}
}

func TestRejectsBrowserRequests(t *testing.T) {
	s := startAPI(t, newFake(1), APIOptions{})
	for _, h := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Referer": "http://127.0.0.1:8888/lab"},
	} {
		st, _, body := raw(t, s.socket, "POST", "/v1/connectors/c000/activate", h)
		if st != 403 || !strings.Contains(body, `"code":"forbidden"`) || !strings.Contains(body, "Origin or Referer") {
			t.Errorf("%v: %d %s, want 403 forbidden", h, st, body)
		}
	}
	if v, _ := s.ctrl.Connector("c000"); v.Connector.Active {
		t.Fatal("a browser request activated the connector")
	}
}

func TestActivateDeactivate(t *testing.T) {
	s := startAPI(t, newFake(2), APIOptions{})
	ctx := context.Background()
	c, err := s.cl.Activate(ctx, "c000")
	if err != nil {
		t.Fatal(err)
	}
	if c.State != client.StateMounted || !c.Active || len(c.Actions) != 5 {
		t.Fatalf("activate = %+v", c)
	}
	s.ctrl.failMount["c001"] = "AccessDenied: check the credentials"
	c, err = s.cl.Activate(ctx, "c001")
	if err != nil {
		t.Fatal(err)
	}
	if c.State != client.StateError || c.Error != "AccessDenied: check the credentials" {
		t.Fatalf("failed activation answers the connector in state error, got %+v", c)
	}
	c, err = s.cl.Deactivate(ctx, "c000")
	if err != nil {
		t.Fatal(err)
	}
	if c.State != client.StateInactive || c.Active {
		t.Fatalf("deactivate = %+v", c)
	}
	_, err = s.cl.Activate(ctx, "missing")
	if st, code := apiCode(t, err); st != 404 || code != "not_found" {
		t.Fatalf("activate missing: %d %s", st, code)
	}
}

func TestActivateTimeoutIsUnavailable(t *testing.T) {
	f := newFake(1)
	f.block = make(chan struct{})
	defer close(f.block)
	s := startAPI(t, f, APIOptions{ActionTimeout: 50 * time.Millisecond})
	_, err := s.cl.Activate(context.Background(), "c000")
	st, code := apiCode(t, err)
	if st != 503 || code != client.CodeUnavailable || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("activate past the timeout: %d %s %v", st, code, err)
	}
}

func TestControllerErrorsMapToCodes(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
		msg    string
	}{
		{ErrNotFound, 404, "not_found", "not found"},
		{ErrInvalid, 400, "invalid", "invalid"},
		{ErrConflict, 409, "conflict", "conflict"},
		{ErrUnavailable, 503, "unavailable", "unavailable"},
		{Errorf(client.CodeConflict, "connector %q is busy", "c000"), 409, "conflict", `connector "c000" is busy`},
		{Errorf(client.CodeInvalid, "c000.toml:3: bucket: missing"), 400, "invalid", "c000.toml:3: bucket: missing"},
		{Errorf("weird", "odd code"), 500, "internal", "odd code"},
		{errors.New("disk on fire"), 500, "internal", "disk on fire"},
		{context.DeadlineExceeded, 503, "unavailable", "timed out"},
	} {
		f := newFake(1)
		f.err = tc.err
		s := startAPI(t, f, APIOptions{})
		ctx := context.Background()
		calls := map[string]func() error{
			"activate":   func() error { _, err := s.cl.Activate(ctx, "c000"); return err },
			"deactivate": func() error { _, err := s.cl.Deactivate(ctx, "c000"); return err },
			"refresh":    func() error { return s.cl.Refresh(ctx, "c000", "/") },
			"test":       func() error { _, err := s.cl.Test(ctx, "c000"); return err },
			"files":      func() error { _, err := s.cl.Files(ctx, "c000", "/", "", 0); return err },
		}
		for name, call := range calls {
			err := call()
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code || !strings.Contains(ae.Message, tc.msg) {
				t.Errorf("%v from %s: got %#v, want %d %s %q", tc.err, name, err, tc.status, tc.code, tc.msg)
			}
		}
		s.stop()
	}
}

func TestFilesPaging(t *testing.T) {
	f := newFake(1)
	f.dirSize = 1234
	s := startAPI(t, f, APIOptions{})
	ctx := context.Background()
	_, err := s.cl.Files(ctx, "c000", "/", "", 0)
	if st, code := apiCode(t, err); st != 409 || code != "conflict" {
		t.Fatalf("files of an unmounted connector: %d %s", st, code)
	}
	f.setState("c000", client.StateMounted, true, "")
	p, err := s.cl.Files(ctx, "c000", "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != DefaultFilesLimit || p.NextCursor != "500" || p.Path != "/" {
		t.Fatalf("first page: %d entries, next %q, path %q", len(p.Entries), p.NextCursor, p.Path)
	}
	all, err := s.cl.AllFiles(ctx, "c000", "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range all {
		seen[e.Name] = true
	}
	if len(all) != 1234 || len(seen) != 1234 {
		t.Fatalf("following next_cursor gave %d entries (%d distinct), want 1234", len(all), len(seen))
	}
	f.dirSize = 7000
	p, err = s.cl.Files(ctx, "c000", "/", "", 99999)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != MaxFilesLimit {
		t.Fatalf("limit=99999 gave %d entries, want the maximum %d", len(p.Entries), MaxFilesLimit)
	}
	p, err = s.cl.Files(ctx, "c000", "/", "6990", 0)
	if err != nil || len(p.Entries) != 10 || p.NextCursor != "" {
		t.Fatalf("last page: %+v %v", p, err)
	}
}

func TestRefreshCleansPath(t *testing.T) {
	f := newFake(1)
	s := startAPI(t, f, APIOptions{})
	ctx := context.Background()
	for _, p := range []string{"", "/", "data/../data/x", "../../etc"} {
		if err := s.cl.Refresh(ctx, "c000", p); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"c000:/", "c000:/", "c000:/data/x", "c000:/etc"}
	if !slices.Equal(f.refreshed, want) {
		t.Fatalf("refreshed %v, want %v", f.refreshed, want)
	}
}

func TestTestRoute(t *testing.T) {
	f := newFake(2)
	f.failMount["c001"] = "InvalidAccessKeyId"
	s := startAPI(t, f, APIOptions{})
	ctx := context.Background()
	r, err := s.cl.Test(ctx, "c000")
	if err != nil || !r.OK || len(r.Checks) != 5 {
		t.Fatalf("test c000: %+v %v", r, err)
	}
	r, err = s.cl.Test(ctx, "c001")
	if err != nil || r.OK || r.Checks[1].OK || r.Checks[1].Error != "InvalidAccessKeyId" {
		t.Fatalf("test c001: %+v %v", r, err)
	}
}

func TestPubKeyRoute(t *testing.T) {
	s := startAPI(t, newFake(0), APIOptions{Recipient: "age1testrecipient"})
	r, err := s.cl.PubKey(context.Background())
	if err != nil || r != "age1testrecipient" {
		t.Fatalf("pubkey = %q, %v", r, err)
	}
}

func TestEventsStream(t *testing.T) {
	f := newFake(2)
	s := startAPI(t, f, APIOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev, err := s.cl.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	if _, err := s.cl.Activate(ctx, "c001"); err != nil {
		t.Fatal(err)
	}
	var states []client.State
	for len(states) < 2 {
		c, err := ev.Next()
		if err != nil {
			t.Fatal(err)
		}
		if c.ID != "c001" || len(c.Actions) != 5 {
			t.Fatalf("event %+v", c)
		}
		states = append(states, c.State)
	}
	if !slices.Equal(states, []client.State{client.StateMounting, client.StateMounted}) {
		t.Fatalf("events %v", states)
	}
	cancel()
	if _, err := ev.Next(); err == nil {
		t.Fatal("Next after cancel: want an error")
	}
}

func TestEventsWireFormatAndKeepAlive(t *testing.T) {
	f := newFake(1)
	s := startAPI(t, f, APIOptions{KeepAlive: 20 * time.Millisecond})
	conn, err := net.Dial("unix", s.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /v1/events HTTP/1.1\r\nHost: s3mountd\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	body := bufio.NewReader(resp.Body)
	sawKeepAlive, sawData := false, false
	for !sawKeepAlive || !sawData {
		line, err := body.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case line == ": keep-alive\n":
			if !sawKeepAlive {
				sawKeepAlive = true
				f.setState("c000", client.StateMounted, true, "")
			}
		case strings.HasPrefix(line, "data: {"):
			if !strings.Contains(line, `"id":"c000"`) || !strings.Contains(line, `"state":"mounted"`) {
				t.Fatalf("event line %q", line)
			}
			next, _ := body.ReadString('\n')
			if next != "\n" {
				t.Fatalf("an event must end with a blank line, got %q", next)
			}
			sawData = true
		}
	}
}

func TestShutdownEndsStreamsAndServe(t *testing.T) {
	f := newFake(1)
	s := startAPI(t, f, APIOptions{})
	ev, err := s.cl.Events(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	for f.subscribers() == 0 {
		time.Sleep(time.Millisecond)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("Serve after ctx end = %v, want nil", err)
	}
	if _, err := ev.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream after shutdown: %v, want EOF", err)
	}
	if f.subscribers() != 0 {
		t.Fatal("subscription not cancelled")
	}
	if _, err := os.Stat(s.socket); !os.IsNotExist(err) {
		t.Fatalf("socket file left after shutdown: %v", err)
	}
	_, err = s.cl.Health(context.Background())
	var ce *client.ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("health after shutdown: %v", err)
	}
}

func TestClientConnectHints(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "nothing.sock")
	_, err := client.New(sock).Health(context.Background())
	want := "cannot reach s3mountd at " + sock + ": is the service running? systemctl status s3mountd"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("err = %v, want prefix %q", err, want)
	}
	// EACCES on a socket whose group the caller is not in: the hint names
	// the group (a plain file stands in for the socket: only its owner and
	// mode are looked at).
	if err := os.WriteFile(sock, nil, 0o660); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sock, 0, 65534); err != nil {
		t.Skipf("cannot give the stand-in socket group 65534: %v", err)
	}
	c := client.New(sock)
	c.Dial = func(ctx context.Context) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	}
	_, err = c.Health(context.Background())
	if err == nil || !strings.Contains(err.Error(), "permission denied on "+sock+": you are not in group ") {
		t.Fatalf("err = %v, want the group hint", err)
	}
}

func TestMetricsRoute(t *testing.T) {
	f := newFake(2)
	f.setState("c001", client.StateMounted, true, "")
	f.mu.Lock()
	v := f.views["c001"]
	staged := int64(4096)
	v.Connector.StagingBytes = &staged
	v.Stats = &mounts.Stats{Requests: map[string]uint64{"HeadObject": 3, "ListObjectsV2": 100}, MetadataBytes: 2048, MetadataEntries: 10}
	f.views["c001"] = v
	f.mu.Unlock()
	m := NewMetrics(f)
	s := startAPI(t, f, APIOptions{Metrics: m})
	ctx := context.Background()
	m.ReconcileErrors.WithLabelValues("c001").Inc()
	m.WorkerRestarts.WithLabelValues("c001").Add(2)
	if _, err := s.cl.Connectors(ctx); err != nil {
		t.Fatal(err)
	}
	s.cl.Connector(ctx, "nope")
	text, err := s.cl.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`s3mounts_connector_state{connector="c000",state="inactive"} 1`,
		`s3mounts_connector_state{connector="c000",state="mounted"} 0`,
		`s3mounts_connector_state{connector="c001",state="mounted"} 1`,
		`s3mounts_connector_active{connector="c001"} 1`,
		`s3mounts_connector_staging_bytes{connector="c001"} 4096`,
		`s3mounts_connector_s3_requests_total{connector="c001",op="HeadObject"} 3`,
		`s3mounts_connector_s3_requests_total{connector="c001",op="ListObjectsV2"} 100`,
		`s3mounts_connector_metadata_cache_bytes{connector="c001"} 2048`,
		`s3mounts_connector_metadata_cache_entries{connector="c001"} 10`,
		`s3mounts_reconcile_errors_total{connector="c001"} 1`,
		`s3mounts_worker_restarts_total{connector="c001"} 2`,
		`s3mounts_api_requests_total{code="200",route="/v1/connectors"} 1`,
		`s3mounts_api_requests_total{code="404",route="/v1/connectors/{id}"} 1`,
		`s3mounts_api_request_duration_seconds_count{route="/v1/connectors"} 1`,
		`s3mounts_build_info{version="` + Version + `"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The TCP handler serves the same registry.
	st, _, body := raw(t, s.socket, "GET", "/v1/metrics", nil)
	if st != 200 || !strings.Contains(body, "s3mounts_connector_state") {
		t.Fatalf("/v1/metrics: %d", st)
	}
}

// TestSameConnectorSeesEveryField: a change of any field but Actions makes
// the list encode that connector again.
func TestSameConnectorSeesEveryField(t *testing.T) {
	base := fakeConnector("x")
	rt := reflect.TypeOf(base)
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Name == "Actions" {
			continue
		}
		c := fakeConnector("x")
		v := reflect.ValueOf(&c).Elem().Field(i)
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "!")
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Pointer: // *time.Time, *int64
			if n, ok := v.Interface().(*int64); ok {
				m := int64(1)
				if n != nil {
					m = *n + 1
				}
				v.Set(reflect.ValueOf(&m))
				break
			}
			later := base.CreatedAt.Add(time.Second)
			v.Set(reflect.ValueOf(&later))
		default:
			t.Fatalf("field %s of kind %s: teach this test and sameConnector about it", f.Name, v.Kind())
		}
		if sameConnector(&base, &c) {
			t.Errorf("sameConnector ignores a change of %s", f.Name)
		}
	}
	c := fakeConnector("x")
	c.Actions = []string{"view"}
	if !sameConnector(&base, &c) {
		t.Error("Actions must not matter")
	}
	c.CreatedAt = nil
	if sameConnector(&base, &c) {
		t.Error("nil time vs set time")
	}
}

// TestListReflectsChanges: the encoding cache never serves a stale state.
func TestListReflectsChanges(t *testing.T) {
	f := newFake(3)
	s := startAPI(t, f, APIOptions{})
	ctx := context.Background()
	for _, st := range []client.State{client.StateMounting, client.StateMounted, client.StateError} {
		f.setState("c001", st, true, "msg "+string(st))
		cs, err := s.cl.Connectors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cs[1].State != st || cs[1].Error != "msg "+string(st) || cs[0].State != client.StateInactive {
			t.Fatalf("list after setting %s: %+v", st, cs[1])
		}
		var direct client.Connector
		b, _ := json.Marshal(cs[1])
		json.Unmarshal(b, &direct)
		if !reflect.DeepEqual(direct, cs[1]) {
			t.Fatal("round trip differs")
		}
	}
	// The body is valid JSON equal to what encoding/json would produce.
	st, _, body := raw(t, s.socket, "GET", "/v1/connectors", nil)
	var got client.ConnectorList
	if st != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("list: %d %s", st, body)
	}
	want := client.ConnectorList{}
	for _, v := range f.Connectors() {
		c := v.Connector
		c.Actions = []string{"view", "browse", "test", "activate", "deactivate"}
		want.Connectors = append(want.Connectors, c)
	}
	wb, _ := json.Marshal(want)
	if strings.TrimSpace(body) != string(wb) {
		t.Fatalf("list body\n%s\nwant\n%s", body, wb)
	}
}
