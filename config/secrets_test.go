package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"filippo.io/age"
)

const testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func TestNodeKeyCreateAndLoad(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	if _, err := LoadNodeKey(state); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadNodeKey before creation: %v", err)
	}
	k, err := LoadOrCreateNodeKey(state)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Recipient(), "age1") {
		t.Fatalf("recipient %q", k.Recipient())
	}
	for path, want := range map[string]fs.FileMode{state: 0o700 | fs.ModeDir, filepath.Join(state, NodeKeyFile): 0o600} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, st.Mode(), want)
		}
	}
	k2, err := LoadOrCreateNodeKey(state)
	if err != nil || k2.Recipient() != k.Recipient() {
		t.Fatalf("second LoadOrCreateNodeKey made another key: %v", err)
	}
	k3, err := LoadNodeKey(state)
	if err != nil || k3.Recipient() != k.Recipient() {
		t.Fatalf("LoadNodeKey: %v", err)
	}
	// Printing a key never shows the private part.
	data, _ := os.ReadFile(filepath.Join(state, NodeKeyFile))
	var priv string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "AGE-SECRET-KEY-") {
			priv = l
		}
	}
	if priv == "" {
		t.Fatal("no private key in node.key")
	}
	for _, s := range []string{k.String(), k.GoString(), sprintf("%v %+v %#v %s", k, k, k, k), sprintf("%v %+v", *k, *k)} {
		if strings.Contains(s, priv) || strings.Contains(s, strings.ToLower(priv)) {
			t.Fatalf("node key printed: %s", s)
		}
	}
	// A key others can read is refused.
	os.Chmod(filepath.Join(state, NodeKeyFile), 0o644)
	if _, err := LoadNodeKey(state); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable node key: %v", err)
	}
	if _, err := LoadOrCreateNodeKey(state); err == nil {
		t.Fatal("LoadOrCreateNodeKey replaced or accepted a world-readable key")
	}
	// A damaged key is an error, never silently replaced.
	os.WriteFile(filepath.Join(state, NodeKeyFile), []byte("garbage\n"), 0o600)
	os.Chmod(filepath.Join(state, NodeKeyFile), 0o600)
	if _, err := LoadOrCreateNodeKey(state); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("damaged key: %v", err)
	}
}

