package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/s3mounts/s3mounts/config"
)

func keyOptions(a *App, fs *flag.FlagSet) {
	if fs.Name() == "s3mountctl encrypt" {
		fs.StringVar(&a.recipientFlag, "recipient", "", "encrypt to this age recipient (age1…) instead of the node key")
	}
	fs.StringVar(&a.stateDir, "state-dir", "", "where the node key is [default: state_dir of agent.toml, /var/lib/s3mounts]")
	configOptions(a, fs)
}

func configOptions(a *App, fs *flag.FlagSet) {
	fs.StringVar(&a.agentConfig, "config", "", "agent settings [default: "+config.DefaultAgentPath+"]")
}

// loadAgent reads agent.toml (--config, or the default path, whose absence
// means defaults).
func (a *App) loadAgent() (*config.Agent, error) {
	ag, err := config.LoadAgent(a.agentConfig)
	if err != nil {
		return nil, err
	}
	return ag, nil
}

// recipient finds the node's public key: the node key file when this user
// can read it (root), else the daemon (GET /v1/pubkey).
func (a *App) recipient(ctx context.Context) (string, error) {
	dir := a.stateDir
	if dir == "" {
		if ag, err := a.loadAgent(); err == nil {
			dir = ag.StateDir
		} else if a.agentConfig != "" {
			return "", err
		}
	}
	var localErr error
	if dir != "" {
		k, err := config.LoadNodeKey(dir)
		if err == nil {
			return k.Recipient(), nil
		}
		localErr = err
	}
	r, err := a.client().PubKey(ctx)
	if err == nil {
		return r, nil
	}
	if localErr != nil {
		return "", fmt.Errorf("no node key: reading it locally failed (%v), and asking the daemon failed: %w", localErr, err)
	}
	return "", err
}

func (a *App) pubkey(ctx context.Context, _ *flag.FlagSet, _ []string) error {
	r, err := a.recipient(ctx)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(map[string]string{"recipient": r})
	}
	fmt.Fprintln(a.Stdout, r)
	return nil
}

func (a *App) encrypt(ctx context.Context, _ *flag.FlagSet, _ []string) error {
	r := a.recipientFlag
	if r == "" {
		var err error
		if r, err = a.recipient(ctx); err != nil {
			return err
		}
	}
	secret, err := a.readSecret()
	if err != nil {
		return err
	}
	defer clear(secret)
	armored, err := config.Encrypt(r, secret)
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	if a.json {
		return a.printJSON(map[string]string{"recipient": r, "armored": armored})
	}
	fmt.Fprint(a.Stdout, armored)
	if !strings.HasSuffix(armored, "\n") {
		fmt.Fprintln(a.Stdout)
	}
	if isTerminal(a.Stderr) {
		fmt.Fprintln(a.Stderr, "# encrypted to "+r+": save it as <secrets_dir>/NAME (secret_name = \"NAME\"),"+
			" or paste it into secret_access_key_encrypted")
	}
	return nil
}

// readSecret reads the secret from stdin: one line without echo from a
// terminal, else everything up to EOF. A trailing newline is dropped.
func (a *App) readSecret() ([]byte, error) {
	var b []byte
	var err error
	if f, ok := a.Stdin.(*os.File); ok && isTerminal(f) {
		fmt.Fprint(a.Stderr, "Secret (not echoed): ")
		b, err = readNoEcho(f)
		fmt.Fprintln(a.Stderr)
	} else {
		b, err = io.ReadAll(io.LimitReader(a.Stdin, 1<<20))
	}
	if err != nil {
		return nil, fmt.Errorf("reading the secret from stdin: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, errors.New("no secret on stdin: pipe it in (s3mountctl encrypt < keyfile) or type it at the prompt")
	}
	return b, nil
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// readNoEcho reads one line from a terminal with echo turned off, and
// restores the terminal whatever happens.
func readNoEcho(f *os.File) ([]byte, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err == io.EOF && len(line) > 0 {
		err = nil
	}
	return line, err
}
