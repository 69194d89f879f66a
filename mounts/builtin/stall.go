package builtin

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/sys/unix"
)

// Stalls are judged by progress, never by the length of a transfer:
//
//   - one HTTP attempt is aborted when no byte of it has been sent or
//     received for stall_timeout (the SDK then retries it, or the reader
//     resumes the body from the last byte received);
//   - one operation (an ObjectClient call, or a syscall that holds a
//     progress context) fails with EIO when none of its attempts has moved
//     a byte for 3 × stall_timeout.
//
// A 100 KB/s link therefore transfers any size, slowly; a frozen one fails
// every operation within 3 × stall_timeout of its last byte.

// errNoProgress ends an operation whose requests moved no byte for its
// whole budget.
var errNoProgress = errors.New("no byte sent or received within 3 × stall_timeout: the endpoint stopped answering")

// errAttemptStalled aborts one attempt: the SDK retries it.
var errAttemptStalled = errors.New("no byte sent or received within stall_timeout")

// stallError is what an aborted attempt returns: a timeout, which the SDK's
// retryer treats as a retryable connection error.
type stallError struct{ after time.Duration }

func (e stallError) Error() string {
	return "request aborted: no byte sent or received for " + e.after.String() + " (stall_timeout)"
}
func (stallError) Timeout() bool   { return true }
func (stallError) Temporary() bool { return true }
func (stallError) Unwrap() error   { return errAttemptStalled }

// progress is a no-progress deadline: its context is cancelled (cause
// errNoProgress) when touch has not been called for limit.
type progress struct {
	limit  time.Duration
	last   atomic.Int64 // unix nanoseconds of the last progress
	parent *progress    // an enclosing operation's progress, touched too
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

type progressKey struct{}

// withProgress returns ctx bounded by a no-progress deadline of limit.
// Progress made under it also counts for an enclosing one (a syscall that
// holds one around several calls), whose deadline still applies.
func withProgress(ctx context.Context, limit time.Duration) (context.Context, *progress, context.CancelFunc) {
	parent, _ := ctx.Value(progressKey{}).(*progress)
	ctx, cancel := context.WithCancelCause(ctx)
	p := &progress{limit: limit, parent: parent, cancel: cancel}
	p.last.Store(time.Now().UnixNano())
	// Armed only once p.timer is set: check reads it.
	p.timer = time.AfterFunc(time.Hour, p.check)
	p.timer.Reset(limit)
	ctx = context.WithValue(ctx, progressKey{}, p)
	return ctx, p, func() { p.timer.Stop(); cancel(context.Canceled) }
}

func progressOf(ctx context.Context) *progress {
	p, _ := ctx.Value(progressKey{}).(*progress)
	return p
}

func (p *progress) check() {
	idle := time.Since(time.Unix(0, p.last.Load()))
	if idle >= p.limit {
		p.cancel(errNoProgress)
		return
	}
	p.timer.Reset(p.limit - idle)
}

// touch records progress, here and in every enclosing operation.
func (p *progress) touch() {
	now := time.Now().UnixNano()
	for q := p; q != nil; q = q.parent {
		q.last.Store(now)
	}
}

// stallErr returns errNoProgress (wrapping err) when ctx ended for lack of
// progress, else err.
func stallErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(context.Cause(ctx), errNoProgress) && !errors.Is(err, errNoProgress) {
		return &noProgressError{err: err}
	}
	return err
}

type noProgressError struct{ err error }

func (e *noProgressError) Error() string { return errNoProgress.Error() + " (" + e.err.Error() + ")" }
func (e *noProgressError) Unwrap() []error {
	return []error{errNoProgress, e.err}
}

// stallClient wraps the SDK's HTTP client: every attempt gets a watchdog
// that aborts it after stall without progress. Progress is any byte of the
// request acknowledged by the peer or of the response received (from the
// kernel's TCP counters, polled every stall/8), and any byte of the
// response body read. The first acknowledgements of an attempt count for
// the attempt only: a retry to a frozen peer fills fresh socket buffers,
// which must not extend the operation's budget.
//
// It wraps the client the SDK built (a BuildableClient, which the SDK can
// add AWS_CA_BUNDLE to) instead of replacing it.
type stallClient struct {
	inner aws.HTTPClient
	stall time.Duration
}

func (c *stallClient) Do(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	actx, cancel := context.WithCancelCause(parent)
	a := &attempt{stall: c.stall, cancel: cancel, op: progressOf(parent)}
	a.last.Store(time.Now().UnixNano())
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { a.setConn(info.Conn) }}
	actx = httptrace.WithClientTrace(actx, trace)
	req = req.WithContext(actx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &touchReader{ReadCloser: req.Body, a: a}
	}
	a.timer = time.AfterFunc(time.Hour, a.check) // armed below, once a.timer is set
	a.timer.Reset(a.tick())
	resp, err := c.inner.Do(req)
	if err != nil {
		a.stop()
		stalled := errors.Is(context.Cause(actx), errAttemptStalled)
		cancel(context.Canceled)
		if parent.Err() == nil {
			c.dropIdle()
		}
		if stalled && parent.Err() == nil {
			return nil, stallError{after: c.stall}
		}
		return nil, err
	}
	resp.Body = &touchBody{ReadCloser: resp.Body, a: a, ctx: actx, parent: parent, c: c}
	return resp, nil
}

