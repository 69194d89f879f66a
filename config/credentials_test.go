package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestSecretRedacts checks that a Secret never prints (fmt with every
// verb, slog, errors built from it) while JSON keeps it for the worker
// pipe, and that a Connector's JSON does not.
func TestSecretRedacts(t *testing.T) {
	const val = "s3cr3t-VALUE"
	s := Secret(val)
	cr := Credentials{AccessKeyID: "AK", SecretAccessKey: s, SessionToken: Secret("tok-" + val)}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		for _, v := range []any{s, &s, cr, &cr, struct{ C Credentials }{cr}} {
			if out := fmt.Sprintf(format, v); strings.Contains(out, val) || strings.Contains(out, fmt.Sprintf("%x", val)) {
				t.Fatalf("%s of %T shows the secret: %s", format, v, out)
			}
		}
	}
	if err := fmt.Errorf("signing with %v failed: %w", s, errors.New("x")); strings.Contains(err.Error(), val) {
		t.Fatalf("error shows the secret: %v", err)
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "secret", s, "credentials", cr)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "secret", s, "credentials", cr)
	if strings.Contains(buf.String(), val) {
		t.Fatalf("slog shows the secret: %s", buf.String())
	}
	b, err := json.Marshal(cr)
	if err != nil || !strings.Contains(string(b), `"secret_access_key":"`+val+`"`) {
		t.Fatalf("JSON must keep the secret for the worker pipe: %s %v", b, err)
	}
	var back Credentials
	if err := json.Unmarshal(b, &back); err != nil || back != cr {
		t.Fatalf("JSON round trip: %+v %v", back, err)
	}
	if s.Reveal() != val {
		t.Fatal("Reveal")
	}
	c := &Connector{ID: "x", Credentials: cr}
	if b, err := json.Marshal(c); err != nil || strings.Contains(string(b), val) {
		t.Fatalf("a Connector's JSON shows the secret: %s %v", b, err)
	}
}
