package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// ObjInfo is what the filesystem knows of one object.
type ObjInfo struct {
	Key   string
	Size  int64
	MTime time.Time
	ETag  string
	// Meta is the object's user metadata (x-amz-meta-*, names lower case
	// without the prefix); only a HEAD carries it, never a listing.
	Meta        map[string]string
	ContentType string
}

// ListPage is one ListObjectsV2 page with delimiter "/".
type ListPage struct {
	Objects  []ObjInfo
	Prefixes []string
	Next     string // continuation token; "" when done
}

// ObjectClient is the S3 surface the filesystem uses. Every call is bounded
// by the client's deadline.
type ObjectClient interface {
	List(ctx context.Context, prefix, delimiter, token string, max int32) (ListPage, error)
	// ListAfter is List's first page of the keys after startAfter
	// (ListObjectsV2's StartAfter); later pages come from List with the
	// continuation token. A provider may ignore startAfter (the parallel
	// listing checks the answer).
	ListAfter(ctx context.Context, prefix, delimiter, startAfter string, max int32) (ListPage, error)
	Head(ctx context.Context, key string) (ObjInfo, error)
	// GetRange reads len(p) bytes at off; ifMatch ("" for any) pins the ETag.
	GetRange(ctx context.Context, key, ifMatch string, off int64, p []byte) (int, error)
	// GetStream opens [off, off+n) for reading; the body is bounded by the
	// same deadline, and Close ends the request.
	GetStream(ctx context.Context, key, ifMatch string, off, n int64) (io.ReadCloser, error)
	// Put and CreateMultipart store meta as the object's user metadata.
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta map[string]string) (ObjInfo, error)
	CreateMultipart(ctx context.Context, key string, meta map[string]string) (string, error)
	UploadPart(ctx context.Context, key, uploadID string, num int32, body io.ReadSeeker, size int64) (string, error)
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []types.CompletedPart) (ObjInfo, error)
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// Copy copies src to dst with its metadata.
	Copy(ctx context.Context, src, dst string, size int64) error
	// SetMeta replaces the user metadata of the object cur (a metadata-only
	// copy onto itself, MetadataDirective REPLACE, keeping its Content-Type),
	// only if it is still the version cur.ETag.
	SetMeta(ctx context.Context, cur ObjInfo, meta map[string]string) (ObjInfo, error)
	Delete(ctx context.Context, key string) error
}

// s3Client implements ObjectClient over aws-sdk-go-v2. Every attempt is
// aborted after stall_timeout without progress (stall.go) and retried by
// the SDK; every call fails after 3 × stall_timeout without progress,
// retries included (never after a fixed time: a slow link is not a stall).
// Each failure is logged once (logFailure).
type s3Client struct {
	c        *s3.Client
	bucket   string
	stall    time.Duration
	deadline time.Duration // no-progress budget of one call
	readOnly bool
}

// errReadOnly guards the bucket in ro mode even if a caller slips.
var errReadOnly = errors.New("read-only mount: refusing to modify the bucket")

// opBudget is the no-progress budget of one operation: under 3 × stall by
// the watchdog's polling lag (stall/8) and some room for the syscall to
// return, so that it has returned when the bound is reached.
func opBudget(stall time.Duration) time.Duration { return mounts.OpBound(stall) - stall/4 }

