package builtin

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mounts/s3mounts/internal/testenv"
)

// TestListingMeasure compares, on MinIO, one ListObjectsV2 stream with the
// parallel listing of the same folder (same names, times logged; no time
// is asserted). Opt-in: S3MOUNTS_LIST_MEASURE=<number of keys>;
// S3MOUNTS_LIST_LATENCY=40ms adds that much to every listing request (a
// round trip to a real endpoint), to both.
func TestListingMeasure(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("S3MOUNTS_LIST_MEASURE"))
	if n <= 0 {
		t.Skip("set S3MOUNTS_LIST_MEASURE=<keys> to measure listing on MinIO")
	}
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "measure", nil)
	c := m.Client(t)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, _ = c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("measure"),
				Key: aws.String(fmt.Sprintf("flat/object-%07d.txt", i)), Body: strings.NewReader("x")})
		}()
	}
	wg.Wait()
	spec := m.Spec("measure")
	s3c, err := newS3Client(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	var cl ObjectClient = s3c
	if d, err := time.ParseDuration(os.Getenv("S3MOUNTS_LIST_LATENCY")); err == nil && d > 0 {
		cl = latencyClient{s3c, d}
		t.Logf("every listing request takes %v more", d)
	}
	for round := 0; round < 3; round++ {
		t0 := time.Now()
		seq := listSeq(t, cl, "flat/")
		ts := time.Since(t0)
		f := testFS(cl)
		t0 = time.Now()
		par := listAll(t, f, "flat/")
		tp := time.Since(t0)
		t0 = time.Now()
		par2 := listAll(t, f, "flat/")
		tp2 := time.Since(t0)
		if !slices.Equal(seq, par) || !slices.Equal(seq, par2) {
			t.Fatalf("parallel listing differs: %d vs %d entries", len(par), len(seq))
		}
		t.Logf("%d keys: one stream %v; parallel %v (%.2fx); again with split points %v (%.2fx)", len(seq), ts, tp,
			tp.Seconds()/ts.Seconds(), tp2, tp2.Seconds()/ts.Seconds())
	}
}

type latencyClient struct {
	ObjectClient
	d time.Duration
}

func (l latencyClient) List(ctx context.Context, prefix, delim, token string, max int32) (ListPage, error) {
	time.Sleep(l.d)
	return l.ObjectClient.List(ctx, prefix, delim, token, max)
}

func (l latencyClient) ListAfter(ctx context.Context, prefix, delim, after string, max int32) (ListPage, error) {
	time.Sleep(l.d)
	return l.ObjectClient.ListAfter(ctx, prefix, delim, after, max)
}
