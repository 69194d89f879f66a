package agent

import (
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"github.com/s3mounts/s3mounts/config"
)

// A mount name belongs to whoever holds it (docs/SECURITY.md, "Mount
// names"). A connector claims its mount_name while it is desired active
// (file or API activation) or holds a live worker; a file whose `active`
// is false never claims one. Among the claimants of one name the holder
// is, in this order: the connector that already holds it, the one whose
// worker is live (mounted or mounting, or adopted at start), the one that
// claimed it first; the file sort order only breaks exact ties. Every other
// connector naming it (claimant or not) is in error.

// claimNamesLocked settles who holds each mount_name and updates the
// dup fields of every connector, waking those whose answer changed.
func (r *reconciler) claimNamesLocked() {
	now := r.now()
	byName := map[string][]*conn{}
	claims := map[string][]*conn{}
	for _, c := range r.conns {
		if c.good == nil || c.removed || c.good.MountName == "" {
			c.claimSince = time.Time{}
			continue
		}
		name := c.good.MountName
		byName[name] = append(byName[name], c)
		if r.desiredLocked(c) || r.liveAtLocked(c, name) {
			if c.claimSince.IsZero() {
				c.claimSince = now
			}
			claims[name] = append(claims[name], c)
		} else {
			c.claimSince = time.Time{}
		}
	}
	changed := false
	for name, id := range r.holders {
		if len(claims[name]) == 0 || r.conns[id] == nil {
			delete(r.holders, name)
			changed = true
		}
	}
	for name, cs := range claims {
		h := r.pickHolderLocked(name, cs).id
		changed = changed || r.holders[name] != h
		r.holders[name] = h
	}
	if changed {
		r.saveLastGoodLocked() // the holders survive a restart
	}
	for _, c := range r.conns {
		dup, anon, other := "", "", ""
		if c.good != nil && !c.removed && c.good.MountName != "" {
			name := c.good.MountName
			if h := r.holders[name]; h != "" && h != c.id {
				o := r.conns[h]
				other = h
				dup = (&config.FileError{File: c.file, Key: "mount_name", Msg: fmt.Sprintf(
					"%q is held by connector %s (%s): give this connector another mount_name, or deactivate or remove %s first",
					name, h, o.file, h)}).Error()
				anon = (&config.FileError{File: c.file, Key: "mount_name", Msg: fmt.Sprintf(
					"%q is used by another connector: give this connector another mount_name", name)}).Error()
			}
		}
		if dup != c.dupErr || other != c.dupOther {
			if dup != "" && c.dupErr == "" {
				r.log.Warn("mount_name is held by another connector", "connector", c.id, "mount_name", c.good.MountName, "holder", other)
			}
			c.dupErr, c.dupAnon, c.dupOther = dup, anon, other
			r.changedLocked(c)
			c.wake()
		}
	}
}

// liveAtLocked reports whether c has a live worker at name's mount point,
// or is being adopted at start.
func (r *reconciler) liveAtLocked(c *conn, name string) bool {
	if r.adopting[c.id] {
		return true
	}
	return c.h != nil && filepath.Base(c.h.MountPoint()) == name
}

func (r *reconciler) pickHolderLocked(name string, cs []*conn) *conn {
	if id, ok := r.holders[name]; ok {
		for _, c := range cs {
			if c.id == id {
				return c
			}
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		li, lj := r.liveAtLocked(cs[i], name), r.liveAtLocked(cs[j], name)
		if li != lj {
			return li
		}
		if !cs[i].claimSince.Equal(cs[j].claimSince) {
			return cs[i].claimSince.Before(cs[j].claimSince)
		}
		bi, bj := filepath.Base(cs[i].file), filepath.Base(cs[j].file)
		if bi != bj {
			return bi < bj
		}
		return cs[i].id < cs[j].id
	})
	return cs[0]
}
