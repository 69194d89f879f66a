// Package packaging tests the Debian package, the systemd units under a
// real systemd (a Debian container booted with systemd-nspawn) and the
// Kubernetes manifests.
package packaging

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/s3mounts/s3mounts/internal/testenv"
)

var (
	debOnce sync.Once
	debDir  string // where buildDeb put the package; removed by TestMain
	debPath string
	debErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if debDir != "" {
		os.RemoveAll(debDir)
	}
	os.Exit(code)
}

// buildDeb runs scripts/build-deb.sh once per test process with the
// binaries of testenv.Binaries and returns the .deb's path.
// S3MOUNTS_DEB=path tests a package built before (e.g. by `make deb`).
func buildDeb(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("S3MOUNTS_DEB"); p != "" {
		return p
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("SKIP: dpkg-deb is not on PATH (not a Debian machine)")
	}
	d, _ := testenv.Binaries(t)
	debOnce.Do(func() {
		out, err := os.MkdirTemp("", "s3mounts-deb-out-")
		if err != nil {
			debErr = err
			return
		}
		debDir = out
		cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "scripts", "build-deb.sh"))
		cmd.Env = append(os.Environ(), "OUT_DIR="+out, "S3MOUNTS_BIN="+filepath.Dir(d), "DEB_VERSION=0.1.0+test")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		b, err := cmd.Output()
		if err != nil {
			debErr = err
			debPath = stderr.String()
			return
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		debPath = lines[len(lines)-1]
	})
	if debErr != nil {
		t.Fatalf("scripts/build-deb.sh: %v\n%s", debErr, debPath)
	}
	return debPath
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestDebControlAndContents(t *testing.T) {
	deb := buildDeb(t)
	version := "0.1.0+test"
	if os.Getenv("S3MOUNTS_DEB") != "" {
		version = strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Version"))
	}
	if got, want := filepath.Base(deb), "s3mounts_"+version+"_amd64.deb"; got != want {
		t.Errorf("package file name %q, want %s", got, want)
	}

	fields := map[string]string{}
	for _, f := range []string{"Package", "Version", "Architecture", "Maintainer", "Depends", "Recommends", "Section", "Priority", "Description", "Installed-Size"} {
		fields[f] = strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, f))
	}
	want := map[string]string{"Package": "s3mounts", "Version": version, "Architecture": "amd64",
		"Recommends": "s3fs", "Section": "admin", "Priority": "optional"}
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("control %s = %q, want %q", k, fields[k], v)
		}
	}
	if !strings.Contains(fields["Depends"], "fuse3") || !strings.Contains(fields["Depends"], "procps") || !strings.Contains(fields["Depends"], "libc6 (>= ") {
		t.Errorf("Depends = %q, want fuse3, procps (/bin/kill of ExecReload) and a versioned libc6", fields["Depends"])
	}
	if desc := fields["Description"]; !strings.Contains(desc, "\n") || len(desc) < 200 {
		t.Errorf("Description has no long part: %q", desc)
	}
	if fields["Maintainer"] == "" || fields["Installed-Size"] == "" {
		t.Errorf("Maintainer %q / Installed-Size %q empty", fields["Maintainer"], fields["Installed-Size"])
	}

	info := run(t, "dpkg-deb", "-I", deb)
	for _, s := range []string{"conffiles", "postinst", "prerm", "postrm", "md5sums"} {
		if !strings.Contains(info, " "+s) {
			t.Errorf("control archive lacks %s:\n%s", s, info)
		}
	}

	// Contents: path -> mode string (and owner).
	entries := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(run(t, "dpkg-deb", "-c", deb)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if p == "" {
			p = "/"
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s, want root/root (--root-owner-group)", p, f[1])
		}
		entries[p] = f[0]
	}
	wantModes := map[string]string{
		"/":                                           "drwxr-xr-x",
		"/usr/bin/s3mountd":                           "-rwxr-xr-x",
		"/usr/bin/s3mountctl":                         "-rwxr-xr-x",
		"/lib/systemd/system/s3mountd.service":        "-rw-r--r--",
		"/lib/systemd/system/s3mountd.socket":         "-rw-r--r--",
		"/etc/s3mounts/agent.toml":                    "-rw-r--r--",
		"/etc/s3mounts/connectors.d":                  "drwxr-xr-x",
		"/usr/share/doc/s3mounts/copyright":           "-rw-r--r--",
		"/usr/share/doc/s3mounts/changelog.gz":        "-rw-r--r--",
		"/usr/share/doc/s3mounts/examples/agent.toml": "-rw-r--r--",
		"/usr/share/doc/s3mounts/examples/connectors.d/datasets.toml": "-rw-r--r--",
	}
	for p, m := range wantModes {
		if got, ok := entries[p]; !ok {
			t.Errorf("package lacks %s", p)
		} else if got != m {
			t.Errorf("%s has mode %s, want %s", p, got, m)
		}
	}
	for p := range entries {
		if strings.HasPrefix(p, "/etc/s3mounts/connectors.d/") || strings.HasPrefix(p, "/etc/s3mounts/secrets") {
			t.Errorf("package ships %s: connectors.d must be empty, secrets are the administrator's", p)
		}
	}

	// Control files, extracted.
	dir := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, dir)
	conff, _ := os.ReadFile(filepath.Join(dir, "conffiles"))
	if strings.TrimSpace(string(conff)) != "/etc/s3mounts/agent.toml" {
		t.Errorf("conffiles = %q, want exactly /etc/s3mounts/agent.toml", conff)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		st, err := os.Stat(filepath.Join(dir, s))
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, mode %v; want an executable 0755 script", s, err, st.Mode().Perm())
			continue
		}
		run(t, "sh", "-n", filepath.Join(dir, s))
	}
	post, _ := os.ReadFile(filepath.Join(dir, "postinst"))
	for _, s := range []string{"addgroup --system", "s3mounts-admin", "deb-systemd-invoke reload s3mountd.service", "deb-systemd-helper"} {
		if !bytes.Contains(post, []byte(s)) {
			t.Errorf("postinst lacks %q", s)
		}
	}
	var code []string
	for _, l := range strings.Split(string(post), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			code = append(code, l)
		}
	}
	if strings.Contains(strings.Join(code, "\n"), "restart") {
		t.Errorf("postinst restarts something: an upgrade must reload s3mountd, never restart it")
	}

	// The shipped agent.toml: every setting commented out, the example's
	// keys all present.
	data := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, data)
	conf, err := os.ReadFile(filepath.Join(data, "etc/s3mounts/agent.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(conf), "\n") {
		if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
			t.Errorf("agent.toml line %d is not commented out: %q", i+1, l)
		}
	}
	for _, k := range []string{"# project_root = ", "# socket_group = ", "# state_dir = ", "# [roles]"} {
		if !bytes.Contains(conf, []byte(k)) {
			t.Errorf("agent.toml lacks the commented default %q", k)
		}
	}
	for _, u := range []string{"s3mountd.service", "s3mountd.socket"} {
		a, _ := os.ReadFile(filepath.Join(data, "lib/systemd/system", u))
		b, _ := os.ReadFile(filepath.Join(testenv.RepoRoot(), "packaging/systemd", u))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s in the package differs from packaging/systemd/%s", u, u)
		}
	}
	if out, err := exec.Command(filepath.Join(data, "usr/bin/s3mountd"), "--version").CombinedOutput(); err != nil {
		t.Errorf("packaged s3mountd --version: %v\n%s", err, out)
	}
}

func TestDebLintian(t *testing.T) {
	deb := buildDeb(t)
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Skip("SKIP: lintian is not installed (scripts/setup.sh does not install it); the package's structure is checked by TestDebControlAndContents")
	}
	out, _ := exec.Command("lintian", "--no-tag-display-limit", deb).CombinedOutput()
	t.Logf("lintian:\n%s", out)
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") {
			t.Errorf("lintian error: %s", l)
		}
	}
}
