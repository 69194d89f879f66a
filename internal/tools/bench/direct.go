package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"
)

func (c *cfg) flatDir() string        { return fmt.Sprintf("flat%d", c.objects) }
func (c *cfg) flatName(i int) string  { return fmt.Sprintf("f%07d", i) }
func (c *cfg) bigKey() string         { return fmt.Sprintf("big/%d.bin", c.size) }
func (c *cfg) smallDir() string       { return fmt.Sprintf("small%d", c.small) }
func (c *cfg) smallName(i int) string { return fmt.Sprintf("s%06d", i) }

func (r *run) exists(key string) bool {
	_, err := r.fix.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err == nil
}

func put(ctx context.Context, c *s3.Client, key string, body []byte) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
	return err
}

// fixtures uploads what is missing (past the proxy); a marker object says
// a set is complete.
func (r *run) fixtures(ctx context.Context) error {
	_, _ = r.fix.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	if marker := fmt.Sprintf("done/big%d", r.size); !r.exists(marker) {
		log.Printf("fixture: %s", r.bigKey())
		if err := multipartUpload(ctx, r.fix, r.bigKey(), randomData(int(r.size))); err != nil {
			return err
		}
		_ = put(ctx, r.fix, marker, nil)
	}
	many := func(marker string, n int, key func(i int) string, size int) error {
		if r.exists(marker) {
			return nil
		}
		log.Printf("fixture: %s (%d objects of %d B)", marker, n, size)
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(64)
		body := randomData(size)
		for i := 0; i < n; i++ {
			g.Go(func() error { return put(gctx, r.fix, key(i), body) })
		}
		if err := g.Wait(); err != nil {
			return err
		}
		return put(ctx, r.fix, marker, nil)
	}
	if r.want("ls") {
		if err := many("done/"+r.flatDir(), r.objects, func(i int) string { return r.flatDir() + "/" + r.flatName(i) }, 100); err != nil {
			return err
		}
	}
	if r.want("small") {
		return many("done/"+r.smallDir(), r.small, func(i int) string { return r.smallDir() + "/" + r.smallName(i) }, r.smallSize)
	}
	return nil
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func timeIt(fn func() error) (float64, error) {
	t := time.Now()
	err := fn()
	return time.Since(t).Seconds(), err
}

// measureDirect runs the SDK baselines (through the proxy with -latency):
// the limits every mount is compared with.
func (r *run) measureDirect(ctx context.Context) error {
	s, err := 0.0, error(nil)
	mbps := func(bytes int64, secs float64) float64 { return float64(bytes) / 1e6 / secs }
	if r.want("ls") {
		if s, err = timeIt(func() error { return r.listOneStream(ctx) }); err != nil {
			return err
		}
		r.add("direct", "list_1stream", s)
		if s, err = timeIt(func() error { return r.listParallel(ctx) }); err != nil {
			return err
		}
		r.add("direct", "list_parallel", s)
	}
	if r.want("seq_read") {
		if s, err = timeIt(func() error { return r.parallelGet(ctx, r.bigKey(), r.size, 8<<20, 16) }); err != nil {
			return err
		}
		r.add("direct", "seq_read_parallel", mbps(r.size, s))
		if s, err = timeIt(func() error {
			out, err := r.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(r.bigKey())})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, err = io.Copy(io.Discard, out.Body)
			return err
		}); err != nil {
			return err
		}
		r.add("direct", "seq_read_1stream", mbps(r.size, s))
	}
	if r.want("small") {
		if s, err = timeIt(func() error { return r.smallParallel(ctx) }); err != nil {
			return err
		}
		r.add("direct", "small_parallel", mbps(int64(r.small)*int64(r.smallSize), s))
	}
	if r.want("rand_4k") {
		if s, err = timeIt(func() error {
			rng := mrand.New(mrand.NewPCG(1, 2))
			buf := make([]byte, 4096)
			for i := 0; i < r.randReads; i++ {
				off := rng.Int64N(r.size - 4096)
				out, err := r.c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(r.bigKey()),
					Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+4095))})
				if err != nil {
					return err
				}
				_, err = io.ReadFull(out.Body, buf)
				out.Body.Close()
				if err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		r.add("direct", "rand_4k_1stream", s*1000/float64(r.randReads))
	}
	if r.want("seq_write") {
		data := randomData(int(r.size))
		if s, err = timeIt(func() error { return multipartUpload(ctx, r.c, "direct-write.bin", data) }); err != nil {
			return err
		}
		r.add("direct", "seq_write_parallel", mbps(r.size, s))
	}
	return nil
}

