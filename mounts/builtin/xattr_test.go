package builtin

import (
	"testing"
)

// TestXattrFormat: x-amz-meta-xattr as Debian's s3fs 1.90 writes it (value
// captured by TestS3fsInteropModesXattrsDirs) parses, and what we write is
// byte for byte what s3fs writes for the same attributes.
func TestXattrFormat(t *testing.T) {
	const s3fs = "%7B%22user.by%22%3A%22czNmcy0gKy89IMOp%22%7D"
	xs := parseXattrs(map[string]string{"Xattr": s3fs})
	if got := string(xs["user.by"]); got != "s3fs- +/= é" || len(xs) != 1 {
		t.Fatalf("parsed %q", xs)
	}
	if got := formatXattrs(xs); got != s3fs {
		t.Fatalf("formatted %q, s3fs writes %q", got, s3fs)
	}
	two := map[string][]byte{"user.a": []byte("1"), "user.b": {0, 255}}
	back := parseXattrs(map[string]string{"xattr": formatXattrs(two)})
	if len(back) != 2 || string(back["user.a"]) != "1" || string(back["user.b"]) != "\x00\xff" {
		t.Fatalf("round trip: %q", back)
	}
	if parseXattrs(map[string]string{"xattr": "%7Bnot json"}) != nil {
		t.Fatalf("garbage must parse to nothing")
	}
	if metaBytes(map[string]string{"mode": "33188", "xattr": s3fs}) != 4+5+5+len(s3fs) {
		t.Fatalf("metaBytes")
	}
}
