// Command s3mountctl is the CLI of s3mountd's socket API (see docs/CLI.md).
// All of it lives in agent/cli.
package main

import (
	"os"

	"github.com/s3mounts/s3mounts/agent/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