func newS3Client(ctx context.Context, spec mounts.Spec) (*s3Client, error) {
	stall := spec.StallTimeout
	cfg, err := s3conn.NewConfig(ctx, spec, s3conn.Options{StallTimeout: stall, MaxConnsPerHost: 64, RetryMaxAttempts: 3})
	if err != nil {
		return nil, err
	}
	// The config loader has added AWS_CA_BUNDLE to its BuildableClient;
	// keep that client and only drop its whole-response-header timeout (an
	// upload whose bytes still drain from socket buffers at 100 KB/s has
	// no response for a long time, yet makes progress): the watchdog of
	// stallClient judges progress instead.
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		cfg.HTTPClient = bc.WithTransportOptions(func(t *http.Transport) { t.ResponseHeaderTimeout = 0 })
	}
	cfg.HTTPClient = &stallClient{inner: cfg.HTTPClient, stall: stall}
	maxBackoff := min(stall/4, 2*time.Second)
	c := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if spec.Endpoint != "" {
			so.BaseEndpoint = aws.String(spec.Endpoint)
		}
		so.UsePathStyle = spec.PathStyle
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// 3 attempts (s3conn's RetryMaxAttempts), each aborted after stall
		// without progress, backoffs of at most stall/4: a frozen endpoint
		// exhausts them at about the call's no-progress budget, which ends
		// the call in any case. The client-side retry quota is off (under
		// a long outage it would turn retries into instant errors).
		so.Retryer = retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.MaxBackoff = maxBackoff
			o.RateLimiter = ratelimit.None
		})
	})
	return &s3Client{c: c, bucket: spec.Bucket, stall: stall, deadline: opBudget(stall), readOnly: spec.ReadOnly}, nil
}

// ctx bounds one call by its no-progress budget (inside any enclosing one).
func (s *s3Client) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, _, cancel := withProgress(parent, s.deadline)
	return ctx, cancel
}

// fail turns a call's error into what callers see (errNoProgress when the
// budget ran out) and logs it once.
func (s *s3Client) fail(ctx context.Context, op, key string, err error) error {
	err = stallErr(ctx, err)
	logFailure(op, key, err)
	return err
}

func (s *s3Client) List(ctx context.Context, prefix, delim, token string, max int32) (ListPage, error) {
	return s.list(ctx, prefix, delim, token, "", max)
}

func (s *s3Client) ListAfter(ctx context.Context, prefix, delim, startAfter string, max int32) (ListPage, error) {
	return s.list(ctx, prefix, delim, "", startAfter, max)
}

func (s *s3Client) list(ctx context.Context, prefix, delim, token, startAfter string, max int32) (ListPage, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(prefix)}
	if delim != "" {
		in.Delimiter = aws.String(delim)
	}
	if token != "" {
		in.ContinuationToken = aws.String(token)
	}
	if startAfter != "" {
		in.StartAfter = aws.String(startAfter)
	}
	if max > 0 {
		in.MaxKeys = aws.Int32(max)
	}
	out, err := s.c.ListObjectsV2(ctx, in)
	if err != nil {
		return ListPage{}, s.fail(ctx, "ListObjectsV2", prefix, err)
	}
	p := ListPage{Objects: make([]ObjInfo, 0, len(out.Contents)), Prefixes: make([]string, 0, len(out.CommonPrefixes))}
	for _, o := range out.Contents {
		p.Objects = append(p.Objects, ObjInfo{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size),
			MTime: aws.ToTime(o.LastModified), ETag: aws.ToString(o.ETag)})
	}
	for _, cp := range out.CommonPrefixes {
		p.Prefixes = append(p.Prefixes, aws.ToString(cp.Prefix))
	}
	if aws.ToBool(out.IsTruncated) {
		p.Next = aws.ToString(out.NextContinuationToken)
		if p.Next == "" {
			return p, fmt.Errorf("listing %q: the server said the page was truncated but gave no continuation token", prefix)
		}
	}
	return p, nil
}

func (s *s3Client) Head(ctx context.Context, key string) (ObjInfo, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return ObjInfo{}, s.fail(ctx, "HeadObject", key, err)
	}
	return ObjInfo{Key: key, Size: aws.ToInt64(out.ContentLength), MTime: aws.ToTime(out.LastModified), ETag: aws.ToString(out.ETag),
		Meta: out.Metadata, ContentType: aws.ToString(out.ContentType)}, nil
}

