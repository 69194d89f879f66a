package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every file in testdata/valid parses; every file in testdata/invalid fails
// with the error its first line ("# error: …") announces.
func TestTestdata(t *testing.T) {
	for _, kind := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join("testdata", kind, "*.toml"))
		if len(files) == 0 {
			t.Fatalf("no testdata/%s files", kind)
		}
		for _, f := range files {
			t.Run(kind+"/"+filepath.Base(f), func(t *testing.T) {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				_, err = ParseConnector(f, data, nil, nil)
				if kind == "valid" {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				first, _, _ := strings.Cut(string(data), "\n")
				want, ok := strings.CutPrefix(first, "# error: ")
				if !ok {
					t.Fatalf("%s: first line must be \"# error: <expected error after the file name>\"", f)
				}
				if err == nil || !strings.Contains(err.Error(), f+want) {
					t.Fatalf("want %q, got %v", f+want, err)
				}
			})
		}
	}
}

// FuzzParseConnector: arbitrary bytes never panic the parser; every error
// is made of *FileError naming the file; what is accepted is valid; and no
// error quotes a value of the file (a marker put in value positions of the
// input never appears in an error).
func FuzzParseConnector(f *testing.F) {
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.toml"))
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(conn(nil, "")))
	f.Add([]byte(conn(nil, "[credentials]\naccess_key_id = \"AK\"\nsecret_access_key_encrypted = \"\"\"\n-----BEGIN AGE ENCRYPTED FILE-----\nYQ==\n-----END AGE ENCRYPTED FILE-----\n\"\"\"")))
	for _, form := range markerForms {
		f.Add([]byte(conn(nil, form)))
	}
	const name = "/fuzz/conn.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
		// Property: no error quotes a value of the file.
		noMarker(t, data, func(b []byte) error { _, err := ParseConnector(name, b, nil, nil); return err })
		c, err := ParseConnector(name, data, nil, nil)
		if err != nil {
			if c != nil {
				t.Fatal("both a connector and an error")
			}
			var walk func(error)
			walk = func(e error) {
				if j, ok := e.(interface{ Unwrap() []error }); ok {
					for _, x := range j.Unwrap() {
						walk(x)
					}
					return
				}
				var fe *FileError
				if !errors.As(e, &fe) || fe.File != name {
					t.Fatalf("error %T %q is not a FileError naming %s", e, e, name)
				}
				if fe.Msg == "" {
					t.Fatalf("empty message: %#v", fe)
				}
			}
			walk(err)
			return
		}
		if c.Name == "" || c.Endpoint == "" || c.MountName == "" || c.MountName == "." || c.MountName == ".." ||
			strings.Contains(c.MountName, "/") || checkBucket(c.Bucket) != nil {
			t.Fatalf("accepted an invalid connector: %+v", c)
		}
		if c.Prefix != "" && (!strings.HasSuffix(c.Prefix, "/") || strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "//")) {
			t.Fatalf("prefix %q not normalised", c.Prefix)
		}
		if (c.Mode != "ro" && c.Mode != "rw") || c.StallTimeout <= 0 || c.MetadataTTL < 0 || c.NegativeTTL < 0 {
			t.Fatalf("accepted %+v", c)
		}
		if c.FileMode&^0o777 != 0 || c.DirMode&^0o777 != 0 {
			t.Fatalf("modes %o %o", c.FileMode, c.DirMode)
		}
	})
}

// FuzzParseAgent: agent.toml of arbitrary bytes never panics; errors are
// FileErrors naming the file and quote no value; what is accepted has sane
// values.
func FuzzParseAgent(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("..", "packaging", "examples", "agent.toml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("project_root = \"mnt\"\n[roles]\nadmin = [\"uid:0\", \"user:x\"]\n[binaries]\ns3fs = \"/usr/bin/s3fs\"\n"))
	f.Add([]byte("mount_uid = -1\nfile_mode = 644\nroles = 1\n"))
	const name = "/fuzz/agent.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
		noMarker(t, data, func(b []byte) error { _, err := parseAgent(name, b); return err })
		a, err := parseAgent(name, data)
		if err != nil {
			if a != nil {
				t.Fatal("both settings and an error")
			}
			var walk func(error)
			walk = func(e error) {
				if j, ok := e.(interface{ Unwrap() []error }); ok {
					for _, x := range j.Unwrap() {
						walk(x)
					}
					return
				}
				var fe *FileError
				if !errors.As(e, &fe) || fe.File != name || fe.Msg == "" {
					t.Fatalf("error %T %q is not a FileError naming %s", e, e, name)
				}
			}
			walk(err)
			return
		}
		for _, p := range []string{a.ProjectRoot, a.ConnectorsDir, a.Socket, a.SecretsDir, a.StateDir, a.CacheDir} {
			if !filepath.IsAbs(p) {
				t.Fatalf("relative path %q accepted", p)
			}
		}
		if a.ProjectRoot == "/" || a.FileMode&^0o777 != 0 || a.DirMode&^0o777 != 0 || a.ResyncInterval < 1e9 {
			t.Fatalf("accepted %+v", a)
		}
		for _, m := range append(append(append([]string{}, a.Roles.Admin...), a.Roles.Operator...), a.Roles.Viewer...) {
			if checkRoleMember(m) != nil {
				t.Fatalf("accepted role member %q", m)
			}
		}
	})
}

