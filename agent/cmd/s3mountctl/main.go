// Command s3mountctl is the CLI of s3mountd's socket API. See README.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "s3mountctl: not implemented yet")
	os.Exit(1)
}