// GetRange reads len(p) bytes at off, resuming a broken body from the
// last byte received (readFull).
func (s *s3Client) GetRange(ctx context.Context, key, ifMatch string, off int64, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	return readFull(ctx, s, key, ifMatch, off, p, nil)
}

// getBody is a GetObject body: it ends its call's context at Close, says
// which version it is (ETag), reports a read that ran out of budget as
// errNoProgress, and a body shorter than announced as errShortBody.
type getBody struct {
	io.ReadCloser
	ctx    context.Context
	cancel context.CancelFunc
	etag   string
	left   int64
	s      *s3Client
	key    string
}

func (b *getBody) ETag() string { return b.etag }

func (b *getBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if err == io.EOF && b.left > 0 {
		err = errShortBody
	}
	if err != nil && err != io.EOF {
		err = stallErr(b.ctx, err)
		if !retryable(b.ctx, err) {
			logFailure("GetObject(body)", b.key, err)
		}
	}
	return n, err
}

func (b *getBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func (s *s3Client) GetStream(ctx context.Context, key, ifMatch string, off, n int64) (io.ReadCloser, error) {
	ctx, cancel := s.ctx(ctx)
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key,
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+n-1))}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := s.c.GetObject(ctx, in)
	if err != nil {
		defer cancel()
		if code(err) == "InvalidRange" {
			return nil, io.EOF
		}
		return nil, s.fail(ctx, "GetObject", key, err)
	}
	left := aws.ToInt64(out.ContentLength)
	if out.ContentLength == nil {
		left = n
	}
	return &getBody{ReadCloser: out.Body, ctx: ctx, cancel: cancel, etag: aws.ToString(out.ETag), left: left, s: s, key: key}, nil
}

func (s *s3Client) Put(ctx context.Context, key string, body io.ReadSeeker, size int64, meta map[string]string) (ObjInfo, error) {
	if s.readOnly {
		return ObjInfo{}, errReadOnly
	}
	if size > maxObjectSize {
		return ObjInfo{}, syscall.EFBIG
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: body, ContentLength: aws.Int64(size), Metadata: meta}, unsignedPayload)
	if err != nil {
		return ObjInfo{}, s.fail(ctx, "PutObject", key, err)
	}
	return ObjInfo{Key: key, Size: size, MTime: time.Now(), ETag: aws.ToString(out.ETag)}, nil
}

// unsignedPayload signs uploads with UNSIGNED-PAYLOAD instead of a SHA-256
// of the body, which over plain http the SDK otherwise computes for every
// byte uploaded (a pass over the data as costly as a copy). The body is
// still protected by TCP and, over https, TLS; S3 and MinIO accept it on
// both.
func unsignedPayload(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
}

func (s *s3Client) CreateMultipart(ctx context.Context, key string, meta map[string]string) (string, error) {
	if s.readOnly {
		return "", errReadOnly
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key, Metadata: meta})
	if err != nil {
		return "", s.fail(ctx, "CreateMultipartUpload", key, err)
	}
	return aws.ToString(out.UploadId), nil
}

func (s *s3Client) UploadPart(ctx context.Context, key, id string, num int32, body io.ReadSeeker, size int64) (string, error) {
	if s.readOnly {
		return "", errReadOnly
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &s.bucket, Key: &key, UploadId: &id,
		PartNumber: aws.Int32(num), Body: body, ContentLength: aws.Int64(size)}, unsignedPayload)
	if err != nil {
		return "", s.fail(ctx, "UploadPart", key, err)
	}
	return aws.ToString(out.ETag), nil
}

func (s *s3Client) CompleteMultipart(ctx context.Context, key, id string, parts []types.CompletedPart) (ObjInfo, error) {
	if s.readOnly {
		return ObjInfo{}, errReadOnly
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &s.bucket, Key: &key,
		UploadId: &id, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		return ObjInfo{}, s.fail(ctx, "CompleteMultipartUpload", key, err)
	}
	return ObjInfo{Key: key, MTime: time.Now(), ETag: aws.ToString(out.ETag)}, nil
}

