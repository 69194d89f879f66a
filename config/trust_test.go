package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// otherUser creates a real user for the test (removed at the end) and
// returns its uid; it skips when not root or without useradd.
func otherUser(t *testing.T) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a user and files owned by root")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd is not installed")
	}
	b := make([]byte, 3)
	rand.Read(b)
	name := "s3tt" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	return name, uid
}

// rootDir is a fresh directory owned by root, mode 0755.
func rootDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the files the agent trusts are root's")
	}
	d := t.TempDir()
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeMode(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// loadBounded runs LoadConnector and fails the test if it blocks.
func loadBounded(t *testing.T, p string, a *Agent) (*Connector, error) {
	t.Helper()
	type res struct {
		c   *Connector
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := LoadConnector(p, a); ch <- res{c, err} }()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-time.After(30 * time.Second):
		t.Fatalf("LoadConnector(%s) blocked", p)
	}
	return nil, nil
}

// TestTrustConnectorFiles: only regular files owned by root and not
// writable by group or others are loaded; everything else is an error
// naming the owner or mode and the command to run, and a fifo never blocks.
func TestTrustConnectorFiles(t *testing.T) {
	name, uid := otherUser(t)
	dir := rootDir(t)
	good := conn(nil, "")
	a := DefaultAgent()

	ok := filepath.Join(dir, "ok.toml")
	writeMode(t, ok, good, 0o644) // a ConfigMap's file: root, 0644
	if _, err := loadBounded(t, ok, a); err != nil {
		t.Fatalf("root-owned 0644: %v", err)
	}

	for _, mode := range []os.FileMode{0o664, 0o666, 0o646} {
		p := filepath.Join(dir, "w"+strconv.FormatUint(uint64(mode), 8)+".toml")
		writeMode(t, p, good, mode)
		_, err := loadBounded(t, p, a)
		if err == nil || !strings.Contains(err.Error(), "chmod go-w "+p) || !strings.Contains(err.Error(), "writable by group or others") {
			t.Errorf("mode %04o: want a chmod go-w error, got %v", mode, err)
		}
	}

	p := filepath.Join(dir, "user.toml")
	writeMode(t, p, good, 0o600)
	if err := os.Chown(p, uid, uid); err != nil {
		t.Fatal(err)
	}
	_, err := loadBounded(t, p, a)
	if err == nil || !strings.Contains(err.Error(), "owned by uid "+strconv.Itoa(uid)+" ("+name+")") ||
		!strings.Contains(err.Error(), "chown root:root "+p) {
		t.Errorf("user-owned: want an owner error with chown, got %v", err)
	}
	// owner and mode wrong: both commands in one message
	writeMode(t, p, good, 0o666)
	_, err = loadBounded(t, p, a)
	if err == nil || !strings.Contains(err.Error(), "chown root:root "+p+" && chmod go-w "+p) {
		t.Errorf("user-owned 0666: want both commands, got %v", err)
	}

	fifo := filepath.Join(dir, "fifo.toml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = loadBounded(t, fifo, a)
	if err == nil || !strings.Contains(err.Error(), "not a regular file (it is a fifo") {
		t.Errorf("fifo: got %v", err)
	}

	sub := filepath.Join(dir, "sub.toml")
	os.Mkdir(sub, 0o755)
	if _, err = loadBounded(t, sub, a); err == nil || !strings.Contains(err.Error(), "not a regular file (it is a directory") {
		t.Errorf("directory: got %v", err)
	}

	dangling := filepath.Join(dir, "dangling.toml")
	os.Symlink("nowhere.toml", dangling)
	if _, err = loadBounded(t, dangling, a); err == nil || !strings.Contains(err.Error(), "broken symlink: cannot read its target") {
		t.Errorf("dangling symlink: got %v", err)
	}
}

// TestTrustSymlinks: Kubernetes' ..data layout is followed; a symlink out
// of the connectors directory (e.g. to a root-only credentials file) is
// refused without a word of its content, unless connectors_follow_symlinks
// allows its target's directory.
func TestTrustSymlinks(t *testing.T) {
	dir := rootDir(t)
	a := DefaultAgent()
	// kubelet's atomic writer: ..<ts>/k.toml, ..data → ..<ts>, k.toml → ..data/k.toml
	ts := filepath.Join(dir, "..2026_01_01_00_00_00.1")
	os.Mkdir(ts, 0o755)
	writeMode(t, filepath.Join(ts, "k.toml"), conn(nil, ""), 0o644)
	os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(dir, "..data"))
	os.Symlink("..data/k.toml", filepath.Join(dir, "k.toml"))
	if _, err := loadBounded(t, filepath.Join(dir, "k.toml"), a); err != nil {
		t.Fatalf("kubernetes layout: %v", err)
	}

	outside := rootDir(t)
	env := filepath.Join(outside, ".env")
	writeMode(t, env, "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = hunter2hunter2\n", 0o600)
	link := filepath.Join(dir, "creds.toml")
	os.Symlink(env, link)
	_, err := loadBounded(t, link, a)
	if err == nil || !strings.Contains(err.Error(), "symlink out of its directory") || !strings.Contains(err.Error(), "connectors_follow_symlinks") {
		t.Fatalf("symlink out: got %v", err)
	}
	rel := filepath.Join(dir, "rel.toml")
	os.Symlink("../"+filepath.Base(outside)+"/.env", rel)
	if _, err := loadBounded(t, rel, a); err == nil || !strings.Contains(err.Error(), "symlink out of its directory") {
		t.Fatalf("relative symlink out: got %v", err)
	}
	// allowed: followed, and the not-a-connector content is never quoted
	a.ConnectorsFollowSymlinks = []string{outside}
	_, err = loadBounded(t, link, a)
	if err == nil {
		t.Fatal("a credentials file loaded as a connector")
	}
	for _, secret := range []string{"AKIAEXAMPLE", "hunter", "AKIA"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error quotes the file's content (%q): %v", secret, err)
		}
	}
	if !strings.Contains(err.Error(), link+":2") {
		t.Errorf("error does not name file and line: %v", err)
	}
	// allowed target, but the target itself is not root's: refused
	writeMode(t, filepath.Join(outside, "x.toml"), conn(nil, ""), 0o664)
	os.Symlink(filepath.Join(outside, "x.toml"), filepath.Join(dir, "x.toml"))
	if _, err := loadBounded(t, filepath.Join(dir, "x.toml"), a); err == nil || !strings.Contains(err.Error(), "chmod go-w "+filepath.Join(outside, "x.toml")) {
		t.Errorf("allowed symlink to a group-writable file: got %v", err)
	}
}

