package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/internal/testenv"
)

// BenchmarkConnectorToMount measures the time from dropping an active
// connector file into connectors.d to the mount serving its first file
// (the watcher's debounce, the reconcile, the worker's start and the
// backend's mount, and one read through FUSE). Run 20 drops with
//
//	go test -run '^$' -bench ConnectorToMount -benchtime 20x ./agent/
//
// S3MOUNTS_BENCH_BACKEND=s3fs measures the s3fs backend instead of the
// built-in one. Reported: median-ms, p90-ms, max-ms.
func BenchmarkConnectorToMount(b *testing.B) {
	testenv.RequireFUSE(b)
	backend := os.Getenv("S3MOUNTS_BENCH_BACKEND")
	if backend == "" {
		backend = "default"
	}
	m := testenv.StartMinIO(b)
	testenv.WaitS3Ready(b, m)
	m.MakeBucket(b, "bench", map[string]string{"hello.txt": "hello\n"})
	d := testenv.StartDaemon(b, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	var durs []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := fmt.Sprintf("b%d", i)
		body := d.MinIOConnector(id, m, "bench", id, true, fmt.Sprintf("backend = %q", backend))
		file := filepath.Join(d.ProjectRoot, id, "hello.txt")
		b.StartTimer()
		start := time.Now()
		d.WriteConnector(id, body)
		for {
			if data, err := os.ReadFile(file); err == nil && string(data) == "hello\n" {
				break
			}
			if time.Since(start) > 2*time.Minute {
				b.Fatalf("%s not served within 2 min; log:\n%s", file, d.Log())
			}
			time.Sleep(time.Millisecond)
		}
		durs = append(durs, time.Since(start))
		b.StopTimer()
		d.RemoveConnector(id)
		d.WaitState(id, "")
		b.StartTimer()
	}
	b.StopTimer()
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(durs[len(durs)/2]), "median-ms")
	b.ReportMetric(ms(durs[len(durs)*9/10]), "p90-ms")
	b.ReportMetric(ms(durs[len(durs)-1]), "max-ms")
	b.ReportMetric(0, "ns/op")
}
