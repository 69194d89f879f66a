// Package cli is s3mountctl: the command-line client of s3mountd's socket
// API (agent/client), plus the commands that need no daemon (validate,
// encrypt, pubkey with a readable node key). It never imports the daemon,
// FUSE or the AWS SDK (see cmd/s3mountctl/deps_test.go).
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/s3mounts/s3mounts/agent/client"
	"github.com/s3mounts/s3mounts/config"
)

const usage = `s3mountctl controls s3mountd, the s3mounts node agent, through its socket.

Usage:
  s3mountctl [--socket PATH] [--json] COMMAND [ARGS]

Commands:
  list                      connectors you may see: ID NAME MOUNT BACKEND MODE STATE
  status ID                 every field of a connector, with its last error
  activate ID               mount it; waits, prints the result, exits 1 on failure
  deactivate ID             unmount it; waits, prints the result
  test ID                   check endpoint, credentials, bucket, list, read, write (no mount)
  ls ID [PATH]              list a directory of a mounted connector (all pages)
  refresh ID [PATH]         drop cached metadata and data under PATH (default: all)
  validate [FILE|DIR]       check connector files without a daemon (default: connectors_dir)
  encrypt                   read a secret on stdin, print it encrypted to the node key
  pubkey                    print the node's public key (age recipient)
  health                    the daemon's status and version
  metrics                   the daemon's Prometheus metrics (admins only)
  events                    follow state changes until interrupted (one line, or JSON, each)

Global flags (before or after the command):
  --socket PATH   the daemon's socket [default: $S3MOUNTS_SOCKET, else /run/s3mounts/agent.sock]
  --json          print the API's JSON instead of text
  --version       print s3mountctl's version and exit
  -h, --help      print this help

Examples:
  s3mountctl list
  s3mountctl activate datasets && ls /home/jupyter/mnt/s3/datasets
  s3mountctl test datasets
  s3mountctl ls datasets images/2024
  s3mountctl refresh datasets images/
  s3mountctl validate /etc/s3mounts/connectors.d
  s3mountctl encrypt < key.txt > /etc/s3mounts/secrets/datasets-key
  s3mountctl --json status datasets | jq .state

Exit status: 0 success, 1 failure (including a failed mount or test), 2 bad usage.
`

// Version is set at build time (-ldflags -X
// github.com/s3mounts/s3mounts/agent/cli.Version=…, as the Makefile does) to
// `git describe`, like s3mountd's agent.Version.
var Version = "dev"

// version is Version, or for a plain `go build` the VCS revision Go stamped
// into the binary.
func version() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision":
				rev = s.Value
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = "-dirty"
			}
		}
		if len(rev) >= 7 {
			return "dev-" + rev[:7] + dirty
		}
	}
	return Version
}

// exitError carries an exit status and an optional message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...) + "\n(see s3mountctl --help)"}
}

// failed is exit status 1 after the command printed why.
var failed = &exitError{code: 1}

// App is one run of s3mountctl.
type App struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	socket string
	json   bool

	// command flags
	recipientFlag, stateDir, agentConfig string
	lsPage                               int
	// NewClient makes the API client; tests may replace it.
	NewClient func(socket string) *client.Client
}

// Main runs s3mountctl with the process's arguments and streams and
// returns the exit status.
func Main(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a := &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	return a.Run(ctx, args)
}

type command struct {
	name    string
	args    string // for usage lines
	min     int
	max     int
	daemon  bool // talks to the daemon
	run     func(a *App, ctx context.Context, fs *flag.FlagSet, args []string) error
	options func(a *App, fs *flag.FlagSet)
}

var commands []command

