package builtin_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/s3mounts/s3mounts/internal/testenv"
	"github.com/s3mounts/s3mounts/mounts/builtin"
)

// Names and sizes S3 refuses get the errno that names the cause, and
// every failure is one log line with op, key, S3 code and request id.
func TestNamesAndSizesErrno(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "names", map[string]string{"f": "x"})
	var logs testenv.SyncBuffer
	builtin.CaptureSlog(t, &logs)
	dir, _ := mount(t, m.Spec("names"))
	p := func(s string) string { return filepath.Join(dir, s) }

	long := strings.Repeat("n", 256)
	_, err := os.Create(p(long))
	equal(t, "create a 256-byte name", errnoOf(err), syscall.ENAMETOOLONG)
	_, err = os.Stat(p(long))
	equal(t, "stat a 256-byte name", errnoOf(err), syscall.ENAMETOOLONG)
	equal(t, "mkdir a 256-byte name", errnoOf(os.Mkdir(p(long), 0o755)), syscall.ENAMETOOLONG)
	equal(t, "rename to a 256-byte name", errnoOf(os.Rename(p("f"), p(long))), syscall.ENAMETOOLONG)

	equal(t, "truncate -s 2P", errnoOf(os.Truncate(p("f"), 2<<50)), syscall.EFBIG)
	b, err := os.ReadFile(p("f"))
	if err != nil || string(b) != "x" {
		t.Fatalf("the file after a refused truncate: %q, %v", b, err)
	}

	// Keys the store refuses: MinIO takes a 255-byte file name, but not the
	// directory marker of a 250-byte name (it stores it with a suffix that
	// passes 255 bytes: XMinioInvalidObjectName), and S3 no key over 1024
	// bytes (KeyTooLongError). ENAMETOOLONG with the S3 code in the log,
	// never EIO.
	refused := false
	path := dir
	for i := 0; i < 6; i++ {
		path = filepath.Join(path, strings.Repeat(string(rune('a'+i)), 250))
		if err := os.Mkdir(path, 0o755); err != nil {
			refused = true
			equal(t, "mkdir of a key over 1024 bytes", errnoOf(err), syscall.ENAMETOOLONG)
			break
		}
	}
	if !refused {
		t.Fatal("MinIO stored a key over 1024 bytes")
	}
	out := logs.String()
	if refused {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "XMinioInvalidObjectName") || strings.Contains(l, "KeyTooLong") {
				line = l
			}
		}
		t.Logf("logged: %s", line)
		if line == "" || !strings.Contains(line, "request_id=") || strings.Contains(line, "request_id=\"\"") || !strings.Contains(line, "op=") {
			t.Fatalf("no log line with op, code and request id for the refused name:\n%s", out)
		}
	}
	if strings.Contains(out, m.SecretKey) {
		t.Fatal("the log holds the secret key")
	}
}

// Another client replaced an object (another size) while the listing is
// cached: a fresh open serves one version whole, and an append extends
// the new version.
func TestReplacedObjectOpenAndAppend(t *testing.T) {
	testenv.RequireFUSE(t)
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "repl", map[string]string{"d/log": "old line\n", "d/data": "0123456789"})
	c := m.Client(t)
	dir, _ := mount(t, m.Spec("repl"))
	p := func(s string) string { return filepath.Join(dir, s) }
	equal(t, "listing", strings.Join(readDir(t, p("d")), ","), "data,log")

	newLog := []byte("a new first line, longer\nsecond line\n")
	putObject(t, c, "repl", "d/log", newLog)
	putObject(t, c, "repl", "d/data", []byte("abc"))

	got, err := os.ReadFile(p("d/data"))
	if err != nil {
		t.Fatalf("a fresh open of a replaced object: %v (never EIO)", err)
	}
	if string(got) != "abc" && string(got) != "0123456789" {
		t.Fatalf("a fresh open of a replaced object served %q: not one version whole", got)
	}

	f, err := os.OpenFile(p("d/log"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatalf("open for append of a replaced object: %v", err)
	}
	if _, err := f.Write([]byte("appended\n")); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close after append: %v", err)
	}
	s, err := getObject(t, c, "repl", "d/log")
	if err != nil {
		t.Fatal(err)
	}
	if want := string(newLog) + "appended\n"; s != want {
		t.Fatalf("after the append the object is %q, want %q", s, want)
	}
	b, err := os.ReadFile(p("d/log"))
	if err != nil || !bytes.Equal(b, append(newLog, "appended\n"...)) {
		t.Fatalf("reading back through the mount: %q, %v", b, err)
	}
	if errors.Is(err, syscall.EIO) {
		t.Fatal("EIO")
	}
}
