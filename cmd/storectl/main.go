// Command storectl is the chainstore command-line client: it writes and
// reads config entries on a running cluster, registers service instances
// in its catalog and lists them, and compiles or validates entry files
// offline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/chainstore/chainstore/cmd/internal/cli"
)

// commandTable is a set of storectl subcommands. A command's run receives
// the arguments after the command name (with the global flags in front)
// and returns the process exit code.
type commandTable = cli.Table[cli.RunFunc]

// commandGroups lists the constructors of every command group, one per
// file: offline.go (compile, validate), entries.go and operator.go (put,
// get, ..., status), chains.go (chain, watch), catalog.go (catalog and
// its subcommands), xds.go (xds and its subcommands), tls.go (tls ca|cert
// create), keyring.go (keyring and its subcommands).
var commandGroups = []func() commandTable{
	offlineCommands,
	entryCommands,
	operatorCommands,
	chainCommands,
	catalogCommands,
	xdsCommands,
	aclCommands,
	snapshotCommands,
	tlsCommands,
	keyringCommands,
}

// commands returns every storectl subcommand.
func commands() commandTable {
	var all commandTable
	for _, group := range commandGroups {
		all = append(all, group()...)
	}
	return all
}

func usage(w io.Writer) {
	commands().PrintUsage(w, "usage: storectl [--addr host:port[,host:port...]] [--token SECRET] COMMAND [ARGS]\n\ncommands:", 10)
}

func main() { cli.Main(run) }

// run dispatches to a subcommand and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	global, rest := splitGlobalFlags(args)
	c, err := commands().Select(rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stderr)
		return 0
	case errors.Is(err, cli.ErrNoCommand):
		usage(stderr)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "storectl: %v\n", err)
		usage(stderr)
		return 2
	}
	// Global flags are passed on in front of the command's own arguments so
	// each command parses them with its flag set.
	return c.Run(ctx, append(global, rest[1:]...), stdout, stderr)
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
		if cli.TakesValue(strings.TrimLeft(a, "-")) && i+1 < len(args) {
			global = append(global, args[i+1])
			i++
		}
		i++
	}
	return global, args[i:]
}
