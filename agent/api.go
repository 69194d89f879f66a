package agent

// The socket API (SPEC: The socket API): HTTP/1.1 + JSON on the daemon's
// Unix socket. Every route is in the one sorted table below; every request
// is authorized from the connection's peer credentials (peercred.go,
// authz.go); every error is {"error":{"code":…,"message":…}}.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
)

// Defaults of APIOptions.
const (
	DefaultActionTimeout = 2 * time.Minute
	DefaultKeepAlive     = 15 * time.Second
	DefaultIdentityTTL   = 5 * time.Second

	// DefaultFilesLimit and MaxFilesLimit bound GET …/files?limit=.
	DefaultFilesLimit = 500
	MaxFilesLimit     = 5000

	maxBodyBytes   = 64 << 10
	maxHeaderBytes = 64 << 10
)

// APIOptions configure the socket API.
type APIOptions struct {
	Controller Controller
	// Agent supplies [roles] and state_dir; nil means the SPEC defaults.
	Agent   *config.Agent
	Metrics *Metrics // nil: NewMetrics(Controller)
	Log     *slog.Logger

	// Recipient is the node key's public key ("age1…") answered by
	// GET /v1/pubkey; "" reads <state_dir>/node.key when asked.
	Recipient string
	// ActionTimeout bounds activate, deactivate, test, refresh and files
	// (default 2m). The events stream has no timeout.
	ActionTimeout time.Duration
	// KeepAlive is the interval of comments on the events stream that keep
	// proxies and clients from timing it out (default 15s).
	KeepAlive time.Duration
	// IdentityTTL is how long a uid's name and groups are cached (default 5s).
	IdentityTTL time.Duration
}

// API is the socket API server.
type API struct {
	o   APIOptions
	log *slog.Logger
	ids *identities
	lim *uidLimits
	enc encCache
	// connCtx attaches a connection's credentials (tests replace it).
	connCtx func(context.Context, net.Conn) context.Context
	// peer reads a new connection's credentials for the per-uid limits
	// (tests replace it).
	peer func(net.Conn) peerCred
}

// NewAPI returns the API server.
func NewAPI(o APIOptions) *API {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(o.Controller)
	}
	if o.ActionTimeout <= 0 {
		o.ActionTimeout = DefaultActionTimeout
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.IdentityTTL <= 0 {
		o.IdentityTTL = DefaultIdentityTTL
	}
	var lim config.Limits
	if o.Agent != nil {
		lim = o.Agent.Limits
	}
	return &API{o: o, log: o.Log.With("component", "api"), ids: newIdentities(o.IdentityTTL), lim: newUIDLimits(lim),
		connCtx: connContext, peer: readPeerCred}
}

type closingKey struct{}

// Serve answers on ln until ctx is done, then closes ln. Each connection's
// peer credentials (SO_PEERCRED) identify the caller. Requests in flight
// get a few seconds to finish; event streams end at once. The end of ctx is
// not an error.
func (a *API) Serve(ctx context.Context, ln net.Listener) error {
	closing := make(chan struct{})
	srv := &http.Server{
		Handler: a,
		// read at each connection (tests replace connCtx after Serve started)
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return a.connCtx(ctx, c) },
		BaseContext: func(net.Listener) context.Context {
			return context.WithValue(context.Background(), closingKey{}, closing)
		},
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Activation waits up to ActionTimeout; the events stream lifts
		// both deadlines for itself.
		WriteTimeout:   a.o.ActionTimeout + 30*time.Second,
		IdleTimeout:    30 * time.Second,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(a.limitListener(ln)) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("socket API: %w", err)
	case <-ctx.Done():
	}
	close(closing)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.log.Warn("socket API: requests still running at shutdown; closing them", "err", err)
		srv.Close()
	}
	<-errc
	return nil
}

// MetricsHandler serves /metrics for the optional TCP metrics_listen address
// (no caller identity there: whoever can reach that address may scrape).
// Without metrics_connectors it serves the per-node aggregates only: no
// connector id or state reaches a caller the socket's policies would not
// show it to.
func (a *API) MetricsHandler() http.Handler {
	if a.o.Agent != nil && a.o.Agent.MetricsConnectors {
		return a.o.Metrics.handler()
	}
	return a.o.Metrics.nodeHandler()
}

// request is one API call with its caller resolved.
type request struct {
	*http.Request
	caller *Caller
	role   Role
	id     string // the {id} of the route, unescaped
}

type handlerFunc func(a *API, w http.ResponseWriter, r *request) error

