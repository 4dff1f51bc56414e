// Command holdover-inspect shows an operator what holdover has persisted in
// Cassandra: one session's ownership row and items, the nodes' live leases,
// the sessions the owner index lists under a node, and the Cassandra version.
//
//	holdover-inspect [-timeout 30s] <command> [flags] [args]
//
//	session [-json] [-max-value-bytes 256] <id>   ownership, status and items of a session
//	leases  [-json]                               live node leases with their remaining TTL
//	owned   [-json] [-limit 100] [-verify] <node> sessions the owner index lists under a node
//	version [-json]                               Cassandra release and whether the keyspace exists
//
// It is configured by the same HOLDOVER_* environment variables as the nodes
// (see adapter.Config): HOLDOVER_CASSANDRA_HOSTS, HOLDOVER_KEYSPACE, TLS,
// credentials, consistency and timeouts. It only reads: it takes no lease,
// owns and adopts nothing, and never creates the schema, whatever
// HOLDOVER_CREATE_SCHEMA says. Reads use HOLDOVER_CONSISTENCY, so what it
// shows is what a node's Adopt would see.
//
// Values are printed quoted as Go strings, with bytes that are not printable
// UTF-8 escaped (\x00, \n, \u00e9 stays é); -json prints them losslessly as
// base64 ("value") and, when they are valid UTF-8, as text ("text").
//
// Exit status: 0 on success; 1 when the command fails (Cassandra unreachable,
// keyspace missing, session not found); 2 on a usage error or an invalid
// HOLDOVER_* configuration, in which case every problem is printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/holdover/holdover/adapter"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

const progName = "holdover-inspect"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// job is a parsed command, ready to run against Cassandra.
type job func(ctx context.Context, in *inspector) error

// command is one subcommand: its synopsis and a parser that turns its
// arguments into a job or a usage error.
type command struct {
	name     string
	synopsis string
	summary  string
	// parse defines the command's flags on fs, parses args with them and
	// returns the job, or a usage error.
	parse func(fs *flag.FlagSet, args []string) (job, error)
}

var commands = []command{
	{"session", "[-json] [-max-value-bytes 256] <id>", "ownership, status and items of a session", parseSession},
	{"leases", "[-json]", "live node leases with their remaining TTL", parseLeases},
	{"owned", "[-json] [-limit 100] [-verify] <node>", "sessions the owner index lists under a node", parseOwned},
	{"version", "[-json]", "Cassandra release and whether the keyspace exists", parseVersion},
}

// usagef reports a mistake in a command's arguments (exit status 2).
func usagef(format string, args ...any) error { return fmt.Errorf(format, args...) }

// parseNoArgs parses fs over args for a command that takes flags only.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("takes no arguments, got %q", pos)
	}
	return nil
}

// run is the whole program: it parses args, reads the HOLDOVER_* variables,
// runs one command writing its result to stdout and diagnostics to stderr, and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	global := flag.NewFlagSet(progName, flag.ContinueOnError)
	global.SetOutput(io.Discard)
	timeout := global.Duration("timeout", 30*time.Second, "deadline for the whole command")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		usage(stderr)
		return exitUsage
	}
	if *timeout <= 0 {
		fmt.Fprintf(stderr, "%s: -timeout must be positive, got %s\n", progName, *timeout)
		return exitUsage
	}
	rest := global.Args()
	if len(rest) == 0 {
		fmt.Fprintf(stderr, "%s: no command given\n", progName)
		usage(stderr)
		return exitUsage
	}
	if rest[0] == "help" {
		usage(stdout)
		return exitOK
	}
	cmd, ok := findCommand(rest[0])
	if !ok {
		fmt.Fprintf(stderr, "%s: unknown command %q\n", progName, rest[0])
		usage(stderr)
		return exitUsage
	}
	fs := flag.NewFlagSet(progName+" "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	j, err := cmd.parse(fs, rest[1:])
	if errors.Is(err, flag.ErrHelp) {
		cmd.usage(stdout, fs)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s %s: %v\n", progName, cmd.name, err)
		cmd.usage(stderr, fs)
		return exitUsage
	}

	cfg, err := adapter.ConfigFromEnv()
	if err != nil {
		var ce *adapter.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: invalid configuration (%d %s in the HOLDOVER_* environment variables):\n",
				progName, len(ce.Problems), plural(len(ce.Problems), "problem", "problems"))
			for _, p := range ce.Problems {
				fmt.Fprintf(stderr, "  %s\n", p)
			}
		} else {
			fmt.Fprintf(stderr, "%s: invalid configuration: %v\n", progName, err)
		}
		return exitUsage
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	in := newInspector(cfg, stdout)
	defer in.close()
	if err := j(ctx, in); err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (raise -timeout, now %s)", err, *timeout)
		}
		fmt.Fprintf(stderr, "%s %s: %v\n", progName, cmd.name, err)
		return exitFailure
	}
	return exitOK
}

func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: %s [-timeout 30s] <command> [flags] [args]\n\ncommands:\n", progName)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %-40s %s\n", c.name, c.synopsis, c.summary)
	}
	fmt.Fprintf(w, `
Cassandra, keyspace, TLS and credentials come from the HOLDOVER_* environment
variables the nodes use (HOLDOVER_CASSANDRA_HOSTS, HOLDOVER_KEYSPACE, ...).
The tool only reads: it takes no lease and never creates the schema.
Exit status: 0 ok, 1 failure, 2 usage or configuration error.
`)
}

// parseFlags parses fs over args, allowing flags after positional arguments
// ("session abc -json"); everything after "--" is positional. It returns
// the positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos, tail []string
	for i, a := range args {
		if a == "--" {
			args, tail = args[:i], args[i+1:]
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(pos, tail...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// usage prints the command's synopsis and flags.
func (c command) usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s %s %s\n", progName, c.name, c.synopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