func init() {
	commands = []command{
		{name: "list", max: 0, daemon: true, run: (*App).list},
		{name: "status", args: "ID", min: 1, max: 1, daemon: true, run: (*App).status},
		{name: "activate", args: "ID", min: 1, max: 1, daemon: true, run: (*App).activate},
		{name: "deactivate", args: "ID", min: 1, max: 1, daemon: true, run: (*App).deactivate},
		{name: "test", args: "ID", min: 1, max: 1, daemon: true, run: (*App).test},
		{name: "ls", args: "ID [PATH]", min: 1, max: 2, daemon: true, run: (*App).ls, options: lsOptions},
		{name: "refresh", args: "ID [PATH]", min: 1, max: 2, daemon: true, run: (*App).refresh},
		{name: "validate", args: "[FILE|DIR]", min: 0, max: 1, run: (*App).validate, options: configOptions},
		{name: "encrypt", min: 0, max: 0, run: (*App).encrypt, options: keyOptions},
		{name: "pubkey", min: 0, max: 0, run: (*App).pubkey, options: keyOptions},
		{name: "health", min: 0, max: 0, daemon: true, run: (*App).health},
		{name: "metrics", min: 0, max: 0, daemon: true, run: (*App).metrics},
		{name: "events", min: 0, max: 0, daemon: true, run: (*App).events},
	}
}

func (a *App) globals(fs *flag.FlagSet) {
	fs.StringVar(&a.socket, "socket", a.socket, "the daemon's socket")
	fs.BoolVar(&a.json, "json", a.json, "print JSON")
}

// parse parses flags anywhere among the arguments (flag stops at the first
// non-flag; commands take their ID first and flags after it as well).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// Run runs one command line and returns the exit status.
func (a *App) Run(ctx context.Context, args []string) int {
	if a.Getenv == nil {
		a.Getenv = os.Getenv
	}
	if a.NewClient == nil {
		a.NewClient = client.New
	}
	a.socket = a.Getenv("S3MOUNTS_SOCKET")
	if a.socket == "" {
		a.socket = client.DefaultSocket
	}
	err := a.run(ctx, args)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(a.Stderr, "s3mountctl: "+ee.msg)
		}
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ae *client.APIError
	if a.json && errors.As(err, &ae) {
		// Scripts get the API's own error shape on stderr.
		b, _ := json.Marshal(client.ErrorBody{Error: client.ErrorDetail{Code: ae.Code, Message: ae.Message}})
		fmt.Fprintln(a.Stderr, string(b))
		return 1
	}
	fmt.Fprintln(a.Stderr, "s3mountctl: "+err.Error())
	return 1
}