type route struct {
	method  string
	pattern string // segments; "{id}" matches one non-empty segment
	h       handlerFunc
	stream  bool // no latency histogram (lasts as long as the client)
}

// routes is every route of the API, sorted by pattern then method
// (TestRoutesSorted keeps it so). Method and pattern come from the
// client's Route values, which the Go client calls: each path is written
// once. TestRoutesDocumented checks docs/API.md against this table, and
// TestRoutesPanel the JupyterLab extension's proxy and panel.
var routes = []route{
	on(client.RouteMetrics, (*API).getMetrics),
	on(client.RouteConnectors, (*API).listConnectors),
	on(client.RouteConnector, (*API).getConnector),
	on(client.RouteActivate, (*API).activate),
	on(client.RouteDeactivate, (*API).deactivate),
	on(client.RouteFiles, (*API).files),
	on(client.RouteRefresh, (*API).refresh),
	on(client.RouteTest, (*API).test),
	streamOn(client.RouteEvents, (*API).events),
	on(client.RouteHealth, (*API).health),
	on(client.RouteMetricsV1, (*API).getMetrics),
	on(client.RoutePubKey, (*API).pubkey),
}

// on is a route answered by h.
func on(r client.Route, h handlerFunc) route { return route{r.Method, r.Pattern, h, false} }

// streamOn is a route whose answer lasts as long as the client (no
// latency histogram, no HEAD).
func streamOn(r client.Route, h handlerFunc) route { return route{r.Method, r.Pattern, h, true} }

// match finds the route of a path. It returns the route (nil if none), the
// {id} value, and the methods the path allows (for 405 answers).
func match(method, escapedPath string) (rt *route, id string, allowed []string) {
	segs := strings.Split(escapedPath, "/")
	for i := range routes {
		r := &routes[i]
		psegs := strings.Split(r.pattern, "/")
		if len(psegs) != len(segs) {
			continue
		}
		var pid string
		ok := true
		for j, ps := range psegs {
			if ps == "{id}" {
				v, err := url.PathUnescape(segs[j])
				if err != nil || v == "" || strings.ContainsAny(v, "/\x00") {
					ok = false
					break
				}
				pid = v
			} else if ps != segs[j] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if r.method == method || (method == http.MethodHead && r.method == http.MethodGet && !r.stream) {
			return r, pid, nil
		}
		allowed = append(allowed, r.method)
	}
	return nil, "", allowed
}

// statusWriter records the status for metrics and logs; Unwrap lets
// http.ResponseController reach Flush and the deadlines.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP is the API's one entry: browser check, route, caller, handler,
// error shape, metrics.
func (a *API) ServeHTTP(rw http.ResponseWriter, hr *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw}
	label := "unmatched"
	var rt *route
	var rq *request
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("socket API: handler panicked", "route", label, "panic", p)
			if w.status == 0 {
				writeError(w, &CodedError{Code: client.CodeInternal, Message: "internal error (see the s3mountd log)"})
			}
		}
		status := w.status
		if status == 0 {
			status = http.StatusOK
		}
		a.o.Metrics.APIRequests.WithLabelValues(label, strconv.Itoa(status)).Inc()
		if rt != nil && !rt.stream {
			a.o.Metrics.APIDuration.WithLabelValues(label).Observe(time.Since(start).Seconds())
		}
		if rq != nil {
			a.log.Debug("api request", "method", hr.Method, "route", label, "id", rq.id, "status", status,
				"caller", rq.caller.String(), "pid", rq.caller.PID, "role", rq.role.String(), "dur", time.Since(start))
		}
	}()

	// A browser must never reach the socket, e.g. through a confused proxy.
	if hr.Header.Get("Origin") != "" || hr.Header.Get("Referer") != "" {
		writeError(w, Errorf(client.CodeForbidden,
			"requests carrying an Origin or Referer header (from a browser) are refused: the socket API is for local clients"))
		return
	}
	var id string
	var allowed []string
	rt, id, allowed = match(hr.Method, hr.URL.EscapedPath())
	if rt == nil {
		if len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeStatusError(w, http.StatusMethodNotAllowed, Errorf(client.CodeInvalid,
				"method %s is not allowed on %s; use %s", hr.Method, hr.URL.Path, strings.Join(allowed, " or ")))
			return
		}
		writeError(w, Errorf(client.CodeNotFound, "no such API route: %s %s (see docs/API.md)", hr.Method, hr.URL.Path))
		return
	}
	label = rt.pattern
	hr.Body = http.MaxBytesReader(w, hr.Body, maxBodyBytes)
	caller := a.ids.caller(peerCredFrom(hr.Context()))
	rq = &request{Request: hr, caller: caller, role: RoleOf(caller, a.roles()), id: id}
	if err := rt.h(a, w, rq); err != nil {
		if errors.Is(err, context.Canceled) && hr.Context().Err() != nil {
			// The client went away; nobody is left to answer.
			w.status = 499
			return
		}
		if w.status != 0 {
			a.log.Warn("socket API: error after the answer started", "route", label, "err", err)
			return
		}
		writeError(w, err)
	}
}

