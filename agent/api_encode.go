package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
)

// encCache keeps the JSON of each connector (without its per-caller
// actions) and encodes a connector again only when it changed, so that a
// list of 100 connectors costs 100 comparisons, not 100 reflective encodes.
type encCache struct {
	mu sync.RWMutex
	m  map[string]encEntry
}

type encEntry struct {
	c      client.Connector // as encoded, Actions nil
	prefix []byte           // the JSON object up to `"actions":`, excluded
}

var actionsNull = []byte(`"actions":null}`)

// sameConnector reports whether a and b encode alike, ignoring Actions.
// TestSameConnectorSeesEveryField keeps it complete.
func sameConnector(a, b *client.Connector) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description && a.Endpoint == b.Endpoint &&
		a.Region == b.Region && a.Bucket == b.Bucket && a.Prefix == b.Prefix && a.MountName == b.MountName &&
		a.MountPath == b.MountPath && a.Mode == b.Mode && a.Backend == b.Backend && a.Active == b.Active &&
		a.State == b.State && a.Error == b.Error && a.CreatedBy == b.CreatedBy &&
		sameTime(a.CreatedAt, b.CreatedAt) && sameTime(a.UpdatedAt, b.UpdatedAt) && a.File == b.File &&
		a.Owner == b.Owner && a.Group == b.Group && a.FileMode == b.FileMode && a.DirMode == b.DirMode &&
		sameInt(a.StagingBytes, b.StagingBytes)
}

func sameInt(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b // same instant and location (and monotonic reading): same JSON
}

// prefix returns the cached JSON of c up to its actions.
func (e *encCache) prefix(c *client.Connector) ([]byte, error) {
	e.mu.RLock()
	ent, ok := e.m[c.ID]
	e.mu.RUnlock()
	if ok && sameConnector(&ent.c, c) {
		return ent.prefix, nil
	}
	cc := *c
	cc.Actions = nil
	b, err := json.Marshal(&cc)
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b, actionsNull) {
		return nil, errNoActionsSuffix
	}
	ent = encEntry{c: cc, prefix: b[:len(b)-len(actionsNull)]}
	e.mu.Lock()
	if e.m == nil || len(e.m) > 4096 {
		e.m = map[string]encEntry{}
	}
	e.m[c.ID] = ent
	e.mu.Unlock()
	return ent.prefix, nil
}

var errNoActionsSuffix = &CodedError{Code: client.CodeInternal, Message: "connector JSON does not end with actions"}

// appendActions appends `"actions":[…]}`; action names need no escaping.
func appendActions(b []byte, acts []string) []byte {
	b = append(b, `"actions":[`...)
	for i, a := range acts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, a...)
		b = append(b, '"')
	}
	return append(b, "]}"...)
}

// writeConnectorList answers {"connectors":[…]} for the views the caller
// may see.
func (a *API) writeConnectorList(w http.ResponseWriter, rq *request, all []View) error {
	bp := listBufs.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 4<<20 {
			listBufs.Put(bp)
		}
	}()
	b := append((*bp)[:0], `{"connectors":[`...)
	n := 0
	for i := range all {
		v := &all[i]
		acts := Actions(rq.caller, rq.role, v.Access)
		if acts == nil {
			continue
		}
		p, err := a.enc.prefix(&v.Connector)
		if err != nil {
			return err
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
		b = appendActions(b, acts)
		n++
	}
	b = append(b, "]}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*bp = b
	return nil
}

var listBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
