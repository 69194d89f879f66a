package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// DefaultSocket is where s3mountd listens unless configured otherwise.
const DefaultSocket = "/run/s3mounts/agent.sock"

// SocketFromEnv returns $S3MOUNTS_SOCKET, or DefaultSocket.
func SocketFromEnv() string {
	if s := os.Getenv("S3MOUNTS_SOCKET"); s != "" {
		return s
	}
	return DefaultSocket
}

// Client speaks to s3mountd over its Unix socket. The zero value is not
// usable; call New. A Client is safe for concurrent use.
type Client struct {
	// Socket is the path of the daemon's socket.
	Socket string
	// Dial connects to the daemon; by default a Unix socket dial of Socket.
	// Tests and tools may replace it before the first call.
	Dial func(ctx context.Context) (net.Conn, error)

	once sync.Once
	hc   *http.Client
}

// New returns a client of the daemon listening on socketPath ("" means
// $S3MOUNTS_SOCKET or DefaultSocket).
func New(socketPath string) *Client {
	if socketPath == "" {
		socketPath = SocketFromEnv()
	}
	return &Client{Socket: socketPath}
}

func (c *Client) http() *http.Client {
	c.once.Do(func() {
		dial := c.Dial
		if dial == nil {
			dial = func(ctx context.Context) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", c.Socket)
			}
		}
		c.hc = &http.Client{Transport: &http.Transport{
			// Never a proxy from the environment: this is a local socket.
			Proxy: nil,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				conn, err := dial(ctx)
				if err != nil {
					return nil, c.dialError(err)
				}
				return conn, nil
			},
			MaxIdleConns:        8,
			MaxIdleConnsPerHost: 8,
			DisableCompression:  true,
		}}
	})
	return c.hc
}

// APIError is an error answer of the daemon:
// {"error":{"code":…,"message":…}} with its HTTP status.
type APIError struct {
	Status  int
	Code    string // CodeNotFound, CodeForbidden, …
	Message string
}

func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("s3mountd: %s (HTTP %d)", e.Code, e.Status)
	}
	return e.Message
}

// IsCode reports whether err is an *APIError with that code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// ConnectError is returned when the daemon's socket cannot be reached; its
// message says what to do.
type ConnectError struct {
	Socket string
	Hint   string
	Err    error
}

func (e *ConnectError) Error() string { return e.Hint }
func (e *ConnectError) Unwrap() error { return e.Err }

func (c *Client) dialError(err error) error {
	var hint string
	switch {
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		hint = "permission denied on " + c.Socket + ": " + permissionHint(c.Socket)
	default:
		hint = fmt.Sprintf("cannot reach s3mountd at %s: is the service running? systemctl status s3mountd (%v)",
			c.Socket, rootCause(err))
	}
	return &ConnectError{Socket: c.Socket, Hint: hint, Err: err}
}

