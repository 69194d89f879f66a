package builtin_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/internal/testenv"
)

// abortConnection ends the FUSE connection of the mount at dir the way the
// death of its worker does: the kernel fails every request from now on and
// the filesystem hears nothing more (no flush, no release). The mount
// itself stays until the test's cleanup unmounts it.
func abortConnection(t *testing.T, dir string) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	const ctl = "/sys/fs/fuse/connections"
	if _, err := os.Stat(ctl); err != nil {
		t.Skipf("no %s (fusectl) to abort a FUSE connection: %v", ctl, err)
	}
	if ents, _ := os.ReadDir(ctl); len(ents) == 0 {
		if out, err := exec.Command("mount", "-t", "fusectl", "fusectl", ctl).CombinedOutput(); err != nil {
			t.Skipf("cannot mount fusectl at %s to abort a FUSE connection: %v %s", ctl, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", ctl).Run() })
	}
	dev := uint64(unix.Major(st.Dev))<<20 | uint64(unix.Minor(st.Dev))
	p := filepath.Join(ctl, strconv.FormatUint(dev, 10), "abort")
	if err := os.WriteFile(p, []byte("1"), 0o200); err != nil {
		t.Fatalf("aborting the FUSE connection of %s: %v", dir, err)
	}
}

// objectIs waits until key holds want in the bucket, or fails.
func objectIs(t *testing.T, c *s3.Client, bucket, key, want, what string) {
	t.Helper()
	got, err := getObject(t, c, bucket, key)
	if err != nil {
		t.Fatalf("%s: get %s: %v", what, key, err)
	}
	if got != want {
		t.Fatalf("%s: %s holds %d bytes, want the %d-byte version", what, key, len(got), len(want))
	}
}

// `cmd > existing` with a slow writer: the shell opens with O_TRUNC, dups
// the descriptor to stdout and closes the original (a FLUSH before any
// byte). The old object must stay whole while the writer works, and when
// the mount's worker dies before the first byte.
func TestShellRedirectKeepsOldObject(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	old := strings.Repeat("old content 0123456789\n", 3<<20/23)
	m.MakeBucket(t, "redir", map[string]string{"existing.txt": old, "done.txt": old})
	c := m.Client(t)
	dir, _ := mount(t, m.Spec("redir"))

	// A redirect that completes replaces the object with the new content.
	out, err := exec.Command("bash", "-c", "echo new > "+filepath.Join(dir, "done.txt")).CombinedOutput()
	if err != nil {
		t.Fatalf("echo > done.txt: %v %s", err, out)
	}
	objectIs(t, c, "redir", "done.txt", "new\n", "after a completed redirect")
	// `: > file` (truncation, nothing written) empties it once closed.
	if out, err := exec.Command("bash", "-c", ": > "+filepath.Join(dir, "done.txt")).CombinedOutput(); err != nil {
		t.Fatalf(": > done.txt: %v %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for { // the empty object is published at the release, which close(2) does not wait for
		if got, err := getObject(t, c, "redir", "done.txt"); err == nil && got == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("`: > done.txt` did not empty the object")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The slow writer: the shell has opened, dup'd and closed before it
	// writes anything; sleep stands for a long computation.
	script := "sleep 600 > " + filepath.Join(dir, "existing.txt") + "; echo done"
	cmd := exec.Command("bash", "-c", script)
	stdout, _ := cmd.StdoutPipe()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill bash and its sleep (which holds the file) before the unmount.
	killGroup := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() { killGroup(); _ = cmd.Wait() })
	// Wait until the open has happened: the mount shows the truncated file.
	for deadline := time.Now().Add(30 * time.Second); ; {
		st, err := os.Stat(filepath.Join(dir, "existing.txt"))
		if err == nil && st.Size() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer's open did not show: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	objectIs(t, c, "redir", "existing.txt", old, "while the writer has written nothing")

	abortConnection(t, dir)
	killGroup()
	_ = cmd.Wait()
	_, _ = io.Copy(io.Discard, stdout)
	objectIs(t, c, "redir", "existing.txt", old, "after the worker died before the first byte")
}

// forkWriter is a Python writer that forks a child at 24 MiB of a 40 MiB
// file; the child exits at once (closing its copy of the descriptor: a
// FLUSH from another pid). It then waits for a line on stdin before
// writing the rest, and prints the errno of close (0 for success).
const forkWriter = `
import os, sys
path = sys.argv[1]
chunk = bytes(range(256)) * 4096
f = open(path, "wb", buffering=0)
for i in range(24):
    f.write(chunk)
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
print("forked", flush=True)
sys.stdin.readline()
try:
    for i in range(16):
        f.write(chunk)
except OSError as e:
    print("write", e.errno, flush=True)
try:
    f.close()
    print("close 0", flush=True)
except OSError as e:
    print("close", e.errno, flush=True)
`

// A writer that forks at 24 MiB, then the endpoint fails: no 24 MiB object
// is ever published, close fails, the old object stays.
func TestForkedWriterPublishesNothingPartial(t *testing.T) {
	testenv.RequireFUSE(t)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is needed for the fork writer: " + err.Error())
	}
	m := testenv.StartMinIO(t)
	old := string(randomBytes(t, 3<<20))
	m.MakeBucket(t, "fork", map[string]string{"old.bin": old})
	c := m.Client(t)
	spec := m.Spec("fork")
	spec.StallTimeout = 2 * time.Second
	dir, _ := mount(t, spec)

	for _, name := range []string{"old.bin", "new.bin"} {
		cmd := exec.Command(py, "-c", forkWriter, filepath.Join(dir, name))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		lines := bufio.NewScanner(stdout)
		if !lines.Scan() || lines.Text() != "forked" {
			t.Fatalf("%s: the writer did not fork: %q", name, lines.Text())
		}
		if name == "old.bin" {
			objectIs(t, c, "fork", name, old, "after the fork's flush")
		} else if _, err := getObject(t, c, "fork", name); err == nil {
			t.Fatalf("%s: an object was published at the fork's flush", name)
		}
		m.Stop()
		fmt.Fprintln(stdin, "go")
		var res []string
		for lines.Scan() {
			res = append(res, lines.Text())
		}
		_ = cmd.Wait()
		m.Restart()
		last := ""
		if len(res) > 0 {
			last = res[len(res)-1]
		}
		t.Logf("%s: the writer said %q (errno 5 is EIO)", name, res)
		if !strings.HasPrefix(last, "close ") || last == "close 0" {
			t.Fatalf("%s: close with the endpoint down must fail: writer said %q", name, res)
		}
		if name == "old.bin" {
			objectIs(t, c, "fork", name, old, "after the failed close")
		} else if _, err := getObject(t, c, "fork", name); err == nil {
			t.Fatalf("%s: a failed close left an object", name)
		}
	}
	// The last release (after the failed close) publishes nothing either:
	// once it has run, a read through the mount shows the old object.
	waitMountShows(t, filepath.Join(dir, "old.bin"), old)
	objectIs(t, c, "fork", "old.bin", old, "after the release")
}

// waitMountShows waits until a read through the mount gives want: the file
// is no longer open for writing there.
func waitMountShows(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s through the mount: %d bytes, %v; want the %d-byte object", path, len(b), err, len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A failed upload (small PUT, and a multipart one) keeps the old object;
// close and fsync return the error, and nothing is published later.
func TestFailedUploadKeepsOldObject(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	oldSmall := "the old small object"
	oldBig := string(randomBytes(t, 20<<20))
	m.MakeBucket(t, "upfail", map[string]string{"small": oldSmall, "big": oldBig})
	c := m.Client(t)
	spec := m.Spec("upfail")
	spec.StallTimeout = 2 * time.Second
	dir, _ := mount(t, spec)

	small, err := os.OpenFile(filepath.Join(dir, "small"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	big, err := os.OpenFile(filepath.Join(dir, "big"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A descriptor on its own mount left open at exit hangs the test binary.
	defer small.Close()
	defer big.Close()
	if _, err := small.WriteString("new"); err != nil {
		t.Fatal(err)
	}
	if _, err := big.Write(randomBytes(t, 40<<20)); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	if err := small.Sync(); err == nil {
		t.Fatal("fsync with the endpoint down succeeded")
	}
	if err := small.Close(); err == nil {
		t.Fatal("close with the endpoint down succeeded")
	}
	if err := big.Close(); err == nil {
		t.Fatal("close of a multipart upload with the endpoint down succeeded")
	}
	m.Restart()
	objectIs(t, c, "upfail", "small", oldSmall, "after a failed PUT")
	objectIs(t, c, "upfail", "big", oldBig, "after a failed multipart upload")
	waitMountShows(t, filepath.Join(dir, "small"), oldSmall)
	waitMountShows(t, filepath.Join(dir, "big"), oldBig)
	objectIs(t, c, "upfail", "small", oldSmall, "after the release")
	objectIs(t, c, "upfail", "big", oldBig, "after the release")
}

// smallTmpfs mounts an 8 MiB tmpfs for a cache_dir.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", d).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs for a full cache_dir: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", d).Run() })
	return d
}

// stagingOf is the staging space in use a mount reports.
func stagingOf(t *testing.T, mt any) func() int64 {
	sr, ok := mt.(interface{ StagingBytes() int64 })
	if !ok {
		t.Fatal("the built-in mount does not report its staging space")
	}
	return sr.StagingBytes
}

// A full cache_dir (the disk itself, and the max_staging cap): a write
// that cannot be staged is ENOSPC, nothing is published, the old object
// stays; a sequential write streams and either publishes all or fails
// publishing nothing.
func TestFullCacheDir(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	old := "old"
	m.MakeBucket(t, "full", map[string]string{"existing": old})
	c := m.Client(t)
	for _, tc := range []struct {
		name string
		max  int64
	}{{"disk", 1 << 40}, {"max_staging", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			spec := m.Spec("full")
			spec.CacheDir = smallTmpfs(t)
			spec.MaxStaging = tc.max // 0: the default, half of the 8 MiB tmpfs
			dir, mt := mount(t, spec)
			staging := stagingOf(t, mt)
			p := filepath.Join(dir, tc.name+"-random.bin")
			chunk := randomBytes(t, 1<<20)

			for _, path := range []string{p, filepath.Join(dir, "existing")} {
				f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				// Non-sequential: every second MiB, backwards.
				var werr error
				written := 0
				for off := int64(39 << 20); off >= 0 && werr == nil; off -= 2 << 20 {
					var n int
					n, werr = f.WriteAt(chunk, off)
					written += n
				}
				t.Logf("%s: %v after %d MiB staged (staging in use %d bytes)", filepath.Base(path), werr, written>>20, staging())
				equal(t, "write into a full cache_dir", errnoOf(werr), syscall.ENOSPC)
				if tc.max == 0 && staging() > 4<<20 {
					t.Fatalf("staging in use %d passes max_staging (4 MiB)", staging())
				}
				cerr := f.Close()
				equal(t, "close after a failed write", errnoOf(cerr), syscall.ENOSPC)
			}
			if _, err := getObject(t, c, "full", tc.name+"-random.bin"); err == nil {
				t.Fatal("a write that failed to stage published an object")
			}
			objectIs(t, c, "full", "existing", old, "after a failed write")
			waitMountShows(t, filepath.Join(dir, "existing"), old)
			for deadline := time.Now().Add(30 * time.Second); staging() != 0; {
				if time.Now().After(deadline) {
					t.Fatalf("staging in use after every file closed: %d bytes", staging())
				}
				time.Sleep(50 * time.Millisecond)
			}

			// Sequential 100 MiB: streamed from memory, the staging file
			// cannot keep up. Success must mean the whole object.
			data := randomBytes(t, 100<<20)
			seq := filepath.Join(dir, tc.name+"-seq.bin")
			f, err := os.Create(seq)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var werr error
			for off := 0; off < len(data) && werr == nil; off += 1 << 20 {
				_, werr = f.Write(data[off : off+1<<20])
			}
			cerr := f.Close()
			got, gerr := getObject(t, c, "full", tc.name+"-seq.bin")
			if werr != nil || cerr != nil {
				if gerr == nil {
					t.Fatalf("sequential write failed (write %v, close %v) but published %d bytes", werr, cerr, len(got))
				}
				t.Fatalf("sequential write into a full cache_dir failed: write %v, close %v", werr, cerr)
			}
			if gerr != nil || !bytes.Equal([]byte(got), data) {
				t.Fatalf("sequential write succeeded but the object is %d bytes (%v)", len(got), gerr)
			}
		})
	}
}

// Only the writer's close publishes: a reader's close and fsync while the
// file is being written publish nothing; a close from another thread of
// the opening process publishes at once (FUSE reports thread ids).
func TestReaderAndThreadsPublish(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "rdr", map[string]string{"f.txt": "old"})
	c := m.Client(t)
	dir, _ := mount(t, m.Spec("rdr"))
	p := filepath.Join(dir, "f.txt")

	// Open on one OS thread, write and close on another.
	opened := make(chan *os.File)
	go func() {
		runtime.LockOSThread() // this thread ends with the goroutine
		f, err := os.OpenFile(p, os.O_RDWR|os.O_TRUNC, 0)
		if err != nil {
			t.Error(err)
		}
		opened <- f
	}()
	w := <-opened
	if w == nil {
		t.FailNow()
	}
	defer w.Close()
	if _, err := w.WriteString("partial"); err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	n, _ := r.Read(b)
	equal(t, "a reader sees the staged content", string(b[:n]), "partial")
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	objectIs(t, c, "rdr", "f.txt", "old", "after a reader's fsync and close")
	if _, err := w.WriteString(" and the rest"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	objectIs(t, c, "rdr", "f.txt", "partial and the rest", "right after the writer's close from another thread")
}
