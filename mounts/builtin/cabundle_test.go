package builtin

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
)

// The stall watchdog wraps the SDK's own HTTP client, so AWS_CA_BUNDLE
// still applies: an HTTPS endpoint signed by the bundle's CA answers (a
// 404 is ENOENT, where a TLS failure would be EIO).
func TestCABundleStillApplies(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-amz-request-id", "CA1")
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	bundle := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(bundle, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", bundle)
	spec := mounts.Spec{ID: "ca", Endpoint: srv.URL, Region: config.DefaultConnector().Region, Bucket: "b", PathStyle: true, StallTimeout: 2 * time.Second,
		Credentials: mounts.Credentials{AccessKeyID: "AK", SecretAccessKey: mounts.Secret("SK")}}
	cl, err := newS3Client(context.Background(), spec)
	if err != nil {
		t.Fatalf("building the client with AWS_CA_BUNDLE set: %v", err)
	}
	if _, ok := cl.c.Options().HTTPClient.(*stallClient); !ok {
		t.Fatalf("the SDK does not use the stall watchdog: %T", cl.c.Options().HTTPClient)
	}
	_, err = cl.Head(context.Background(), "missing")
	if toErrno(err) != syscall.ENOENT {
		t.Fatalf("HEAD over TLS with the CA from AWS_CA_BUNDLE: %v (errno %v), want a 404", err, toErrno(err))
	}
}
