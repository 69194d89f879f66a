package builtin

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/s3mounts/s3mounts/config"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"net/http"

	"github.com/aws/smithy-go"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/s3mounts/s3mounts/mounts"
)

// The filesystem's read rules, table-tested against MemClient and
// FaultClient without FUSE or MinIO: each case runs in milliseconds.

// testStall is small for speed, yet large enough that a loaded machine
// (or -race) does not take scheduling delays for stalls.
const testStall = 250 * time.Millisecond

// testMetadataMax is [cache] metadata_max's default, for caches and FSs
// the tests build without a Spec from config.
var testMetadataMax = config.DefaultConnector().MetadataMax

func testFS(cl ObjectClient) *FS {
	return &FS{spec: mounts.Spec{StallTimeout: testStall, MetadataTTL: time.Second, ListConcurrency: 16, MetadataMax: testMetadataMax}, cl: cl,
		meta: newMetaCache(time.Second, time.Second, testMetadataMax), requests: new(requestCounts), budget: newBufBudget(budgetBuffer), ctx: context.Background()}
}

func rnd(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// readAll reads the whole object through a reader as the kernel would:
// sequential chunks of 1 MiB, then one read at the end.
func readAll(t *testing.T, r *reader, size int64) ([]byte, syscall.Errno) {
	t.Helper()
	var out []byte
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		n, errno := r.ReadAt(context.Background(), buf, off)
		if errno != 0 {
			return out, errno
		}
		if n == 0 {
			break
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
	return out, 0
}

func TestReaderRules(t *testing.T) {
	const size = 20 << 20 // 3 parts: readahead, several GETs
	data := rnd(size)
	cases := []struct {
		name      string
		body      func(key string, off int64) BodyFault
		err       func(op, key string) error
		wantErrno syscall.Errno
		resumed   bool
	}{
		{name: "plain"},
		{name: "every body cut after 300 KB", body: func(string, int64) BodyFault { return BodyFault{After: 300 << 10, Cut: true} }, resumed: true},
		{name: "every body reset after 1 MB", body: func(string, int64) BodyFault { return BodyFault{After: 1 << 20, Reset: true} }, resumed: true},
		{name: "bodies from 8 MiB on stall after 64 KB", body: func(_ string, off int64) BodyFault {
			if off >= partSize {
				return BodyFault{After: 64 << 10, Stall: true}
			}
			return BodyFault{}
		}, wantErrno: syscall.EIO},
		{name: "access denied", err: func(op, _ string) error {
			if op == "GetStream" {
				return apiErr("AccessDenied", "Access Denied")
			}
			return nil
		}, wantErrno: syscall.EACCES},
		{name: "slow down", err: func(op, _ string) error {
			if op == "GetStream" {
				return apiErr("SlowDown", "Please reduce your request rate.")
			}
			return nil
		}, wantErrno: syscall.EIO},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := NewMemClient()
			etag := mem.Set("k", data)
			fc := NewFaultClient(mem)
			fc.Body, fc.Err = tc.body, tc.err
			f := testFS(fc)
			r := newReader(f, "k", etag, size)
			defer r.close()
			before := resumes.Load()
			start := time.Now()
			got, errno := readAll(t, r, size)
			if errno != tc.wantErrno {
				t.Fatalf("errno %v, want %v", errno, tc.wantErrno)
			}
			if errno == 0 && !bytes.Equal(got, data) {
				t.Fatalf("wrong bytes (%d of %d)", len(got), size)
			}
			if !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("the %d bytes served before the failure are wrong", len(got))
			}
			if tc.resumed && resumes.Load() == before {
				t.Fatal("no body was resumed")
			}
			if tc.wantErrno == syscall.EIO && tc.body != nil {
				// Several reads may each wait up to the bound; none more.
				if took := time.Since(start); took > 20*3*testStall+time.Second {
					t.Fatalf("took %v", took)
				}
			}
		})
	}
}

