package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/s3mounts/s3mounts/config"
)

// fileReport is one connector file's verdict (validate --json).
type fileReport struct {
	File     string   `json:"file"`
	ID       string   `json:"id"`
	OK       bool     `json:"ok"`
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

type validateReport struct {
	OK bool `json:"ok"`
	// DirError is what is wrong with the connectors directory itself
	// (missing, a symlink, not root's): the daemon then changes nothing.
	DirError string       `json:"dir_error,omitempty"`
	Files    []fileReport `json:"files"`
}

// splitErrors flattens errors.Join trees into one message per line.
func splitErrors(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, splitErrors(e)...)
		}
		return out
	}
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// withFile makes sure a message names its file once, as the user named
// it (the loader names it by its absolute path).
func withFile(file string, msgs []string) []string {
	for i, m := range msgs {
		msgs[i] = file + fileRest(file, m)
	}
	return msgs
}

// fileRest is m without its leading file name (as given or absolute),
// starting at ":" (a line number or ": "), or ": "+m when m does not start
// with the file's name.
func fileRest(file, m string) string {
	names := []string{file}
	if abs, err := filepath.Abs(file); err == nil && abs != file {
		names = append(names, abs)
	}
	for _, n := range names {
		if rest, ok := strings.CutPrefix(m, n); ok && strings.HasPrefix(rest, ":") {
			return rest
		}
	}
	return ": " + m
}

// validate checks connector files exactly as the daemon would load them,
// without a daemon: every file parses and validates, no two claim one
// mount_name, and advice (warnings) is printed.
func (a *App) validate(_ context.Context, _ *flag.FlagSet, args []string) error {
	ag, err := a.loadAgent()
	if err != nil {
		return err
	}
	target := ag.ConnectorsDir
	if len(args) == 1 {
		target = args[0]
	}
	fi, err := os.Stat(target)
	if err != nil {
		if len(args) == 0 {
			if derr := config.CheckConnectorsDir(target, ag); derr != nil {
				return fmt.Errorf("validate: %v", derr)
			}
		}
		return fmt.Errorf("validate: %w", err)
	}
	var files []string
	var dirErr error
	if fi.IsDir() {
		// The same check the daemon makes: it loads nothing from a
		// directory root does not control.
		dirErr = config.CheckConnectorsDir(target, ag)
		entries, err := os.ReadDir(target)
		if err != nil {
			return fmt.Errorf("validate: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() || !config.IsConnectorFile(e.Name()) {
				continue
			}
			files = append(files, filepath.Join(target, e.Name()))
		}
		sort.Strings(files)
	} else {
		files = []string{target}
	}

	rep := validateReport{OK: dirErr == nil, Files: make([]fileReport, 0, len(files))}
	if dirErr != nil {
		rep.DirError = dirErr.Error()
	}
	var good []*config.Connector
	index := map[string]int{} // connector id → report
	for _, f := range files {
		r := fileReport{File: f, ID: config.ConnectorID(filepath.Base(f)), Errors: []string{}, Warnings: []string{}}
		c, err := config.LoadConnector(f, ag)
		if err != nil {
			r.Errors = withFile(f, splitErrors(err))
		} else {
			good = append(good, c)
			index[c.ID] = len(rep.Files)
		}
		rep.Files = append(rep.Files, r)
	}
	dups := config.DuplicateMountNames(good)
	for _, c := range good {
		r := &rep.Files[index[c.ID]]
		if err := dups[c.ID]; err != nil {
			r.Errors = append(r.Errors, withFile(r.File, splitErrors(err))...)
			continue
		}
		for _, w := range config.Warnings(c, ag) {
			r.Warnings = append(r.Warnings, strings.TrimPrefix(fileRest(r.File, w), ": "))
		}
	}
	invalid, warnings := 0, 0
	for i := range rep.Files {
		r := &rep.Files[i]
		r.OK = len(r.Errors) == 0
		if !r.OK {
			invalid++
			rep.OK = false
		}
		warnings += len(r.Warnings)
	}

	if a.json {
		a.printJSON(rep)
	} else {
		if rep.DirError != "" {
			fmt.Fprintln(a.Stdout, rep.DirError)
		}
		for _, r := range rep.Files {
			for _, e := range r.Errors {
				fmt.Fprintln(a.Stdout, e)
			}
			for _, w := range r.Warnings {
				fmt.Fprintf(a.Stdout, "%s: warning: %s\n", r.File, w)
			}
		}
		switch {
		case len(files) == 0:
			fmt.Fprintf(a.Stdout, "no connector files (*.toml) in %s\n", target)
		default:
			fmt.Fprintf(a.Stdout, "%d connector file(s) checked: %d valid, %d invalid, %d warning(s)\n",
				len(files), len(files)-invalid, invalid, warnings)
		}
	}
	if !rep.OK {
		return failed
	}
	return nil
}
