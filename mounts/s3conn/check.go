package s3conn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/s3mounts/s3mounts/mounts"
)

// CheckResult is one step of a connector test.
type CheckResult struct {
	Name     string // endpoint|credentials|bucket|list|read|write
	OK       bool
	Err      string // what failed and what to do; never a secret
	Note     string // for a passed step, what is worth knowing (e.g. "skipped: …")
	Duration time.Duration
}

// The steps of a check, in order. "write" only for read-write connectors.
const (
	StepEndpoint    = "endpoint"
	StepCredentials = "credentials"
	StepBucket      = "bucket"
	StepList        = "list"
	StepRead        = "read"
	StepWrite       = "write"
)

// Check tests spec without mounting: the endpoint answers, the credentials
// are accepted, the bucket exists, a listing works, an object can be read
// (if any), and, unless spec.ReadOnly, an object can be written and deleted
// under the prefix. Steps after a failed one are reported as skipped (not OK).
//
// Every step is bounded by spec.StallTimeout and by ctx;
// each S3 request is tried at most twice.
func Check(ctx context.Context, spec mounts.Spec) []CheckResult {
	ck := &checker{spec: spec, stall: spec.StallTimeout}
	steps := []struct {
		name string
		run  func(ctx context.Context) (note string, err error)
	}{
		{StepEndpoint, ck.endpoint},
		{StepCredentials, ck.credentials},
		{StepBucket, ck.bucket},
		{StepList, ck.list},
		{StepRead, ck.read},
	}
	if !spec.ReadOnly {
		steps = append(steps, struct {
			name string
			run  func(ctx context.Context) (string, error)
		}{StepWrite, ck.write})
	}
	out := make([]CheckResult, 0, len(steps))
	failed := ""
	for _, s := range steps {
		if failed != "" {
			out = append(out, CheckResult{Name: s.name, Err: "skipped: " + failed + " failed"})
			continue
		}
		start := time.Now()
		sctx, cancel := context.WithTimeout(ctx, ck.stall)
		note, err := s.run(sctx)
		cancel()
		r := CheckResult{Name: s.name, OK: err == nil, Note: note, Duration: time.Since(start)}
		if err != nil {
			r.Err = limit(err.Error())
			if ctx.Err() != nil && !strings.Contains(r.Err, "cancel") {
				r.Err += " (the test was cancelled)"
			}
			failed = s.name
		}
		out = append(out, r)
	}
	return out
}

type checker struct {
	spec   mounts.Spec
	stall  time.Duration
	client *s3.Client
	// found by the list step for the read step
	firstKey  string
	firstSize int64
	listed    bool
}

