package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// NodeKeyFile is the node key's file name in state_dir.
const NodeKeyFile = "node.key"

// maxSecretSize bounds what is read from a secret file.
const maxSecretSize = 64 << 10

const (
	ageArmorHeader  = "-----BEGIN AGE ENCRYPTED FILE-----"
	ageBinaryHeader = "age-encryption.org/v1"
)

func (k *NodeKey) identity() (*age.X25519Identity, error) {
	if k == nil {
		return nil, errors.New("no node key is loaded: start s3mountd once to create it in state_dir")
	}
	id, ok := k.impl.(*age.X25519Identity)
	if !ok || id == nil {
		return nil, errors.New("the node key is not loaded")
	}
	return id, nil
}

// String never shows the private key.
func (k *NodeKey) String() string {
	if id, err := k.identity(); err == nil {
		return "node key " + id.Recipient().String()
	}
	return "node key (none)"
}

// GoString never shows the private key either.
func (k *NodeKey) GoString() string { return k.String() }

// LoadOrCreateNodeKey reads the node key from stateDir, creating it (0600,
// directory 0700) on first use.
func LoadOrCreateNodeKey(stateDir string) (*NodeKey, error) {
	k, err := LoadNodeKey(stateDir)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating state_dir %s for the node key: %w", stateDir, err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, fmt.Errorf("generating the node key: %w", err)
	}
	content := fmt.Sprintf("# s3mounts node key, created %s\n# public key: %s\n%s\n",
		time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
	tmp, err := os.CreateTemp(stateDir, ".node.key-*")
	if err != nil {
		return nil, fmt.Errorf("creating the node key in %s: %w", stateDir, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err == nil {
		_, err = tmp.WriteString(content)
		if err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing the node key in %s: %w", stateDir, err)
	}
	// Link, not rename: a key created meanwhile by another process wins,
	// and everyone then uses that one.
	path := filepath.Join(stateDir, NodeKeyFile)
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("installing the node key %s: %w", path, err)
	}
	if d, err := os.Open(stateDir); err == nil {
		d.Sync()
		d.Close()
	}
	return LoadNodeKey(stateDir)
}

// LoadNodeKey reads an existing node key; it does not create one.
func LoadNodeKey(stateDir string) (*NodeKey, error) {
	path := filepath.Join(stateDir, NodeKeyFile)
	data, err := readProtected(path)
	if err != nil {
		return nil, err
	}
	var id *age.X25519Identity
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if id, err = age.ParseX25519Identity(line); err != nil {
			return nil, fmt.Errorf("node key %s is damaged (not an age X25519 identity): restore it from a backup, or remove it and re-encrypt every secret to the new key", path)
		}
		break
	}
	if id == nil {
		return nil, fmt.Errorf("node key %s holds no key: remove the empty file so a new key is created, then re-encrypt every secret", path)
	}
	return &NodeKey{impl: id}, nil
}

// Recipient is the node's public key ("age1..."), what `s3mountctl pubkey` prints.
func (k *NodeKey) Recipient() string {
	id, err := k.identity()
	if err != nil {
		return ""
	}
	return id.Recipient().String()
}

