package mounts_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
)

// benchSpec is s3fsSpec for a benchmark.
func benchSpec(b *testing.B, mi *testenv.MinIO, bucket string) mounts.Spec {
	testenv.RequireFUSE(b)
	testenv.RequireBinary(b, "s3fs", false)
	dir := b.TempDir()
	s := mi.Spec(bucket)
	s.ID, s.Backend = "bench", "s3fs"
	s.MountPoint = filepath.Join(dir, "mnt")
	s.RuntimeDir = filepath.Join(dir, "run")
	s.CacheDir = filepath.Join(dir, "cache")
	if err := os.Mkdir(s.MountPoint, 0o755); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkS3FSMountUnmount: one Mount (until it serves) and Unmount.
//
//	go test -run '^$' -bench S3FSMountUnmount -benchtime 10x ./mounts
func BenchmarkS3FSMountUnmount(b *testing.B) {
	mi := testenv.StartMinIO(b)
	mi.MakeBucket(b, "bench-mount", map[string]string{"a.txt": "a"})
	spec := benchSpec(b, mi, "bench-mount")
	ctx := context.Background()
	for b.Loop() {
		m, err := mounts.NewS3FS(nil).Mount(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Unmount(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkS3FSReadLarge: a cold sequential read of a 64 MiB object
// through s3fs (loopback MinIO).
//
//	go test -run '^$' -bench S3FSReadLarge -benchtime 5x ./mounts
func BenchmarkS3FSReadLarge(b *testing.B) {
	mi := testenv.StartMinIO(b)
	data := make([]byte, 64<<20)
	rand.Read(data)
	mi.MakeBucket(b, "bench-read", map[string]string{"big.bin": string(data)})
	spec := benchSpec(b, mi, "bench-read")
	spec.MetadataTTL = 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := mounts.NewS3FS(nil).Mount(ctx, spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Unmount(context.Background()) })
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		f, err := os.Open(filepath.Join(spec.MountPoint, "big.bin"))
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, f)
		f.Close()
		if err != nil || n != int64(len(data)) {
			b.Fatalf("read %d bytes, %v", n, err)
		}
		// Drop the page cache for the next round.
		os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0o200)
	}
}
