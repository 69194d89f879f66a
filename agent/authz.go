package agent

// Authorization (SPEC: Who may do what). The caller is known only by the
// socket's peer credentials (peercred.go); this file decides what that
// caller may do: first the role model, then the connector's access policy.

import (
	"slices"
	"strconv"
	"strings"

	"github.com/s3mounts/s3mounts/config"
)

// Role is a caller's role on this node. Higher roles include lower ones.
type Role int

const (
	RoleNone     Role = iota // a plain user: only what a connector's policy grants
	RoleViewer               // view, browse
	RoleOperator             // view, browse, test, activate, deactivate
	RoleAdmin                // everything, on every connector, whatever its policy
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "user"
}

// Caller is who is on the other end of a connection, as the kernel
// (SO_PEERCRED) and the system's user and group databases say; never as
// the caller says.
type Caller struct {
	Known bool   // false when the connection carried no peer credentials
	UID   uint32 // SO_PEERCRED uid
	PID   int32  // SO_PEERCRED pid (for logs only)
	User  string // user name of UID ("" when the passwd database has none)
	// Groups are the groups the group database gives UID (primary and
	// supplementary), by name, and GIDs the same groups by number.
	Groups []string
	GIDs   []uint32
}

// String names the caller in logs and error messages.
func (c *Caller) String() string {
	if c == nil || !c.Known {
		return "unknown caller"
	}
	if c.User != "" {
		return c.User + " (uid " + strconv.FormatUint(uint64(c.UID), 10) + ")"
	}
	return "uid " + strconv.FormatUint(uint64(c.UID), 10)
}

func (c *Caller) inGroup(g string) bool {
	if slices.Contains(c.Groups, g) {
		return true
	}
	if n, err := strconv.ParseUint(g, 10, 32); err == nil {
		return slices.Contains(c.GIDs, uint32(n))
	}
	return false
}

func (c *Caller) isUser(u string) bool {
	if c.User != "" && u == c.User {
		return true
	}
	n, err := strconv.ParseUint(u, 10, 32)
	return err == nil && uint32(n) == c.UID
}

// DefaultRoles are the SPEC's default members, used when the API has no
// agent settings at all (config.DefaultAgent fills the same).
var DefaultRoles = config.Roles{
	Admin:    []string{"uid:0", "group:s3mounts-admin"},
	Operator: []string{"group:s3mounts"},
}

// matchMember reports whether a "[roles]" member ("user:NAME",
// "group:NAME", "uid:N") designates the caller.
func matchMember(c *Caller, member string) bool {
	kind, name, ok := strings.Cut(strings.TrimSpace(member), ":")
	if !ok || name == "" {
		return false
	}
	switch kind {
	case "user":
		return c.User != "" && c.User == name
	case "group":
		return c.inGroup(name)
	case "uid":
		n, err := strconv.ParseUint(name, 10, 32)
		return err == nil && uint32(n) == c.UID
	}
	return false
}

// RoleOf returns the highest role the caller holds. Root (uid 0) is
// always an admin: it owns the daemon anyway. A caller without peer
// credentials holds no role.
func RoleOf(c *Caller, roles config.Roles) Role {
	if c == nil || !c.Known {
		return RoleNone
	}
	if c.UID == 0 {
		return RoleAdmin
	}
	for _, set := range []struct {
		r       Role
		members []string
	}{{RoleAdmin, roles.Admin}, {RoleOperator, roles.Operator}, {RoleViewer, roles.Viewer}} {
		for _, m := range set.members {
			if matchMember(c, m) {
				return set.r
			}
		}
	}
	return RoleNone
}

// roleAllows is the role model alone.
func roleAllows(r Role, act config.Action) bool {
	switch r {
	case RoleAdmin, RoleOperator:
		return slices.Contains(config.AllActions, act)
	case RoleViewer:
		return act == config.ActionView || act == config.ActionBrowse
	}
	return false
}

// ruleAllows reports whether some [[access.allow]] rule that names the
// caller (by user or by group) grants act. A rule without actions grants
// all five.
func ruleAllows(c *Caller, rules []config.AccessRule, act config.Action) bool {
	if c == nil || !c.Known {
		return false
	}
	for _, r := range rules {
		matches := slices.ContainsFunc(r.Users, c.isUser) || slices.ContainsFunc(r.Groups, c.inGroup)
		if !matches {
			continue
		}
		if len(r.Actions) == 0 || slices.Contains(r.Actions, act) {
			return true
		}
	}
	return false
}

// Allowed decides whether a caller holding role may do act on a connector
// whose access policy is rules (nil or empty: no policy):
//   - admins may do everything;
//   - without a policy, the role decides (a plain user may do nothing);
//   - with a policy, operators and viewers need the role AND a rule, and a
//     plain user exactly what a rule matching them grants.
func Allowed(c *Caller, role Role, rules []config.AccessRule, act config.Action) bool {
	if role == RoleAdmin {
		return true
	}
	if len(rules) == 0 {
		return roleAllows(role, act)
	}
	if role == RoleNone {
		return ruleAllows(c, rules, act)
	}
	return roleAllows(role, act) && ruleAllows(c, rules, act)
}

// Actions lists what the caller may do with a connector, in the stable
// order of config.AllActions. A connector the caller may not view yields
// nothing: it is invisible to them.
func Actions(c *Caller, role Role, rules []config.AccessRule) []string {
	if !Allowed(c, role, rules, config.ActionView) {
		return nil
	}
	out := make([]string, 0, len(config.AllActions))
	for _, a := range config.AllActions {
		if Allowed(c, role, rules, a) {
			out = append(out, string(a))
		}
	}
	return out
}
