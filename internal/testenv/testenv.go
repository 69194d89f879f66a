// Package testenv gives tests the real parts they run against: a MinIO
// server on a free loopback port, and gates for root and FUSE.
package testenv

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/s3mounts/s3mounts/config"
	"github.com/s3mounts/s3mounts/mounts"
	"github.com/s3mounts/s3mounts/mounts/s3conn"
)

// RepoRoot is the repository's top directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Required reports whether missing prerequisites must fail tests rather
// than skip them (make test sets S3MOUNTS_TEST_STRICT=1).
func Required() bool { return os.Getenv("S3MOUNTS_TEST_STRICT") == "1" }

func missing(t testing.TB, why string) {
	t.Helper()
	if Required() {
		t.Fatalf("prerequisite missing (S3MOUNTS_TEST_STRICT=1): %s", why)
	}
	t.Skipf("SKIP: %s", why)
}

// RequireRoot skips (or fails under make test) unless running as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root (mounts, setpriv)")
	}
}

// RequireFUSE needs root and /dev/fuse.
func RequireFUSE(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		missing(t, "needs /dev/fuse")
	}
}

// RequireBinary needs an executable on PATH; it never fails, only skips,
// when the binary is one no registry here serves (geesefs).
func RequireBinary(t testing.TB, name string, optional bool) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if optional {
			t.Skipf("SKIP: %s is not on PATH (no registry here serves it); install it to run this test", name)
		}
		missing(t, name+" is not on PATH (run scripts/setup.sh)")
	}
	return p
}

// MinioBinary finds the pinned MinIO built by scripts/setup.sh.
func MinioBinary() (string, error) {
	if p := os.Getenv("S3MOUNTS_MINIO"); p != "" {
		return p, nil
	}
	p := filepath.Join(RepoRoot(), ".tools", "bin", "minio")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("MinIO not found at %s: run scripts/setup.sh (or make test)", p)
	}
	return p, nil
}

// MinIO is a running MinIO server.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT
	Port      int
	AccessKey string
	SecretKey string
	DataDir   string

	t   testing.TB
	mu  sync.Mutex
	cmd *exec.Cmd
}

// StartMinIO starts MinIO on a free port with a temporary data dir; it is
// stopped at the end of the test.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin, err := MinioBinary()
	if err != nil {
		missing(t, err.Error())
	}
	m := &MinIO{
		AccessKey: "s3mounts-test",
		SecretKey: "s3mounts-test-secret-" + strconv.Itoa(os.Getpid()),
		DataDir:   t.TempDir(),
		t:         t,
	}
	t.Cleanup(m.Stop)
	// A free port can be taken by another process before MinIO binds it
	// (tests run in parallel): then MinIO exits and a new port is tried.
	for attempt := 1; ; attempt++ {
		m.Port = FreePort(t)
		m.Endpoint = fmt.Sprintf("http://127.0.0.1:%d", m.Port)
		err := m.start(bin)
		if err == nil {
			break
		}
		if attempt == 3 || !errors.Is(err, errExited) {
			t.Fatal(err)
		}
		t.Logf("%v; trying another port", err)
	}
	return m
}

func (m *MinIO) start(bin string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(bin, "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", m.Port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", freePortNoT()), m.DataDir)
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	log, _ := os.Create(filepath.Join(os.TempDir(), fmt.Sprintf("minio-%d.log", m.Port)))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting MinIO: %w", err)
	}
	m.cmd = cmd
	// Generous: MinIO takes 2-5 s idle but far longer on a loaded 2-core
	// machine; a MinIO that exits (port taken) ends the wait at once.
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			// ready can answer before the object layer takes requests
			// (XMinioServerNotInitialized under load): also wait for a
			// signed ListBuckets to succeed.
			if resp.StatusCode == 200 && m.answersS3() {
				return nil
			}
		}
		if exited(cmd.Process.Pid) {
			m.cmd.Wait()
			m.cmd = nil
			return fmt.Errorf("MinIO on %s %w (log: %s)", m.Endpoint, errExited, log.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("MinIO did not become ready on %s within 2 min (log: %s)", m.Endpoint, log.Name())
}

var errExited = errors.New("exited at start")

// answersS3 reports whether a signed ListBuckets succeeds.
func (m *MinIO) answersS3() bool {
	c, err := s3conn.NewClient(context.Background(), m.Spec("x"), s3conn.Options{})
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.ListBuckets(ctx, &s3.ListBucketsInput{})
	return err == nil
}

// exited reports whether child pid has ended (a zombie not yet reaped).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(rest, "Z") || strings.HasPrefix(rest, "X")
}