// listOneStream: one ListObjectsV2 pagination of the flat folder, as `ls`
// needs it (delimiter "/").
func (r *run) listOneStream(ctx context.Context) error {
	n := 0
	p := s3.NewListObjectsV2Paginator(r.c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket),
		Prefix: aws.String(r.flatDir() + "/"), Delimiter: aws.String("/")})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		n += len(out.Contents) + len(out.CommonPrefixes)
	}
	if n != r.objects {
		return fmt.Errorf("one-stream listing: %d entries, want %d", n, r.objects)
	}
	return nil
}

// listParallel: the same folder split into -list-workers key ranges, each
// listed with StartAfter; the split points come from a previous listing
// (here: the fixture's key names, the same thing), as a mount that listed
// the folder before could do.
func (r *run) listParallel(ctx context.Context) error {
	w := min(r.listWorkers, r.objects)
	prefix := r.flatDir() + "/"
	counts := make([]int, w)
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < w; i++ {
		g.Go(func() error {
			in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), Delimiter: aws.String("/"),
				MaxKeys: aws.Int32(int32(min(1000, r.objects/w+2)))} // a range's pages, not the next range's keys
			if i > 0 {
				in.StartAfter = aws.String(prefix + r.flatName(i*r.objects/w-1))
			}
			end := "" // first key of the next range; "" for the last range
			if i < w-1 {
				end = prefix + r.flatName((i+1)*r.objects/w)
			}
			p := s3.NewListObjectsV2Paginator(r.c, in)
			for p.HasMorePages() {
				out, err := p.NextPage(gctx)
				if err != nil {
					return err
				}
				for _, o := range out.Contents {
					if end != "" && *o.Key >= end {
						return nil
					}
					counts[i]++
				}
				counts[i] += len(out.CommonPrefixes)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	if n != r.objects {
		return fmt.Errorf("key-range listing: %d entries, want %d", n, r.objects)
	}
	return nil
}

func (r *run) parallelGet(ctx context.Context, key string, size, part int64, conns int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conns)
	var pool sync.Pool
	for off := int64(0); off < size; off += part {
		g.Go(func() error {
			b, _ := pool.Get().([]byte)
			if b == nil {
				b = make([]byte, part)
			}
			defer pool.Put(b)
			out, err := r.c.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
				Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, min(off+part, size)-1))})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			_, err = io.ReadFull(out.Body, b[:min(part, size-off)])
			return err
		})
	}
	return g.Wait()
}

// smallParallel: -readers workers, one whole-object GET per small file.
func (r *run) smallParallel(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(r.readers)
	for i := 0; i < r.small; i++ {
		g.Go(func() error {
			out, err := r.c.GetObject(gctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(r.smallDir() + "/" + r.smallName(i))})
			if err != nil {
				return err
			}
			defer out.Body.Close()
			n, err := io.Copy(io.Discard, out.Body)
			if err == nil && n != int64(r.smallSize) {
				err = fmt.Errorf("%s: %d bytes, want %d", r.smallName(i), n, r.smallSize)
			}
			return err
		})
	}
	return g.Wait()
}

func multipartUpload(ctx context.Context, c *s3.Client, key string, data []byte) error {
	const part = 16 << 20
	out, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	n := (len(data) + part - 1) / part
	parts := make([]types.CompletedPart, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			chunk := data[i*part : min((i+1)*part, len(data))]
			o, err := c.UploadPart(gctx, &s3.UploadPartInput{Bucket: aws.String(bucket), Key: aws.String(key), UploadId: out.UploadId,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk), ContentLength: aws.Int64(int64(len(chunk)))})
			if err != nil {
				return err
			}
			parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: o.ETag}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, err = c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key),
		UploadId: out.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	return err
}
