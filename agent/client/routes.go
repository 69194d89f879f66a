package client

import (
	"net/url"
	"strings"
)

// Route is one route of the socket API: a method and a pattern whose
// "{id}" segment stands for a connector id. The daemon's route table
// (agent/api.go) is built from these, and this client calls them, so a
// path is written once; docs/API.md and the JupyterLab extension's server
// and TypeScript sides are checked against that table by agent's
// TestRoutes* tests.
type Route struct {
	Method  string
	Pattern string
}

// The routes of the socket API, sorted by pattern then method.
var (
	RouteMetrics    = Route{"GET", "/metrics"}
	RouteConnectors = Route{"GET", "/v1/connectors"}
	RouteConnector  = Route{"GET", "/v1/connectors/{id}"}
	RouteActivate   = Route{"POST", "/v1/connectors/{id}/activate"}
	RouteDeactivate = Route{"POST", "/v1/connectors/{id}/deactivate"}
	RouteFiles      = Route{"GET", "/v1/connectors/{id}/files"}
	RouteRefresh    = Route{"POST", "/v1/connectors/{id}/refresh"}
	RouteTest       = Route{"POST", "/v1/connectors/{id}/test"}
	RouteEvents     = Route{"GET", "/v1/events"}
	RouteHealth     = Route{"GET", "/v1/health"}
	RouteMetricsV1  = Route{"GET", "/v1/metrics"}
	RoutePubKey     = Route{"GET", "/v1/pubkey"}
)

// Path is the route's path for connector id (path-escaped in place of
// "{id}"; routes without "{id}" ignore it).
func (r Route) Path(id string) string {
	return strings.Replace(r.Pattern, "{id}", url.PathEscape(id), 1)
}

func (r Route) String() string { return r.Method + " " + r.Pattern }
