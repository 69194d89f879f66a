package worker

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCallErrorDecoding: the supervisor reads the coded error body, and
// codes by the HTTP status what a worker of the previous daemon version
// sent ({"error":"…"} alone) or a plain-text answer.
func TestCallErrorDecoding(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		body      string
		code, msg string
	}{
		{"coded", 404, `{"code":"not_found","error":"no such directory: /x (list its parent to see what is there)"}`,
			CodeNotFound, "no such directory: /x (list its parent to see what is there)"},
		{"coded conflict", 409, `{"code":"conflict","error":"not mounted"}`, CodeConflict, "not mounted"},
		{"old not mounted", 409, `{"error":"not mounted"}` + "\n", CodeConflict, "not mounted"},
		{"old missing", 404, `{"error":"no such file or directory: /nope (anything cached for it was dropped)"}` + "\n",
			CodeNotFound, "no such file or directory: /nope (anything cached for it was dropped)"},
		{"old file", 400, `{"error":"/a.txt is a file, not a directory"}` + "\n", CodeInvalid, "/a.txt is a file, not a directory"},
		{"old failure", 500, `{"error":"unmount: device busy"}` + "\n", CodeInternal, "unmount: device busy"},
		{"plain text", 404, "404 page not found\n", CodeNotFound, "404 page not found"},
		{"plain 405", 405, "Method Not Allowed\n", CodeInternal, "Method Not Allowed"},
	} {
		ce := callError(tc.status, []byte(tc.body))
		if ce.Status != tc.status || ce.Code != tc.code || ce.Msg != tc.msg || ce.Error() != tc.msg {
			t.Errorf("%s: callError(%d, %q) = %+v; want code %q, message %q", tc.name, tc.status, tc.body, ce, tc.code, tc.msg)
		}
	}
	for _, c := range []string{CodeInvalid, CodeNotFound, CodeConflict, CodeInternal} {
		if got := CodeOf(StatusOf(c)); got != c {
			t.Errorf("CodeOf(StatusOf(%q)) = %q", c, got)
		}
	}
}

// oldWorker serves a control socket the way a worker of the previous daemon
// version did, byte for byte: errors as {"error":"…"} with a status and no
// code. wait says how /v1/wait ends: "" never, "die" a broken connection,
// else an answer with that error.
func oldWorker(t *testing.T, wait string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "s3old-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "w.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	old := func(rw http.ResponseWriter, status int, msg string) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(status)
		json.NewEncoder(rw).Encode(struct {
			Error string `json:"error"`
		}{msg})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		io.WriteString(rw, `{"id":"old","pid":1,"spec_hash":"sha256:x","state":"mounted","mount_point":"/m","since":"2026-01-01T00:00:00Z"}`+"\n")
	})
	mux.HandleFunc("GET /v1/files", func(rw http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("path") {
		case "nope":
			old(rw, 404, "no such directory: /nope (list its parent to see what is there)")
		case "a.txt":
			old(rw, 400, "/a.txt is a file, not a directory: list its parent, or read the file through the mount")
		default:
			old(rw, 500, "reading /: input/output error")
		}
	})
	mux.HandleFunc("POST /v1/refresh", func(rw http.ResponseWriter, r *http.Request) { old(rw, 409, "not mounted") })
	mux.HandleFunc("POST /v1/unmount", func(rw http.ResponseWriter, r *http.Request) { old(rw, 500, "device or resource busy") })
	mux.HandleFunc("GET /v1/wait", func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(200)
		rw.(http.Flusher).Flush()
		switch wait {
		case "":
			<-r.Context().Done()
		case "die":
			panic(http.ErrAbortHandler) // the connection breaks, as when the process dies
		default:
			json.NewEncoder(rw).Encode(struct {
				Error string `json:"error,omitempty"`
			}{wait})
		}
	})
	srv := &http.Server{Handler: mux, ErrorLog: nil}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// noPID is a pid no process has (above the kernel's pid_max).
const noPID = 1 << 30

// TestOldWorkerErrorsUnderstood: after a daemon upgrade the new supervisor
// adopts workers started by the previous version; their uncoded errors
// reach the reconciler with the same codes as a new worker's.
func TestOldWorkerErrorsUnderstood(t *testing.T) {
	sock := oldWorker(t, "")
	h := newHandle("old", noPID, "sha256:x", "/m", sock, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	st, err := h.Status(ctx)
	if err != nil || st.State != StateMounted {
		t.Fatalf("status of an old worker: %+v, %v", st, err)
	}
	for _, tc := range []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"files of a missing directory", func() error { _, err := h.Files(ctx, "nope", "", 10); return err }, CodeNotFound, "no such directory: /nope"},
		{"files of a file", func() error { _, err := h.Files(ctx, "a.txt", "", 10); return err }, CodeInvalid, "is a file"},
		{"files failing", func() error { _, err := h.Files(ctx, "", "", 10); return err }, CodeInternal, "input/output error"},
		{"refresh while not mounted", func() error { return h.Refresh(ctx, "/") }, CodeConflict, "not mounted"},
	} {
		err := tc.call()
		var ce *CallError
		if !errors.As(err, &ce) || ce.Code != tc.code || !strings.Contains(ce.Msg, tc.msg) {
			t.Errorf("%s: %#v; want code %q and a message with %q", tc.name, err, tc.code, tc.msg)
		}
	}
	if _, err := h.Unmount(ctx); err == nil || !strings.Contains(err.Error(), "device or resource busy") {
		t.Errorf("unmount refused by an old worker: %v; want its reason", err)
	}
}