func TestEncryptDecrypt(t *testing.T) {
	k, err := LoadOrCreateNodeKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	armored, err := Encrypt(k.Recipient(), []byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(armored, "-----BEGIN AGE ENCRYPTED FILE-----") || strings.Contains(armored, testSecret) {
		t.Fatalf("not armored: %s", armored)
	}
	got, err := k.Decrypt([]byte(armored))
	if err != nil || string(got) != testSecret {
		t.Fatalf("roundtrip: %q, %v", got, err)
	}
	// Indented inside a TOML """ string: still decrypts.
	indented := "\n    " + strings.ReplaceAll(strings.TrimSpace(armored), "\n", "\n    ") + "\n  "
	if got, err := k.Decrypt([]byte(indented)); err != nil || string(got) != testSecret {
		t.Fatalf("indented: %q, %v", got, err)
	}
	other, _ := LoadOrCreateNodeKey(t.TempDir())
	_, err = other.Decrypt([]byte(armored))
	if err == nil || !strings.Contains(err.Error(), "not encrypted to this node's key") {
		t.Fatalf("other key: %v", err)
	}
	if _, err := k.Decrypt([]byte("hello")); err == nil {
		t.Fatal("plain text decrypted")
	}
	if _, err := Encrypt("age1nope", []byte("x")); err == nil || !strings.Contains(err.Error(), "s3mountctl pubkey") {
		t.Fatalf("bad recipient: %v", err)
	}
}

// secretEnv is an agent with a secrets dir and a node key.
func secretEnv(t *testing.T) (*Agent, *NodeKey) {
	t.Helper()
	a := DefaultAgent()
	a.SecretsDir = filepath.Join(t.TempDir(), "secrets")
	a.StateDir = filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(a.SecretsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	k, err := LoadOrCreateNodeKey(a.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	return a, k
}

func writeSecret(t *testing.T, path string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func binaryAge(t *testing.T, k *NodeKey, secret string) []byte {
	t.Helper()
	r, err := age.ParseX25519Recipient(k.Recipient())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(secret + "\n"))
	w.Close()
	return buf.Bytes()
}

func TestResolveSecret(t *testing.T) {
	a, k := secretEnv(t)
	armored, err := Encrypt(k.Recipient(), []byte(testSecret+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	withName := func(name string) *Connector {
		return &Connector{File: "/c/x.toml", Credentials: Credentials{AccessKeyID: "AK", SecretName: name}}
	}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T) *Connector
		wantErr string // "" = resolves to testSecret
	}{
		{"plain", func(t *testing.T) *Connector {
			writeSecret(t, filepath.Join(a.SecretsDir, "plain"), []byte(testSecret+"\n"), 0o600)
			return withName("plain")
		}, ""},
		{"plain crlf read-only", func(t *testing.T) *Connector {
			writeSecret(t, filepath.Join(a.SecretsDir, "crlf"), []byte(testSecret+"\r\n"), 0o400)
			return withName("crlf")
		}, ""},
		{"armored age", func(t *testing.T) *Connector {
			writeSecret(t, filepath.Join(a.SecretsDir, "armored"), []byte(armored), 0o600)
			return withName("armored")
		}, ""},
		{"binary age", func(t *testing.T) *Connector {
			writeSecret(t, filepath.Join(a.SecretsDir, "binary"), binaryAge(t, k, testSecret), 0o600)
			return withName("binary")
		}, ""},
		{"kubernetes secret volume", func(t *testing.T) *Connector {
			// <dir>/..2026_01_01_00_00_00.123/<name>, ..data → that dir, <name> → ..data/<name>
			ts := filepath.Join(a.SecretsDir, "..2026_01_01_00_00_00.123")
			os.Mkdir(ts, 0o755)
			writeSecret(t, filepath.Join(ts, "k8s"), []byte(testSecret), 0o400)
			os.Symlink("..2026_01_01_00_00_00.123", filepath.Join(a.SecretsDir, "..data"))
			os.Symlink("..data/k8s", filepath.Join(a.SecretsDir, "k8s"))
			return withName("k8s")
		}, ""},
		{"kubernetes default mode 0644", func(t *testing.T) *Connector {
			ts := filepath.Join(a.SecretsDir, "..2026_02")
			os.Mkdir(ts, 0o755)
			writeSecret(t, filepath.Join(ts, "k8s-open"), []byte(testSecret), 0o644)
			os.Symlink("..2026_02/k8s-open", filepath.Join(a.SecretsDir, "k8s-open"))
			return withName("k8s-open")
		}, "defaultMode: 0400"},
		{"group readable", func(t *testing.T) *Connector {
			writeSecret(t, filepath.Join(a.SecretsDir, "open"), []byte(testSecret), 0o640)
			return withName("open")
		}, "chmod 600 " + filepath.Join(a.SecretsDir, "open")},
		{"world writable", func(t *testing.T) *Connector {
			writeSecret(t, filepath.Join(a.SecretsDir, "ww"), []byte(testSecret), 0o602)
			return withName("ww")
		}, "chmod 600"},
		{"wrong owner", func(t *testing.T) *Connector {
			p := filepath.Join(a.SecretsDir, "owned")
			writeSecret(t, p, []byte(testSecret), 0o600)
			if os.Geteuid() != 0 {
				t.Skip("SKIP: chown needs root")
			}
			os.Chown(p, 4242, 4242)
			return withName("owned")
		}, "chown root"},
		{"missing", func(t *testing.T) *Connector { return withName("missing") }, "does not exist"},
		{"empty", func(t *testing.T) *Connector {
			writeSecret(t, filepath.Join(a.SecretsDir, "empty"), []byte("\n"), 0o600)
			return withName("empty")
		}, "is empty"},
		{"two lines", func(t *testing.T) *Connector {
			writeSecret(t, filepath.Join(a.SecretsDir, "two"), []byte(testSecret+"\n"+testSecret+"\n"), 0o600)
			return withName("two")
		}, "more than one line"},
		{"directory", func(t *testing.T) *Connector {
			os.Mkdir(filepath.Join(a.SecretsDir, "dir"), 0o700)
			return withName("dir")
		}, "not a regular file"},
		{"age to another key", func(t *testing.T) *Connector {
			other, _ := LoadOrCreateNodeKey(t.TempDir())
			enc, _ := Encrypt(other.Recipient(), []byte(testSecret))
			writeSecret(t, filepath.Join(a.SecretsDir, "other"), []byte(enc), 0o600)
			return withName("other")
		}, "s3mountctl encrypt"},
		{"secret_access_key_file", func(t *testing.T) *Connector {
			p := filepath.Join(t.TempDir(), "key")
			writeSecret(t, p, []byte(testSecret+"  \n"), 0o600)
			return &Connector{Credentials: Credentials{AccessKeyID: "AK", SecretAccessKeyFile: p}}
		}, ""},
		{"secret_access_key_file open", func(t *testing.T) *Connector {
			p := filepath.Join(t.TempDir(), "key")
			writeSecret(t, p, []byte(testSecret), 0o644)
			return &Connector{Credentials: Credentials{AccessKeyID: "AK", SecretAccessKeyFile: p}}
		}, "chmod 600 "},
		{"encrypted inline", func(t *testing.T) *Connector {
			return &Connector{Credentials: Credentials{AccessKeyID: "AK", SecretAccessKeyEncrypted: armored}}
		}, ""},
		{"inline", func(t *testing.T) *Connector {
			return &Connector{Credentials: Credentials{AccessKeyID: "AK", SecretAccessKey: testSecret}}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.setup(t)
			got, err := ResolveSecret(c, a, k)
			if tc.wantErr == "" {
				if err != nil || got != testSecret {
					t.Fatalf("got %q, %v", got, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error (got %q)", got)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want %q in %v", tc.wantErr, err)
			}
			var fe *FileError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Key, "credentials.") {
				t.Fatalf("not a FileError naming the key: %#v", err)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "EXAMPLEKEY") {
				t.Fatalf("error shows the secret: %v", err)
			}
		})
	}
}

func TestResolveSecretWithoutNodeKey(t *testing.T) {
	a, k := secretEnv(t)
	enc, _ := Encrypt(k.Recipient(), []byte(testSecret))
	writeSecret(t, filepath.Join(a.SecretsDir, "enc"), []byte(enc), 0o600)
	for _, c := range []*Connector{
		{Credentials: Credentials{AccessKeyID: "AK", SecretName: "enc"}},
		{Credentials: Credentials{AccessKeyID: "AK", SecretAccessKeyEncrypted: enc}},
	} {
		if _, err := ResolveSecret(c, a, nil); err == nil || !strings.Contains(err.Error(), "node key") {
			t.Fatalf("got %v", err)
		}
	}
}

func TestResolveSecretNone(t *testing.T) {
	for _, cs := range []Credentials{{Anonymous: true}, {Profile: "p"}, {WebIdentityTokenFile: "/t", RoleARN: "arn:x"}} {
		s, err := ResolveSecret(&Connector{Credentials: cs}, nil, nil)
		if s != "" || err != nil {
			t.Fatalf("%v: %q %v", cs, s, err)
		}
	}
}

func TestSecretFiles(t *testing.T) {
	a := DefaultAgent()
	a.SecretsDir = "/s"
	for _, tc := range []struct {
		cs   Credentials
		want []string
	}{
		{Credentials{AccessKeyID: "AK", SecretName: "k"}, []string{"/s/k"}},
		{Credentials{AccessKeyID: "AK", SecretAccessKeyFile: "/f"}, []string{"/f"}},
		{Credentials{AccessKeyID: "AK", SecretAccessKey: "x"}, nil},
		{Credentials{Anonymous: true}, nil},
	} {
		if got := SecretFiles(&Connector{Credentials: tc.cs}, a); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: got %v want %v", tc.cs, got, tc.want)
		}
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/aws/creds")
	t.Setenv("AWS_CONFIG_FILE", "/aws/config")
	if got := SecretFiles(&Connector{Credentials: Credentials{Profile: "p"}}, a); !reflect.DeepEqual(got, []string{"/aws/creds", "/aws/config"}) {
		t.Errorf("profile: %v", got)
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
