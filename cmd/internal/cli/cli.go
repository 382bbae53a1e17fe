// Package cli holds what chainstore's command-line tools (storectl,
// storebench, storeagent, stored) share: a subcommand table and its usage
// text, the common flags (--addr, --json) and their parsing, and the
// JSON and table output helpers.
//
// It prints nothing on its own and never exits the process, except in
// Main, so every tool keeps its exact messages and exit codes.
package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// RunFunc is a tool's or a subcommand's entry point: it receives the
// arguments (without the program or command name) and returns the process
// exit code.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Main runs run with the process arguments and standard streams under a
// context that SIGINT or SIGTERM cancels, then exits with its code.
func Main(run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