// TestOldWorkerEnd: how an old worker's end reaches Handle.Err: its own
// reason (EndFailed), or a broken wait connection (EndDied).
func TestOldWorkerEnd(t *testing.T) {
	for _, tc := range []struct {
		wait, code, msg string
	}{
		{"mount ended: transport endpoint is not connected", EndFailed, "mount ended: transport endpoint is not connected"},
		// A worker's own words never make it "died", whatever they say.
		{"the s3fs process died", EndFailed, "the s3fs process died"},
		{"die", EndDied, "mount worker died"},
	} {
		h := newHandle("old", noPID, "sha256:x", "/m", oldWorker(t, tc.wait), slog.New(slog.DiscardHandler))
		go h.watch()
		select {
		case <-h.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("wait %q: the end was not noticed", tc.wait)
		}
		if err := h.Err(); EndCode(err) != tc.code || err.Error() != tc.msg {
			t.Errorf("wait %q: Err = %v (code %q); want %q (code %q)", tc.wait, err, EndCode(err), tc.msg, tc.code)
		}
	}
	// an unreachable socket
	h := newHandle("gone", noPID, "sha256:x", "/m", filepath.Join(t.TempDir(), "none.sock"), slog.New(slog.DiscardHandler))
	go h.watch()
	<-h.Done()
	if EndCode(h.Err()) != EndUnreachable || !strings.HasPrefix(h.Err().Error(), "mount worker unreachable: ") {
		t.Errorf("unreachable worker: Err = %v (code %q)", h.Err(), EndCode(h.Err()))
	}
}

// TestWorkerCodedErrors: a real worker answers coded error bodies that
// keep the message under "error" (a daemon of the previous version reads
// it), and its death is coded EndDied.
func TestWorkerCodedErrors(t *testing.T) {
	sup, dir := newSup(t)
	spec := fakeSpec(dir, "coded", "bucket")
	ctx := context.Background()
	h, err := sup.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Kill)
	if err := h.WaitMounted(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		call   func() error
		code   string
		status int
	}{
		{"files of a missing directory", func() error { _, err := h.Files(ctx, "nope", "", 10); return err }, CodeNotFound, 404},
		{"files of a file", func() error { _, err := h.Files(ctx, "a.txt", "", 10); return err }, CodeInvalid, 400},
		{"refresh of a missing path", func() error { return h.Refresh(ctx, "/nope") }, CodeNotFound, 404},
	} {
		err := tc.call()
		var ce *CallError
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.Status != tc.status || ce.Msg == "" {
			t.Errorf("%s: %#v; want code %q, status %d", tc.name, err, tc.code, tc.status)
		}
	}
	// the wire: {"code":…,"error":…}
	req, _ := http.NewRequest("GET", "http://worker"+PathFiles+"?path=nope", nil)
	resp, err := h.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if resp.StatusCode != 404 || raw["code"] != CodeNotFound || !strings.HasPrefix(raw["error"].(string), "no such directory") {
		t.Errorf("wire answer %d %v; want 404 {code: not_found, error: no such directory…}", resp.StatusCode, raw)
	}

	syscall.Kill(h.PID, syscall.SIGKILL)
	select {
	case <-h.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("death not noticed")
	}
	if EndCode(h.Err()) != EndDied || !strings.Contains(h.Err().Error(), "killed") {
		t.Errorf("death: Err = %v (code %q); want code %q saying killed", h.Err(), EndCode(h.Err()), EndDied)
	}
}

// TestProtocolDocumented: the control socket's table in docs/DESIGN.md
// lists exactly the calls the worker serves.
func TestProtocolDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "DESIGN.md"))
	if err != nil {
		t.Fatalf("docs/DESIGN.md: %v", err)
	}
	doc := string(b)
	i := strings.Index(doc, "### Control socket")
	if i < 0 {
		t.Fatal("docs/DESIGN.md has no \"### Control socket\" section; update this test if it moved")
	}
	sec := doc[i+1:]
	if j := strings.Index(sec, "\n#"); j >= 0 {
		sec = sec[:j]
	}
	mux := (&server{}).routes().(*http.ServeMux)
	documented := map[string]bool{}
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		call := strings.SplitN(strings.TrimPrefix(line, "| `"), "`", 2)[0]
		method, target, _ := strings.Cut(call, " ")
		path, _, _ := strings.Cut(target, "?")
		documented[method+" "+path] = true
		req, _ := http.NewRequest(method, "http://worker"+target, nil)
		if _, pat := mux.Handler(req); pat != method+" "+path {
			t.Errorf("docs/DESIGN.md documents %s, which the worker does not serve (served pattern %q)", call, pat)
		}
	}
	for _, want := range []string{"GET " + PathStatus, "GET " + PathWait, "POST " + PathUnmount, "POST " + PathRefresh, "GET " + PathFiles} {
		if !documented[want] {
			t.Errorf("the worker serves %s; docs/DESIGN.md's control socket table does not list it", want)
		}
	}
}
