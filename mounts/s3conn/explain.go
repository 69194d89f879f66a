package s3conn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mounts/s3mounts/mounts"
)

// Kind is what a failed S3 request says about a connector.
type Kind string

const (
	// KindCredentials: the endpoint does not accept the key (unknown access
	// key, wrong secret, expired token) or the credentials could not be
	// obtained.
	KindCredentials Kind = "credentials"
	// KindDenied: the key is valid but refused for this bucket or prefix.
	KindDenied Kind = "denied"
	// KindBucket: the bucket does not exist, or is in another region.
	KindBucket Kind = "bucket"
	// KindEndpoint: no S3 answer at all: DNS, connection, TLS, timeout.
	KindEndpoint Kind = "endpoint"
	// KindCancelled: the caller gave up.
	KindCancelled Kind = "cancelled"
	// KindOther: any other answer (a missing key, throttling, a server error).
	KindOther Kind = "other"
)

// Problem is a failed request explained in plain words.
type Problem struct {
	Kind Kind
	Code string // the S3 error code, "" for transport errors
	// Msg says what is wrong and what to do, in one or two sentences: never
	// a secret, a request id or the SDK's "operation error" text.
	Msg string
	// Raw is the request's own error, with its request id: for logs only.
	Raw error
}

func (p *Problem) Error() string { return p.Msg }

// Unwrap gives the raw error (for errors.Is/As and logs).
func (p *Problem) Unwrap() error { return p.Raw }

// Since words the problem as a failure of a mounted connector that began
// at t, e.g. "the endpoint refuses the key since 12:03:04 UTC: …".
func (p *Problem) Since(t time.Time) string {
	lead := "requests fail"
	switch p.Kind {
	case KindCredentials:
		lead = "the endpoint refuses the key"
	case KindDenied:
		lead = "access is denied"
	case KindBucket:
		lead = "the bucket cannot be found"
	case KindEndpoint:
		lead = "the endpoint cannot be reached"
	}
	return lead + " since " + t.UTC().Format("15:04:05 UTC") + ": " + p.Msg
}

// Connector says whether the problem is one of the connector as a whole
// (its key, its bucket, its endpoint) rather than of one object.
func (p *Problem) Connector() bool {
	switch p.Kind {
	case KindCredentials, KindDenied, KindBucket, KindEndpoint:
		return true
	}
	return false
}

// Request names the kind of request that failed, for the wording of a
// refusal: the permission it needs.
type Request string

const (
	ReqList   Request = "list"   // ListObjectsV2 (also the mount-time probe)
	ReqBucket Request = "bucket" // HeadBucket
	ReqRead   Request = "read"   // HeadObject, GetObject
	ReqWrite  Request = "write"  // PutObject, multipart, CopyObject
	ReqDelete Request = "delete" // DeleteObject
)

// Explain turns the error of one S3 request for spec's bucket into a
// Problem. It is the one classifier shared by the connector test
// (s3mountctl test), the mount-time probe and the built-in filesystem's
// health, so the three say the same thing about the same failure.
func Explain(ctx context.Context, spec mounts.Spec, req Request, err error) *Problem {
	if err == nil {
		return nil
	}
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	p = explain(ctx, spec, req, err)
	p.Raw = err
	return p
}

func explain(ctx context.Context, spec mounts.Spec, req Request, err error) *Problem {
	stall := spec.StallTimeout
	where := whereOf(spec)
	code, status := apiCode(err), httpStatus(err)
	mk := func(k Kind, format string, a ...any) *Problem {
		return &Problem{Kind: k, Code: code, Msg: limit(fmt.Sprintf(format, a...))}
	}
	switch code {
	case "InvalidAccessKeyId":
		return mk(KindCredentials, "%s does not know this access key (InvalidAccessKeyId): check access_key_id, and that endpoint and region are those of the key's account", hostOf(spec))
	case "SignatureDoesNotMatch":
		return mk(KindCredentials, "the signature was refused (SignatureDoesNotMatch): check access_key_id and the secret (secret_name, secret_access_key_file, …): the secret does not belong to this access key")
	case "InvalidToken", "ExpiredToken", "TokenRefreshRequired", "InvalidSecurity":
		return mk(KindCredentials, "the session token was refused (%s): temporary credentials expired or session_token is wrong; get new ones", code)
	case "AuthorizationHeaderMalformed", "AuthorizationQueryParametersError":
		return mk(KindCredentials, "the request was refused (%s): %s: check region", code, apiMessage(err))
	case "NoSuchBucket":
		return mk(KindBucket, "bucket %s does not exist at %s: check bucket (and endpoint, region)", spec.Bucket, endpointShownOf(spec))
	case "NotFound":
		if req == ReqBucket || req == ReqList {
			return mk(KindBucket, "bucket %s does not exist at %s: check bucket (and endpoint, region)", spec.Bucket, endpointShownOf(spec))
		}
	case "PermanentRedirect":
		return redirect(spec, code, err)
	case "AccessDenied", "AllAccessDisabled", "Forbidden":
		return denied(spec, req, code)
	}
	if code == "" {
		switch {
		case status == http.StatusMovedPermanently:
			return redirect(spec, code, err)
		case status == http.StatusNotFound && (req == ReqBucket || req == ReqList):
			return mk(KindBucket, "bucket %s does not exist at %s: check bucket (and endpoint, region)", spec.Bucket, endpointShownOf(spec))
		case status == http.StatusForbidden || status == http.StatusUnauthorized:
			return denied(spec, req, code)
		case status != 0:
			return mk(KindOther, "%s failed with HTTP %d", reqWords(req, where), status)
		}
		if isCredentialRetrieval(err) {
			return mk(KindCredentials, "could not obtain credentials: %s: check profile, role_arn and web_identity_token_file", Plain(err))
		}
		return netProblem(ctx, hostOf(spec), err, stall)
	}
	return mk(KindOther, "%s failed (%s): %s", reqWords(req, where), code, apiMessage(err))
}

