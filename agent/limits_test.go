package agent

// Per-uid bounds on the socket, as real uids (docs/SECURITY.md, "Per-caller
// bounds"): a hog uid opens many connections and event streams; it gets
// 429 too_many beyond its bounds while root's health and another user's
// requests keep answering. The hog and the other user are this test binary
// re-executed under setpriv (TestLimitsHelper).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
)

type hogReport struct {
	Streams200, Streams429, StreamsOther int
	Conns200, Conns429, ConnsOther       int
	Messages                             []string
	HealthWhileHolding                   int // status of one more health request
}

type probeReport struct {
	Events    int
	EventsMsg string
	HealthMS  []float64
	HealthErr string
}

// statusOfRaw sends one request on c and reads the status line and body.
func statusOfRaw(c net.Conn, path string, keepOpen bool) (int, string) {
	c.SetDeadline(time.Now().Add(20 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: s3mountd\r\n\r\n", path); err != nil {
		return -1, err.Error()
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return -1, err.Error()
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return -1, line
	}
	code, _ := strconv.Atoi(f[1])
	if keepOpen && code == 200 {
		return code, ""
	}
	n := 0
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return code, err.Error()
		}
		if strings.HasPrefix(strings.ToLower(h), "content-length:") {
			n, _ = strconv.Atoi(strings.TrimSpace(h[len("content-length:"):]))
		}
		if h == "\r\n" {
			break
		}
	}
	body := make([]byte, n)
	io.ReadFull(br, body)
	return code, string(body)
}

// TestLimitsHelper is the hog or the probe when run by TestPerUIDLimits.
func TestLimitsHelper(t *testing.T) {
	mode, sock := os.Getenv("S3M_LIMITS_HELPER"), os.Getenv("S3M_LIMITS_SOCKET")
	if mode == "" {
		t.Skip("helper process of TestPerUIDLimits; not a test by itself")
	}
	dial := func() net.Conn {
		c, err := net.Dial("unix", sock)
		if err != nil {
			fmt.Fprintln(os.Stderr, "dial:", err)
			os.Exit(2)
		}
		return c
	}
	var out any
	switch mode {
	case "hog":
		var r hogReport
		var keep, spare []net.Conn
		for i := 0; i < 40; i++ {
			c := dial()
			code, msg := statusOfRaw(c, "/v1/events", true)
			switch code {
			case 200:
				r.Streams200++
				keep = append(keep, c)
			case 429:
				r.Streams429++
				r.Messages = append(r.Messages, msg)
				spare = append(spare, c)
			default:
				r.StreamsOther++
				r.Messages = append(r.Messages, fmt.Sprintf("%d %s", code, msg))
				c.Close()
			}
		}
		for _, c := range spare {
			c.Close()
		}
		time.Sleep(200 * time.Millisecond) // closes reach the server
		for i := 0; i < 150; i++ {
			c := dial()
			code, msg := statusOfRaw(c, "/v1/health", false)
			switch code {
			case 200:
				r.Conns200++
				keep = append(keep, c)
			case 429:
				r.Conns429++
				if r.Conns429 == 1 {
					r.Messages = append(r.Messages, msg)
				}
				c.Close()
			default:
				r.ConnsOther++
				r.Messages = append(r.Messages, fmt.Sprintf("%d %s", code, msg))
				c.Close()
			}
		}
		c := dial()
		r.HealthWhileHolding, _ = statusOfRaw(c, "/v1/health", false)
		c.Close()
		b, _ := json.Marshal(r)
		fmt.Println(string(b))
		// then hammer: requests in a loop on every held connection that is
		// not a stream, and new connections (refused) in another loop,
		// until the test closes stdin
		stop := make(chan struct{})
		go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
		for _, c := range keep[r.Streams200:] {
			go func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if code, _ := statusOfRaw(c, "/v1/connectors", false); code != 200 {
						return
					}
				}
			}()
		}
		for i := 0; i < 4; i++ {
			go func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if c, err := net.Dial("unix", sock); err == nil {
						statusOfRaw(c, "/v1/health", false)
						c.Close()
					}
				}
			}()
		}
		<-stop
		for _, c := range keep {
			c.Close()
		}
		return
	case "probe":
		var r probeReport
		c := dial()
		r.Events, r.EventsMsg = statusOfRaw(c, "/v1/events", false)
		c.Close()
		c = dial()
		for i := 0; i < 20; i++ {
			start := time.Now()
			code, msg := statusOfRaw(c, "/v1/health", false)
			r.HealthMS = append(r.HealthMS, float64(time.Since(start).Microseconds())/1000)
			if code != 200 {
				r.HealthErr = fmt.Sprintf("%d %s", code, msg)
				break
			}
		}
		c.Close()
		out = r
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

