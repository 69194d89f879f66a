package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
)

// TestClaimNames: who holds a mount_name, without workers (the end-to-end
// test with a working mount is TestMountNameHeldByItsHolder).
func TestClaimNames(t *testing.T) {
	r, a := newTestReconciler(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	r.now = func() time.Time { return now }
	add := func(id string, active bool) *conn {
		c := &conn{id: id, file: a.ConnectorsDir + "/" + id + ".toml", phase: client.StateInactive,
			kick: make(chan struct{}, 1), changed: make(chan struct{}), firstDone: make(chan struct{}),
			good: &config.Connector{ID: id, MountName: "shared", Active: active}}
		r.conns[id] = c
		return c
	}
	settle := func() {
		r.mu.Lock()
		r.claimNamesLocked()
		r.mu.Unlock()
	}
	zz := add("zz", true)
	settle()
	now = now.Add(time.Second)
	aaOff := add("aa", false)
	settle()
	if r.holders["shared"] != "zz" || zz.dupErr != "" {
		t.Fatalf("holder %q, zz.dupErr %q", r.holders["shared"], zz.dupErr)
	}
	if !strings.Contains(aaOff.dupErr, "held by connector zz") || !strings.Contains(aaOff.dupAnon, "used by another connector") ||
		strings.Contains(aaOff.dupAnon, "zz") || aaOff.dupOther != "zz" {
		t.Fatalf("inactive claimant: dupErr %q anon %q other %q", aaOff.dupErr, aaOff.dupAnon, aaOff.dupOther)
	}
	// active and earlier in sort order: still not the holder
	aaOff.good.Active = true
	now = now.Add(time.Second)
	settle()
	if r.holders["shared"] != "zz" || zz.dupErr != "" || aaOff.dupErr == "" {
		t.Fatalf("active claimant took the name: holder %q", r.holders["shared"])
	}
	// the view hides the holder's name in ErrorAnon
	r.mu.Lock()
	v := r.viewLocked(aaOff)
	r.mu.Unlock()
	if v.NameHolder != "zz" || strings.Contains(v.ErrorAnon, "zz") || !strings.Contains(v.Connector.Error, "zz") {
		t.Fatalf("view: holder %q anon %q error %q", v.NameHolder, v.ErrorAnon, v.Connector.Error)
	}
	// the holder deactivated in its file: the other active claimant takes it
	zz.good.Active = false
	settle()
	if r.holders["shared"] != "aa" || aaOff.dupErr != "" || !strings.Contains(zz.dupErr, "held by connector aa") {
		t.Fatalf("after zz went inactive: holder %q, aa %q, zz %q", r.holders["shared"], aaOff.dupErr, zz.dupErr)
	}
	// nobody active: nobody holds, nobody is in error
	aaOff.good.Active = false
	settle()
	if _, ok := r.holders["shared"]; ok || zz.dupErr != "" || aaOff.dupErr != "" {
		t.Fatalf("no claimant: holders %v, errs %q %q", r.holders, zz.dupErr, aaOff.dupErr)
	}
	// a persisted holder wins a tie at start
	aaOff.claimSince, zz.claimSince = time.Time{}, time.Time{}
	aaOff.good.Active, zz.good.Active = true, true
	r.holders["shared"] = "zz"
	settle()
	if r.holders["shared"] != "zz" {
		t.Fatalf("persisted holder lost the tie to the sort order: %q", r.holders["shared"])
	}
	// the holder's file removed: the claimant takes the name
	zz.removed = true
	settle()
	if r.holders["shared"] != "aa" || aaOff.dupErr != "" {
		t.Fatalf("after zz was removed: holder %q, aa %q", r.holders["shared"], aaOff.dupErr)
	}
}

// TestNameConflictRedacted: a connector's mount_name error names the
// holder only to callers who may view the holder; activation's 409 too.
func TestNameConflictRedacted(t *testing.T) {
	api := NewAPI(APIOptions{Controller: newFake(0), Agent: &config.Agent{Roles: testRoles}})
	f := api.o.Controller.(*fakeController)
	f.add("hidden", []config.AccessRule{{Users: []string{"nobody-else"}, Actions: []config.Action{"view"}}})
	f.add("claimant", []config.AccessRule{{Groups: []string{"team-a"}, Actions: []config.Action{"view"}}})
	v := f.views["claimant"]
	v.Connector.State = client.StateError
	v.Connector.Error = `claimant.toml: mount_name: "x" is held by connector hidden (hidden.toml)`
	v.NameHolder, v.ErrorAnon = "hidden", `claimant.toml: mount_name: "x" is used by another connector`
	for _, tc := range []struct {
		c    *Caller
		full bool
	}{{root, true}, {paul, false}} {
		role := RoleOf(tc.c, testRoles)
		got, ok := api.present(tc.c, role, v)
		if !ok {
			t.Fatalf("%s may not view the claimant", tc.c)
		}
		if strings.Contains(got.Error, "hidden") != tc.full {
			t.Errorf("%s sees %q (holder named: want %v)", tc.c, got.Error, tc.full)
		}
	}
}
