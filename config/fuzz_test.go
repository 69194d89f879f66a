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
// is made of *FileError naming the file; what is accepted is valid.
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
	const name = "/fuzz/conn.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
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
// FileErrors naming the file; what is accepted has sane values.
func FuzzParseAgent(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("..", "packaging", "examples", "agent.toml")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("project_root = \"mnt\"\n[roles]\nadmin = [\"uid:0\", \"user:x\"]\n[binaries]\ns3fs = \"/usr/bin/s3fs\"\n"))
	f.Add([]byte("mount_uid = -1\nfile_mode = 644\nroles = 1\n"))
	const name = "/fuzz/agent.toml"
	f.Fuzz(func(t *testing.T, data []byte) {
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
