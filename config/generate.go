package config

//go:generate go run ../internal/tools/configdoc ../docs/CONFIG.md