func (s *s3Client) AbortMultipart(ctx context.Context, key, id string) error {
	if s.readOnly {
		return errReadOnly
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &key, UploadId: &id})
	if err != nil {
		return s.fail(ctx, "AbortMultipartUpload", key, err)
	}
	return nil
}

// maxCopy is the largest object one CopyObject may copy.
const maxCopy = 5 << 30

func (s *s3Client) Copy(ctx context.Context, src, dst string, size int64) error {
	if s.readOnly {
		return errReadOnly
	}
	source := s.bucket + "/" + escapeKey(src)
	if size <= maxCopy {
		cctx, cancel := s.ctx(ctx)
		defer cancel()
		_, err := s.c.CopyObject(cctx, &s3.CopyObjectInput{Bucket: &s.bucket, Key: &dst, CopySource: &source})
		if err != nil {
			return s.fail(cctx, "CopyObject", src+" -> "+dst, err)
		}
		return nil
	}
	// A multipart copy does not copy metadata: carry it over.
	head, err := s.Head(ctx, src)
	if err != nil {
		return err
	}
	id, err := s.CreateMultipart(ctx, dst, head.Meta)
	if err != nil {
		return err
	}
	const part = 1 << 30
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+part, n+1 {
		end := min(off+part, size) - 1
		cctx, cancel := s.ctx(ctx)
		out, err := s.c.UploadPartCopy(cctx, &s3.UploadPartCopyInput{Bucket: &s.bucket, Key: &dst, UploadId: &id,
			PartNumber: aws.Int32(n), CopySource: &source, CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end))})
		if err != nil {
			err = s.fail(cctx, "UploadPartCopy", src+" -> "+dst, err)
			cancel()
			// In the background: the caller's syscall must not wait a
			// second budget on an endpoint that just failed.
			go s.AbortMultipart(context.WithoutCancel(ctx), dst, id) //nolint:errcheck
			return err
		}
		cancel()
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.CopyPartResult.ETag})
	}
	_, err = s.CompleteMultipart(ctx, dst, id, parts)
	return err
}

func (s *s3Client) SetMeta(ctx context.Context, cur ObjInfo, meta map[string]string) (ObjInfo, error) {
	if s.readOnly {
		return ObjInfo{}, errReadOnly
	}
	if cur.Size > maxCopy {
		// A metadata-only copy of more than 5 GiB would be a full
		// multipart copy of the object.
		return ObjInfo{}, errMetaTooBig
	}
	source := s.bucket + "/" + escapeKey(cur.Key)
	in := &s3.CopyObjectInput{Bucket: &s.bucket, Key: &cur.Key, CopySource: &source,
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: meta}
	if cur.ETag != "" {
		in.CopySourceIfMatch = aws.String(cur.ETag)
	}
	if cur.ContentType != "" {
		in.ContentType = aws.String(cur.ContentType)
	}
	cctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.c.CopyObject(cctx, in)
	if err != nil {
		return ObjInfo{}, s.fail(cctx, "CopyObject(metadata)", cur.Key, err)
	}
	info := cur
	info.Meta = meta
	if out.CopyObjectResult != nil {
		info.ETag = aws.ToString(out.CopyObjectResult.ETag)
		info.MTime = aws.ToTime(out.CopyObjectResult.LastModified)
	}
	return info, nil
}

// errMetaTooBig: changing the metadata of an object over 5 GiB would copy
// all of it.
var errMetaTooBig = errors.New("setting the times of an object over 5 GiB would copy the whole object: not done")

func (s *s3Client) Delete(ctx context.Context, key string) error {
	if s.readOnly {
		return errReadOnly
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return s.fail(ctx, "DeleteObject", key, err)
	}
	return nil
}

// escapeKey URL-escapes a key for CopySource, keeping "/".
func escapeKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
