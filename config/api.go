package config

// This file lists the package's exported entry points; the signatures are
// the contract the agent and the CLI code against. The work is done in
// agent.go, connector.go, decode.go, lines.go and secrets.go.

import (
	"errors"
	"fmt"
	"os"
)

// DefaultAgentPath is where s3mountd looks for its settings.
const DefaultAgentPath = "/etc/s3mounts/agent.toml"

// ErrNoConfig is returned (wrapped) by LoadAgent when an explicitly named
// file does not exist. A missing default file is not an error: defaults apply.
var ErrNoConfig = errors.New("no agent config")

func (e *FileError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

// DefaultAgent returns the settings with every SPEC default.
func DefaultAgent() *Agent { return defaultAgent() }

// LoadAgent reads agent.toml at path. path == "" means DefaultAgentPath,
// and a missing default file yields DefaultAgent(). The file must be a
// regular file owned by root and not writable by group or others. Errors
// are *FileError.
func LoadAgent(path string) (*Agent, error) { return loadAgent(path) }

// IsConnectorFile reports whether a directory entry name is a connector
// file: "*.toml", not a dotfile (covers "..data" and editors' ".x.swp"),
// not "*~", "*.swp", "*.tmp".
func IsConnectorFile(name string) bool { return isConnectorFile(name) }

// ConnectorID is the id of a connector file: its name without ".toml".
func ConnectorID(name string) string { return connectorID(name) }

// CheckConnectorsDir checks that dir, the connectors directory, exists and
// is a directory root controls: owned by root, not writable by group or
// others, and not a symlink (unless it is Kubernetes' ..data layout or
// a.ConnectorsFollowSymlinks allows its target). The error says what is
// wrong and the command that fixes it; errors.Is(err, fs.ErrNotExist) when
// the directory is missing.
func CheckConnectorsDir(dir string, a *Agent) error { return checkConnectorsDir(dir, a) }

// LoadConnector reads, decodes (strictly: unknown keys are errors) and
// validates one connector file, refusing a file root does not control
// (not regular, not owned by root, writable by group or others, or a
// symlink out of its directory that a.ConnectorsFollowSymlinks does not
// allow); it never blocks on a fifo or a device. It applies the agent's
// defaults (owner, group, modes) and resolves owner/group names to ids. It
// does not read the secret.
// Errors are *FileError (several may be joined with errors.Join).
func LoadConnector(path string, a *Agent) (*Connector, error) { return loadConnector(path, a) }

// ParseConnector is LoadConnector on bytes already read; name is used in
// errors and for the id. info may be nil (then the "readable by others"
// rule for inline secrets is not checked). It is the fuzz target's entry.
func ParseConnector(name string, data []byte, info os.FileInfo, a *Agent) (*Connector, error) {
	return parseConnector(name, data, info, a)
}

// DuplicateMountNames returns, for every connector that claims a mount_name
// already claimed by a connector whose file name sorts earlier, an error
// naming both files. Keys are connector ids.
func DuplicateMountNames(cs []*Connector) map[string]error { return duplicateMountNames(cs) }

// Warnings returns advice that is not an error, e.g. a connector with an
// access policy whose mount every user of the node can read.
func Warnings(c *Connector, a *Agent) []string { return warnings(c, a) }

// NodeKey is the node's age identity, kept in <state_dir>/node.key (0600).
type NodeKey struct{ impl any }

// LoadOrCreateNodeKey reads the node key from stateDir, creating it (0600,
// directory 0700) on first use.
func LoadOrCreateNodeKey(stateDir string) (*NodeKey, error) { return loadOrCreateNodeKey(stateDir) }

// LoadNodeKey reads an existing node key; it does not create one.
func LoadNodeKey(stateDir string) (*NodeKey, error) { return loadNodeKey(stateDir) }

// Recipient is the node's public key ("age1..."), what `s3mountctl pubkey` prints.
func (k *NodeKey) Recipient() string { return k.recipient() }

// Decrypt opens an armored age message encrypted to this node.
func (k *NodeKey) Decrypt(armored []byte) ([]byte, error) { return k.decrypt(armored) }

// Encrypt encrypts secret to an age recipient and returns the armored text
// ("-----BEGIN AGE ENCRYPTED FILE-----...").
func Encrypt(recipient string, secret []byte) (string, error) { return encrypt(recipient, secret) }

// ResolveSecret returns the connector's secret access key from whichever
// source it names (secret_name in a.SecretsDir, secret_access_key_file,
// secret_access_key_encrypted, inline), decrypting age content with key.
// It returns "" with no error when the connector needs no secret key
// (anonymous, profile, web identity). Files holding secrets must not be
// readable by group or others; errors say which file and what to do, and
// never contain the secret.
func ResolveSecret(c *Connector, a *Agent, key *NodeKey) (string, error) {
	return resolveSecret(c, a, key)
}

// SecretFiles lists the files whose content the connector's secret depends
// on, so that a change of one of them remounts the connector.
func SecretFiles(c *Connector, a *Agent) []string { return secretFiles(c, a) }