func reqWords(req Request, where string) string {
	switch req {
	case ReqRead:
		return "reading under " + where
	case ReqWrite:
		return "writing under " + where
	case ReqDelete:
		return "deleting under " + where
	case ReqBucket:
		return "looking up the bucket of " + where
	}
	return "listing " + where
}

func denied(spec mounts.Spec, req Request, code string) *Problem {
	where := whereOf(spec)
	var msg string
	switch {
	case spec.Credentials.Anonymous && (req == ReqBucket || req == ReqList):
		msg = fmt.Sprintf("bucket %s does not allow anonymous access: give credentials", spec.Bucket)
	case req == ReqBucket:
		msg = fmt.Sprintf("access to bucket %s is denied: the credentials need s3:ListBucket on it", spec.Bucket)
	case req == ReqRead:
		msg = fmt.Sprintf("reading under %s is denied: the credentials need s3:GetObject", where)
	case req == ReqWrite:
		msg = fmt.Sprintf("writing under %s is denied: the credentials need s3:PutObject (or set mode = \"ro\")", where)
	case req == ReqDelete:
		msg = fmt.Sprintf("deleting under %s is denied: the credentials need s3:DeleteObject", where)
	default:
		msg = fmt.Sprintf("listing %s is denied: the credentials need s3:ListBucket%s", where, prefixCondition(spec.Prefix))
	}
	return &Problem{Kind: KindDenied, Code: code, Msg: msg}
}

func redirect(spec mounts.Spec, code string, err error) *Problem {
	if region := bucketRegionHeader(err); region != "" {
		return &Problem{Kind: KindBucket, Code: code, Msg: fmt.Sprintf("bucket %s is in region %s: set region = %q", spec.Bucket, region, region)}
	}
	return &Problem{Kind: KindBucket, Code: code, Msg: fmt.Sprintf("bucket %s is in another region or behind another endpoint: check region and endpoint", spec.Bucket)}
}

func isCredentialRetrieval(err error) bool {
	s := err.Error()
	return strings.Contains(s, "get identity") || strings.Contains(s, "failed to refresh cached credentials") ||
		strings.Contains(s, "failed to retrieve credentials")
}

// netProblem explains a failure that is not an S3 answer.
func netProblem(ctx context.Context, host string, err error, stall time.Duration) *Problem {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var recordErr tls.RecordHeaderError
	p := func(k Kind, format string, a ...any) *Problem {
		return &Problem{Kind: k, Msg: limit(fmt.Sprintf(format, a...))}
	}
	switch {
	case errors.As(err, &dnsErr):
		return p(KindEndpoint, "cannot resolve %s (%s): check endpoint (and addressing: virtual-hosted requests go to BUCKET.HOST)", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &hostErr):
		return p(KindEndpoint, "the TLS certificate of %s is not valid for that name (%s): a bucket name with dots needs addressing = \"path\" or \"auto\"", host, hostErr.Error())
	case errors.As(err, &unknownAuth), errors.As(err, &certErr):
		return p(KindEndpoint, "the TLS certificate of %s is not trusted (%s): if the endpoint uses a private CA, point AWS_CA_BUNDLE at it", host, cause(err))
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return p(KindEndpoint, "%s answers plain HTTP, not HTTPS: write the endpoint with http://, or check the port", host)
	case errors.As(err, &recordErr):
		return p(KindEndpoint, "%s does not speak TLS: use an http:// endpoint, or check the port", host)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
			return p(KindCancelled, "cancelled while waiting for %s", host)
		}
		return p(KindEndpoint, "no answer from %s within %s: check endpoint, firewalls and proxies (HTTPS_PROXY)", host, stall)
	case errors.Is(err, context.Canceled):
		return p(KindCancelled, "cancelled while waiting for %s", host)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		msg := opErr.Err.Error()
		if strings.Contains(msg, "connection refused") {
			return p(KindEndpoint, "nothing listens at %s (connection refused): check endpoint's host and port, and that the service runs", host)
		}
		return p(KindEndpoint, "cannot connect to %s (%s): check endpoint, network and firewalls", host, msg)
	case errors.As(err, &opErr), strings.Contains(err.Error(), "connection reset"), strings.Contains(err.Error(), "EOF"):
		return p(KindEndpoint, "the connection to %s broke (%s): check endpoint, network and proxies", host, Plain(err))
	}
	return p(KindOther, "%s: check endpoint", Plain(err))
}