// Stop kills the server (data stays, Restart brings it back on the same port).
func (m *MinIO) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && m.cmd.Process != nil {
		m.cmd.Process.Kill()
		m.cmd.Wait()
		m.cmd = nil
	}
}

// Restart starts the server again on the same port and data dir.
func (m *MinIO) Restart() {
	m.t.Helper()
	bin, err := MinioBinary()
	if err != nil {
		m.t.Fatal(err)
	}
	if err := m.start(bin); err != nil {
		m.t.Fatal(err)
	}
}

// Spec returns a mounts.Spec for bucket with this server's credentials.
func (m *MinIO) Spec(bucket string) mounts.Spec {
	d := config.DefaultConnector()
	return mounts.Spec{
		ID: "test-" + bucket, Backend: d.Backend, Endpoint: m.Endpoint, Region: d.Region,
		Bucket: bucket, PathStyle: true, UID: 0, GID: 0, FileMode: d.FileMode, DirMode: d.DirMode,
		StallTimeout: d.StallTimeout, MetadataTTL: d.MetadataTTL, NegativeTTL: d.NegativeTTL,
		MaxStaging: d.MaxStaging, MaxStagingPercent: d.MaxStagingPercent,
		Permissions: d.Permissions, MetadataMax: d.MetadataMax, ListConcurrency: d.ListConcurrency,
		Credentials: mounts.Credentials{AccessKeyID: m.AccessKey, SecretAccessKey: mounts.Secret(m.SecretKey)},
	}
}

// Client returns an SDK client for the server.
func (m *MinIO) Client(t testing.TB) *s3.Client {
	t.Helper()
	c, err := s3conn.NewClient(context.Background(), m.Spec("x"), s3conn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MakeBucket creates a bucket and fills it with objects (key → content).
func (m *MinIO) MakeBucket(t testing.TB, bucket string, objects map[string]string) {
	t.Helper()
	c := m.Client(t)
	ctx := context.Background()
	// MinIO can still answer 503 XMinioServerNotInitialized for bucket
	// operations for a while after it serves ListBuckets on a loaded
	// machine: retry that one error for up to a minute.
	for deadline := time.Now().Add(time.Minute); ; {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "XMinioServerNotInitialized") || time.Now().After(deadline) {
			t.Fatalf("create bucket %s: %v", bucket, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for k, v := range objects {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k),
			Body: strings.NewReader(v)}); err != nil {
			t.Fatalf("put %s/%s: %v", bucket, k, err)
		}
	}
}

// FreePort returns a free TCP port on loopback.
func FreePort(t testing.TB) int {
	t.Helper()
	return freePortNoT()
}

// freePortNoT returns a free loopback port that no other test process on
// this machine has been handed: MinIO listens with SO_REUSEPORT, so two
// MinIOs given the same port would both serve it and the kernel would
// split connections between them (seen as XMinioServerNotInitialized,
// SignatureDoesNotMatch or refused connections in parallel packages). Each
// port handed out is flock'ed in os.TempDir()/s3mounts-test-ports for the
// life of this process.
func freePortNoT() int {
	dir := filepath.Join(os.TempDir(), "s3mounts-test-ports")
	_ = os.MkdirAll(dir, 0o700)
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return port // no lock directory: as before
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close() // another test process holds it
			continue
		}
		portLocks.Lock()
		portLocks.files = append(portLocks.files, f) // held until exit
		portLocks.Unlock()
		return port
	}
}

var portLocks struct {
	sync.Mutex
	files []*os.File
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries returns the paths of s3mountd and s3mountctl: from $S3MOUNTS_BIN
// (make test sets it to ./bin after `make build`), else built once per test
// process into a temporary directory.
func Binaries(t testing.TB) (s3mountd, s3mountctl string) {
	t.Helper()
	if d := os.Getenv("S3MOUNTS_BIN"); d != "" {
		return filepath.Join(d, "s3mountd"), filepath.Join(d, "s3mountctl")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "s3mounts-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./agent/cmd/s3mountd", "./agent/cmd/s3mountctl")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "s3mountd"), filepath.Join(binDir, "s3mountctl")
}
