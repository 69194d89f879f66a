package config

import (
	"net/url"
	"strings"
)

// pathStyle decides the addressing style. "auto" picks path-style when the
// bucket name has a dot (a virtual-hosted name would break the endpoint's
// TLS wildcard certificate) or the endpoint is not AWS.
func pathStyle(addressing, endpoint, bucket string) bool {
	switch addressing {
	case "path":
		return true
	case "virtual":
		return false
	}
	if strings.Contains(bucket, ".") {
		return true
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return true
	}
	host := strings.ToLower(u.Hostname())
	return !(host == "amazonaws.com" || strings.HasSuffix(host, ".amazonaws.com"))
}
