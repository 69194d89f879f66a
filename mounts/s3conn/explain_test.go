package s3conn_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// TestProbe: the mount-time probe against a real MinIO says in the
// connector test's words why a connector cannot mount, with no request id
// or SDK preamble in the message, and keeps the raw error for logs.
func TestProbe(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "data", map[string]string{"team-a/one.csv": "a,b\n"})
	ctx := context.Background()
	closed := testenv.FreePort(t)
	cases := []struct {
		name string
		edit func(*mounts.Spec)
		kind s3conn.Kind
		want string
	}{
		{"works", func(*mounts.Spec) {}, "", ""},
		{"works on an empty prefix", func(s *mounts.Spec) { s.Prefix = "nothing-here/" }, "", ""},
		{"wrong secret", func(s *mounts.Spec) { s.Credentials.SecretAccessKey = "wrong-secret-value" },
			s3conn.KindCredentials, "the signature was refused (SignatureDoesNotMatch)"},
		{"unknown access key", func(s *mounts.Spec) { s.Credentials.AccessKeyID = "NOSUCHKEY" },
			s3conn.KindCredentials, "does not know this access key (InvalidAccessKeyId)"},
		{"missing bucket", func(s *mounts.Spec) { s.Bucket = "no-such-bucket" },
			s3conn.KindBucket, "bucket no-such-bucket does not exist at " + m.Endpoint},
		{"closed port", func(s *mounts.Spec) { s.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", closed) },
			s3conn.KindEndpoint, "nothing listens at 127.0.0.1:"},
		{"unresolvable host", func(s *mounts.Spec) { s.Endpoint = "http://no-such-host.invalid:9000" },
			s3conn.KindEndpoint, "cannot resolve no-such-host.invalid"},
		{"https to a plain http endpoint", func(s *mounts.Spec) { s.Endpoint = strings.Replace(m.Endpoint, "http:", "https:", 1) },
			s3conn.KindEndpoint, "answers plain HTTP, not HTTPS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := m.Spec("data")
			spec.Prefix = "team-a/"
			spec.StallTimeout = 3 * time.Second
			tc.edit(&spec)
			err := s3conn.Probe(ctx, spec)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("probe failed: %v", err)
				}
				return
			}
			var p *s3conn.Problem
			if !errors.As(err, &p) {
				t.Fatalf("want a *Problem, got %T %v", err, err)
			}
			if p.Kind != tc.kind || !strings.Contains(p.Msg, tc.want) {
				t.Fatalf("got kind %s %q; want kind %s containing %q", p.Kind, p.Msg, tc.kind, tc.want)
			}
			for _, bad := range []string{"RequestID", "HostID", "operation error", "wrong-secret-value", m.SecretKey} {
				if strings.Contains(p.Msg, bad) {
					t.Fatalf("message shows %q: %s", bad, p.Msg)
				}
			}
			if p.Raw == nil {
				t.Fatal("the raw error is lost: logs need it")
			}
		})
	}
}

func TestPlain(t *testing.T) {
	raw := errors.New("operation error S3: ListObjectsV2, https response error StatusCode: 403, RequestID: 17A3F, HostID: dd9025bab4ad464b, api error SignatureDoesNotMatch: The request signature we calculated does not match")
	got := s3conn.Plain(raw)
	if strings.Contains(got, "RequestID") || strings.Contains(got, "HostID") || strings.Contains(got, "operation error") ||
		!strings.Contains(got, "SignatureDoesNotMatch: The request signature") {
		t.Fatalf("Plain = %q", got)
	}
	if s3conn.Plain(errors.New("mount point busy")) != "mount point busy" {
		t.Fatal("Plain changed a plain message")
	}
}
