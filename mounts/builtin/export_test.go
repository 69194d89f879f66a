package builtin

import (
	"io"
	"log"
	"log/slog"
	"testing"
)

// CaptureSlog sends the default slog logger to w (info and above) for the
// rest of the test, and restores it and the log package's output after:
// slog.SetDefault alone leaves the log package writing into w.
func CaptureSlog(t testing.TB, w io.Writer) {
	old, out, flags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})))
	t.Cleanup(func() {
		slog.SetDefault(old)
		log.SetOutput(out)
		log.SetFlags(flags)
	})
}

// SetPlusLimit lowers the READDIRPLUS inode limit for a test; the returned
// func restores it.
func SetPlusLimit(n int) func() {
	old := plusLimit
	plusLimit = n
	return func() { plusLimit = old }
}

// Resumes is how many GET bodies were resumed after a break so far.
func Resumes() int64 { return resumes.Load() }
