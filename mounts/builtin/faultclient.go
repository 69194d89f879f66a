package builtin

import (
	"context"
	"io"
	"sync"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// FaultClient wraps an ObjectClient and injects the failures of a real
// endpoint, as tests decide per call: an error instead of an answer, a
// GET body that ends short, is reset, or stalls (no byte until the call's
// context ends). Changed ETags come from changing the wrapped MemClient.
type FaultClient struct {
	ObjectClient

	mu sync.Mutex
	// Err, if set, is asked before every call (op is the method name:
	// "List", "Head", "GetStream", "Put", …): a non-nil error is returned
	// instead of calling through.
	Err func(op, key string) error
	// Body, if set, is asked for every GET body that opens at off.
	Body  func(key string, off int64) BodyFault
	calls map[string]int
}

// BodyFault is what happens to one GET body: after After bytes it ends
// short (Cut), is reset by the peer (Reset), or stalls until the call's
// context ends (Stall). The zero value passes the body through.
type BodyFault struct {
	After int64
	Cut   bool
	Reset bool
	Stall bool
}

// NewFaultClient wraps c.
func NewFaultClient(c ObjectClient) *FaultClient {
	return &FaultClient{ObjectClient: c, calls: map[string]int{}}
}

// Calls is how many times op was called.
func (f *FaultClient) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *FaultClient) fault(op, key string) error {
	f.mu.Lock()
	f.calls[op]++
	fn := f.Err
	f.mu.Unlock()
	if fn != nil {
		return fn(op, key)
	}
	return nil
}

func (f *FaultClient) List(ctx context.Context, prefix, delim, token string, max int32) (ListPage, error) {
	if err := f.fault("List", prefix); err != nil {
		return ListPage{}, err
	}
	return f.ObjectClient.List(ctx, prefix, delim, token, max)
}

func (f *FaultClient) ListAfter(ctx context.Context, prefix, delim, startAfter string, max int32) (ListPage, error) {
	if err := f.fault("List", prefix); err != nil {
		return ListPage{}, err
	}
	return f.ObjectClient.ListAfter(ctx, prefix, delim, startAfter, max)
}

func (f *FaultClient) Head(ctx context.Context, key string) (ObjInfo, error) {
	if err := f.fault("Head", key); err != nil {
		return ObjInfo{}, err
	}
	return f.ObjectClient.Head(ctx, key)
}

// GetRange goes through GetStream, so that body faults apply to it too.
func (f *FaultClient) GetRange(ctx context.Context, key, ifMatch string, off int64, p []byte) (int, error) {
	return readFull(ctx, f, key, ifMatch, off, p, nil)
}

func (f *FaultClient) GetStream(ctx context.Context, key, ifMatch string, off, n int64) (io.ReadCloser, error) {
	if err := f.fault("GetStream", key); err != nil {
		return nil, err
	}
	body, err := f.ObjectClient.GetStream(ctx, key, ifMatch, off, n)
	if err != nil || f.Body == nil {
		return body, err
	}
	bf := f.Body(key, off)
	if bf == (BodyFault{}) {
		return body, nil
	}
	return &faultBody{ReadCloser: body, ctx: ctx, f: bf}, nil
}

type faultBody struct {
	io.ReadCloser
	ctx  context.Context
	f    BodyFault
	read int64
}

func (b *faultBody) ETag() string {
	if e, ok := b.ReadCloser.(interface{ ETag() string }); ok {
		return e.ETag()
	}
	return ""
}

func (b *faultBody) Read(p []byte) (int, error) {
	if left := b.f.After - b.read; left <= 0 {
		switch {
		case b.f.Stall:
			<-b.ctx.Done()
			return 0, b.ctx.Err()
		case b.f.Reset:
			return 0, &netErr{syscall.ECONNRESET}
		default:
			return 0, io.ErrUnexpectedEOF
		}
	} else if int64(len(p)) > left {
		p = p[:left]
	}
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	return n, err
}

// netErr is a connection error as the net package reports it.
type netErr struct{ err error }

func (e *netErr) Error() string   { return "read tcp: " + e.err.Error() }
func (e *netErr) Unwrap() error   { return e.err }
func (e *netErr) Timeout() bool   { return false }
func (e *netErr) Temporary() bool { return false }

func (f *FaultClient) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta map[string]string) (ObjInfo, error) {
	if err := f.fault("Put", key); err != nil {
		return ObjInfo{}, err
	}
	return f.ObjectClient.Put(ctx, key, body, size, meta)
}

func (f *FaultClient) CreateMultipart(ctx context.Context, key string, meta map[string]string) (string, error) {
	if err := f.fault("CreateMultipart", key); err != nil {
		return "", err
	}
	return f.ObjectClient.CreateMultipart(ctx, key, meta)
}

func (f *FaultClient) UploadPart(ctx context.Context, key, id string, num int32, body io.ReadSeeker, size int64) (string, error) {
	if err := f.fault("UploadPart", key); err != nil {
		return "", err
	}
	return f.ObjectClient.UploadPart(ctx, key, id, num, body, size)
}

func (f *FaultClient) CompleteMultipart(ctx context.Context, key, id string, parts []types.CompletedPart) (ObjInfo, error) {
	if err := f.fault("CompleteMultipart", key); err != nil {
		return ObjInfo{}, err
	}
	return f.ObjectClient.CompleteMultipart(ctx, key, id, parts)
}

func (f *FaultClient) Copy(ctx context.Context, src, dst string, size int64) error {
	if err := f.fault("Copy", src); err != nil {
		return err
	}
	return f.ObjectClient.Copy(ctx, src, dst, size)
}

func (f *FaultClient) SetMeta(ctx context.Context, cur ObjInfo, meta map[string]string) (ObjInfo, error) {
	if err := f.fault("SetMeta", cur.Key); err != nil {
		return ObjInfo{}, err
	}
	return f.ObjectClient.SetMeta(ctx, cur, meta)
}

func (f *FaultClient) Delete(ctx context.Context, key string) error {
	if err := f.fault("Delete", key); err != nil {
		return err
	}
	return f.ObjectClient.Delete(ctx, key)
}