func TestPerUIDLimits(t *testing.T) {
	acc := newSysAccounts(t, "s3ml")
	sockGroup := acc.group("sock")
	hog, _ := acc.user("hog", sockGroup)
	other, _ := acc.user("oth", sockGroup)

	dir, err := os.MkdirTemp("", "s3m-limits-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	self, _ := os.Executable()
	exe := filepath.Join(dir, "agent.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := user.LookupGroup(sockGroup)
	gid, _ := strconv.Atoi(g.Gid)
	os.Chown(sock, 0, gid)
	os.Chmod(sock, 0o660)

	f := newFake(0)
	// the hog may view one connector (so it may stream); the other user none
	f.add("shared", []config.AccessRule{{Users: []string{hog}, Actions: []config.Action{"view"}}})
	api := NewAPI(APIOptions{Controller: f, Recipient: "age1limits",
		Agent: &config.Agent{Roles: config.Roles{Admin: []string{"uid:0"}},
			Limits: config.Limits{ConnectionsPerUID: 128, EventStreamsPerUID: 32}},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	helper := func(name, mode string) *exec.Cmd {
		cmd := exec.Command("setpriv", "--reuid="+name, "--regid="+name, "--init-groups", "--reset-env",
			"env", "S3M_LIMITS_HELPER="+mode, "S3M_LIMITS_SOCKET="+sock, exe, "-test.run=^TestLimitsHelper$", "-test.v=false")
		cmd.Stderr = os.Stderr
		return cmd
	}

	// the hog takes everything it may, and holds it
	hcmd := helper(hog, "hog")
	stdin, _ := hcmd.StdinPipe()
	stdout, _ := hcmd.StdoutPipe()
	if err := hcmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); hcmd.Wait() })
	var hr hogReport
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if json.Unmarshal(sc.Bytes(), &hr) == nil && hr.Streams200+hr.Streams429+hr.StreamsOther > 0 {
			break
		}
	}
	t.Logf("hog: %+v", hr)
	if hr.Streams200 != 32 || hr.Streams429 != 8 || hr.StreamsOther != 0 {
		t.Errorf("hog's 40 event streams: %d open, %d refused 429, %d other; want 32, 8, 0", hr.Streams200, hr.Streams429, hr.StreamsOther)
	}
	if hr.Conns200 != 96 || hr.Conns429 != 54 || hr.ConnsOther != 0 {
		t.Errorf("hog's 150 more connections: %d answered, %d refused 429, %d other; want 96 (128 - 32 streams), 54, 0",
			hr.Conns200, hr.Conns429, hr.ConnsOther)
	}
	if hr.HealthWhileHolding != 429 {
		t.Errorf("hog's health while holding 128 connections: %d, want 429", hr.HealthWhileHolding)
	}
	var sawStream, sawConn bool
	for _, m := range hr.Messages {
		var eb client.ErrorBody
		if json.Unmarshal([]byte(m), &eb) != nil || eb.Error.Code != client.CodeTooMany {
			t.Errorf("a refusal that is not a too_many error body: %q", m)
			continue
		}
		sawStream = sawStream || strings.Contains(eb.Error.Message, "already holds 32 event streams")
		sawConn = sawConn || strings.Contains(eb.Error.Message, "already holds 128 open connections")
	}
	if !sawStream || !sawConn {
		t.Errorf("refusals do not say which limit (streams %v, connections %v): %q", sawStream, sawConn, hr.Messages)
	}

	// root's health stays fast while the hog holds its connections and
	// hammers the socket
	hammered := func() float64 {
		var m dto.Metric
		api.o.Metrics.APIRequests.WithLabelValues("/v1/connectors", "200").Write(&m)
		return m.GetCounter().GetValue()
	}
	for deadline := time.Now().Add(time.Minute); hammered() < 200; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the hog did not start hammering (%v requests)", hammered())
		}
	}
	before := hammered()
	hc := client.New(sock)
	var lat []float64
	for i := 0; i < 50; i++ {
		start := time.Now()
		if _, err := hc.Health(context.Background()); err != nil {
			t.Fatalf("root's health while the hog holds the socket: %v", err)
		}
		lat = append(lat, float64(time.Since(start).Microseconds())/1000)
	}
	sort.Float64s(lat)
	t.Logf("root /v1/health while hogged: median %.2f ms, max %.2f ms (50 requests; the hog made %.0f requests meanwhile)",
		lat[len(lat)/2], lat[len(lat)-1], hammered()-before)
	if lat[len(lat)/2] > 1000 {
		t.Errorf("root's health median %.0f ms while one uid hogs the socket (bound 1 s on a loaded machine; 100 ms intended)", lat[len(lat)/2])
	}

	// another user: served, and, viewing nothing, gets no event stream
	pout, err := helper(other, "probe").Output()
	if err != nil {
		t.Fatalf("probe as %s: %v", other, err)
	}
	var pr probeReport
	if err := json.Unmarshal([]byte(strings.TrimSpace(lastLine(string(pout)))), &pr); err != nil {
		t.Fatalf("probe output %q: %v", pout, err)
	}
	sort.Float64s(pr.HealthMS)
	if pr.HealthErr != "" || len(pr.HealthMS) != 20 {
		t.Fatalf("another user's health while hogged: %s", pr.HealthErr)
	}
	t.Logf("%s /v1/health while hogged: median %.2f ms, max %.2f ms (20 requests)", other, pr.HealthMS[10], pr.HealthMS[19])
	if pr.HealthMS[10] > 1000 {
		t.Errorf("another user's health median %.0f ms while one uid hogs the socket", pr.HealthMS[10])
	}
	var eb client.ErrorBody
	if pr.Events != 403 || json.Unmarshal([]byte(pr.EventsMsg), &eb) != nil || eb.Error.Code != client.CodeForbidden ||
		!strings.Contains(eb.Error.Message, "may view no connector") {
		t.Errorf("events for a user who may view nothing: %d %s, want 403 forbidden saying why", pr.Events, pr.EventsMsg)
	}
}

// lastLine is the last line of s that is a JSON object.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			return lines[i]
		}
	}
	return ""
}