// endpoint makes one unsigned HTTP request to the host requests go to.
// Any HTTP answer (even 403) means the endpoint is reachable.
func (ck *checker) endpoint(ctx context.Context) (string, error) {
	u, err := ck.requestURL()
	if err != nil {
		return "", err
	}
	hc := ck.httpClient(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("cannot build a request to %s: %v", u.Redacted(), err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", netProblem(ctx, u.Host, err, ck.stall)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.Header.Get("x-amz-request-id") == "" && resp.Header.Get("x-amz-id-2") == "" &&
		!strings.Contains(resp.Header.Get("Content-Type"), "xml") {
		return fmt.Sprintf("%s answers HTTP %d but does not look like an S3 service (no x-amz-request-id): check endpoint", u.Host, resp.StatusCode), nil
	}
	return "", nil
}

func (ck *checker) requestURL() (*url.URL, error) { return requestURLOf(ck.spec) }

// httpClient is the client the SDK would use (with AWS_CA_BUNDLE applied),
// built without credentials so that it works whatever they are.
func (ck *checker) httpClient(ctx context.Context) aws.HTTPClient {
	anon := ck.spec
	anon.Credentials = mounts.Credentials{Anonymous: true}
	cfg, err := NewConfig(ctx, anon, Options{StallTimeout: ck.stall, RetryMaxAttempts: 1})
	if err == nil && cfg.HTTPClient != nil {
		return cfg.HTTPClient
	}
	return &http.Client{Timeout: ck.stall}
}

func (ck *checker) s3(ctx context.Context) (*s3.Client, error) {
	if ck.client != nil {
		return ck.client, nil
	}
	c, err := NewClient(ctx, ck.spec, Options{StallTimeout: ck.stall, RetryMaxAttempts: 2})
	if err != nil {
		return nil, err
	}
	ck.client = c
	return c, nil
}

// credentials checks that a signed request is accepted: an answer that
// is not an authentication error (AccessDenied or NoSuchBucket included:
// the signature was checked) means the keys are right.
func (ck *checker) credentials(ctx context.Context) (string, error) {
	c, err := ck.s3(ctx)
	if err != nil {
		return "", err
	}
	if ck.spec.Credentials.Anonymous {
		return "anonymous: requests are not signed", nil
	}
	if p := c.Options().Credentials; p != nil {
		if _, err := p.Retrieve(ctx); err != nil {
			return "", fmt.Errorf("could not obtain credentials: %s: check profile, role_arn and web_identity_token_file", cause(err))
		}
	}
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(ck.spec.Bucket),
		Prefix: aws.String(ck.spec.Prefix), MaxKeys: aws.Int32(1)})
	if err == nil {
		return "", nil
	}
	p := Explain(ctx, ck.spec, ReqList, err)
	switch p.Kind {
	case KindCredentials:
		return "", p
	case KindDenied, KindBucket:
		return "", nil // the service checked the signature and answered about the bucket
	case KindEndpoint, KindCancelled:
		return "", fmt.Errorf("no answer to a signed request: %s", p.Msg)
	}
	if p.Code == "NoSuchKey" || httpStatus(err) == http.StatusNotFound {
		return "", nil
	}
	return "", fmt.Errorf("a signed request failed (%s): %s", p.Code, apiMessage(err))
}

func (ck *checker) bucket(ctx context.Context) (string, error) {
	c, err := ck.s3(ctx)
	if err != nil {
		return "", err
	}
	out, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(ck.spec.Bucket)})
	if err == nil {
		if out.BucketRegion != nil && *out.BucketRegion != "" && ck.spec.Region != "" && *out.BucketRegion != ck.spec.Region &&
			isAWS(ck.spec.Endpoint) {
			return fmt.Sprintf("the bucket is in region %s: set region = %q", *out.BucketRegion, *out.BucketRegion), nil
		}
		return "", nil
	}
	if p := Explain(ctx, ck.spec, ReqBucket, err); p.Code != "" || p.Kind != KindOther {
		return "", p
	}
	return "", fmt.Errorf("HeadBucket %s failed: %s", ck.spec.Bucket, Plain(err))
}

func (ck *checker) list(ctx context.Context) (string, error) {
	c, err := ck.s3(ctx)
	if err != nil {
		return "", err
	}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(ck.spec.Bucket),
		Prefix: aws.String(ck.spec.Prefix), MaxKeys: aws.Int32(1)})
	if err != nil {
		if p := Explain(ctx, ck.spec, ReqList, err); p.Kind == KindDenied {
			return "", p
		}
		return "", fmt.Errorf("listing %s failed: %s", ck.where(), describeErr(ctx, ck.spec, err))
	}
	ck.listed = true
	if len(out.Contents) > 0 && out.Contents[0].Key != nil {
		ck.firstKey = *out.Contents[0].Key
		ck.firstSize = aws.ToInt64(out.Contents[0].Size)
		return "", nil
	}
	if len(out.CommonPrefixes) > 0 {
		return "", nil
	}
	return fmt.Sprintf("%s is empty", ck.where()), nil
}

