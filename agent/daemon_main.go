package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/config"
)

// daemonFlags is s3mountd's command line: the flags fill o, version is
// --version; -h/--help print every flag with its double dash to w.
func daemonFlags(o *Options, w io.Writer) (fs *flag.FlagSet, version *bool) {
	fs = flag.NewFlagSet("s3mountd", flag.ContinueOnError)
	fs.SetOutput(w)
	fs.StringVar(&o.Config, "config", "", "agent settings `file` [default: "+config.DefaultAgentPath+", optional]")
	fs.StringVar(&o.ConnectorsDir, "connectors-dir", "", "watched `dir`ectory of connector files [default: agent.toml's connectors_dir]")
	fs.StringVar(&o.ProjectRoot, "project-root", "", "`dir`ectory the mounts appear in [default: agent.toml's project_root]")
	fs.StringVar(&o.Socket, "socket", "", "API socket `path` (ignored under socket activation) [default: agent.toml's socket]")
	fs.StringVar(&o.StateDir, "state-dir", "", "state `dir`ectory: node key, activations, worker records [default: agent.toml's state_dir]")
	fs.StringVar(&o.RuntimeDir, "runtime-dir", "", "runtime `dir`ectory for worker sockets [default: $RUNTIME_DIRECTORY or "+DefaultRuntimeDir+"]")
	fs.StringVar(&o.CacheDir, "cache-dir", "", "cache `dir`ectory [default: agent.toml's cache_dir]")
	fs.StringVar(&o.SecretsDir, "secrets-dir", "", "named secrets `dir`ectory [default: agent.toml's secrets_dir]")
	version = fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { daemonUsage(fs, w) }
	return fs, version
}

// daemonUsage prints the help the way the docs write flags: `--name VALUE`
// (Go's flag package accepts one dash or two; its own help shows one).
func daemonUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `s3mountd is the s3mounts node agent: it mounts the connectors in connectors_dir
under project_root and serves the socket API (see docs/CONFIG.md, docs/OPERATIONS.md).

Usage:
  s3mountd [FLAGS]
  s3mountd --version

Flags:
`)
	type row struct{ left, usage string }
	var rows []row
	width := 0
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		left := "--" + f.Name
		if name != "" {
			left += " " + strings.ToUpper(name)
		}
		width = max(width, len(left))
		rows = append(rows, row{left, usage})
	})
	rows = append(rows, row{"-h, --help", "print this help"})
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r.left, r.usage)
	}
}

// Main is the s3mountd command line; it returns the exit code.
//
//	s3mountd [--config FILE] [--connectors-dir DIR] [--project-root DIR]
//	         [--socket PATH] [--state-dir DIR] [--runtime-dir DIR]
//	         [--cache-dir DIR] [--secrets-dir DIR]
//	s3mountd --version
//
// The first SIGTERM or SIGINT unmounts everything and exits 0; a second
// one exits at once (mounts stay, workers keep serving).
func Main(args []string) int {
	if len(args) > 1 && args[1] == "worker" {
		log := NewLogger(os.Getenv("S3MOUNTS_LOG_LEVEL"), os.Stderr)
		slog.SetDefault(log)
		return worker.Main(args[2:], worker.Backends(), Version, log)
	}
	var o Options
	fs, version := daemonFlags(&o, os.Stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		fmt.Println("s3mountd", Version)
		return 0
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "s3mountd: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	o.Args = args

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	// A vanished log reader must not kill the agent.
	signal.Ignore(syscall.SIGPIPE)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "s3mountd: %v: unmounting everything (send it again to exit at once)\n", s)
		cancel()
		<-sigs
		fmt.Fprintln(os.Stderr, "s3mountd: second signal: exiting now; mounts and workers are left running")
		os.Exit(1)
	}()
	if err := Run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "s3mountd:", err)
		return 1
	}
	return 0
}
