// Package doctest runs the command samples of README.md and docs/CLI.md
// against the demo's setup (real MinIO, the real s3mountd and s3mountctl,
// real FUSE) and compares what the binaries print with what the docs show,
// so that the docs cannot drift from the binaries.
//
// A sample is a fenced block opened by ```console: each line starting with
// "$ " is a command (run by bash, in one shell per block, so `export` and
// `echo $?` work); the lines after it, up to the next command, are its
// output (stdout and stderr). Outputs are compared by shape: runs of blanks
// are one blank, times, durations in ms and loopback ports are normalised,
// and "…" in the docs matches anything. Other fenced blocks (```sh, ```)
// are not run.
package doctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/internal/testenv"
)

// sample is one command of a console block and the output the docs show.
type sample struct {
	line int // of the command in the file
	cmd  string
	want []string
}

// consoleBlocks parses every ```console block of a Markdown file.
func consoleBlocks(t *testing.T, path string) [][]sample {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks [][]sample
	var cur []sample
	in := false
	for i, l := range strings.Split(string(b), "\n") {
		switch {
		case !in && strings.TrimSpace(l) == "```console":
			in, cur = true, nil
		case in && strings.TrimSpace(l) == "```":
			in = false
			blocks = append(blocks, cur)
		case in && strings.HasPrefix(l, "$ "):
			cur = append(cur, sample{line: i + 1, cmd: strings.TrimPrefix(l, "$ ")})
		case in:
			if len(cur) == 0 {
				t.Fatalf("%s:%d: output before the first command of a console block", path, i+1)
			}
			cur[len(cur)-1].want = append(cur[len(cur)-1].want, l)
		}
	}
	if in {
		t.Fatalf("%s: unterminated console block", path)
	}
	return blocks
}