// dropIdle closes the pooled idle connections after a connection failed
// or stalled: they went through the same broken path (a restarted proxy, a
// frozen or reset link), and the SDK's few attempts must not all be spent
// on dead connections.
func (c *stallClient) dropIdle() {
	if ci, ok := c.inner.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// attempt is one HTTP request's watchdog.
type attempt struct {
	stall  time.Duration
	cancel context.CancelCauseFunc
	op     *progress
	last   atomic.Int64
	timer  *time.Timer

	mu       sync.Mutex
	conn     syscall.Conn
	acked    uint64 // request bytes the peer acknowledged on conn, when last looked
	received uint64 // response bytes received on conn, when last looked
	ackSeen  bool   // acknowledgements were seen once already
	stopped  bool
}

// tick is how often the kernel's counters are polled: progress is dated
// up to one tick late, which opBudget allows for.
func (a *attempt) tick() time.Duration { return max(a.stall/8, 10*time.Millisecond) }

// touch records bytes received: progress of the attempt and its operation.
func (a *attempt) touch() {
	a.last.Store(time.Now().UnixNano())
	if a.op != nil {
		a.op.touch()
	}
}

// acked records that the peer acknowledged more of the request. The first
// such news of an attempt counts for the attempt only: a fresh connection
// to a frozen peer still fills the socket buffers at once, which is not
// progress. Acknowledgements that keep coming are (a slow link).
func (a *attempt) ackedMore() {
	if !a.ackSeen {
		a.ackSeen = true
		a.last.Store(time.Now().UnixNano())
		return
	}
	a.touch()
}

func (a *attempt) setConn(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	a.mu.Lock()
	a.conn = sc
	a.acked, a.received, _ = tcpBytes(sc)
	a.mu.Unlock()
}

// tcpBytes is how many bytes the kernel has had acknowledged by the peer,
// and has received, on c.
func tcpBytes(c syscall.Conn) (acked, received uint64, ok bool) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var info *unix.TCPInfo
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		info, gerr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil || gerr != nil {
		return 0, 0, false
	}
	return info.Bytes_acked, info.Bytes_received, true
}

func (a *attempt) check() {
	a.mu.Lock()
	if a.stopped {
		a.mu.Unlock()
		return
	}
	if a.conn != nil {
		if acked, received, ok := tcpBytes(a.conn); ok {
			if received != a.received {
				a.received = received
				a.touch()
			}
			if acked != a.acked {
				a.acked = acked
				a.ackedMore()
			}
		}
	}
	a.mu.Unlock()
	idle := time.Since(time.Unix(0, a.last.Load()))
	if idle >= a.stall {
		a.cancel(errAttemptStalled)
		return
	}
	a.timer.Reset(min(a.tick(), a.stall-idle))
}

func (a *attempt) stop() {
	a.mu.Lock()
	a.stopped = true
	a.mu.Unlock()
	a.timer.Stop()
}

type touchReader struct {
	io.ReadCloser
	a *attempt
}

// Read counts for the attempt only: bytes handed to the connection may sit
// in socket buffers (the kernel's acknowledgements count for the operation).
func (r *touchReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if n > 0 {
		r.a.last.Store(time.Now().UnixNano())
	}
	return n, err
}

// touchBody is a response body under its attempt's watchdog: a stalled
// body read fails with stallError (the reader resumes from there).
type touchBody struct {
	io.ReadCloser
	c      *stallClient
	a      *attempt
	ctx    context.Context
	parent context.Context
}

func (b *touchBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.a.touch()
	}
	if err != nil && err != io.EOF && b.parent.Err() == nil {
		b.c.dropIdle()
		if errors.Is(context.Cause(b.ctx), errAttemptStalled) {
			err = stallError{after: b.a.stall}
		}
	}
	return n, err
}

func (b *touchBody) Close() error {
	err := b.ReadCloser.Close()
	b.a.stop()
	b.a.cancel(context.Canceled)
	return err
}

// retryable says whether a failed body read may be resumed with a new
// ranged request: the connection broke or stalled, or the body ended
// short. Not when the operation itself is out of budget or cancelled, or
// the object changed.
func retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil || errors.Is(err, errNoProgress) || isChanged(err) {
		return false
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errAttemptStalled) || errors.Is(err, errShortBody) {
		return true
	}
	if code(err) != "" {
		return false // an S3 answer: the SDK has retried what it could
	}
	return isNetErr(err) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// errShortBody: a body ended before the length it announced.
var errShortBody = errors.New("the response body ended early")

// stall is the mount's stall_timeout.
func (f *FS) stall() time.Duration { return f.spec.StallTimeout }
