package builtin

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// MemClient is an in-memory ObjectClient with S3's answers (NoSuchKey,
// PreconditionFailed on If-Match, InvalidRange, listings with delimiter
// and continuation), so that the filesystem's rules can be tested in
// milliseconds without MinIO or FUSE. Wrap it in a FaultClient to inject
// failures; change its objects with Set as another client would.
type MemClient struct {
	mu      sync.Mutex
	objs    map[string]memObj
	uploads map[string]map[int32][]byte
	upMeta  map[string]map[string]string
	seq     int
	// IgnoreStartAfter: ListAfter lists from the start (set with
	// SetIgnoreStartAfter).
	IgnoreStartAfter bool
	listCalls        int
}

type memObj struct {
	data  []byte
	etag  string
	mtime time.Time
	meta  map[string]string
}

// NewMemClient returns an empty bucket.
func NewMemClient() *MemClient {
	return &MemClient{objs: map[string]memObj{}, uploads: map[string]map[int32][]byte{}, upMeta: map[string]map[string]string{}}
}

var _ ObjectClient = (*MemClient)(nil)

func apiErr(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg}
}

func etagOf(b []byte) string {
	sum := md5.Sum(b)
	return `"` + hex.EncodeToString(sum[:]) + `"`
}

// Set stores an object as another client would, and returns its ETag.
func (m *MemClient) Set(key string, data []byte) string {
	return m.SetWithMeta(key, data, nil)
}

// SetWithMeta stores an object with user metadata, as another client would.
func (m *MemClient) SetWithMeta(key string, data []byte, meta map[string]string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := memObj{data: bytes.Clone(data), etag: etagOf(data), mtime: time.Now(), meta: maps.Clone(meta)}
	m.objs[key] = o
	return o.etag
}

// Get returns an object's bytes.
func (m *MemClient) Get(key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	return bytes.Clone(o.data), ok
}

func (m *MemClient) info(key string, o memObj) ObjInfo {
	return ObjInfo{Key: key, Size: int64(len(o.data)), MTime: o.mtime, ETag: o.etag}
}

// Meta returns an object's user metadata.
func (m *MemClient) Meta(key string) map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.objs[key].meta)
}

func (m *MemClient) List(ctx context.Context, prefix, delim, token string, max int32) (ListPage, error) {
	after := ""
	if token != "" {
		var ok bool
		if after, ok = strings.CutPrefix(token, "k"); !ok {
			return ListPage{}, apiErr("InvalidArgument", "The continuation token provided is incorrect")
		}
	}
	return m.list(ctx, prefix, delim, after, "", max)
}

// ListAfter lists from the keys after startAfter (ignored when
// IgnoreStartAfter is set, as some providers do).
func (m *MemClient) ListAfter(ctx context.Context, prefix, delim, startAfter string, max int32) (ListPage, error) {
	m.mu.Lock()
	ignore := m.IgnoreStartAfter
	m.mu.Unlock()
	if ignore {
		startAfter = ""
	}
	return m.list(ctx, prefix, delim, "", startAfter, max)
}

// list answers as S3 does: keys after startAfter, grouped into common
// prefixes, from the entry after cont (the last entry of the previous
// page: the continuation token names a position, so that a listing goes on
// correctly while keys are added).
func (m *MemClient) list(ctx context.Context, prefix, delim, cont, startAfter string, max int32) (ListPage, error) {
	if err := ctx.Err(); err != nil {
		return ListPage{}, err
	}
	if max <= 0 {
		max = 1000
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listCalls++
	keys := make([]string, 0, len(m.objs))
	for k := range m.objs {
		if strings.HasPrefix(k, prefix) && k > startAfter {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	// Entries in order: objects, and common prefixes once each.
	type ent struct {
		key    string
		prefix bool
	}
	var ents []ent
	for _, k := range keys {
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				cp := k[:len(prefix)+i+len(delim)]
				if len(ents) == 0 || ents[len(ents)-1].key != cp {
					ents = append(ents, ent{cp, true})
				}
				continue
			}
		}
		ents = append(ents, ent{k, false})
	}
	from := 0
	if cont != "" {
		from = sort.Search(len(ents), func(i int) bool { return ents[i].key > cont })
	}
	var p ListPage
	for i := from; i < len(ents); i++ {
		if int32(i-from) == max {
			p.Next = "k" + ents[i-1].key
			break
		}
		if ents[i].prefix {
			p.Prefixes = append(p.Prefixes, ents[i].key)
		} else {
			p.Objects = append(p.Objects, m.info(ents[i].key, m.objs[ents[i].key]))
		}
	}
	return p, nil
}

// ListCalls is how many listing requests were answered.
func (m *MemClient) ListCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.listCalls
}

