// Command s3mountd is the s3mounts node agent. See README.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "s3mountd: not implemented yet")
	os.Exit(1)
}
