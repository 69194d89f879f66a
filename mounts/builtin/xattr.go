package builtin

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
)

// Extended attributes in the user namespace, stored in s3fs's format so
// that s3fs (-o xattr) and this backend read each other's: one metadata
// value, x-amz-meta-xattr, holding the URL-encoded JSON object
// {"user.name":"<base64 of the value>",...}. They ride with the upload on a
// file open for writing, and are a metadata-only copy on a closed one (the
// same path as chmod and utimensat). All of an object's user metadata must
// fit S3's 2 KB: beyond it setxattr fails with E2BIG. Other namespaces
// (security, system, trusted) are not stored: ENOTSUP.

const metaXattr = "xattr"

const (
	xattrCreate  = 1 // XATTR_CREATE
	xattrReplace = 2 // XATTR_REPLACE
	// maxXattrName and maxXattrValue are Linux's limits (XATTR_NAME_MAX,
	// XATTR_SIZE_MAX); S3's 2 KB is the tighter one in practice.
	maxXattrName  = 255
	maxXattrValue = 64 << 10
)

var (
	_ fs.NodeGetxattrer    = (*node)(nil)
	_ fs.NodeSetxattrer    = (*node)(nil)
	_ fs.NodeListxattrer   = (*node)(nil)
	_ fs.NodeRemovexattrer = (*node)(nil)
)

// parseXattrs reads x-amz-meta-xattr; values that do not parse are skipped.
func parseXattrs(meta map[string]string) map[string][]byte {
	v, ok := metaGet(meta, metaXattr)
	if !ok || v == "" {
		return nil
	}
	if dec, err := url.PathUnescape(v); err == nil {
		v = dec
	}
	var raw map[string]string
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return nil
	}
	out := make(map[string][]byte, len(raw))
	for k, b64 := range raw {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			continue
		}
		out[k] = b
	}
	return out
}

// formatXattrs is x-amz-meta-xattr's value for xs.
func formatXattrs(xs map[string][]byte) string {
	raw := make(map[string]string, len(xs))
	for k, v := range xs {
		raw[k] = base64.StdEncoding.EncodeToString(v)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(raw)
	return percentEncode(strings.TrimSuffix(buf.String(), "\n"))
}

// percentEncode escapes everything but RFC 3986's unreserved characters
// (HTTP header values must be ASCII; s3fs decodes any %XX).
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// knownMeta returns the node's user metadata, HEADing the object (or a
// directory's marker) if it is not known and fresh.
func (n *node) knownMeta(ctx context.Context) (map[string]string, syscall.Errno) {
	if n.IsRoot() {
		return nil, 0
	}
	n.mu.Lock()
	meta, fresh := n.info.meta, n.ws != nil || (n.info.headed && time.Now().Before(n.infoExp))
	n.mu.Unlock()
	if fresh {
		return meta, 0
	}
	e, errno := n.fsys.stat(ctx, n.rel())
	if errno != 0 {
		return nil, errno
	}
	if e.dir == n.dir {
		n.setInfo(e)
	}
	return e.meta, 0
}

func userXattr(attr string) bool { return strings.HasPrefix(attr, "user.") }

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !userXattr(attr) {
		return 0, syscall.ENOTSUP
	}
	meta, errno := n.knownMeta(ctx)
	if errno != 0 {
		return 0, errno
	}
	v, ok := parseXattrs(meta)[attr]
	if !ok {
		return 0, syscall.ENODATA
	}
	if len(dest) < len(v) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	meta, errno := n.knownMeta(ctx)
	if errno != 0 {
		return 0, errno
	}
	xs := parseXattrs(meta)
	names := make([]string, 0, len(xs))
	for k := range xs {
		if userXattr(k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var buf []byte
	for _, k := range names {
		buf = append(append(buf, k...), 0)
	}
	if len(dest) < len(buf) {
		return uint32(len(buf)), syscall.ERANGE
	}
	return uint32(copy(dest, buf)), 0
}

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if !userXattr(attr) {
		return syscall.ENOTSUP
	}
	if len(attr) > maxXattrName {
		return syscall.ERANGE
	}
	if len(data) > maxXattrValue {
		return syscall.E2BIG
	}
	if n.fsys.spec.ReadOnly {
		return syscall.EROFS
	}
	if _, errno := n.knownMeta(ctx); errno != 0 {
		return errno
	}
	val := bytes.Clone(data)
	return n.updateMeta(ctx, func(meta map[string]string) error {
		xs := parseXattrs(meta)
		_, exists := xs[attr]
		if flags&xattrCreate != 0 && exists {
			return syscall.EEXIST
		}
		if flags&xattrReplace != 0 && !exists {
			return syscall.ENODATA
		}
		if xs == nil {
			xs = map[string][]byte{}
		}
		xs[attr] = val
		metaSet(meta, metaXattr, formatXattrs(xs))
		return nil
	})
}

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	if !userXattr(attr) {
		return syscall.ENOTSUP
	}
	if n.fsys.spec.ReadOnly {
		return syscall.EROFS
	}
	return n.updateMeta(ctx, func(meta map[string]string) error {
		xs := parseXattrs(meta)
		if _, ok := xs[attr]; !ok {
			return syscall.ENODATA
		}
		delete(xs, attr)
		if len(xs) == 0 {
			for k := range meta {
				if strings.EqualFold(k, metaXattr) {
					delete(meta, k)
				}
			}
			return nil
		}
		metaSet(meta, metaXattr, formatXattrs(xs))
		return nil
	})
}