// One read that waits on a stalled body fails within 3 × stall_timeout,
// and the read right after it (the kernel's retry) fails at once.
func TestStalledReadBound(t *testing.T) {
	mem := NewMemClient()
	data := rnd(3 << 20)
	etag := mem.Set("k", data)
	fc := NewFaultClient(mem)
	fc.Body = func(string, int64) BodyFault { return BodyFault{After: 1 << 20, Stall: true} }
	r := newReader(testFS(fc), "k", etag, int64(len(data)))
	defer r.close()
	buf := make([]byte, 128<<10)
	if n, errno := r.ReadAt(context.Background(), buf, 0); errno != 0 || !bytes.Equal(buf[:n], data[:n]) {
		t.Fatalf("first read: %v", errno)
	}
	start := time.Now()
	_, errno := r.ReadAt(context.Background(), buf, 2<<20)
	took := time.Since(start)
	if errno != syscall.EIO {
		t.Fatalf("stalled read: errno %v, want EIO", errno)
	}
	if took < 2*testStall || took > 3*testStall+500*time.Millisecond {
		t.Fatalf("stalled read returned after %v; the bound is 3 × %v", took, testStall)
	}
	start = time.Now()
	if _, errno := r.ReadAt(context.Background(), buf, 2<<20+128<<10); errno != syscall.EIO || time.Since(start) > testStall {
		t.Fatalf("the read right after a stall: errno %v after %v, want EIO at once", errno, time.Since(start))
	}
}

// The versions rule: a handle that has served nothing re-pins a replaced
// object (any size) and serves it whole; one that has served bytes of the
// old version gets EIO rather than a mix, and the node is told.
func TestReaderVersions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		old, new []byte
		readOld  bool // the handle served bytes before the replacement
		wantEIO  bool
	}{
		{name: "same size before the first read", old: rnd(1 << 20), new: rnd(1 << 20)},
		{name: "bigger before the first read", old: rnd(100), new: rnd(12 << 20)},
		{name: "smaller before the first read", old: rnd(12 << 20), new: rnd(100)},
		{name: "replaced after bytes were served", old: rnd(12 << 20), new: rnd(12 << 20), readOld: true, wantEIO: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := NewMemClient()
			etag := mem.Set("k", tc.old)
			r := newReader(testFS(mem), "k", etag, int64(len(tc.old)))
			defer r.close()
			var changed atomic.Int32
			var repinned ObjInfo
			r.onChanged = func() { changed.Add(1) }
			r.onRepinned = func(i ObjInfo, _ bool) { repinned = i }
			buf := make([]byte, 64<<10)
			if tc.readOld {
				if _, errno := r.ReadAt(context.Background(), buf, 0); errno != 0 {
					t.Fatal(errno)
				}
				r.close() // drop its readahead, so the next read asks S3
				r = newReader(r.fsys, "k", etag, int64(len(tc.old)))
				r.served.Store(true)
				r.onChanged = func() { changed.Add(1) }
			}
			newTag := mem.Set("k", tc.new)
			got, errno := readAll(t, r, int64(len(tc.new)))
			if tc.wantEIO {
				if errno != syscall.EIO || changed.Load() == 0 {
					t.Fatalf("errno %v, onChanged %d: want EIO and the node told", errno, changed.Load())
				}
				return
			}
			if errno != 0 || !bytes.Equal(got, tc.new) {
				t.Fatalf("errno %v, %d bytes: want the new version whole (%d bytes)", errno, len(got), len(tc.new))
			}
			if repinned.ETag != newTag || repinned.Size != int64(len(tc.new)) {
				t.Fatalf("the node was told %+v, want the new version", repinned)
			}
		})
	}
}

// A body resumed after a cut stays pinned to its ETag: when the object is
// replaced between the cut and the resumption, the read fails (EIO) and
// never returns bytes of two versions.
func TestResumeIsPinned(t *testing.T) {
	mem := NewMemClient()
	old := rnd(3 << 20)
	etag := mem.Set("k", old)
	fc := NewFaultClient(mem)
	var replaced atomic.Bool
	fc.Body = func(_ string, off int64) BodyFault {
		if off > 0 && replaced.CompareAndSwap(false, true) {
			mem.Set("k", rnd(3<<20)) // another client, right at the cut
		}
		return BodyFault{After: 1 << 20, Cut: true}
	}
	buf := make([]byte, 3<<20)
	n, err := readFull(context.Background(), fc, "k", etag, 0, buf, nil)
	if !isChanged(err) {
		t.Fatalf("err %v, want the object's change (PreconditionFailed)", err)
	}
	if !bytes.Equal(buf[:n], old[:n]) {
		t.Fatal("bytes of the new version mixed into the old")
	}
	if toErrno(err) != syscall.EIO {
		t.Fatalf("errno %v", toErrno(err))
	}
}

