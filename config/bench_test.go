package config

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParseConnector parses the dotted-bucket example (policy, age
// secret, every table): the cost of a reload per connector file.
func BenchmarkParseConnector(b *testing.B) {
	path := filepath.Join("testdata", "valid", "dotted.toml")
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseConnector(path, data, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
}
