package builtin_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/posixtest"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts"
)

// posixtestNA lists go-fuse's posixtest checks that do not apply to a
// filesystem on S3, with the reason printed when they are skipped.
var posixtestNA = map[string]string{
	"Link":             "hard links: S3 has no second name for an object (link(2) is EPERM/ENOTSUP on every S3 backend)",
	"LinkUnlinkRename": "hard links: S3 has no second name for an object",
	"NlinkZero":        "needs hard links (link count going to zero while open)",
	// go-fuse's own TestAll skips these two as well: FcntlFlockLocksFile
	// is marked "TODO - fix this test" upstream, OpenSymlinkRace races
	// renames against opens for an unbounded time.
	"FcntlFlockLocksFile": "marked broken upstream (go-fuse's TestAll skips it)",
	"OpenSymlinkRace":     "an unbounded rename/open race (go-fuse's TestAll skips it)",
	"Tmpfile":             "O_TMPFILE: an unnamed file has no key on S3 (open answers EOPNOTSUPP, as on s3fs)",
	"DirectIO":            "O_DIRECT: there is no device to bypass a cache of (no backend here supports it)",
	"XAttrLarge":          "xattr values over S3's 2 KB user-metadata limit: E2BIG by design (the suite skips it itself then)",
}

// TestPosixtestChild runs go-fuse's posixtest suite in the directory named
// by S3MOUNTS_POSIXTEST_DIR; TestPosixSuite starts it as a child process
// per target, so that failures are counted instead of ending the run.
func TestPosixtestChild(t *testing.T) {
	dir := os.Getenv("S3MOUNTS_POSIXTEST_DIR")
	if dir == "" {
		t.Skip("runs only as TestPosixSuite's child (S3MOUNTS_POSIXTEST_DIR)")
	}
	names := make([]string, 0, len(posixtest.All))
	for k := range posixtest.All {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t.Run(k, func(t *testing.T) {
			if reason, ok := posixtestNA[k]; ok {
				t.Skip("n/a: " + reason)
			}
			sub := filepath.Join(dir, k)
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatalf("MkdirAll: %v", err)
			}
			posixtest.All[k](t, sub)
		})
	}
}

type posixCounts struct {
	pass, fail, na int
	failed         []string
}

func (c posixCounts) String() string {
	return fmt.Sprintf("%d passed %d failed %d n/a", c.pass, c.fail, c.na)
}

// runPosixtest runs the suite against dir in a child process and counts;
// uid != 0 runs it as that user (uid:uid) in a directory dir/as-<uid> it
// owns, from a copy of the test binary every user can run.
func runPosixtest(t *testing.T, dir string, uid uint32) posixCounts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bin := os.Args[0]
	if uid != 0 {
		sub := filepath.Join(dir, fmt.Sprintf("as-%d", uid))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(sub, int(uid), int(uid)); err != nil {
			t.Fatalf("chown %s: %v", sub, err)
		}
		dir = sub
		bin = publicCopy(t, os.Args[0])
	}
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestPosixtestChild$", "-test.v", "-test.count=1", "-test.timeout=7m")
	cmd.Env = append(os.Environ(), "S3MOUNTS_POSIXTEST_DIR="+dir)
	cmd.Dir = "/"
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		cmd.Env = append(cmd.Env, "HOME=/", "TMPDIR="+dir)
	}
	out, _ := cmd.CombinedOutput()
	var c posixCounts
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(strings.TrimSpace(sc.Text()))
		if len(f) < 3 || f[0] != "---" || !strings.HasPrefix(f[2], "TestPosixtestChild/") {
			continue
		}
		name := strings.TrimPrefix(f[2], "TestPosixtestChild/")
		switch f[1] {
		case "PASS:":
			c.pass++
		case "FAIL:":
			c.fail++
			c.failed = append(c.failed, name)
		case "SKIP:":
			if _, ok := posixtestNA[name]; ok {
				c.na++
			} else {
				// Skipped by the suite itself: the filesystem lacks the
				// feature ("does not support xattrs", "known limitation").
				c.fail++
				c.failed = append(c.failed, name+" (skipped by the suite)")
			}
		}
	}
	if c.pass+c.fail+c.na == 0 {
		t.Fatalf("posixtest child reported nothing:\n%s", out)
	}
	if c.fail > 0 || c.na > 0 {
		// The failures' messages, for the record.
		t.Logf("posixtest output against %s:\n%s", dir, failureLines(string(out)))
	}
	return c
}

