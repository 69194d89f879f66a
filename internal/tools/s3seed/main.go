// Command s3seed fills a test S3 server (MinIO) with sample data for the
// demo, the benchmarks and the browser tests. It is a development tool, not
// part of the product.
//
//	S3SEED_SECRET=… s3seed -endpoint http://127.0.0.1:9000 -access-key K \
//	    -bucket data -dir ./sample           # upload a directory tree
//	    -bucket data -generate 100000 -prefix big/   # N small objects, in parallel
//
// The secret comes from the environment, never argv.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

func main() {
	endpoint := flag.String("endpoint", "", "S3 endpoint URL")
	accessKey := flag.String("access-key", "", "access key id (secret in $S3SEED_SECRET)")
	bucket := flag.String("bucket", "", "bucket (created if missing)")
	dir := flag.String("dir", "", "upload this directory tree (keys relative to it)")
	prefix := flag.String("prefix", "", "key prefix for uploaded or generated objects")
	generate := flag.Int("generate", 0, "generate this many small objects under -prefix")
	size := flag.Int("size", 64, "size of each generated object in bytes")
	workers := flag.Int("parallel", 64, "parallel uploads")
	skipIfPresent := flag.Bool("skip-if-present", false, "with -generate: do nothing when the last object already exists")
	flag.Parse()
	if *endpoint == "" || *bucket == "" {
		fmt.Fprintln(os.Stderr, "s3seed: -endpoint and -bucket are required")
		os.Exit(2)
	}
	if err := run(*endpoint, *accessKey, *bucket, *dir, *prefix, *generate, *size, *workers, *skipIfPresent); err != nil {
		fmt.Fprintln(os.Stderr, "s3seed:", err)
		os.Exit(1)
	}
}

// putAttempts is how often one object is tried before the run fails.
const putAttempts = 5

func run(endpoint, accessKey, bucket, dir, prefix string, n, size, workers int, skipIfPresent bool) error {
	ctx := context.Background()
	d := config.DefaultConnector()
	spec := mounts.Spec{ID: "s3seed", Endpoint: endpoint, Region: d.Region, Bucket: bucket, PathStyle: true, StallTimeout: d.StallTimeout,
		Credentials: mounts.Credentials{AccessKeyID: accessKey, SecretAccessKey: mounts.Secret(os.Getenv("S3SEED_SECRET"))}}
	c, err := s3conn.NewClient(ctx, spec, s3conn.Options{MaxConnsPerHost: workers})
	if err != nil {
		return err
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
		// A MinIO that just started can answer 503 (server not
		// initialized) for a while: retry that for up to a minute.
		for deadline := time.Now().Add(time.Minute); ; {
			_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket})
			if err == nil {
				break
			}
			if !strings.Contains(err.Error(), "XMinioServerNotInitialized") || time.Now().After(deadline) {
				return fmt.Errorf("create bucket %s: %w", bucket, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	type job struct {
		key  string
		body func() (*os.File, []byte, error)
	}
	jobs := make(chan job)
	var wg sync.WaitGroup
	var done atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var failed atomic.Bool
	put := func(j job) error {
		f, b, err := j.body()
		if err != nil {
			return err
		}
		in := &s3.PutObjectInput{Bucket: &bucket, Key: aws.String(j.key)}
		if f != nil {
			defer f.Close()
			in.Body = f
		} else {
			in.Body = strings.NewReader(string(b))
		}
		_, err = c.PutObject(ctx, in)
		return err
	}
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if failed.Load() {
					continue // drain: one object gave up, the run fails
				}
				// A loaded server (or a MinIO still settling) can fail a PUT
				// now and then: try each object a few times with backoff.
				var err error
				for attempt, wait := 1, 250*time.Millisecond; ; attempt, wait = attempt+1, wait*2 {
					if err = put(j); err == nil || attempt == putAttempts {
						break
					}
					time.Sleep(wait)
				}
				if err != nil {
					failed.Store(true)
					errOnce.Do(func() {
						firstErr = fmt.Errorf("put s3://%s/%s failed %d times, giving up: %w", bucket, j.key, putAttempts, err)
					})
				}
				done.Add(1)
			}
		}()
	}
	start := time.Now()
	switch {
	case dir != "":
		err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			jobs <- job{key: prefix + filepath.ToSlash(rel), body: func() (*os.File, []byte, error) {
				f, err := os.Open(p)
				return f, nil, err
			}}
			return nil
		})
	case n > 0:
		last := fmt.Sprintf("%sobject-%07d.txt", prefix, n-1)
		if skipIfPresent {
			if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: &last}); err == nil {
				close(jobs)
				wg.Wait()
				fmt.Printf("s3seed: %s/%s already has %d objects\n", bucket, prefix, n)
				return nil
			}
		}
		for i := 0; i < n; i++ {
			key := fmt.Sprintf("%sobject-%07d.txt", prefix, i)
			line := fmt.Sprintf("object %d\n", i)
			body := []byte(strings.Repeat(line, size/len(line)+1)[:size])
			jobs <- job{key: key, body: func() (*os.File, []byte, error) { return nil, body, nil }}
		}
	default:
		err = errors.New("nothing to do: give -dir or -generate")
	}
	close(jobs)
	wg.Wait()
	if err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("s3seed: %d objects into %s in %.1fs\n", done.Load(), bucket, time.Since(start).Seconds())
	return nil
}
