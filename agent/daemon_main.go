package agent

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/s3mounts/s3mounts/agent/worker"
	"github.com/s3mounts/s3mounts/config"
)

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
	fs := flag.NewFlagSet("s3mountd", flag.ContinueOnError)
	var o Options
	fs.StringVar(&o.Config, "config", "", "agent settings `file` [default: "+config.DefaultAgentPath+", optional]")
	fs.StringVar(&o.ConnectorsDir, "connectors-dir", "", "watched `dir`ectory of connector files [default: agent.toml's connectors_dir]")
	fs.StringVar(&o.ProjectRoot, "project-root", "", "`dir`ectory the mounts appear in [default: agent.toml's project_root]")
	fs.StringVar(&o.Socket, "socket", "", "API socket `path` (ignored under socket activation) [default: agent.toml's socket]")
	fs.StringVar(&o.StateDir, "state-dir", "", "state `dir`ectory: node key, activations, worker records [default: agent.toml's state_dir]")
	fs.StringVar(&o.RuntimeDir, "runtime-dir", "", "runtime `dir`ectory for worker sockets [default: $RUNTIME_DIRECTORY or "+DefaultRuntimeDir+"]")
	fs.StringVar(&o.CacheDir, "cache-dir", "", "cache `dir`ectory [default: agent.toml's cache_dir]")
	fs.StringVar(&o.SecretsDir, "secrets-dir", "", "named secrets `dir`ectory [default: agent.toml's secrets_dir]")
	version := fs.Bool("version", false, "print the version and exit")
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
