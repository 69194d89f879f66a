package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
)

var (
	root  = &Caller{Known: true, UID: 0, User: "root", Groups: []string{"root"}, GIDs: []uint32{0}}
	olga  = &Caller{Known: true, UID: 1001, User: "olga", Groups: []string{"olga", "ops"}, GIDs: []uint32{1001, 2001}}
	vic   = &Caller{Known: true, UID: 1002, User: "vic", Groups: []string{"vic", "staff"}, GIDs: []uint32{1002, 2002}}
	paul  = &Caller{Known: true, UID: 1003, User: "paul", Groups: []string{"paul", "team-a"}, GIDs: []uint32{1003, 2003}}
	adam  = &Caller{Known: true, UID: 1004, User: "adam", Groups: []string{"adam", "adm"}, GIDs: []uint32{1004, 2004}}
	ghost = &Caller{Known: true, UID: 4242} // no passwd entry
	anon  = &Caller{}                       // no peer credentials
)

var testRoles = config.Roles{
	Admin:    []string{"group:adm"},
	Operator: []string{"group:ops", "uid:4242"},
	Viewer:   []string{"user:vic"},
}

func TestRoleOf(t *testing.T) {
	for _, tc := range []struct {
		c     *Caller
		roles config.Roles
		want  Role
	}{
		{root, testRoles, RoleAdmin},
		{root, config.Roles{Admin: []string{"group:nobody"}}, RoleAdmin}, // root always
		{adam, testRoles, RoleAdmin},
		{olga, testRoles, RoleOperator},
		{ghost, testRoles, RoleOperator}, // uid:N needs no passwd entry
		{vic, testRoles, RoleViewer},
		{paul, testRoles, RoleNone},
		{anon, testRoles, RoleNone},
		{nil, testRoles, RoleNone},
		// member forms: by gid number, malformed entries never match
		{paul, config.Roles{Viewer: []string{"group:2003"}}, RoleViewer},
		{paul, config.Roles{Operator: []string{"paul", "user:", "group", "uid:x"}}, RoleNone},
		// the SPEC's defaults
		{&Caller{Known: true, UID: 7, User: "s", Groups: []string{"s3mounts"}}, DefaultRoles, RoleOperator},
		{&Caller{Known: true, UID: 8, User: "a", Groups: []string{"s3mounts-admin"}}, DefaultRoles, RoleAdmin},
		{paul, DefaultRoles, RoleNone},
		{&Caller{Known: true, UID: 7, User: "s", Groups: []string{"s3mounts"}}, config.Roles{}, RoleNone},
		// the highest role wins
		{olga, config.Roles{Viewer: []string{"user:olga"}, Admin: []string{"group:ops"}}, RoleAdmin},
	} {
		if got := RoleOf(tc.c, tc.roles); got != tc.want {
			t.Errorf("RoleOf(%v, %+v) = %v, want %v", tc.c, tc.roles, got, tc.want)
		}
	}
}

func TestAllowed(t *testing.T) {
	all := []string{"view", "browse", "test", "activate", "deactivate"}
	vb := []string{"view", "browse"}
	policy := []config.AccessRule{
		{Groups: []string{"team-a"}, Actions: []config.Action{"view", "browse"}},
		{Users: []string{"olga"}, Actions: []config.Action{"view", "activate"}},
		{Users: []string{"1002"}}, // vic by uid, all actions by default
	}
	noView := []config.AccessRule{{Users: []string{"paul"}, Actions: []config.Action{"browse"}}}
	for _, tc := range []struct {
		name  string
		c     *Caller
		role  Role
		rules []config.AccessRule
		want  []string
	}{
		{"admin without policy", adam, RoleAdmin, nil, all},
		{"admin unbound by policy", adam, RoleAdmin, policy, all},
		{"operator without policy", olga, RoleOperator, nil, all},
		{"viewer without policy", vic, RoleViewer, nil, vb},
		{"plain user without policy", paul, RoleNone, nil, nil},
		{"empty policy is no policy", olga, RoleOperator, []config.AccessRule{}, all},
		{"operator: role AND rule", olga, RoleOperator, policy, []string{"view", "activate"}},
		{"viewer: rule grants all, role caps", vic, RoleViewer, policy, vb},
		{"plain user: exactly the rule", paul, RoleNone, policy, vb},
		{"operator not named by any rule", &Caller{Known: true, UID: 9, User: "zed", Groups: []string{"ops"}},
			RoleOperator, policy, nil},
		{"plain user not named", ghost, RoleNone, policy, nil},
		{"no credentials", anon, RoleNone, policy, nil},
		{"browse without view is invisible", paul, RoleNone, noView, nil},
		{"rule by gid", paul, RoleNone, []config.AccessRule{{Groups: []string{"2003"}, Actions: []config.Action{"view"}}},
			[]string{"view"}},
	} {
		got := Actions(tc.c, tc.role, tc.rules)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: Actions = %v, want %v", tc.name, got, tc.want)
		}
		for _, a := range config.AllActions {
			allowed := Allowed(tc.c, tc.role, tc.rules, a)
			if a != config.ActionView && !Allowed(tc.c, tc.role, tc.rules, config.ActionView) {
				continue // invisible: the API answers not_found whatever the action
			}
			if allowed != slices.Contains(tc.want, string(a)) {
				t.Errorf("%s: Allowed(%s) = %v", tc.name, a, allowed)
			}
		}
	}
}