var (
	reqIDRe    = regexp.MustCompile(`,? *(RequestID|HostID|request id|host id): *[^,]*`)
	preambleRe = regexp.MustCompile(`operation error [A-Za-z0-9 ]+: [A-Za-z0-9]+, *`)
)

// Plain is err's text without the SDK's preamble ("operation error S3:
// ListObjectsV2, https response error StatusCode: 403, RequestID: …,
// HostID: …, api error …"): what remains is the cause. Request ids go to
// logs, not to users.
func Plain(err error) string {
	if err == nil {
		return ""
	}
	var p *Problem
	if errors.As(err, &p) && p.Msg != "" {
		return p.Msg
	}
	msg := err.Error()
	msg = reqIDRe.ReplaceAllString(msg, "")
	msg = preambleRe.ReplaceAllString(msg, "")
	msg = strings.ReplaceAll(msg, "https response error ", "")
	msg = strings.ReplaceAll(msg, "api error ", "")
	return limit(strings.TrimSpace(msg))
}

// RequestID is the S3 request id of err, for logs ("" if none).
func RequestID(err error) string {
	var rid interface{ ServiceRequestID() string }
	if errors.As(err, &rid) {
		return rid.ServiceRequestID()
	}
	return ""
}

func whereOf(spec mounts.Spec) string { return "s3://" + spec.Bucket + "/" + spec.Prefix }

// requestURLOf is the endpoint, or for virtual-hosted addressing the
// bucket's own host under it.
func requestURLOf(spec mounts.Spec) (*url.URL, error) {
	ep := spec.Endpoint
	if ep == "" {
		ep = "https://s3." + spec.Region + ".amazonaws.com"
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("endpoint is not an http(s) URL: check endpoint in the connector file")
	}
	u.User = nil
	if !spec.PathStyle && spec.Bucket != "" {
		u.Host = spec.Bucket + "." + u.Host
	}
	if u.Path == "" {
		u.Path = "/"
	}
	return u, nil
}

func hostOf(spec mounts.Spec) string {
	if u, err := requestURLOf(spec); err == nil {
		return u.Host
	}
	return "the endpoint"
}

func endpointShownOf(spec mounts.Spec) string {
	if u, err := url.Parse(spec.Endpoint); err == nil && spec.Endpoint != "" {
		return u.Redacted()
	}
	return hostOf(spec)
}

// Probe proves that spec's credentials can list its prefix: one
// ListObjectsV2 with max-keys 1, tried at most twice, bounded by
// 3 × stall_timeout and ctx. A mount worker runs it before it reports
// "mounted", whatever the backend. The error is a *Problem (plain words
// for users; its Raw, with the request id, for logs).
func Probe(ctx context.Context, spec mounts.Spec) error {
	stall := spec.StallTimeout
	ctx, cancel := context.WithTimeout(ctx, mounts.OpBound(stall))
	defer cancel()
	c, err := NewClient(ctx, spec, Options{StallTimeout: stall, MaxConnsPerHost: 2, RetryMaxAttempts: 2})
	if err != nil {
		return &Problem{Kind: KindCredentials, Msg: Plain(err), Raw: err}
	}
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(spec.Bucket),
		Prefix: aws.String(spec.Prefix), MaxKeys: aws.Int32(1)},
		func(o *s3.Options) { o.HTTPClient = closingClient{o.HTTPClient} })
	if err != nil {
		return Explain(ctx, spec, ReqList, err)
	}
	return nil
}

// closingClient closes each connection after its answer: a probe's client
// is used once, and must not leave idle connections behind.
type closingClient struct{ aws.HTTPClient }

func (c closingClient) Do(r *http.Request) (*http.Response, error) {
	r.Close = true
	return c.HTTPClient.Do(r)
}
