// Command configdoc regenerates the key tables of docs/CONFIG.md from the
// key table in package config (config.AgentKeys, config.ConnectorKeys):
//
//	go run ./internal/tools/configdoc [docs/CONFIG.md]
//
// It rewrites only the text between the "<!-- BEGIN GENERATED: … -->" and
// "<!-- END GENERATED: … -->" markers; config's TestDocsGenerated fails
// when the file differs from what this command writes.
package main

import (
	"fmt"
	"os"

	"github.com/s3mounts/s3mounts/config"
)

func main() {
	path := "docs/CONFIG.md"
	if len(os.Args) > 2 {
		fmt.Fprintln(os.Stderr, "usage: configdoc [docs/CONFIG.md]")
		os.Exit(2)
	}
	if len(os.Args) == 2 {
		path = os.Args[1]
	}
	if err := run(path); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (run it from the repository's root, or name the file)", err)
	}
	doc, err := config.GenerateDocs(string(old))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if doc == string(old) {
		return nil
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