func TestProgressDeadline(t *testing.T) {
	ctx, p, cancel := withProgress(context.Background(), 50*time.Millisecond)
	defer cancel()
	for i := 0; i < 6; i++ { // 120 ms of progress: alive
		time.Sleep(20 * time.Millisecond)
		p.touch()
	}
	if ctx.Err() != nil {
		t.Fatal("a context with progress ended")
	}
	inner, _, cancel2 := withProgress(ctx, time.Hour)
	defer cancel2()
	select {
	case <-inner.Done(): // the enclosing budget still applies
	case <-time.After(2 * time.Second):
		t.Fatal("no progress for 2 s and the context is alive")
	}
	if !errors.Is(context.Cause(ctx), errNoProgress) {
		t.Fatalf("cause %v", context.Cause(ctx))
	}
	if err := stallErr(ctx, context.Canceled); toErrno(err) != syscall.EIO {
		t.Fatalf("a call out of budget maps to %v, want EIO", toErrno(err))
	}
}

func TestErrnoFidelity(t *testing.T) {
	withStatus := func(status int, code string) error {
		resp := &smithyhttp.Response{Response: &http.Response{StatusCode: status}}
		var err error = &smithyhttp.ResponseError{Response: resp, Err: &smithy.GenericAPIError{Code: code}}
		return &awshttp.ResponseError{ResponseError: err.(*smithyhttp.ResponseError), RequestID: "REQ1"}
	}
	for _, tc := range []struct {
		err  error
		want syscall.Errno
	}{
		{apiErr("NoSuchKey", ""), syscall.ENOENT},
		{apiErr("AccessDenied", ""), syscall.EACCES},
		{apiErr("InvalidAccessKeyId", ""), syscall.EACCES},
		{apiErr("XMinioInvalidObjectName", ""), syscall.ENAMETOOLONG},
		{apiErr("KeyTooLongError", ""), syscall.ENAMETOOLONG},
		{apiErr("EntityTooLarge", ""), syscall.EFBIG},
		{apiErr("XMinioStorageFull", ""), syscall.ENOSPC},
		{apiErr("SlowDown", ""), syscall.EIO},
		{apiErr("PreconditionFailed", ""), syscall.EIO},
		{apiErr("SomethingNew", ""), syscall.EIO},
		{withStatus(404, ""), syscall.ENOENT},
		{withStatus(403, ""), syscall.EACCES},
		{withStatus(413, ""), syscall.EFBIG},
		{stallError{after: time.Second}, syscall.EIO},
		{fmt.Errorf("x: %w", errNoProgress), syscall.EIO},
		{errReadOnly, syscall.EROFS},
		{context.Canceled, syscall.EINTR},
		{syscall.EFBIG, syscall.EFBIG},
	} {
		if got := toErrno(tc.err); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, got, tc.want)
		}
	}
	for name, want := range map[string]syscall.Errno{
		strings.Repeat("a", 255): 0, strings.Repeat("a", 256): syscall.ENAMETOOLONG, "..": syscall.EINVAL, "a\x00": syscall.EINVAL,
	} {
		if got := nameErrno(name); got != want {
			t.Errorf("nameErrno(%d bytes): %v, want %v", len(name), got, want)
		}
	}
	if _, err := NewMemClient().Put(context.Background(), "big", bytes.NewReader(nil), maxObjectSize+1, nil); toErrno(err) != syscall.EFBIG {
		t.Errorf("a 5 TiB + 1 put: %v", err)
	}
}

