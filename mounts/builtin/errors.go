package builtin

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
)

// maxObjectSize is the largest object S3 stores (5 TiB): a file may not
// grow past it (EFBIG), as on a filesystem with a maximum file size.
const maxObjectSize = 5 << 40

// maxNameLen is the longest name segment: NAME_MAX, and the longest path
// segment MinIO (and most S3-compatible stores on a filesystem) accept.
const maxNameLen = 255

// nameErrno is the errno for a name that can never be an object's name
// segment, before asking S3: ENAMETOOLONG past 255 bytes, EINVAL for
// ".", "..", NUL or "/" (0 when the name is fine).
func nameErrno(name string) syscall.Errno {
	if len(name) > maxNameLen {
		return syscall.ENAMETOOLONG
	}
	if !validName(name) {
		return syscall.EINVAL
	}
	return 0
}

// code is the S3 error code of err, or "".
func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// requestID is the S3 request id of a failed request, or "".
func requestID(err error) string {
	var re interface{ ServiceRequestID() string }
	if errors.As(err, &re) {
		return re.ServiceRequestID()
	}
	return ""
}

// errnoTable maps S3 error codes to what a filesystem user sees: the one
// place where that is decided (docs/SEMANTICS.md quotes it). A code not
// listed is EIO.
var errnoTable = map[string]syscall.Errno{
	// The object (or the upload) is not there.
	"NoSuchKey":    syscall.ENOENT,
	"NotFound":     syscall.ENOENT,
	"NoSuchUpload": syscall.EIO, // our own multipart upload vanished: the write failed
	// The mount's root is gone: no file answer fits.
	"NoSuchBucket": syscall.EIO,
	// The credentials or the policy refuse.
	"AccessDenied":                 syscall.EACCES,
	"Forbidden":                    syscall.EACCES,
	"AllAccessDisabled":            syscall.EACCES,
	"InvalidAccessKeyId":           syscall.EACCES,
	"SignatureDoesNotMatch":        syscall.EACCES,
	"ExpiredToken":                 syscall.EACCES,
	"InvalidToken":                 syscall.EACCES,
	"TokenRefreshRequired":         syscall.EACCES,
	"AccountProblem":               syscall.EACCES,
	"RequestTimeTooSkewed":         syscall.EACCES,
	"MethodNotAllowed":             syscall.EACCES,
	"InvalidObjectState":           syscall.EACCES, // archived (Glacier) object
	"ObjectLockConfigurationError": syscall.EPERM,
	// The name or the size is one S3 refuses.
	"KeyTooLongError":                syscall.ENAMETOOLONG,
	"XMinioInvalidObjectName":        syscall.ENAMETOOLONG, // MinIO: a segment its disks cannot hold
	"InvalidObjectName":              syscall.ENAMETOOLONG,
	"EntityTooLarge":                 syscall.EFBIG,
	"XMinioStorageFull":              syscall.ENOSPC,
	"QuotaExceeded":                  syscall.EDQUOT,
	"XMinioAdminBucketQuotaExceeded": syscall.EDQUOT,
	"InvalidBucketName":              syscall.EINVAL,
	"NotImplemented":                 syscall.ENOTSUP,
	"XNotImplemented":                syscall.ENOTSUP,
	// Another client got in the way: the caller may try again.
	"OperationAborted":           syscall.EAGAIN,
	"ConditionalRequestConflict": syscall.EAGAIN,
	// Transient server trouble the SDK already retried: the operation
	// failed. (SlowDown is EIO, not EAGAIN: tools treat EAGAIN on a
	// regular file as "try the same call again at once", which is exactly
	// what a throttled endpoint does not need.)
	"SlowDown":           syscall.EIO,
	"ServiceUnavailable": syscall.EIO,
	"InternalError":      syscall.EIO,
	"RequestTimeout":     syscall.EIO,
	// The object changed under an open file.
	"PreconditionFailed": syscall.EIO,
	"InvalidRange":       syscall.EIO,
	// Our upload was damaged on the way.
	"EntityTooSmall":            syscall.EIO,
	"XAmzContentSHA256Mismatch": syscall.EIO,
	"BadDigest":                 syscall.EIO,
	"IncompleteBody":            syscall.EIO,
}

// toErrno maps any error from an ObjectClient call to an errno: the table
// above for S3 answers, HTTP status for unnamed answers, EIO for stalls,
// timeouts and connection errors, EINTR for a call the kernel interrupted.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if errors.Is(err, errReadOnly) {
		return syscall.EROFS
	}
	if errors.Is(err, errMetaTooBig) {
		return syscall.EFBIG
	}
	if errors.Is(err, errNoProgress) || errors.Is(err, errChanged) {
		return syscall.EIO
	}
	if en, ok := err.(syscall.Errno); ok {
		return en // a guard of ours (e.g. EFBIG past 5 TiB)
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
		case http.StatusRequestEntityTooLarge:
			return syscall.EFBIG
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

// logFailure writes the one log line of a failed S3 operation: op (the S3
// API call), key, the S3 error code, the request id, the errno the user
// gets and the error. ENOENT (an object that is not there is an answer,
// not a failure) and calls the kernel interrupted go to debug; the rest to
// warn. Errors from the SDK never hold a secret (signatures are not in
// them), and this line carries nothing else.
func logFailure(op, key string, err error) {
	if err == nil {
		return
	}
	errno := toErrno(err)
	level := slog.LevelWarn
	if errno == syscall.ENOENT || errno == syscall.EINTR {
		level = slog.LevelDebug
	}
	slog.Log(context.Background(), level, "s3 operation failed", "op", op, "key", key,
		"code", code(err), "request_id", requestID(err), "errno", errno.Error(), "err", err.Error())
}
