package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// ObjInfo is what the filesystem knows of one object.
type ObjInfo struct {
	Key   string
	Size  int64
	MTime time.Time
	ETag  string
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
	Head(ctx context.Context, key string) (ObjInfo, error)
	// GetRange reads len(p) bytes at off; ifMatch ("" for any) pins the ETag.
	GetRange(ctx context.Context, key, ifMatch string, off int64, p []byte) (int, error)
	// GetStream opens [off, off+n) for reading; the body is bounded by the
	// same deadline, and Close ends the request.
	GetStream(ctx context.Context, key, ifMatch string, off, n int64) (io.ReadCloser, error)
	Put(ctx context.Context, key string, body io.ReadSeeker, size int64) (ObjInfo, error)
	CreateMultipart(ctx context.Context, key string) (string, error)
	UploadPart(ctx context.Context, key, uploadID string, num int32, body io.ReadSeeker, size int64) (string, error)
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []types.CompletedPart) (ObjInfo, error)
	AbortMultipart(ctx context.Context, key, uploadID string) error
	Copy(ctx context.Context, src, dst string, size int64) error
	Delete(ctx context.Context, key string) error
}

// s3Client implements ObjectClient over aws-sdk-go-v2 with a deadline of
// 3 × StallTimeout on every call, retries included.
type s3Client struct {
	c        *s3.Client
	bucket   string
	deadline time.Duration
	readOnly bool
}

// errReadOnly guards the bucket in ro mode even if a caller slips.
var errReadOnly = errors.New("read-only mount: refusing to modify the bucket")

func newS3Client(ctx context.Context, spec mounts.Spec) (*s3Client, error) {
	stall := spec.StallTimeout
	if stall <= 0 {
		stall = 10 * time.Second
	}
	cfg, err := s3conn.NewConfig(ctx, spec, s3conn.Options{StallTimeout: stall, MaxConnsPerHost: 64, RetryMaxAttempts: 3})
	if err != nil {
		return nil, err
	}
	maxBackoff := stall / 4
	if maxBackoff > 2*time.Second {
		maxBackoff = 2 * time.Second
	}
	c := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if spec.Endpoint != "" {
			so.BaseEndpoint = aws.String(spec.Endpoint)
		}
		so.UsePathStyle = spec.PathStyle
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		so.Retryer = retry.AddWithMaxBackoffDelay(so.Retryer, maxBackoff)
	})
	return &s3Client{c: c, bucket: spec.Bucket, deadline: 3*stall - stall/10, readOnly: spec.ReadOnly}, nil
}

func (s *s3Client) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.deadline)
}

func (s *s3Client) List(ctx context.Context, prefix, delim, token string, max int32) (ListPage, error) {
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(prefix)}
	if delim != "" {
		in.Delimiter = aws.String(delim)
	}
	if token != "" {
		in.ContinuationToken = aws.String(token)
	}
	if max > 0 {
		in.MaxKeys = aws.Int32(max)
	}
	out, err := s.c.ListObjectsV2(ctx, in)
	if err != nil {
		return ListPage{}, err
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
		return ObjInfo{}, err
	}
	return ObjInfo{Key: key, Size: aws.ToInt64(out.ContentLength), MTime: aws.ToTime(out.LastModified), ETag: aws.ToString(out.ETag)}, nil
}

func (s *s3Client) GetRange(ctx context.Context, key, ifMatch string, off int64, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &key,
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))}
	if ifMatch != "" {
		in.IfMatch = aws.String(ifMatch)
	}
	out, err := s.c.GetObject(ctx, in)
	if err != nil {
		if code(err) == "InvalidRange" {
			return 0, io.EOF
		}
		return 0, err
	}
	defer out.Body.Close()
	n, err := io.ReadFull(out.Body, p)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = io.EOF
	}
	return n, err
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelBody) Close() error {
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
		cancel()
		if code(err) == "InvalidRange" {
			return nil, io.EOF
		}
		return nil, err
	}
	return cancelBody{out.Body, cancel}, nil
}