func (ck *checker) read(ctx context.Context) (string, error) {
	if ck.firstKey == "" {
		return "skipped: no object under the prefix to read", nil
	}
	c, err := ck.s3(ctx)
	if err != nil {
		return "", err
	}
	in := &s3.GetObjectInput{Bucket: aws.String(ck.spec.Bucket), Key: aws.String(ck.firstKey)}
	if ck.firstSize > 0 {
		in.Range = aws.String("bytes=0-0")
	}
	out, err := c.GetObject(ctx, in)
	if err != nil {
		if apiCode(err) == "AccessDenied" || httpStatus(err) == http.StatusForbidden {
			return "", fmt.Errorf("reading s3://%s/%s is denied: the credentials need s3:GetObject", ck.spec.Bucket, ck.firstKey)
		}
		return "", fmt.Errorf("reading s3://%s/%s failed: %s", ck.spec.Bucket, ck.firstKey, describeErr(ctx, ck.spec, err))
	}
	defer out.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(out.Body, 1<<20)); err != nil {
		return "", fmt.Errorf("reading s3://%s/%s broke off: %s", ck.spec.Bucket, ck.firstKey, describeErr(ctx, ck.spec, err))
	}
	return "", nil
}

// write puts and deletes a small object under the prefix.
func (ck *checker) write(ctx context.Context) (string, error) {
	c, err := ck.s3(ctx)
	if err != nil {
		return "", err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	key := ck.spec.Prefix + ".s3mounts-test-" + hex.EncodeToString(rnd[:])
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(ck.spec.Bucket), Key: aws.String(key),
		Body: strings.NewReader("s3mounts connector test: safe to delete\n")})
	if err != nil {
		if apiCode(err) == "AccessDenied" || httpStatus(err) == http.StatusForbidden {
			return "", fmt.Errorf("writing under %s is denied: the credentials need s3:PutObject (or set mode = \"ro\")", ck.where())
		}
		return "", fmt.Errorf("writing s3://%s/%s failed: %s", ck.spec.Bucket, key, describeErr(ctx, ck.spec, err))
	}
	// Delete even when ctx has ended: never leave the test object behind.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ck.stall)
	defer cancel()
	if _, err := c.DeleteObject(dctx, &s3.DeleteObjectInput{Bucket: aws.String(ck.spec.Bucket), Key: aws.String(key)}); err != nil {
		if apiCode(err) == "AccessDenied" || httpStatus(err) == http.StatusForbidden {
			return "", fmt.Errorf("wrote s3://%s/%s but may not delete it: the credentials need s3:DeleteObject for rm and mv in the mount; delete the object by hand", ck.spec.Bucket, key)
		}
		return "", fmt.Errorf("wrote s3://%s/%s but deleting it failed: %s; delete the object by hand", ck.spec.Bucket, key, describeErr(ctx, ck.spec, err))
	}
	return "", nil
}

func (ck *checker) where() string { return whereOf(ck.spec) }

func prefixCondition(prefix string) string {
	if prefix == "" {
		return ""
	}
	return fmt.Sprintf(" (with s3:prefix %q allowed)", prefix)
}

func isAWS(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if endpoint == "" {
		return true
	}
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	return h == "amazonaws.com" || strings.HasSuffix(h, ".amazonaws.com")
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorMessage() != "" {
		return ae.ErrorMessage()
	}
	return cause(err)
}

func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func bucketRegionHeader(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		return re.Response.Header.Get("x-amz-bucket-region")
	}
	return ""
}

// describeErr explains a failure in plain words (Explain's wording).
func describeErr(ctx context.Context, spec mounts.Spec, err error) string {
	return Explain(ctx, spec, ReqRead, err).Msg
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// cause is the innermost useful message of an SDK error, without the
// "operation error S3: …, https response error StatusCode: …" preamble.
func cause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "api error "); i >= 0 {
		return msg[i+len("api error "):]
	}
	if i := strings.LastIndex(msg, ", "); i >= 0 && strings.HasPrefix(msg, "operation error") {
		return msg[i+2:]
	}
	return msg
}

func limit(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}
