package agent_test

// Latency of GET /v1/connectors with 100 connectors under 50 concurrent
// clients over the Unix socket: against the API with a fake controller,
// and against the real daemon with 100 connector files.
//
//	go test -run '^$' -bench 'ListConnectors' -benchtime 20000x ./agent/

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/agent"
	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

const benchClients = 50

// rawClient reads whole answers without decoding them, so that the
// benchmark's own clients (in this process, on the same 2 cores) weigh
// as little as possible on the server they measure.
func rawClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
		MaxIdleConnsPerHost: 1,
	}}
}

func get(hc *http.Client) (int, error) {
	resp, err := hc.Get("http://s3mountd/v1/connectors")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return int(n), err
}

// benchList sends b.N GET /v1/connectors from benchClients concurrent
// clients (one connection each) and reports p50 and p99 latency.
func benchList(b *testing.B, socket string, want int) {
	cs, err := client.New(socket).Connectors(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if len(cs) != want {
		b.Fatalf("%d connectors listed, want %d", len(cs), want)
	}
	clients := make([]*http.Client, benchClients)
	for i := range clients {
		clients[i] = rawClient(socket)
		if _, err := get(clients[i]); err != nil { // open the connection
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for _, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				if _, err := get(cl); err != nil {
					b.Error(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(float64(len(lat))*q))] }
	b.ReportMetric(float64(p(0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(p(0.99).Microseconds()), "p99-µs")
	if b.N >= 1000 {
		fmt.Printf("GET /v1/connectors, %d connectors, %d clients, %d requests: p50 %v  p99 %v  max %v\n",
			want, benchClients, b.N, p(0.50), p(0.99), lat[len(lat)-1])
	}
}

func BenchmarkListConnectorsFake(b *testing.B) {
	benchList(b, agent.StartFakeAPI(b, 100), 100)
}

func BenchmarkListConnectorsDaemon(b *testing.B) {
	d := testenv.StartDaemon(b, testenv.DaemonOptions{})
	for i := range 100 {
		id := fmt.Sprintf("bench%03d", i)
		d.WriteConnector(id, fmt.Sprintf(`name = "Bench %d"
endpoint = "http://127.0.0.1:1"
bucket = "bench-%03d"
mount_name = %q
[credentials]
anonymous = true
`, i, i, id))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		cs, err := client.New(d.Socket).Connectors(context.Background())
		if err == nil && len(cs) == 100 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the daemon did not load 100 connectors within 60s (%d, %v)", len(cs), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	benchList(b, d.Socket, 100)
}