// TestTrustAgentFile: agent.toml is read only when root controls it.
func TestTrustAgentFile(t *testing.T) {
	_, uid := otherUser(t)
	dir := rootDir(t)
	p := filepath.Join(dir, "agent.toml")
	writeMode(t, p, "log_level = \"debug\"\n", 0o644)
	if _, err := LoadAgent(p); err != nil {
		t.Fatal(err)
	}
	writeMode(t, p, "log_level = \"debug\"\n", 0o666)
	if _, err := LoadAgent(p); err == nil || !strings.Contains(err.Error(), "chmod go-w "+p) {
		t.Errorf("0666 agent.toml: got %v", err)
	}
	writeMode(t, p, "log_level = \"debug\"\n", 0o644)
	os.Chown(p, uid, uid)
	var fe *FileError
	if _, err := LoadAgent(p); err == nil || !strings.Contains(err.Error(), "chown root:root "+p) || !errors.As(err, &fe) {
		t.Errorf("user-owned agent.toml: got %v", err)
	}
	fifo := filepath.Join(dir, "fifo.toml")
	syscall.Mkfifo(fifo, 0o644)
	if _, err := LoadAgent(fifo); err == nil || !strings.Contains(err.Error(), "fifo") {
		t.Errorf("fifo agent.toml: got %v", err)
	}
}