func (s *s3Client) Put(ctx context.Context, key string, body io.ReadSeeker, size int64) (ObjInfo, error) {
	if s.readOnly {
		return ObjInfo{}, errReadOnly
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.c.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key, Body: body, ContentLength: aws.Int64(size)}, unsignedPayload)
	if err != nil {
		return ObjInfo{}, err
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

func (s *s3Client) CreateMultipart(ctx context.Context, key string) (string, error) {
	if s.readOnly {
		return "", errReadOnly
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	out, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return "", err
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
		return "", err
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
		return ObjInfo{}, err
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
	return err
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
		return err
	}
	id, err := s.CreateMultipart(ctx, dst)
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
		cancel()
		if err != nil {
			_ = s.AbortMultipart(context.WithoutCancel(ctx), dst, id)
			return err
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.CopyPartResult.ETag})
	}
	_, err = s.CompleteMultipart(ctx, dst, id, parts)
	return err
}

func (s *s3Client) Delete(ctx context.Context, key string) error {
	if s.readOnly {
		return errReadOnly
	}
	ctx, cancel := s.ctx(ctx)
	defer cancel()
	_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	return err
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

// code is the S3 error code of err, or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// errnoTable maps S3 error codes to what a filesystem user sees.
var errnoTable = map[string]syscall.Errno{
	"NoSuchKey":                    syscall.ENOENT,
	"NotFound":                     syscall.ENOENT,
	"NoSuchUpload":                 syscall.EIO,
	"NoSuchBucket":                 syscall.EIO, // the mount's root is gone: no file answer fits
	"AccessDenied":                 syscall.EACCES,
	"Forbidden":                    syscall.EACCES,
	"AllAccessDisabled":            syscall.EACCES,
	"InvalidAccessKeyId":           syscall.EACCES,
	"SignatureDoesNotMatch":        syscall.EACCES,
	"ExpiredToken":                 syscall.EACCES,
	"InvalidToken":                 syscall.EACCES,
	"AccountProblem":               syscall.EACCES,
	"InvalidObjectState":           syscall.EACCES, // archived (Glacier) object
	"PreconditionFailed":           syscall.EIO,    // object changed under an open file
	"InvalidRange":                 syscall.EIO,
	"EntityTooLarge":               syscall.EFBIG,
	"EntityTooSmall":               syscall.EIO,
	"KeyTooLongError":              syscall.ENAMETOOLONG,
	"NotImplemented":               syscall.ENOTSUP,
	"XMinioStorageFull":            syscall.ENOSPC,
	"QuotaExceeded":                syscall.EDQUOT,
	"SlowDown":                     syscall.EIO,
	"ServiceUnavailable":           syscall.EIO,
	"InternalError":                syscall.EIO,
	"RequestTimeout":               syscall.EIO,
	"RequestTimeTooSkewed":         syscall.EACCES,
	"MethodNotAllowed":             syscall.EACCES,
	"InvalidBucketName":            syscall.EINVAL,
	"XAmzContentSHA256Mismatch":    syscall.EIO,
	"BadDigest":                    syscall.EIO,
	"IncompleteBody":               syscall.EIO,
	"OperationAborted":             syscall.EAGAIN,
	"ObjectLockConfigurationError": syscall.EPERM,
}

// toErrno maps any error from an ObjectClient call to an errno: the table
// above for S3 answers, HTTP status for unnamed answers, EIO for timeouts
// and connection errors, EINTR for an interrupted call.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if errors.Is(err, errReadOnly) {
		return syscall.EROFS
	}
	var en syscall.Errno
	if errors.As(err, &en) && !isNetErr(err) {
		return en
	}
	if c := code(err); c != "" {
		if e, ok := errnoTable[c]; ok {
			return e
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound:
			return syscall.ENOENT
		case http.StatusForbidden, http.StatusUnauthorized:
			return syscall.EACCES
		case http.StatusRequestedRangeNotSatisfiable:
			return syscall.EIO
		case http.StatusNotImplemented:
			return syscall.ENOTSUP
		}
	}
	if errors.Is(err, context.Canceled) {
		return syscall.EINTR
	}
	return syscall.EIO
}

func isNetErr(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, os.ErrDeadlineExceeded)
}
