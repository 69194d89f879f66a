// Command s3mountd is the s3mounts node agent. See README.md and
// docs/OPERATIONS.md.
package main

import (
	"os"

	"github.com/s3mounts/s3mounts/agent"
)

func main() { os.Exit(agent.Main(os.Args)) }