// SetIgnoreStartAfter makes ListAfter ignore its startAfter, as some
// S3-compatible providers do.
func (m *MemClient) SetIgnoreStartAfter(v bool) {
	m.mu.Lock()
	m.IgnoreStartAfter = v
	m.mu.Unlock()
}

func (m *MemClient) Head(ctx context.Context, key string) (ObjInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return ObjInfo{}, apiErr("NotFound", "Not Found")
	}
	i := m.info(key, o)
	i.Meta = maps.Clone(o.meta)
	return i, nil
}

func (m *MemClient) GetRange(ctx context.Context, key, ifMatch string, off int64, p []byte) (int, error) {
	return readFull(ctx, m, key, ifMatch, off, p, nil)
}

// memBody is a GET body; it says which version it is.
type memBody struct {
	*bytes.Reader
	etag string
}

func (b memBody) Close() error { return nil }
func (b memBody) ETag() string { return b.etag }

func (m *MemClient) GetStream(ctx context.Context, key, ifMatch string, off, n int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	switch {
	case !ok:
		return nil, apiErr("NoSuchKey", "The specified key does not exist.")
	case ifMatch != "" && ifMatch != o.etag:
		return nil, apiErr("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	case off >= int64(len(o.data)) && !(off == 0 && len(o.data) == 0):
		return nil, io.EOF // InvalidRange
	}
	end := min(off+n, int64(len(o.data)))
	return memBody{bytes.NewReader(o.data[off:end]), o.etag}, nil
}

func readAllSeeker(body io.ReadSeeker, size int64) ([]byte, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(body, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (m *MemClient) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta map[string]string) (ObjInfo, error) {
	if err := ctx.Err(); err != nil {
		return ObjInfo{}, err
	}
	if size > maxObjectSize {
		return ObjInfo{}, apiErr("EntityTooLarge", "Your proposed upload exceeds the maximum allowed object size.")
	}
	b, err := readAllSeeker(body, size)
	if err != nil {
		return ObjInfo{}, err
	}
	m.SetWithMeta(key, b, meta)
	i, _ := m.Head(ctx, key)
	return i, nil
}

func (m *MemClient) CreateMultipart(ctx context.Context, key string, meta map[string]string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	id := key + "#" + strconv.Itoa(m.seq)
	m.uploads[id] = map[int32][]byte{}
	m.upMeta[id] = maps.Clone(meta)
	return id, nil
}

func (m *MemClient) UploadPart(ctx context.Context, key, id string, num int32, body io.ReadSeeker, size int64) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	b, err := readAllSeeker(body, size)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.uploads[id]
	if !ok {
		return "", apiErr("NoSuchUpload", "The specified upload does not exist.")
	}
	u[num] = b
	return etagOf(b), nil
}

func (m *MemClient) CompleteMultipart(ctx context.Context, key, id string, parts []types.CompletedPart) (ObjInfo, error) {
	m.mu.Lock()
	u, ok := m.uploads[id]
	meta := m.upMeta[id]
	delete(m.uploads, id)
	delete(m.upMeta, id)
	m.mu.Unlock()
	if !ok {
		return ObjInfo{}, apiErr("NoSuchUpload", "The specified upload does not exist.")
	}
	var all []byte
	for _, p := range parts {
		b, ok := u[*p.PartNumber]
		if !ok {
			return ObjInfo{}, apiErr("InvalidPart", fmt.Sprintf("part %d was not uploaded", *p.PartNumber))
		}
		all = append(all, b...)
	}
	m.SetWithMeta(key, all, meta)
	return m.Head(ctx, key)
}

func (m *MemClient) AbortMultipart(ctx context.Context, key, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.uploads, id)
	delete(m.upMeta, id)
	return nil
}

func (m *MemClient) Copy(ctx context.Context, src, dst string, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[src]
	if !ok {
		return apiErr("NoSuchKey", "The specified key does not exist.")
	}
	o.mtime = time.Now()
	m.objs[dst] = o
	return nil
}

func (m *MemClient) SetMeta(ctx context.Context, cur ObjInfo, meta map[string]string) (ObjInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[cur.Key]
	if !ok {
		return ObjInfo{}, apiErr("NoSuchKey", "The specified key does not exist.")
	}
	if cur.ETag != "" && cur.ETag != o.etag {
		return ObjInfo{}, apiErr("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	}
	o.meta, o.mtime = maps.Clone(meta), time.Now()
	m.objs[cur.Key] = o
	i := m.info(cur.Key, o)
	i.Meta = maps.Clone(meta)
	return i, nil
}

func (m *MemClient) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return nil
}