var publicBin string

// publicCopy copies the test binary where every uid can run it (go test's
// build directory is 0700).
func publicCopy(t *testing.T, src string) string {
	t.Helper()
	if publicBin != "" {
		return publicBin
	}
	d, err := os.MkdirTemp("", "posixtest-bin-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(d, "posixtest.test")
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	publicBin = dst
	t.Cleanup(func() { os.RemoveAll(d); publicBin = "" })
	return dst
}

func failureLines(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "--- FAIL") || strings.Contains(l, "--- SKIP") || strings.Contains(l, ".go:") || strings.Contains(l, "got=") || strings.Contains(l, "want=") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// mountS3FSRaw mounts bucket with Debian's s3fs keeping per-object modes
// (no uid/umask override) and xattrs on (use_xattr), as a comparison
// target and for the interop tests.
func mountS3FSRaw(t *testing.T, m *testenv.MinIO, bucket string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{filepath.Dir(root), root} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mnt := filepath.Join(root, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(root, "passwd")
	if err := os.WriteFile(passwd, []byte(m.AccessKey+":"+m.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("s3fs", bucket, mnt, "-f",
		"-o", "url="+m.Endpoint, "-o", "use_path_request_style", "-o", "endpoint=us-east-1",
		"-o", "passwd_file="+passwd, "-o", "allow_other", "-o", "use_xattr",
		"-o", "tmpdir="+root, "-o", "dbglevel=err")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = mounts.Unmount(ctx, mnt)
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	deadline := time.Now().Add(time.Minute)
	for !isMountPoint(mnt) {
		if time.Now().After(deadline) {
			t.Fatalf("s3fs did not mount %s within a minute", mnt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return mnt
}

func isMountPoint(p string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[4] == p {
			return true
		}
	}
	return false
}

// TestPosixSuite runs go-fuse's posixtest against real built-in mounts in
// both permission models and, for comparison, against Debian's s3fs on the
// same MinIO, and prints the counts. Every failure is listed with its
// message; the built-in backend in the object model must pass at least as
// many checks as s3fs (issue 16).
func TestPosixSuite(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	results := map[string]posixCounts{}
	for _, model := range []string{"connector", "object"} {
		bucket := "posixtest-" + model
		m.MakeBucket(t, bucket, nil)
		spec := m.Spec(bucket)
		spec.Permissions = model
		spec.NegativeTTL = 0
		if model == "connector" {
			// The other uid below writes as the connector's owner.
			spec.UID, spec.GID = 2000, 2000
		}
		dir := mountPublic(t, spec)
		results["builtin/"+model] = runPosixtest(t, dir, 0)
		results["builtin/"+model+" as uid 2000"] = runPosixtest(t, dir, 2000)
	}
	if _, err := exec.LookPath("s3fs"); err == nil {
		m.MakeBucket(t, "posixtest-s3fs", nil)
		sd := mountS3FSRaw(t, m, "posixtest-s3fs")
		results["s3fs"] = runPosixtest(t, sd, 0)
		results["s3fs as uid 2000"] = runPosixtest(t, sd, 2000)
	} else {
		t.Logf("s3fs not installed: no comparison row")
	}
	line := "posixtest:"
	for _, k := range []string{"builtin/connector", "builtin/object", "s3fs", "builtin/connector as uid 2000", "builtin/object as uid 2000", "s3fs as uid 2000"} {
		if c, ok := results[k]; ok {
			line += fmt.Sprintf(" %s %s;", k, c)
		}
	}
	t.Log(strings.TrimSuffix(line, ";"))
	fmt.Println(strings.TrimSuffix(line, ";"))
	for k, c := range results {
		if len(c.failed) > 0 {
			t.Logf("%s failed: %s", k, strings.Join(c.failed, ", "))
		}
	}
	for _, as := range []string{"", " as uid 2000"} {
		if s, ok := results["s3fs"+as]; ok && results["builtin/object"+as].pass < s.pass {
			t.Errorf("builtin/object%s passes %d posixtest checks, s3fs %d: it must pass at least as many", as, results["builtin/object"+as].pass, s.pass)
		}
	}
}