// TestTrustSecretFiles: a secret owned by another user, or group-writable,
// or a fifo, is refused with the command that fixes it.
func TestTrustSecretFiles(t *testing.T) {
	_, uid := otherUser(t)
	dir := rootDir(t)
	a := DefaultAgent()
	a.SecretsDir = dir
	c := &Connector{File: "/x/c.toml", Credentials: Credentials{AccessKeyID: "AK", SecretName: "k"}}
	p := filepath.Join(dir, "k")
	writeMode(t, p, "sekrit\n", 0o600)
	if s, err := ResolveSecret(c, a, nil); err != nil || s != "sekrit" {
		t.Fatalf("good secret: %q %v", s, err)
	}
	os.Chown(p, uid, uid)
	if _, err := ResolveSecret(c, a, nil); err == nil || !strings.Contains(err.Error(), "chown root:root "+p) || strings.Contains(err.Error(), "sekrit") {
		t.Errorf("user-owned secret: got %v", err)
	}
	os.Chown(p, 0, 0)
	os.Chmod(p, 0o620)
	if _, err := ResolveSecret(c, a, nil); err == nil || !strings.Contains(err.Error(), "chmod 600 "+p) {
		t.Errorf("group-writable secret: got %v", err)
	}
	os.Remove(p)
	syscall.Mkfifo(p, 0o600)
	done := make(chan error, 1)
	go func() { _, err := ResolveSecret(c, a, nil); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "fifo") {
			t.Errorf("fifo secret: got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("reading a fifo secret blocked")
	}
}

// TestTrustConnectorsDir: the directory itself must be root's, not
// writable by others and not a symlink (but Kubernetes' layout, or an
// allowed target); missing is ErrNotExist.
func TestTrustConnectorsDir(t *testing.T) {
	_, uid := otherUser(t)
	base := rootDir(t)
	a := DefaultAgent()
	d := filepath.Join(base, "connectors.d")
	if err := CheckConnectorsDir(d, a); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "connectors directory "+d+" is missing") {
		t.Fatalf("missing: %v", err)
	}
	os.Mkdir(d, 0o755)
	if err := CheckConnectorsDir(d, a); err != nil {
		t.Fatalf("good dir: %v", err)
	}
	os.Chmod(d, 0o777)
	if err := CheckConnectorsDir(d, a); err == nil || !strings.Contains(err.Error(), "chmod go-w "+d) {
		t.Errorf("0777: %v", err)
	}
	os.Chmod(d, 0o755)
	os.Chown(d, uid, uid)
	if err := CheckConnectorsDir(d, a); err == nil || !strings.Contains(err.Error(), "chown root:root "+d) {
		t.Errorf("user-owned: %v", err)
	}
	os.Chown(d, 0, 0)

	other := filepath.Join(base, "elsewhere")
	os.Mkdir(other, 0o755)
	ln := filepath.Join(base, "linked.d")
	os.Symlink(other, ln)
	if err := CheckConnectorsDir(ln, a); err == nil || !strings.Contains(err.Error(), "is a symlink") || !strings.Contains(err.Error(), "connectors_follow_symlinks") {
		t.Errorf("symlink: %v", err)
	}
	a.ConnectorsFollowSymlinks = []string{other}
	if err := CheckConnectorsDir(ln, a); err != nil {
		t.Errorf("allowed symlink: %v", err)
	}
	// its files are "within" through the link
	writeMode(t, filepath.Join(other, "c.toml"), conn(nil, ""), 0o644)
	if _, err := loadBounded(t, filepath.Join(ln, "c.toml"), DefaultAgent()); err != nil {
		t.Errorf("file in a symlinked dir: %v", err)
	}

	// kubelet with items paths: connectors.d → ..data/connectors.d
	k := rootDir(t)
	ts := filepath.Join(k, "..2026_01_01_00_00_00.1")
	os.MkdirAll(filepath.Join(ts, "connectors.d"), 0o755)
	os.Symlink("..2026_01_01_00_00_00.1", filepath.Join(k, "..data"))
	os.Symlink("..data/connectors.d", filepath.Join(k, "connectors.d"))
	if err := CheckConnectorsDir(filepath.Join(k, "connectors.d"), DefaultAgent()); err != nil {
		t.Errorf("kubernetes layout: %v", err)
	}
}

// TestAgentFollowSymlinksKey: connectors_follow_symlinks takes absolute
// directories only.
func TestAgentFollowSymlinksKey(t *testing.T) {
	a, err := parseAgent("/etc/s3mounts/agent.toml", []byte("connectors_follow_symlinks = [\"/srv/c/\", \"/opt/x\"]\n"))
	if err != nil || strings.Join(a.ConnectorsFollowSymlinks, ",") != "/srv/c,/opt/x" {
		t.Fatalf("%v %v", a, err)
	}
	for _, bad := range []string{`["rel"]`, `["/"]`, `"/srv"`} {
		if _, err := parseAgent("/a.toml", []byte("connectors_follow_symlinks = "+bad+"\n")); err == nil || !strings.Contains(err.Error(), "connectors_follow_symlinks") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