func (a *API) roles() config.Roles {
	if a.o.Agent == nil {
		return DefaultRoles
	}
	return a.o.Agent.Roles
}

// statusOf maps an API error code to its HTTP status.
func statusOf(code string) int {
	switch code {
	case client.CodeNotFound:
		return http.StatusNotFound
	case client.CodeForbidden:
		return http.StatusForbidden
	case client.CodeInvalid:
		return http.StatusBadRequest
	case client.CodeConflict:
		return http.StatusConflict
	case client.CodeUnavailable:
		return http.StatusServiceUnavailable
	case client.CodeTooMany:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// toCoded turns any error into the API's error shape.
func toCoded(err error) *CodedError {
	var ce *CodedError
	switch {
	case errors.As(err, &ce):
		out := *ce
		switch out.Code {
		case client.CodeNotFound, client.CodeForbidden, client.CodeInvalid, client.CodeConflict,
			client.CodeUnavailable, client.CodeInternal, client.CodeTooMany:
		default:
			out.Code = client.CodeInternal
		}
		if out.Message == "" {
			out.Message = strings.ReplaceAll(out.Code, "_", " ")
		}
		return &out
	case errors.Is(err, context.DeadlineExceeded):
		return &CodedError{Code: client.CodeUnavailable,
			Message: "timed out waiting for the connector; it may still finish: watch `s3mountctl status ID` or GET /v1/events"}
	}
	return &CodedError{Code: client.CodeInternal, Message: err.Error()}
}

func writeError(w http.ResponseWriter, err error) {
	ce := toCoded(err)
	writeStatusError(w, statusOf(ce.Code), ce)
}

func writeStatusError(w http.ResponseWriter, status int, err error) {
	ce := toCoded(err)
	writeJSON(w, status, client.ErrorBody{Error: client.ErrorDetail{Code: ce.Code, Message: ce.Message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the answer failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// --- authorization helpers ---

// connector returns the view of id if the caller may see it and do act;
// a connector the caller may not view is not_found, never forbidden.
func (a *API) connector(rq *request, act config.Action) (View, error) {
	v, ok := a.o.Controller.Connector(rq.id)
	if !ok || !Allowed(rq.caller, rq.role, v.Access, config.ActionView) {
		return View{}, Errorf(client.CodeNotFound, "no connector %q (`s3mountctl list` shows the ones you may see)", rq.id)
	}
	if act != config.ActionView && !Allowed(rq.caller, rq.role, v.Access, act) {
		return View{}, Errorf(client.CodeForbidden, "%s may not %s connector %q (role %s%s); ask an admin of this node",
			rq.caller, act, rq.id, rq.role, policyNote(v.Access))
	}
	return v, nil
}

func policyNote(rules []config.AccessRule) string {
	if len(rules) > 0 {
		return ", and the connector's access policy decides"
	}
	return ""
}

// present fills Actions for this caller; ok is false when the caller may
// not view the connector.
func (a *API) present(c *Caller, role Role, v View) (client.Connector, bool) {
	acts := Actions(c, role, v.Access)
	if acts == nil {
		return client.Connector{}, false
	}
	out := v.Connector
	out.Actions = acts
	if v.NameHolder != "" && !a.mayView(c, role, v.NameHolder) {
		out.Error = v.ErrorAnon
	}
	return out, true
}

// mayView reports whether the caller may view connector id (errors name
// another connector only to callers who may view it).
func (a *API) mayView(c *Caller, role Role, id string) bool {
	o, ok := a.o.Controller.Connector(id)
	return ok && Allowed(c, role, o.Access, config.ActionView)
}

func (a *API) answer(w http.ResponseWriter, rq *request, v View) error {
	c, ok := a.present(rq.caller, rq.role, v)
	if !ok {
		// The policy changed under the action: the caller may no longer see it.
		return Errorf(client.CodeNotFound, "no connector %q", rq.id)
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// cleanPath normalises a path inside a mount ("" means the root).
func cleanPath(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", Errorf(client.CodeInvalid, "path contains a NUL byte")
	}
	return path.Clean("/" + p), nil
}

// --- handlers (in route order) ---

func (a *API) getMetrics(w http.ResponseWriter, rq *request) error {
	if rq.role != RoleAdmin {
		return Errorf(client.CodeForbidden, "%s may not read metrics: they are for admins only", rq.caller)
	}
	a.o.Metrics.handler().ServeHTTP(w, rq.Request)
	return nil
}

func (a *API) listConnectors(w http.ResponseWriter, rq *request) error {
	return a.writeConnectorList(w, rq, a.o.Controller.Connectors())
}

func (a *API) getConnector(w http.ResponseWriter, rq *request) error {
	v, err := a.connector(rq, config.ActionView)
	if err != nil {
		return err
	}
	return a.answer(w, rq, v)
}

func (a *API) activate(w http.ResponseWriter, rq *request) error {
	return a.setActive(w, rq, config.ActionActivate, a.o.Controller.Activate)
}

func (a *API) deactivate(w http.ResponseWriter, rq *request) error {
	return a.setActive(w, rq, config.ActionDeactivate, a.o.Controller.Deactivate)
}

func (a *API) setActive(w http.ResponseWriter, rq *request, act config.Action,
	do func(context.Context, string) (View, error)) error {
	if _, err := a.connector(rq, act); err != nil {
		return err
	}
	a.log.Info("connector "+string(act), "id", rq.id, "caller", rq.caller.String(), "pid", rq.caller.PID)
	ctx, cancel := context.WithTimeout(rq.Context(), a.o.ActionTimeout)
	defer cancel()
	v, err := do(ctx, rq.id)
	var nc *NameConflictError
	if errors.As(err, &nc) {
		msg := nc.Message
		if !a.mayView(rq.caller, rq.role, nc.Holder) {
			msg = nc.Anon
		}
		return Errorf(client.CodeConflict, "%s", msg)
	}
	if err != nil {
		return err
	}
	return a.answer(w, rq, v)
}

func (a *API) files(w http.ResponseWriter, rq *request) error {
	if _, err := a.connector(rq, config.ActionBrowse); err != nil {
		return err
	}
	q := rq.URL.Query()
	p, err := cleanPath(q.Get("path"))
	if err != nil {
		return err
	}
	limit := DefaultFilesLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return Errorf(client.CodeInvalid, "limit=%q: want a whole number from 1 to %d", s, MaxFilesLimit)
		}
		limit = min(n, MaxFilesLimit)
	}
	ctx, cancel := context.WithTimeout(rq.Context(), a.o.ActionTimeout)
	defer cancel()
	f, err := a.o.Controller.Files(ctx, rq.id, p, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	if f.Entries == nil {
		f.Entries = []client.Entry{}
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

func (a *API) refresh(w http.ResponseWriter, rq *request) error {
	if _, err := a.connector(rq, config.ActionBrowse); err != nil {
		return err
	}
	p, err := cleanPath(rq.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(rq.Context(), a.o.ActionTimeout)
	defer cancel()
	if err := a.o.Controller.Refresh(ctx, rq.id, p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, client.OK{OK: true})
	return nil
}

func (a *API) test(w http.ResponseWriter, rq *request) error {
	if _, err := a.connector(rq, config.ActionTest); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(rq.Context(), a.o.ActionTimeout)
	defer cancel()
	res, err := a.o.Controller.Test(ctx, rq.id)
	if err != nil {
		return err
	}
	if res.Checks == nil {
		res.Checks = []client.Check{}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (a *API) health(w http.ResponseWriter, rq *request) error {
	h := client.Health{Status: "ok", Version: Version, Mounts: a.o.Controller.MountedCount(),
		Caller: rq.caller.String(), Role: rq.role.String()}
	if hr, ok := a.o.Controller.(interface{ HealthError() string }); ok {
		if e := hr.HealthError(); e != "" {
			h.Status, h.Error = "degraded", e
		}
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (a *API) pubkey(w http.ResponseWriter, rq *request) error {
	rcpt := a.o.Recipient
	if rcpt == "" {
		dir := config.DefaultAgent().StateDir
		if a.o.Agent != nil && a.o.Agent.StateDir != "" {
			dir = a.o.Agent.StateDir
		}
		k, err := config.LoadNodeKey(dir)
		if err != nil {
			return Errorf(client.CodeUnavailable, "the node key is not available: %v", err)
		}
		rcpt = k.Recipient()
	}
	writeJSON(w, http.StatusOK, client.PubKey{Recipient: rcpt})
	return nil
}
