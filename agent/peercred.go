package agent

import (
	"context"
	"net"
	"os/user"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// peerCred is what the kernel says about the process at the other end of a
// Unix socket connection, read once when the connection is accepted.
type peerCred struct {
	ok  bool
	uid uint32
	pid int32
}

type peerCredKey struct{}

// connContext is http.Server.ConnContext: it attaches the connection's
// SO_PEERCRED to every request made on it.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerCredKey{}, readPeerCred(c))
}

func readPeerCred(c net.Conn) peerCred {
	if lc, ok := c.(*limitConn); ok {
		return lc.pc
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peerCred{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peerCred{}
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil || cred == nil {
		return peerCred{}
	}
	return peerCred{ok: true, uid: cred.Uid, pid: cred.Pid}
}

func peerCredFrom(ctx context.Context) peerCred {
	pc, _ := ctx.Value(peerCredKey{}).(peerCred)
	return pc
}

// identities resolves uids to user names and groups through the system's
// user and group databases, caching each answer briefly so that a burst of
// requests costs one lookup, while a change of group membership takes
// effect within ttl.
type identities struct {
	ttl time.Duration
	now func() time.Time

	// lookup is os/user by default; tests may replace it.
	lookup func(uid uint32) (name string, groups []string, gids []uint32)

	mu    sync.Mutex
	cache map[uint32]identity
}

type identity struct {
	name   string
	groups []string
	gids   []uint32
	until  time.Time
}

func newIdentities(ttl time.Duration) *identities {
	return &identities{ttl: ttl, now: time.Now, lookup: lookupIdentity, cache: map[uint32]identity{}}
}

// caller builds the Caller of a request from its connection's credentials.
func (ids *identities) caller(pc peerCred) *Caller {
	if !pc.ok {
		return &Caller{}
	}
	now := ids.now()
	ids.mu.Lock()
	id, hit := ids.cache[pc.uid]
	ids.mu.Unlock()
	if !hit || now.After(id.until) {
		name, groups, gids := ids.lookup(pc.uid)
		id = identity{name: name, groups: groups, gids: gids, until: now.Add(ids.ttl)}
		ids.mu.Lock()
		if len(ids.cache) > 4096 { // bounded: forget everything rather than grow
			clear(ids.cache)
		}
		ids.cache[pc.uid] = id
		ids.mu.Unlock()
	}
	return &Caller{Known: true, UID: pc.uid, PID: pc.pid, User: id.name, Groups: id.groups, GIDs: id.gids}
}

// lookupIdentity asks the system databases (passwd, group) for a uid's name
// and groups. A uid without a passwd entry has a name of "" and no groups.
func lookupIdentity(uid uint32) (string, []string, []uint32) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return "", nil, nil
	}
	ids, err := u.GroupIds()
	if err != nil {
		// At least the primary group from the passwd entry.
		ids = []string{u.Gid}
	}
	var names []string
	var gids []uint32
	for _, s := range ids {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			continue
		}
		gids = append(gids, uint32(n))
		if g, err := user.LookupGroupId(s); err == nil {
			names = append(names, g.Name)
		}
	}
	return u.Username, names, gids
}
