package builtin

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// health is the last connector-wide failure the filesystem met (the key
// refused, access denied, the bucket gone, the endpoint silent), in the
// connector test's words, with the time it began. Any later request the
// service answers clears it. The worker shows it in its status
// (mounts.HealthReporter), the agent in the connector's error.
type health struct {
	spec mounts.Spec

	mu    sync.Mutex
	p     *s3conn.Problem
	since time.Time
}

// observe records the outcome of one S3 request.
func (h *health) observe(req s3conn.Request, err error) {
	if err == nil || errors.Is(err, io.EOF) {
		h.set(nil)
		return
	}
	if errors.Is(err, errReadOnly) {
		return
	}
	p := s3conn.Explain(context.Background(), h.spec, req, err)
	switch {
	case p.Connector():
		h.set(p)
	case p.Code != "":
		h.set(nil) // an S3 answer (e.g. NoSuchKey): the key and the endpoint work
	}
}

func (h *health) set(p *s3conn.Problem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if p == nil {
		h.p, h.since = nil, time.Time{}
		return
	}
	if h.p == nil || h.p.Kind != p.Kind {
		h.since = time.Now()
	}
	h.p = p
}

// Health says what fails for the whole mount, e.g. "the endpoint refuses
// the key since 12:03:04 UTC: …", and since when; "" when requests work.
func (m *Mount) Health() (string, time.Time) {
	h := m.health
	if h == nil {
		return "", time.Time{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.p == nil {
		return "", time.Time{}
	}
	return h.p.Since(h.since), h.since
}

// healthClient reports the outcome of the filesystem's requests to a
// health; every other call passes through untouched.
type healthClient struct {
	ObjectClient
	h *health
}

func (c healthClient) List(ctx context.Context, prefix, delimiter, token string, max int32) (ListPage, error) {
	p, err := c.ObjectClient.List(ctx, prefix, delimiter, token, max)
	c.h.observe(s3conn.ReqList, err)
	return p, err
}

func (c healthClient) ListAfter(ctx context.Context, prefix, delimiter, startAfter string, max int32) (ListPage, error) {
	p, err := c.ObjectClient.ListAfter(ctx, prefix, delimiter, startAfter, max)
	c.h.observe(s3conn.ReqList, err)
	return p, err
}

func (c healthClient) Head(ctx context.Context, key string) (ObjInfo, error) {
	o, err := c.ObjectClient.Head(ctx, key)
	c.h.observe(s3conn.ReqRead, err)
	return o, err
}

func (c healthClient) GetRange(ctx context.Context, key, ifMatch string, off int64, p []byte) (int, error) {
	n, err := c.ObjectClient.GetRange(ctx, key, ifMatch, off, p)
	c.h.observe(s3conn.ReqRead, err)
	return n, err
}

func (c healthClient) GetStream(ctx context.Context, key, ifMatch string, off, n int64) (io.ReadCloser, error) {
	rc, err := c.ObjectClient.GetStream(ctx, key, ifMatch, off, n)
	c.h.observe(s3conn.ReqRead, err)
	return rc, err
}

func (c healthClient) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta map[string]string) (ObjInfo, error) {
	o, err := c.ObjectClient.Put(ctx, key, body, size, meta)
	c.h.observe(s3conn.ReqWrite, err)
	return o, err
}

func (c healthClient) Delete(ctx context.Context, key string) error {
	err := c.ObjectClient.Delete(ctx, key)
	c.h.observe(s3conn.ReqDelete, err)
	return err
}