// Each failed S3 call is one log line with op, key, code and request id;
// ENOENT only at debug.
func TestFailureLogLine(t *testing.T) {
	var buf bytes.Buffer
	CaptureSlog(t, &buf)
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: 403}}
	err := &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: resp,
		Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}}, RequestID: "REQ42"}
	logFailure("GetObject", "dir/file", err)
	logFailure("HeadObject", "missing", apiErr("NotFound", "Not Found"))
	out := buf.String()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want exactly one line (ENOENT at debug only), got:\n%s", out)
	}
	for _, want := range []string{"level=WARN", "op=GetObject", "key=dir/file", "code=AccessDenied", "request_id=REQ42", `errno="permission denied"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log line lacks %s:\n%s", want, out)
		}
	}
}

// A sequential read through Read (what the FUSE server calls) is answered
// from the readahead parts' buffers themselves: the bytes are the
// object's, a reply not yet written keeps its buffer from being reused by
// later parts, and every buffer returns to the mount's budget once the
// replies are done and the file is closed.
func TestReadZeroCopyReplies(t *testing.T) {
	const size = 40 << 20 // 5 parts: more than the budget recycles
	data := rnd(size)
	mem := NewMemClient()
	etag := mem.Set("k", data)
	f := testFS(mem)
	f.budget = newBufBudget(3) // buffers are recycled within the read
	r := newReader(f, "k", etag, size)
	var held fuse.ReadResult // the first reply, written only at the end
	var heldCopy []byte
	zeroCopy := 0
	buf := make([]byte, 1<<20)
	var got []byte
	for off := int64(0); off < size; {
		res, errno := r.Read(context.Background(), buf, off)
		if errno != 0 {
			t.Fatalf("read at %d: %v", off, errno)
		}
		var b []byte
		if sl, ok := res.(interface {
			Slices() ([][]byte, fuse.Status)
		}); ok {
			zeroCopy++
			vecs, _ := sl.Slices()
			for _, v := range vecs {
				b = append(b, v...)
			}
		} else {
			b, _ = res.Bytes(make([]byte, len(buf)))
		}
		if len(b) == 0 {
			t.Fatalf("read at %d: nothing", off)
		}
		got = append(got, b...)
		off += int64(len(b))
		if held == nil {
			held, heldCopy = res, append([]byte(nil), b...)
		} else {
			res.Done()
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("wrong bytes (%d of %d)", len(got), size)
	}
	if zeroCopy < size/(1<<20)/2 {
		t.Fatalf("only %d of %d reads were answered from a part's buffer", zeroCopy, size/(1<<20))
	}
	if sl, ok := held.(interface {
		Slices() ([][]byte, fuse.Status)
	}); ok {
		vecs, _ := sl.Slices()
		if !bytes.Equal(vecs[0], heldCopy) {
			t.Fatal("a reply's buffer was reused before the reply was written")
		}
	}
	held.Done()
	r.close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.budget.mu.Lock()
		n := f.budget.count
		f.budget.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d readahead buffers still counted after close", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A sequential read from offset 0 starts with readahead parts at once: one
// GET per part and no exact GETs before the window opens; a single read of
// a file's head fetches one part and nothing ahead of it.
func TestSequentialReadStartsWithParts(t *testing.T) {
	const size = 20 << 20 // 3 parts
	data := rnd(size)
	mem := NewMemClient()
	etag := mem.Set("k", data)
	fc := NewFaultClient(mem)
	var gets atomic.Int64
	fc.Err = func(op, _ string) error {
		if op == "GetStream" {
			gets.Add(1)
		}
		return nil
	}
	f := testFS(fc)
	r := newReader(f, "k", etag, size)
	got, errno := readAll(t, r, size)
	r.close()
	if errno != 0 || !bytes.Equal(got, data) {
		t.Fatalf("errno %v, %d of %d bytes right", errno, len(got), size)
	}
	if n := gets.Load(); n != (size+partSize-1)/partSize {
		t.Fatalf("%d GETs for a sequential read of %d parts", n, (size+partSize-1)/partSize)
	}

	head := newReader(f, "k", etag, size)
	defer head.close()
	buf := make([]byte, 4096)
	if n, errno := head.ReadAt(context.Background(), buf, 0); errno != 0 || !bytes.Equal(buf[:n], data[:4096]) {
		t.Fatalf("head read: errno %v", errno)
	}
	head.mu.Lock()
	parts := len(head.parts)
	head.mu.Unlock()
	if parts != 1 {
		t.Fatalf("a read of the head started %d parts, want 1", parts)
	}
}
