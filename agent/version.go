package agent

// Version is set at build time (-ldflags -X) to `git describe`.
var Version = "dev"