// Decrypt opens an armored age message encrypted to this node.
func (k *NodeKey) Decrypt(msg []byte) ([]byte, error) {
	id, err := k.identity()
	if err != nil {
		return nil, err
	}
	var r io.Reader = bytes.NewReader(msg)
	trimmed := bytes.TrimLeft(msg, " \t\r\n")
	if bytes.HasPrefix(trimmed, []byte(ageArmorHeader)) {
		r = armor.NewReader(bytes.NewReader(trimArmor(trimmed)))
	} else if !bytes.HasPrefix(trimmed, []byte(ageBinaryHeader)) {
		return nil, errors.New("not an age message (no age header): encrypt it with `s3mountctl encrypt`")
	}
	pr, err := age.Decrypt(r, id)
	if err != nil {
		var nm *age.NoIdentityMatchError
		if errors.As(err, &nm) || errors.Is(err, age.ErrIncorrectIdentity) {
			return nil, fmt.Errorf("it was not encrypted to this node's key (%s, see `s3mountctl pubkey`): encrypt it again with `s3mountctl encrypt` on this node", id.Recipient())
		}
		return nil, fmt.Errorf("cannot decrypt it (%v): encrypt it again with `s3mountctl encrypt`", err)
	}
	out, err := io.ReadAll(io.LimitReader(pr, maxSecretSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot decrypt it (damaged or truncated: %v): encrypt it again with `s3mountctl encrypt`", err)
	}
	if len(out) > maxSecretSize {
		return nil, errors.New("the decrypted secret is larger than 64 KiB: that is no secret key")
	}
	return out, nil
}

// trimArmor drops indentation and trailing spaces of each armor line (a
// """ string in a TOML file is often indented); the armor reader is strict.
func trimArmor(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	var out bytes.Buffer
	for _, l := range lines {
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		out.Write(l)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// Encrypt encrypts secret to an age recipient and returns the armored text
// ("-----BEGIN AGE ENCRYPTED FILE-----...").
func Encrypt(recipient string, secret []byte) (string, error) {
	recipient = strings.TrimSpace(recipient)
	rs, err := age.ParseRecipients(strings.NewReader(recipient))
	if err != nil || len(rs) == 0 {
		return "", fmt.Errorf("%q is not an age recipient: use the node's public key (`s3mountctl pubkey`, it starts with age1)", recipient)
	}
	var buf bytes.Buffer
	aw := armor.NewWriter(&buf)
	w, err := age.Encrypt(aw, rs...)
	if err != nil {
		return "", fmt.Errorf("encrypting: %w", err)
	}
	if _, err := w.Write(secret); err != nil {
		return "", fmt.Errorf("encrypting: %w", err)
	}
	if err := w.Close(); err != nil {
		return "", fmt.Errorf("encrypting: %w", err)
	}
	if err := aw.Close(); err != nil {
		return "", fmt.Errorf("encrypting: %w", err)
	}
	return buf.String(), nil
}

func looksAge(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return bytes.HasPrefix(t, []byte(ageArmorHeader)) || bytes.HasPrefix(t, []byte(ageBinaryHeader))
}

// readProtected reads a file holding a secret, following symlinks (a
// Kubernetes Secret volume links <name> → ..data/<name>), and checks the
// file actually opened (see trust.go): a regular file owned by root and not
// readable or writable by group or others. Errors name the file and what
// to do, never the content.
func readProtected(path string) ([]byte, error) {
	data, _, shown, err := readTrusted(path, trust{what: "secret", secret: true}, maxSecretSize)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &notExist{shown + " does not exist: create it (mode 0600, owned by root)"}
		}
		return nil, err
	}
	return data, nil
}

// secretFromFile reads a secret file: plain (whitespace trimmed) or age.
func secretFromFile(path string, key *NodeKey, what string) (string, error) {
	data, err := readProtected(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if looksAge(data) {
		if key == nil {
			return "", fmt.Errorf("%s: %s is encrypted to the node key, but no node key is loaded: start s3mountd once to create it (state_dir/node.key)", what, path)
		}
		plain, err := key.Decrypt(data)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", what, path, err)
		}
		data = plain
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty: write the secret access key into it", what, path)
	}
	if strings.ContainsAny(s, "\r\n") || hasControl(s) {
		return "", fmt.Errorf("%s: %s holds more than one line: it must hold only the secret access key", what, path)
	}
	return s, nil
}

// ResolveSecret returns the connector's secret access key from whichever
// source it names (secret_name in a.SecretsDir, secret_access_key_file,
// secret_access_key_encrypted, inline), decrypting age content with key.
// It returns "" with no error when the connector needs no secret key
// (anonymous, profile, web identity). Files holding secrets must not be
// readable by group or others; errors say which file and what to do, and
// never contain the secret.
func ResolveSecret(c *Connector, a *Agent, key *NodeKey) (string, error) {
	if c == nil {
		return "", errors.New("no connector")
	}
	a = agentOrDefault(a)
	cs := c.Credentials
	fe := func(k, format string, args ...any) error {
		return &FileError{File: c.File, Key: "credentials." + k, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case cs.SecretName != "":
		if !reSecret.MatchString(cs.SecretName) {
			return "", fe("secret_name", "is not a file name in secrets_dir")
		}
		path := filepath.Join(a.SecretsDir, cs.SecretName)
		s, err := secretFromFile(path, key, "secret "+cs.SecretName)
		if err != nil {
			return "", fe("secret_name", "%v", err)
		}
		return s, nil
	case cs.SecretAccessKeyFile != "":
		s, err := secretFromFile(cs.SecretAccessKeyFile, key, "secret_access_key_file")
		if err != nil {
			return "", fe("secret_access_key_file", "%v", err)
		}
		return s, nil
	case cs.SecretAccessKeyEncrypted != "":
		if key == nil {
			return "", fe("secret_access_key_encrypted", "no node key is loaded to decrypt it: start s3mountd once to create it (state_dir/node.key)")
		}
		plain, err := key.Decrypt([]byte(cs.SecretAccessKeyEncrypted))
		if err != nil {
			return "", fe("secret_access_key_encrypted", "%v", err)
		}
		s := strings.TrimSpace(string(plain))
		if s == "" || strings.ContainsAny(s, "\r\n") || hasControl(s) {
			return "", fe("secret_access_key_encrypted", "the decrypted secret is empty or more than one line: encrypt only the secret access key")
		}
		return s, nil
	case cs.SecretAccessKey != "":
		return strings.TrimSpace(cs.SecretAccessKey.Reveal()), nil
	}
	return "", nil
}

// ResolveCredentials returns the connector's credentials resolved for a
// mounts.Spec: the secret access key from whichever source the file names
// (ResolveSecret) in SecretAccessKey, and no source fields.
func ResolveCredentials(c *Connector, a *Agent, key *NodeKey) (Credentials, error) {
	secret, err := ResolveSecret(c, a, key)
	if err != nil {
		return Credentials{}, err
	}
	cr := c.Credentials
	cr.SecretName, cr.SecretAccessKeyFile, cr.SecretAccessKeyEncrypted = "", "", ""
	cr.SecretAccessKey = Secret(secret)
	return cr, nil
}

// SecretFiles lists the files whose content the connector's secret depends
// on, so that a change of one of them remounts the connector.
func SecretFiles(c *Connector, a *Agent) []string {
	if c == nil {
		return nil
	}
	a = agentOrDefault(a)
	cs := c.Credentials
	switch {
	case cs.SecretName != "":
		return []string{filepath.Join(a.SecretsDir, cs.SecretName)}
	case cs.SecretAccessKeyFile != "":
		return []string{cs.SecretAccessKeyFile}
	case cs.Profile != "" && cs.AccessKeyID == "":
		return awsSharedFiles()
	}
	return nil
}

// awsSharedFiles are the shared config files a profile is read from.
func awsSharedFiles() []string {
	home, _ := os.UserHomeDir()
	creds := os.Getenv("AWS_SHARED_CREDENTIALS_FILE")
	if creds == "" && home != "" {
		creds = filepath.Join(home, ".aws", "credentials")
	}
	conf := os.Getenv("AWS_CONFIG_FILE")
	if conf == "" && home != "" {
		conf = filepath.Join(home, ".aws", "config")
	}
	var out []string
	for _, p := range []string{creds, conf} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
