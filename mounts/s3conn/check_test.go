package s3conn_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// summary renders results as "name:ok" / "name:FAIL(err)" for messages.
func summary(rs []s3conn.CheckResult) string {
	var b strings.Builder
	for _, r := range rs {
		if r.OK {
			fmt.Fprintf(&b, "%s:ok(%s) ", r.Name, r.Note)
		} else {
			fmt.Fprintf(&b, "%s:FAIL(%s) ", r.Name, r.Err)
		}
	}
	return b.String()
}

func names(rs []s3conn.CheckResult) string {
	var n []string
	for _, r := range rs {
		n = append(n, r.Name)
	}
	return strings.Join(n, ",")
}

// expectFailAt checks that steps before step passed, step failed with an
// error containing want, and the later steps are "skipped: step failed".
func expectFailAt(t *testing.T, rs []s3conn.CheckResult, step, want string) {
	t.Helper()
	seen := false
	for _, r := range rs {
		switch {
		case r.Name == step:
			seen = true
			if r.OK || !strings.Contains(r.Err, want) {
				t.Fatalf("step %s: want a failure containing %q, got %s", step, want, summary(rs))
			}
		case !seen:
			if !r.OK {
				t.Fatalf("step %s before %s failed: %s", r.Name, step, summary(rs))
			}
		default:
			if r.OK || r.Err != "skipped: "+step+" failed" || r.Duration != 0 {
				t.Fatalf("step %s after the failed %s: %+v", r.Name, step, r)
			}
		}
	}
	if !seen {
		t.Fatalf("no step %s in %s", step, summary(rs))
	}
}

func checkNoSecret(t *testing.T, rs []s3conn.CheckResult, secret string) {
	t.Helper()
	for _, r := range rs {
		if strings.Contains(r.Err, secret) || strings.Contains(r.Note, secret) || strings.Contains(fmt.Sprintf("%+v", r), secret) {
			t.Fatalf("a check result shows the secret: %+v", r)
		}
	}
}

func TestCheckMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "data", map[string]string{"team-a/one.csv": "a,b\n1,2\n", "team-a/sub/two.txt": "two"})
	m.MakeBucket(t, "empty.dotted", nil)
	client := m.Client(t)
	ctx := context.Background()

	t.Run("rw all steps pass and leave nothing behind", func(t *testing.T) {
		spec := m.Spec("data")
		spec.Prefix = "team-a/"
		rs := s3conn.Check(ctx, spec)
		if names(rs) != "endpoint,credentials,bucket,list,read,write" {
			t.Fatalf("steps %s", names(rs))
		}
		for _, r := range rs {
			if !r.OK || r.Err != "" || r.Duration <= 0 {
				t.Fatalf("%s", summary(rs))
			}
		}
		out, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("data")})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Contents) != 2 {
			for _, o := range out.Contents {
				t.Log(*o.Key)
			}
			t.Fatalf("the write test left objects behind: %d objects", len(out.Contents))
		}
		checkNoSecret(t, rs, m.SecretKey)
	})

	t.Run("ro has no write step", func(t *testing.T) {
		spec := m.Spec("data")
		spec.ReadOnly = true
		rs := s3conn.Check(ctx, spec)
		if names(rs) != "endpoint,credentials,bucket,list,read" {
			t.Fatalf("steps %s", names(rs))
		}
		for _, r := range rs {
			if !r.OK {
				t.Fatalf("%s", summary(rs))
			}
		}
	})

	t.Run("empty prefix skips read, dotted bucket", func(t *testing.T) {
		spec := m.Spec("empty.dotted")
		rs := s3conn.Check(ctx, spec)
		for _, r := range rs {
			if !r.OK {
				t.Fatalf("%s", summary(rs))
			}
		}
		if rs[4].Name != "read" || !strings.HasPrefix(rs[4].Note, "skipped:") {
			t.Fatalf("read should be skipped-OK: %s", summary(rs))
		}
	})

	t.Run("prefix with nothing under it", func(t *testing.T) {
		spec := m.Spec("data")
		spec.Prefix = "nothing-here/"
		spec.ReadOnly = true
		rs := s3conn.Check(ctx, spec)
		if !rs[3].OK || !strings.Contains(rs[3].Note, "is empty") || !rs[4].OK {
			t.Fatalf("%s", summary(rs))
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		spec := m.Spec("data")
		const wrong = "not-the-right-secret-123"
		spec.Credentials.SecretAccessKey = mounts.Secret(wrong)
		rs := s3conn.Check(ctx, spec)
		expectFailAt(t, rs, "credentials", "check access_key_id and the secret")
		checkNoSecret(t, rs, wrong)
		checkNoSecret(t, rs, m.SecretKey)
	})

	t.Run("unknown access key", func(t *testing.T) {
		spec := m.Spec("data")
		spec.Credentials.AccessKeyID = "NOSUCHKEY"
		rs := s3conn.Check(ctx, spec)
		expectFailAt(t, rs, "credentials", "check access_key_id")
		checkNoSecret(t, rs, m.SecretKey)
	})

	t.Run("missing bucket", func(t *testing.T) {
		spec := m.Spec("no-such-bucket")
		rs := s3conn.Check(ctx, spec)
		expectFailAt(t, rs, "bucket", "bucket no-such-bucket does not exist at "+m.Endpoint)
	})

	t.Run("no credentials at all", func(t *testing.T) {
		spec := m.Spec("data")
		spec.Credentials = mounts.Credentials{}
		rs := s3conn.Check(ctx, spec)
		expectFailAt(t, rs, "credentials", "has no credentials")
	})

	t.Run("anonymous on a private bucket", func(t *testing.T) {
		spec := m.Spec("data")
		spec.Credentials = mounts.Credentials{Anonymous: true}
		rs := s3conn.Check(ctx, spec)
		expectFailAt(t, rs, "bucket", "does not allow anonymous access")
	})

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		rs := s3conn.Check(cctx, m.Spec("data"))
		expectFailAt(t, rs, "endpoint", "cancel")
	})
}

func TestCheckUnreachable(t *testing.T) {
	// A port nothing listens on.
	port := testenv.FreePort(t)
	spec := mounts.Spec{ID: "x", Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Region: "us-east-1",
		Bucket: "data", PathStyle: true, StallTimeout: 2 * time.Second,
		Credentials: mounts.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK-secret"}}
	rs := s3conn.Check(context.Background(), spec)
	expectFailAt(t, rs, "endpoint", "connection refused")
	if len(rs) != 6 {
		t.Fatalf("rw spec should list 6 steps: %s", summary(rs))
	}
	checkNoSecret(t, rs, "SK-secret")
}

// An endpoint that accepts connections and never answers: the endpoint
// step ends by itself (bounded by stall_timeout) and says so.
func TestCheckSilentEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // hold it open, say nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	spec := mounts.Spec{ID: "x", Endpoint: "http://" + ln.Addr().String(), Region: "us-east-1",
		Bucket: "data", PathStyle: true, ReadOnly: true, StallTimeout: time.Second,
		Credentials: mounts.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"}}
	done := make(chan []s3conn.CheckResult, 1)
	go func() { done <- s3conn.Check(context.Background(), spec) }()
	select {
	case rs := <-done:
		expectFailAt(t, rs, "endpoint", "no answer from")
	case <-time.After(time.Minute):
		t.Fatal("Check did not end by itself on a silent endpoint")
	}
}

func TestCheckBadURL(t *testing.T) {
	rs := s3conn.Check(context.Background(), mounts.Spec{Endpoint: "ftp://x", Bucket: "b", ReadOnly: true,
		Credentials: mounts.Credentials{Anonymous: true}})
	expectFailAt(t, rs, "endpoint", "not an http(s) URL")
}
