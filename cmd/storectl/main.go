// Command storectl is the chainstore command-line client: it writes and
// reads config entries on a running cluster, and compiles or validates
// entry files offline.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one storectl subcommand. run receives the arguments after the
// command name and returns the process exit code.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands is filled by the files that implement each command group
// (offline.go: compile, validate; entries.go: put, get, ...), through
// registerCommands in each file's init-free constructor below.
func commands() map[string]command {
	m := map[string]command{}
	for _, group := range commandGroups {
		for name, c := range group() {
			m[name] = c
		}
	}
	return m
}

// commandGroups lists the constructors of every command group.
var commandGroups = []func() map[string]command{
	offlineCommands,
	entryCommands,
	chainCommands,
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: storectl [--addr host:port[,host:port...]] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	global, rest := splitGlobalFlags(args)
	if len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help" {
		usage(stderr)
		if len(rest) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands()[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "storectl: unknown command %q\n", rest[0])
		usage(stderr)
		return 2
	}
	// Global flags are passed on in front of the command's own arguments so
	// each command parses them with its flag set.
	return c.run(ctx, append(global, rest[1:]...), stdout, stderr)
}

// splitGlobalFlags takes the flags written before the command name
// (e.g. `storectl --addr x put f.hcl`) so they can be handed to the command.
func splitGlobalFlags(args []string) (global, rest []string) {
	i := 0
	for i < len(args) {
		a := args[i]
		if len(a) == 0 || a[0] != '-' {
			break
		}
		global = append(global, a)
		if (a == "--addr" || a == "-addr") && i+1 < len(args) {
			global = append(global, args[i+1])
			i++
		}
		i++
	}
	return global, args[i:]
}