func (a *App) run(ctx context.Context, args []string) error {
	top := flag.NewFlagSet("s3mountctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	a.globals(top)
	help := top.Bool("help", false, "")
	top.BoolVar(help, "h", false, "")
	showVersion := top.Bool("version", false, "")
	if err := top.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	rest := top.Args()
	if *help || (len(rest) > 0 && rest[0] == "help") {
		fmt.Fprint(a.Stdout, usage)
		return nil
	}
	if *showVersion || (len(rest) > 0 && rest[0] == "version") {
		fmt.Fprintf(a.Stdout, "s3mountctl %s\n", version())
		return nil
	}
	if len(rest) == 0 {
		fmt.Fprint(a.Stderr, usage)
		return &exitError{code: 2}
	}
	name := rest[0]
	var cmd *command
	for i := range commands {
		if commands[i].name == name {
			cmd = &commands[i]
		}
	}
	if cmd == nil {
		return unknownCommand(name)
	}
	fs := flag.NewFlagSet("s3mountctl "+name, flag.ContinueOnError)
	fs.SetOutput(a.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(a.Stderr, "Usage: s3mountctl %s %s\n", name, cmd.args)
		fs.PrintDefaults()
	}
	a.globals(fs)
	if cmd.options != nil {
		cmd.options(a, fs)
	}
	pos, err := parse(fs, rest[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2}
	}
	if len(pos) < cmd.min || len(pos) > cmd.max {
		return usageErr("usage: s3mountctl %s %s", name, cmd.args)
	}
	return cmd.run(a, ctx, fs, pos)
}

// unknownCommand names the closest command (a typo within two edits, or a
// unique prefix) and lists them all.
func unknownCommand(name string) error {
	names := make([]string, len(commands))
	best, bestD := "", 3
	var prefixed []string
	for i, c := range commands {
		names[i] = c.name
		if d := config.EditDistance(name, c.name); d < bestD {
			best, bestD = c.name, d
		}
		if name != "" && strings.HasPrefix(c.name, name) {
			prefixed = append(prefixed, c.name)
		}
	}
	if best == "" && len(prefixed) == 1 {
		best = prefixed[0]
	}
	msg := fmt.Sprintf("unknown command %q", name)
	if best != "" {
		msg += fmt.Sprintf(": did you mean %q?", best)
	}
	return &exitError{code: 2, msg: msg + "\ncommands: " + strings.Join(names, ", ") + "\n(see s3mountctl --help)"}
}

func (a *App) client() *client.Client { return a.NewClient(a.socket) }

func (a *App) printJSON(v any) error {
	enc := json.NewEncoder(a.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// --- daemon commands ---

func (a *App) health(ctx context.Context, _ *flag.FlagSet, _ []string) error {
	h, err := a.client().Health(ctx)
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(h)
	}
	fmt.Fprintf(a.Stdout, "s3mountd %s at %s: %s, %d mounted\n", h.Version, a.socket, h.Status, h.Mounts)
	if h.Error != "" {
		fmt.Fprintf(a.Stdout, "error: %s\n", h.Error)
	}
	return nil
}

func (a *App) metrics(ctx context.Context, _ *flag.FlagSet, _ []string) error {
	text, err := a.client().Metrics(ctx)
	if err != nil {
		return err
	}
	fmt.Fprint(a.Stdout, text)
	return nil
}

func (a *App) events(ctx context.Context, _ *flag.FlagSet, _ []string) error {
	ev, err := a.client().Events(ctx)
	if err != nil {
		return err
	}
	defer ev.Close()
	enc := json.NewEncoder(a.Stdout)
	for {
		c, err := ev.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted: the normal end
			}
			if errors.Is(err, io.EOF) {
				return errors.New("s3mountd ended the event stream (stopping or restarting)")
			}
			return err
		}
		if a.json {
			enc.Encode(c)
			continue
		}
		msg := ""
		if c.Error != "" {
			msg = "  " + c.Error
		}
		fmt.Fprintf(a.Stdout, "%s  %s  %s%s\n", time.Now().UTC().Format(time.RFC3339), c.ID, c.State, msg)
	}
}

func (a *App) list(ctx context.Context, _ *flag.FlagSet, _ []string) error {
	cs, err := a.client().Connectors(ctx)
	if err != nil {
		return err
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].ID < cs[j].ID })
	if a.json {
		return a.printJSON(client.ConnectorList{Connectors: cs})
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tMOUNT\tBACKEND\tMODE\tSTATE")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, oneLine(c.Name), orDash(c.MountPath), orDash(c.Backend), orDash(c.Mode), c.State)
	}
	tw.Flush()
	n := "connectors"
	if len(cs) == 1 {
		n = "connector"
	}
	fmt.Fprintf(a.Stdout, "\n%d %s listed.\n", len(cs), n)
	if len(cs) == 0 {
		if why := a.whyNone(ctx); why != "" {
			fmt.Fprintln(a.Stdout, why)
		}
	}
	return nil
}