// permissionHint finds out what refused the caller the socket: a parent
// directory it may not search, or the socket's group and mode, and says
// what to do about it.
func permissionHint(sock string) string {
	abs := sock
	if !strings.HasPrefix(abs, "/") {
		if wd, err := os.Getwd(); err == nil {
			abs = wd + "/" + abs
		}
	}
	// Every directory on the way must be searchable (x).
	dirs, cur := []string{"/"}, ""
	parts := strings.Split(strings.Trim(abs, "/"), "/")
	for _, p := range parts[:len(parts)-1] {
		if p != "" {
			cur += "/" + p
			dirs = append(dirs, cur)
		}
	}
	for _, d := range dirs {
		if syscall.Access(d, 1) == syscall.EACCES { // X_OK, as the caller's real uid and groups
			return "you may not enter the directory " + d + " (" + ownerMode(d) + "), which holds the socket; " +
				"ask an admin to let you through it (e.g. `chmod o+x " + d + "`), or to put the socket where you may reach it"
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(abs, &st); err != nil {
		return fmt.Sprintf("cannot inspect the socket (%v); ask an admin of this node", rootCause(err))
	}
	group := strconv.FormatUint(uint64(st.Gid), 10)
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	mode := fmt.Sprintf("%04o", st.Mode&0o7777)
	inSession := false
	if gids, err := os.Getgroups(); err == nil {
		for _, g := range gids {
			inSession = inSession || uint32(g) == st.Gid
		}
	}
	inSession = inSession || uint32(os.Getegid()) == st.Gid
	switch {
	case inSession && st.Mode&0o020 == 0:
		return fmt.Sprintf("the socket's mode %s does not let its group %s write to it; "+
			"ask an admin to run `chmod g+w %s` (socket_group and mode 0660 are the daemon's defaults)", mode, group, abs)
	case inSession:
		return fmt.Sprintf("the socket (%s) refused you although you are in its group; ask an admin of this node", ownerMode(abs))
	case inGroupDB(st.Gid):
		return fmt.Sprintf("you were added to group %s (the socket's group), but this session started before that; "+
			"log in again (or run `newgrp %s`)", group, group)
	}
	return fmt.Sprintf("you are not in group %s (the socket's group); "+
		"ask an admin to run `usermod -aG %s $USER`, then log in again", group, group)
}

// ownerMode describes a file's owner, group and mode, e.g. "root:root 0700".
func ownerMode(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "cannot stat it: " + rootCause(err).Error()
	}
	u := strconv.FormatUint(uint64(st.Uid), 10)
	if uu, err := user.LookupId(u); err == nil {
		u = uu.Username
	}
	g := strconv.FormatUint(uint64(st.Gid), 10)
	if gg, err := user.LookupGroupId(g); err == nil {
		g = gg.Name
	}
	return fmt.Sprintf("%s:%s %04o", u, g, st.Mode&0o7777)
}

// inGroupDB reports whether the group database makes the caller a member
// of gid (which the running session may not reflect yet).
func inGroupDB(gid uint32) bool {
	u, err := user.LookupId(strconv.Itoa(os.Getuid()))
	if err != nil {
		return false
	}
	ids, err := u.GroupIds()
	if err != nil {
		return false
	}
	for _, id := range ids {
		if id == strconv.FormatUint(uint64(gid), 10) {
			return true
		}
	}
	return false
}

func rootCause(err error) error {
	var se syscall.Errno
	if errors.As(err, &se) {
		return se
	}
	return err
}

// call sends a request on route r (for connector id, if the route has
// "{id}") and decodes a JSON answer into out (nil: discard).
func (c *Client) call(ctx context.Context, r Route, id string, q url.Values, out any) error {
	return c.do(ctx, r.Method, r.Path(id), q, out)
}

// do sends a request and decodes a JSON answer into out (nil: discard).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, out any) error {
	resp, err := c.send(ctx, method, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("s3mountd: %s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// send returns a 2xx response, or the error the daemon answered.
func (c *Client) send(ctx context.Context, method, path string, q url.Values) (*http.Response, error) {
	u := "http://s3mountd" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http().Do(req)
	if err != nil {
		var ce *ConnectError
		if errors.As(err, &ce) {
			return nil, ce
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("s3mountd at %s: %s %s: %w", c.Socket, method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error.Code != "" {
		return nil, &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	return nil, &APIError{Status: resp.StatusCode, Code: CodeInternal,
		Message: fmt.Sprintf("s3mountd: %s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(body)))}
}

// Health is GET /v1/health; anyone who can connect may ask.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	return &h, c.call(ctx, RouteHealth, "", nil, &h)
}

// Connectors lists the connectors the caller may see.
func (c *Client) Connectors(ctx context.Context) ([]Connector, error) {
	var l ConnectorList
	if err := c.call(ctx, RouteConnectors, "", nil, &l); err != nil {
		return nil, err
	}
	return l.Connectors, nil
}

// Connector returns one connector.
func (c *Client) Connector(ctx context.Context, id string) (*Connector, error) {
	var out Connector
	return &out, c.call(ctx, RouteConnector, id, nil, &out)
}

// Activate asks for the connector to be mounted and waits (bounded by the
// daemon) until it is mounted or failed; check the answer's State.
func (c *Client) Activate(ctx context.Context, id string) (*Connector, error) {
	var out Connector
	return &out, c.call(ctx, RouteActivate, id, nil, &out)
}

// Deactivate asks for the connector to be unmounted and waits until it is.
func (c *Client) Deactivate(ctx context.Context, id string) (*Connector, error) {
	var out Connector
	return &out, c.call(ctx, RouteDeactivate, id, nil, &out)
}

// Refresh drops what the mount caches under path ("" or "/": everything).
func (c *Client) Refresh(ctx context.Context, id, path string) error {
	q := url.Values{}
	if path != "" {
		q.Set("path", path)
	}
	return c.call(ctx, RouteRefresh, id, q, &OK{})
}

// Test checks the connector (endpoint, credentials, bucket, list, read,
// write) without mounting it.
func (c *Client) Test(ctx context.Context, id string) (*TestResult, error) {
	var out TestResult
	return &out, c.call(ctx, RouteTest, id, nil, &out)
}

// Files returns one page of a directory of a mounted connector; pass the
// answer's NextCursor to get the next page ("" when there is none).
// limit <= 0 means the daemon's default (500).
func (c *Client) Files(ctx context.Context, id, path, cursor string, limit int) (*Files, error) {
	q := url.Values{}
	if path != "" {
		q.Set("path", path)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out Files
	return &out, c.call(ctx, RouteFiles, id, q, &out)
}

// AllFiles follows next_cursor until the directory is read completely.
func (c *Client) AllFiles(ctx context.Context, id, path string, limit int) ([]Entry, error) {
	var all []Entry
	cursor := ""
	for {
		f, err := c.Files(ctx, id, path, cursor, limit)
		if err != nil {
			return all, err
		}
		all = append(all, f.Entries...)
		if f.NextCursor == "" || f.NextCursor == cursor {
			return all, nil
		}
		cursor = f.NextCursor
	}
}

// PubKey returns the node's age recipient (GET /v1/pubkey).
func (c *Client) PubKey(ctx context.Context) (string, error) {
	var out PubKey
	if err := c.call(ctx, RoutePubKey, "", nil, &out); err != nil {
		return "", err
	}
	return out.Recipient, nil
}

// Metrics returns the Prometheus text exposition (admins only).
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, RouteMetrics.Method, RouteMetrics.Pattern, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// EventStream is an open GET /v1/events.
type EventStream struct {
	resp *http.Response
	sc   *bufio.Scanner
}

// Events opens the event stream: one Connector per state change of the
// connectors the caller may see. Close it, or cancel ctx, when done.
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	resp, err := c.send(ctx, RouteEvents.Method, RouteEvents.Pattern, nil)
	if err != nil {
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		resp.Body.Close()
		return nil, fmt.Errorf("s3mountd: %s answered %q, not an event stream", RouteEvents, ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	return &EventStream{resp: resp, sc: sc}, nil
}

// Next blocks until the next event. It returns io.EOF when the daemon ends
// the stream, or the context's error once it is canceled.
func (s *EventStream) Next() (Connector, error) {
	var data bytes.Buffer
	for s.sc.Scan() {
		line := s.sc.Bytes()
		switch {
		case len(line) == 0:
			if data.Len() == 0 {
				continue // end of a comment-only block
			}
			var c Connector
			if err := json.Unmarshal(data.Bytes(), &c); err != nil {
				return Connector{}, fmt.Errorf("s3mountd events: bad event: %w", err)
			}
			return c, nil
		case line[0] == ':':
			// keep-alive comment
		case bytes.HasPrefix(line, []byte("data:")):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(bytes.TrimPrefix(bytes.TrimPrefix(line, []byte("data:")), []byte(" ")))
		}
	}
	if err := s.resp.Request.Context().Err(); err != nil {
		return Connector{}, err
	}
	if err := s.sc.Err(); err != nil {
		return Connector{}, err
	}
	return Connector{}, io.EOF
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.resp.Body.Close() }