var (
	reTime   = regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?Z?`)
	reMS     = regexp.MustCompile(`\b\d+ ms\b`)
	rePort   = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	reBlanks = regexp.MustCompile(`[ \t]+`)
)

// normalise gives a line's shape: variable parts replaced, blanks collapsed.
func normalise(l string) string {
	l = reTime.ReplaceAllString(l, "<TIME>")
	l = reMS.ReplaceAllString(l, "<N> ms")
	l = rePort.ReplaceAllString(l, "127.0.0.1:<PORT>")
	return strings.TrimSpace(reBlanks.ReplaceAllString(l, " "))
}

// matches compares an output line with the docs' line ("…" matches anything).
func matches(want, got string) bool {
	want, got = normalise(want), normalise(got)
	parts := strings.Split(want, "…")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}

// env is the demo's setup as the docs see it.
type env struct {
	d       *testenv.Daemon
	work    string            // the working directory of every command
	toTest  map[string]string // a path in the docs → the path in this test
	fromOut map[string]string // a path in an output → the path the docs show
}

// run runs a block in one bash and checks each command's output.
func (e *env) run(t *testing.T, file string, block []sample, extraEnv ...string) {
	t.Helper()
	var script strings.Builder
	script.WriteString("__rc=0\n")
	for i, s := range block {
		cmd := s.cmd
		for _, k := range sortedKeys(e.toTest) {
			cmd = strings.ReplaceAll(cmd, k, e.toTest[k])
		}
		fmt.Fprintf(&script, "echo '@@%d@@'; (exit $__rc); { %s\n} 2>&1; __rc=$?\n", i, cmd)
	}
	fmt.Fprintf(&script, "echo '@@end@@'\n")
	c := exec.Command("bash", "-c", script.String())
	c.Dir = e.work
	c.Env = append(os.Environ(), "PATH="+filepath.Join(e.work, "bin")+":"+os.Getenv("PATH"), "COLUMNS=200")
	c.Env = append(c.Env, extraEnv...)
	outB, _ := c.CombinedOutput()
	out := string(outB)
	for _, k := range sortedKeys(e.fromOut) {
		out = strings.ReplaceAll(out, k, e.fromOut[k])
	}
	for i, s := range block {
		start := strings.Index(out, fmt.Sprintf("@@%d@@\n", i))
		next := fmt.Sprintf("@@%d@@\n", i+1)
		if i == len(block)-1 {
			next = "@@end@@\n"
		}
		end := strings.Index(out, next)
		if start < 0 || end < start {
			t.Errorf("%s:%d: $ %s: the block did not run to here; its output:\n%s", file, s.line, s.cmd, out)
			return
		}
		got := strings.Split(strings.TrimSuffix(out[start+len(fmt.Sprintf("@@%d@@\n", i)):end], "\n"), "\n")
		if len(got) == 1 && got[0] == "" {
			got = nil
		}
		ok := len(got) == len(s.want)
		for j := 0; ok && j < len(got); j++ {
			ok = matches(s.want[j], got[j])
		}
		if !ok {
			t.Errorf("%s:%d: $ %s\nthe docs show:\n%s\nthe binaries print:\n%s", file, s.line, s.cmd,
				strings.Join(s.want, "\n"), strings.Join(got, "\n"))
		}
	}
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	// Longest first, so that a path is replaced before its parent.
	sort.Slice(ks, func(i, j int) bool { return len(ks[i]) > len(ks[j]) || len(ks[i]) == len(ks[j]) && ks[i] < ks[j] })
	return ks
}

// demoSetup is scripts/demo.sh's setup: its sample data in MinIO, its four
// connectors (ro and rw, default and s3fs backends, a bucket with a dot),
// mount_uid/gid 0 and a named secret.
func demoSetup(t *testing.T) (*testenv.Daemon, *testenv.MinIO) {
	t.Helper()
	testenv.RequireFUSE(t)
	testenv.RequireBinary(t, "s3fs", false)
	sample := t.TempDir()
	gen := exec.Command("go", "run", "./internal/tools/sampledata", sample)
	gen.Dir = testenv.RepoRoot()
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("sampledata: %v\n%s", err, out)
	}
	files := map[string]string{}
	tables := map[string]string{}
	filepath.Walk(sample, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(sample, p)
			files[filepath.ToSlash(rel)] = string(b)
			if r, ok := strings.CutPrefix(filepath.ToSlash(rel), "tables/"); ok {
				tables[r] = string(b)
			}
		}
		return nil
	})
	m := testenv.StartMinIO(t)
	m.MakeBucket(t, "demo-data", files)
	dotted := map[string]string{}
	for k, v := range tables {
		dotted["tables/"+k] = v
	}
	m.MakeBucket(t, "demo.dotted", dotted)
	m.MakeBucket(t, "demo-scratch", tables)

	d := testenv.StartDaemon(t, testenv.DaemonOptions{AgentTOML: "mount_uid = 0\nmount_gid = 0\n"})
	d.WriteSecret("demo-minio", m.SecretKey+"\n")
	conn := func(id, name, bucket, mountName, mode, backend string) {
		d.WriteConnector(id, fmt.Sprintf(`name        = %q
description = "s3mounts demo: %s (%s, %s backend)"
endpoint    = %q
bucket      = %q
prefix      = ""
mount_name  = %q
mode        = %q
backend     = %q
active      = true
addressing  = "path"
created_by  = "demo"

[credentials]
access_key_id = %q
secret_name   = "demo-minio"
`, name, bucket, mode, backend, m.Endpoint, bucket, mountName, mode, backend, m.AccessKey))
	}
	conn("datasets", "Demo datasets", "demo-data", "datasets", "ro", "default")
	conn("scratch", "Scratch space (rw)", "demo-scratch", "scratch", "rw", "default")
	conn("datasets-s3fs", "Demo datasets via s3fs", "demo-data", "datasets-s3fs", "ro", "s3fs")
	conn("dotted", "Bucket with a dot", "demo.dotted", "dotted", "ro", "default")
	for _, id := range []string{"datasets", "scratch", "datasets-s3fs", "dotted"} {
		d.WaitState(id, client.StateMounted)
	}
	return d, m
}

// TestDocSamples runs every console sample of README.md and docs/CLI.md.
func TestDocSamples(t *testing.T) {
	d, m := demoSetup(t)
	root := testenv.RepoRoot()
	work := t.TempDir()
	_, ctl := testenv.Binaries(t)
	for _, dir := range []string{"bin", ".demo/run", ".demo/mnt"} {
		os.MkdirAll(filepath.Join(work, dir), 0o755)
	}
	os.Symlink(ctl, filepath.Join(work, "bin", "s3mountctl"))
	os.Symlink(d.Socket, filepath.Join(work, ".demo/run/agent.sock"))
	os.Symlink(d.ProjectRoot, filepath.Join(work, ".demo/mnt/s3"))

	// README: the demo's commands, from the checkout (here: work).
	readme := &env{d: d, work: work, toTest: map[string]string{},
		fromOut: map[string]string{d.ProjectRoot: work + "/.demo/mnt/s3", d.Socket: work + "/.demo/run/agent.sock"}}
	rb := consoleBlocks(t, filepath.Join(root, "README.md"))
	if len(rb) == 0 {
		t.Fatal("README.md has no console sample")
	}
	for _, b := range rb {
		readme.run(t, "README.md", b)
	}

	// docs/CLI.md: a node laid out as the docs say, with the demo's
	// connectors plus one that cannot work (broken), and a
	// directory of connector files to validate (new-connectors/).
	// broken: a wrong secret (test fails at credentials), and files where
	// its mount point would be (activate fails before any backend runs).
	d.WriteSecret("wrong-key", "not-the-secret\n")
	os.MkdirAll(filepath.Join(d.ProjectRoot, "broken"), 0o755)
	os.WriteFile(filepath.Join(d.ProjectRoot, "broken", "notes.txt"), []byte("in the way\n"), 0o644)
	t.Cleanup(func() { os.RemoveAll(filepath.Join(d.ProjectRoot, "broken")) })
	d.WriteConnector("broken", fmt.Sprintf(`name = "Broken on purpose"
endpoint = %q
bucket = "demo-data"
mount_name = "broken"
active = false
addressing = "path"

[credentials]
access_key_id = %q
secret_name = "wrong-key"
`, m.Endpoint, m.AccessKey))
	d.WaitState("broken", client.StateInactive)
	// typo: a file that never parsed.
	d.WriteConnector("typo", "name = \"Typo\"\nendpoint = \""+m.Endpoint+"\"\nbukcet = \"demo-data\"\nmount_name = \"typo\"\n\n[credentials]\nanonymous = true\n")
	d.WaitState("typo", client.StateError)
	vdir := filepath.Join(work, "new-connectors")
	os.Mkdir(vdir, 0o755)
	valid := func(name, mount string) string {
		return fmt.Sprintf("name = %q\nendpoint = \"https://storage.example.com\"\nbucket = \"bucket-%s\"\nmount_name = %q\n\n[credentials]\nanonymous = true\n", name, name, mount)
	}
	for f, content := range map[string]string{
		"a.toml": valid("a", "data"),
		"b.toml": valid("b", "data"),
		"c.toml": "bukcet = \"x\"\n" + valid("c", "c"),
		"d.toml": valid("d", "d") + "\n[[access.allow]]\nusers = [\"alice\"]\n",
	} {
		if err := os.WriteFile(filepath.Join(vdir, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(work, "key.txt"), []byte(m.SecretKey+"\n"), 0o600)
	cli := &env{d: d, work: work,
		toTest: map[string]string{
			"/home/jupyter/mnt/s3":       d.ProjectRoot,
			"/etc/s3mounts/connectors.d": d.ConnectorsDir,
			"/etc/s3mounts/secrets":      d.SecretsDir,
			"/run/s3mounts/agent.sock":   d.Socket,
		},
		fromOut: map[string]string{
			d.ProjectRoot:   "/home/jupyter/mnt/s3",
			d.ConnectorsDir: "/etc/s3mounts/connectors.d",
			d.SecretsDir:    "/etc/s3mounts/secrets",
			d.Socket:        "/run/s3mounts/agent.sock",
			work + "/":      "",
		}}
	blocks := consoleBlocks(t, filepath.Join(root, "docs", "CLI.md"))
	if len(blocks) < 6 {
		t.Fatalf("docs/CLI.md has only %d console blocks", len(blocks))
	}
	n := 0
	for _, b := range blocks {
		cli.run(t, "docs/CLI.md", b, "S3MOUNTS_SOCKET="+d.Socket)
		n += len(b)
	}
	t.Logf("ran %d README blocks and %d docs/CLI.md commands in %d blocks", len(rb), n, len(blocks))
}

// TestShapeMatching keeps the comparison honest: it tells shapes apart.
func TestShapeMatching(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"ok    endpoint     12 ms", "ok  endpoint  3 ms", true},
		{"ok    endpoint     12 ms", "FAIL  endpoint  3 ms", false},
		{"  Endpoint:    http://127.0.0.1:9000", "  Endpoint: http://127.0.0.1:41234", true},
		{"       48213  2024-03-01 10:00  cat.jpg", "  4551  2026-11-30 21:13  cat.jpg", false},
		{"        4551  2024-03-01 10:00  iris.csv", "4551  2026-11-30 21:13  iris.csv", true},
		{"broken: error: …", "broken: error: secret \"x\" is missing", true},
		{"broken: error: …", "broken: mounted at /x", false},
	} {
		if got := matches(tc.want, tc.got); got != tc.ok {
			t.Errorf("matches(%q, %q) = %v", tc.want, tc.got, got)
		}
	}
}