// marker stands for a secret in a file that is not a valid connector (a
// credentials or .env file symlinked or copied into connectors_dir): it
// must never appear in an error.
const marker = "QzXwSeKrT7319mk"

// markerForms put the marker where a secret would be: a bare value, quoted
// values (closed or not), arrays, inline tables, multi-line strings, a
// line of its own (a secret file's whole content), an .env or ini line.
var markerForms = []string{
	"\nendpoint = " + marker + "\n",
	"\nregion = \"" + marker + "\"\n",
	"\nbucket = '" + marker + "\n",
	"\nmount_name = \"" + marker + "\n",
	"\nmode = [\"" + marker + "\", 1]\n",
	"\nowner = { a = \"" + marker + "\" }\n",
	"\nname = \"\"\"" + marker + "\n",
	"\n" + marker + "\n",
	"\nAWS_SECRET_ACCESS_KEY=" + marker + "\n",
	"\n[default]\naws_secret_access_key = " + marker + "\n",
	"\n[credentials]\nsecret_access_key = " + marker + "x\"\n",
	"\nstall_timeout = \"" + marker + "\"\nfile_mode = \"" + marker + "\"\ncreated_at = \"" + marker + "\"\n",
	"\nbackend = \"" + marker + "\"\naddressing = \"" + marker + "\"\nactive = " + marker + "\n",
	"\n[[access.allow]]\nusers = [\"" + marker + " x\"]\nactions = [\"" + marker + "\"]\n",
	"\nlog_level = \"" + marker + "\"\nsocket_group = \"" + marker + " \"\nmetrics_listen = \"" + marker + "\"\n",
	"\n[roles]\nadmin = [\"" + marker + "\"]\n[binaries]\ns3fs = \"" + marker + "\"\n",
	"\nconnectors_follow_symlinks = [\"" + marker + "\"]\nmount_uid = \"" + marker + "\"\n",
}

// withMarkers returns variants of data with the marker in value positions:
// right after the first '=' of every line, and one form appended.
func withMarkers(data []byte) [][]byte {
	lines := strings.Split(string(data), "\n")
	for i, l := range lines {
		if k, v, ok := strings.Cut(l, "="); ok {
			lines[i] = k + "=" + marker + v
		}
	}
	form := markerForms[len(data)%len(markerForms)]
	return [][]byte{
		[]byte(strings.Join(lines, "\n")),
		append(append([]byte{}, data...), form...),
		append([]byte(form), data...),
	}
}

// noMarker fails when an error of parse quotes the marker.
func noMarker(t *testing.T, data []byte, parse func([]byte) error) {
	t.Helper()
	for _, in := range withMarkers(data) {
		if err := parse(in); err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("an error quotes the file's content:\n%v\ninput:\n%s", err, in)
		}
	}
}

// TestErrorsNeverQuoteContent: every marker form, alone and around a valid
// connector or agent.toml, gives errors without the marker.
func TestErrorsNeverQuoteContent(t *testing.T) {
	bases := [][]byte{nil, []byte(conn(nil, "")), []byte("[credentials]\n"), []byte("x = 1\n")}
	if b, err := os.ReadFile(filepath.Join("..", "packaging", "examples", "agent.toml")); err == nil {
		bases = append(bases, b)
	}
	errs := make([]int, len(markerForms))
	for _, base := range bases {
		for fi, form := range markerForms {
			for _, in := range [][]byte{append(append([]byte{}, base...), form...), append([]byte(form), base...)} {
				for _, parse := range []func([]byte) error{
					func(b []byte) error { _, err := ParseConnector("/x/c.toml", b, nil, nil); return err },
					func(b []byte) error { _, err := parseAgent("/x/agent.toml", b); return err },
				} {
					err := parse(in)
					if err != nil {
						errs[fi]++
					}
					if err != nil && strings.Contains(err.Error(), marker) {
						t.Fatalf("an error quotes the file's content:\n%v\ninput:\n%s", err, in)
					}
				}
			}
		}
		noMarker(t, base, func(b []byte) error { _, err := ParseConnector("/x/c.toml", b, nil, nil); return err })
	}
	for i, n := range errs {
		if n == 0 {
			t.Errorf("form %d gave no error at all: %q", i, markerForms[i])
		}
	}
}
