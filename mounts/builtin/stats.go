package builtin

import (
	"context"
	"io"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3mounts/s3mounts/mounts"
)

// S3 operations counted, by the name the SDK gives them.
const (
	opList = iota
	opHead
	opGet
	opPut
	opCreateMultipart
	opUploadPart
	opCompleteMultipart
	opAbortMultipart
	opCopy
	opDelete
	nOps
)

var opNames = [nOps]string{"ListObjectsV2", "HeadObject", "GetObject", "PutObject", "CreateMultipartUpload",
	"UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload", "CopyObject", "DeleteObject"}

// requestCounts counts the requests the filesystem sends, by operation.
type requestCounts [nOps]atomic.Uint64

func (r *requestCounts) snapshot() map[string]uint64 {
	out := make(map[string]uint64, nOps)
	for i := range r {
		if n := r[i].Load(); n > 0 {
			out[opNames[i]] = n
		}
	}
	return out
}

// countClient counts every call the filesystem makes, by S3 operation
// (one per call: the SDK's own retries of a call are not counted again).
type countClient struct {
	ObjectClient
	n *requestCounts
}

func (c countClient) List(ctx context.Context, prefix, delim, token string, max int32) (ListPage, error) {
	c.n[opList].Add(1)
	return c.ObjectClient.List(ctx, prefix, delim, token, max)
}

func (c countClient) ListAfter(ctx context.Context, prefix, delim, startAfter string, max int32) (ListPage, error) {
	c.n[opList].Add(1)
	return c.ObjectClient.ListAfter(ctx, prefix, delim, startAfter, max)
}

func (c countClient) Head(ctx context.Context, key string) (ObjInfo, error) {
	c.n[opHead].Add(1)
	return c.ObjectClient.Head(ctx, key)
}

func (c countClient) GetRange(ctx context.Context, key, ifMatch string, off int64, p []byte) (int, error) {
	c.n[opGet].Add(1)
	return c.ObjectClient.GetRange(ctx, key, ifMatch, off, p)
}

func (c countClient) GetStream(ctx context.Context, key, ifMatch string, off, n int64) (io.ReadCloser, error) {
	c.n[opGet].Add(1)
	return c.ObjectClient.GetStream(ctx, key, ifMatch, off, n)
}

func (c countClient) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta map[string]string) (ObjInfo, error) {
	c.n[opPut].Add(1)
	return c.ObjectClient.Put(ctx, key, body, size, meta)
}

func (c countClient) CreateMultipart(ctx context.Context, key string, meta map[string]string) (string, error) {
	c.n[opCreateMultipart].Add(1)
	return c.ObjectClient.CreateMultipart(ctx, key, meta)
}

func (c countClient) UploadPart(ctx context.Context, key, id string, num int32, body io.ReadSeeker, size int64) (string, error) {
	c.n[opUploadPart].Add(1)
	return c.ObjectClient.UploadPart(ctx, key, id, num, body, size)
}

func (c countClient) CompleteMultipart(ctx context.Context, key, id string, parts []types.CompletedPart) (ObjInfo, error) {
	c.n[opCompleteMultipart].Add(1)
	return c.ObjectClient.CompleteMultipart(ctx, key, id, parts)
}

func (c countClient) AbortMultipart(ctx context.Context, key, id string) error {
	c.n[opAbortMultipart].Add(1)
	return c.ObjectClient.AbortMultipart(ctx, key, id)
}

func (c countClient) Copy(ctx context.Context, src, dst string, size int64) error {
	c.n[opCopy].Add(1)
	return c.ObjectClient.Copy(ctx, src, dst, size)
}

func (c countClient) SetMeta(ctx context.Context, cur ObjInfo, meta map[string]string) (ObjInfo, error) {
	c.n[opCopy].Add(1)
	return c.ObjectClient.SetMeta(ctx, cur, meta)
}

func (c countClient) Delete(ctx context.Context, key string) error {
	c.n[opDelete].Add(1)
	return c.ObjectClient.Delete(ctx, key)
}

var _ mounts.StatsReporter = (*Mount)(nil)

// Stats are the mount's request counts by S3 operation and the size of
// its metadata cache.
func (m *Mount) Stats() mounts.Stats {
	return m.fsys.stats()
}

func (f *FS) stats() mounts.Stats {
	bytes, entries, limit := f.meta.usage()
	return mounts.Stats{Requests: f.requests.snapshot(), MetadataBytes: bytes, MetadataEntries: entries, MetadataLimit: limit}
}