// whyNone explains an empty list from the caller's role (GET /v1/health
// says it; a daemon too old to say gets no explanation).
func (a *App) whyNone(ctx context.Context) string {
	h, err := a.client().Health(ctx)
	if err != nil || h.Role == "" {
		return ""
	}
	who := "you"
	if h.Caller != "" {
		who = "you, " + h.Caller + ","
	}
	switch h.Role {
	case "user":
		return "No connectors you may view: " + who + " have no role on this node and no connector's access policy names you.\n" +
			"Ask an admin of this node to give you a role in [roles] of agent.toml, or to name you in a connector's [[access.allow]]."
	case "admin":
		return "No connectors on this node: drop a connector file (ID.toml) into the daemon's connectors_dir (see docs/CONFIG.md)."
	}
	return "No connectors you may view: " + who + " have the role " + h.Role +
		" on this node, but there are no connectors, or their access policies do not name you."
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func timeStr(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (a *App) status(ctx context.Context, _ *flag.FlagSet, args []string) error {
	c, err := a.client().Connector(ctx, args[0])
	if err != nil {
		return err
	}
	if a.json {
		return a.printJSON(c)
	}
	a.printConnector(c)
	return nil
}

func (a *App) printConnector(c *client.Connector) {
	// A connector whose file never loaded (it does not parse or validate)
	// has only its id, file, state and error: print those and nothing that
	// would read as a value ("-", "no", ":").
	loaded := c.Endpoint != "" || c.Bucket != "" || c.MountName != ""
	if c.Name != "" {
		fmt.Fprintf(a.Stdout, "%s - %s\n", c.ID, oneLine(c.Name))
	} else if !loaded {
		fmt.Fprintf(a.Stdout, "%s (its file has no valid version yet)\n", c.ID)
	} else {
		fmt.Fprintln(a.Stdout, c.ID)
	}
	tw := tabwriter.NewWriter(a.Stdout, 0, 4, 1, ' ', 0)
	active := "no"
	if c.Active {
		active = "yes"
	}
	owner := ""
	if c.Owner != "" || c.Group != "" {
		owner = orDash(c.Owner) + ":" + orDash(c.Group)
	}
	modes := ""
	if c.FileMode != "" || c.DirMode != "" {
		modes = "files " + orDash(c.FileMode) + ", dirs " + orDash(c.DirMode)
	}
	rows := [][2]string{
		{"State", string(c.State)},
		{"Active", active},
		{"Error", orDash(c.Error)},
		{"Description", orDash(oneLine(c.Description))},
		{"Mount", orDash(c.MountPath)},
		{"Mount name", c.MountName},
		{"Mode", c.Mode},
		{"Backend", c.Backend},
		{"Endpoint", c.Endpoint},
		{"Region", orDash(c.Region)},
		{"Bucket", c.Bucket},
		{"Prefix", orDash(c.Prefix)},
		{"Owner", orDash(owner)},
		{"Modes", orDash(modes)},
		{"File", orDash(c.File)},
		{"Staging", stagingStr(c.StagingBytes)},
		{"Created by", orDash(c.CreatedBy)},
		{"Created at", timeStr(c.CreatedAt)},
		{"Updated at", timeStr(c.UpdatedAt)},
		{"You may", orDash(strings.Join(c.Actions, ", "))},
	}
	for _, kv := range rows {
		if !loaded {
			switch kv[0] {
			case "State", "Error", "File", "You may":
			default:
				continue // not known until the file loads
			}
		}
		// A value of several lines (errors of a file) keeps its column.
		for i, l := range strings.Split(kv[1], "\n") {
			if i == 0 {
				fmt.Fprintf(tw, "  %s:\t%s\n", kv[0], l)
			} else {
				fmt.Fprintf(tw, "  \t%s\n", l)
			}
		}
	}
	tw.Flush()
}

// actionTimeout is longer than the daemon's own bound (2 min) so that the
// daemon's answer, not ours, reports a timeout.
const actionTimeout = 3 * time.Minute

func (a *App) activate(ctx context.Context, _ *flag.FlagSet, args []string) error {
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	c, err := a.client().Activate(ctx, args[0])
	if err != nil {
		return err
	}
	if a.json {
		a.printJSON(c)
	}
	if c.State != client.StateMounted {
		if !a.json {
			fmt.Fprintf(a.Stdout, "%s: %s: %s\n", c.ID, c.State, orDash(c.Error))
		}
		return failed
	}
	if !a.json {
		fmt.Fprintf(a.Stdout, "%s: mounted at %s\n", c.ID, c.MountPath)
	}
	return nil
}

func (a *App) deactivate(ctx context.Context, _ *flag.FlagSet, args []string) error {
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	c, err := a.client().Deactivate(ctx, args[0])
	if err != nil {
		return err
	}
	if a.json {
		a.printJSON(c)
	}
	if c.State != client.StateInactive {
		if !a.json {
			fmt.Fprintf(a.Stdout, "%s: %s: %s\n", c.ID, c.State, orDash(c.Error))
		}
		return failed
	}
	if !a.json {
		note := ""
		if c.Error != "" {
			note = " (" + c.Error + ")"
		}
		fmt.Fprintf(a.Stdout, "%s: unmounted%s\n", c.ID, note)
	}
	return nil
}

func (a *App) test(ctx context.Context, _ *flag.FlagSet, args []string) error {
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	r, err := a.client().Test(ctx, args[0])
	if err != nil {
		return err
	}
	if a.json {
		a.printJSON(r)
	} else {
		tw := tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0)
		for _, c := range r.Checks {
			mark := "ok"
			if !c.OK {
				mark = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d ms\t%s\n", mark, c.Name, c.MS, c.Error)
		}
		tw.Flush()
		if r.OK {
			fmt.Fprintf(a.Stdout, "%s: all checks passed\n", args[0])
		} else {
			fmt.Fprintf(a.Stdout, "%s: FAILED\n", args[0])
		}
	}
	if !r.OK {
		return failed
	}
	return nil
}

func lsOptions(a *App, fs *flag.FlagSet) {
	fs.IntVar(&a.lsPage, "page", 0, "entries per request (default: the daemon's, 500; at most 5000)")
}

func (a *App) ls(ctx context.Context, _ *flag.FlagSet, args []string) error {
	id, path := args[0], ""
	if len(args) > 1 {
		path = args[1]
	}
	cl := a.client()
	var all client.Files
	cursor := ""
	n := 0
	for {
		f, err := cl.Files(ctx, id, path, cursor, a.lsPage)
		if err != nil {
			return err
		}
		all.Path = f.Path
		if a.json {
			all.Entries = append(all.Entries, f.Entries...)
		} else {
			for _, e := range f.Entries {
				name, size := e.Name, fmt.Sprint(e.Size)
				if e.Type == "dir" {
					name, size = name+"/", "-"
				}
				mtime := "-"
				if !e.MTime.IsZero() && e.MTime.Unix() > 0 {
					mtime = e.MTime.UTC().Format("2006-01-02 15:04")
				}
				fmt.Fprintf(a.Stdout, "%12s  %16s  %s\n", size, mtime, name)
			}
		}
		n += len(f.Entries)
		if f.NextCursor == "" || f.NextCursor == cursor {
			break
		}
		cursor = f.NextCursor
	}
	if a.json {
		if all.Entries == nil {
			all.Entries = []client.Entry{}
		}
		return a.printJSON(all)
	}
	return nil
}

func (a *App) refresh(ctx context.Context, _ *flag.FlagSet, args []string) error {
	id, path := args[0], ""
	if len(args) > 1 {
		path = args[1]
	}
	ctx, cancel := context.WithTimeout(ctx, actionTimeout)
	defer cancel()
	if err := a.client().Refresh(ctx, id, path); err != nil {
		return err
	}
	if a.json {
		return a.printJSON(client.OK{OK: true})
	}
	fmt.Fprintf(a.Stdout, "%s: dropped what was cached under %s\n", id, orDash(path))
	return nil
}

// stagingStr shows the write staging space in use ("-" when not reported).
func stagingStr(b *int64) string {
	if b == nil {
		return "-"
	}
	v := float64(*b)
	for _, u := range []string{"B", "KiB", "MiB", "GiB"} {
		if v < 1024 || u == "GiB" {
			if u == "B" {
				return fmt.Sprintf("%d B in use", *b)
			}
			return fmt.Sprintf("%.1f %s in use", v, u)
		}
		v /= 1024
	}
	return ""
}