// fakeIdentities makes the API see callers by uid without real accounts.
func fakeIdentities(api *API, callers ...*Caller) {
	byUID := map[uint32]*Caller{}
	for _, c := range callers {
		byUID[c.UID] = c
	}
	api.ids.lookup = func(uid uint32) (string, []string, []uint32) {
		if c, ok := byUID[uid]; ok {
			return c.User, c.Groups, c.GIDs
		}
		return "", nil, nil
	}
}

// call runs one request through the API as uid, in process.
func call(t *testing.T, api *API, uid uint32, method, path string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, "http://s3mountd"+path, nil)
	req = req.WithContext(context.WithValue(req.Context(), peerCredKey{}, peerCred{ok: true, uid: uid, pid: 1}))
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestAuthorizationThroughHandlers checks every route's decision for every
// kind of caller (role × policy), with identities faked in process; the
// same rules over the real socket under real uids are in
// TestAuthzMatrixRealUIDs.
func TestAuthorizationThroughHandlers(t *testing.T) {
	f := newFake(0)
	f.add("open", nil)
	f.add("team", []config.AccessRule{
		{Groups: []string{"team-a"}, Actions: []config.Action{"view", "browse"}},
		{Users: []string{"olga"}, Actions: []config.Action{"view", "activate"}},
	})
	f.browseUnmounted = true
	api := NewAPI(APIOptions{Controller: f, Agent: &config.Agent{Roles: testRoles},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	stranger := &Caller{Known: true, UID: 5555} // no passwd entry, no role
	fakeIdentities(api, root, olga, vic, paul, adam)

	type want map[string]int // "METHOD path" → status
	routesFor := func(id string) []string {
		return []string{
			"GET /v1/connectors/" + id,
			"GET /v1/connectors/" + id + "/files",
			"POST /v1/connectors/" + id + "/refresh",
			"POST /v1/connectors/" + id + "/test",
			"POST /v1/connectors/" + id + "/activate",
			"POST /v1/connectors/" + id + "/deactivate",
		}
	}
	statuses := func(id string, codes ...int) want {
		w := want{}
		for i, r := range routesFor(id) {
			w[r] = codes[i]
		}
		return w
	}
	for _, tc := range []struct {
		c        *Caller
		list     []string
		open     want
		team     want
		metrics  int
		openActs []string
	}{
		{adam, []string{"open", "team"}, statuses("open", 200, 200, 200, 200, 200, 200),
			statuses("team", 200, 200, 200, 200, 200, 200), 200, []string{"view", "browse", "test", "activate", "deactivate"}},
		{olga, []string{"open", "team"}, statuses("open", 200, 200, 200, 200, 200, 200),
			statuses("team", 200, 403, 403, 403, 200, 403), 403, []string{"view", "browse", "test", "activate", "deactivate"}},
		{vic, []string{"open"}, statuses("open", 200, 200, 200, 403, 403, 403),
			statuses("team", 404, 404, 404, 404, 404, 404), 403, []string{"view", "browse"}},
		{paul, []string{"team"}, statuses("open", 404, 404, 404, 404, 404, 404),
			statuses("team", 200, 200, 200, 403, 403, 403), 403, nil},
		{stranger, []string{}, statuses("open", 404, 404, 404, 404, 404, 404),
			statuses("team", 404, 404, 404, 404, 404, 404), 403, nil},
	} {
		t.Run(tc.c.String(), func(t *testing.T) {
			st, body := call(t, api, tc.c.UID, "GET", "/v1/connectors")
			var l client.ConnectorList
			if st != 200 || json.Unmarshal([]byte(body), &l) != nil {
				t.Fatalf("list: %d %s", st, body)
			}
			var ids []string
			for _, c := range l.Connectors {
				ids = append(ids, c.ID)
				if c.ID == "open" && !slices.Equal(c.Actions, tc.openActs) {
					t.Errorf("open: actions %v, want %v", c.Actions, tc.openActs)
				}
			}
			if !slices.Equal(ids, tc.list) && !(len(ids) == 0 && len(tc.list) == 0) {
				t.Errorf("list = %v, want %v", ids, tc.list)
			}
			for _, w := range []want{tc.open, tc.team} {
				for r, code := range w {
					method, path, _ := strings.Cut(r, " ")
					st, body := call(t, api, tc.c.UID, method, path)
					if st != code {
						t.Errorf("%s: %d %s, want %d", r, st, body, code)
					}
					if st == 403 && !strings.Contains(body, "may not") {
						t.Errorf("%s: forbidden must name the action: %s", r, body)
					}
				}
			}
			if st, _ := call(t, api, tc.c.UID, "GET", "/metrics"); st != tc.metrics {
				t.Errorf("metrics: %d, want %d", st, tc.metrics)
			}
			if st, _ := call(t, api, tc.c.UID, "GET", "/v1/health"); st != 200 {
				t.Errorf("health: %d, want 200 for anyone", st)
			}
		})
	}
	// A forbidden answer names the action.
	_, body := call(t, api, olga.UID, "POST", "/v1/connectors/team/deactivate")
	if !strings.Contains(body, "may not deactivate connector \\\"team\\\"") {
		t.Errorf("forbidden message: %s", body)
	}
}

func TestIdentityCache(t *testing.T) {
	ids := newIdentities(DefaultIdentityTTL)
	n := 0
	ids.lookup = func(uid uint32) (string, []string, []uint32) { n++; return "u", []string{"g"}, []uint32{5} }
	for range 10 {
		c := ids.caller(peerCred{ok: true, uid: 77})
		if c.User != "u" || !c.inGroup("g") || !c.inGroup("5") || c.inGroup("6") {
			t.Fatalf("caller %+v", c)
		}
	}
	if n != 1 {
		t.Fatalf("%d lookups for 10 requests within the TTL, want 1", n)
	}
	ids.now = func() time.Time { return time.Now().Add(time.Hour) } // past the TTL
	ids.caller(peerCred{ok: true, uid: 77})
	if n != 2 {
		t.Fatalf("expired entry not looked up again (%d)", n)
	}
	if c := ids.caller(peerCred{}); c.Known {
		t.Fatal("a connection without credentials must be unknown")
	}
}

func TestLookupIdentityRoot(t *testing.T) {
	name, groups, gids := lookupIdentity(0)
	if name != "root" || !slices.Contains(groups, "root") || !slices.Contains(gids, 0) {
		t.Fatalf("lookupIdentity(0) = %q %v %v", name, groups, gids)
	}
	if name, groups, _ := lookupIdentity(3999999999); name != "" || groups != nil {
		t.Fatalf("unknown uid resolved to %q %v", name, groups)
	}
}

// TestEventsFilteredPerCaller: each subscriber sees only the connectors it
// may view, with its own actions.
func TestEventsFilteredPerCaller(t *testing.T) {
	f := newFake(0)
	f.add("open", nil)
	f.add("team", []config.AccessRule{{Groups: []string{"team-a"}, Actions: []config.Action{"view", "browse"}}})
	streams := map[string]*client.EventStream{}
	for _, c := range []*Caller{paul, vic} {
		s := startAPI(t, f, APIOptions{Agent: &config.Agent{Roles: testRoles}})
		fakeIdentities(s.api, paul, vic)
		uid := c.UID
		s.api.connCtx = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, peerCredKey{}, peerCred{ok: true, uid: uid})
		}
		ev, err := s.cl.Events(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer ev.Close()
		streams[c.User] = ev
	}
	for f.subscribers() < 2 {
		time.Sleep(time.Millisecond)
	}
	f.setState("open", client.StateMounted, true, "")
	f.setState("team", client.StateMounted, true, "")
	f.setState("open", client.StateInactive, false, "")
	f.setState("team", client.StateInactive, false, "")
	for user, want := range map[string][]string{
		"paul": {"team mounted [view browse]", "team inactive [view browse]"},
		"vic":  {"open mounted [view browse]", "open inactive [view browse]"},
	} {
		for _, w := range want {
			c, err := streams[user].Next()
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%s %s %v", c.ID, c.State, c.Actions); got != w {
				t.Errorf("%s saw %q, want %q", user, got, w)
			}
		}
	}
}
