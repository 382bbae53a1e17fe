// Command storedemo shows traffic moving between gRPC backends as a
// chainstore cluster's config entries and catalog change (scripts/demo.sh,
// `make demo`). It has two subcommands:
//
//	storedemo backend --name v1 [--id v1-a] [--addr 127.0.0.1:0] [--addr-file FILE]
//	storedemo client  --target xds:///web --xds-server ADDR[,ADDR] [--rate 50]
//	                  [--header x-canary=1 --header-every 5] [--show v1,v2,canary]
//
// backend is a real gRPC server answering grpc.health.v1 Health/Check;
// every response carries the headers "backend: <name>" and "instance:
// <id>". It prints the address it is bound to (and writes it to
// --addr-file, atomically, for scripts).
//
// client is a stock grpc-go client of --target through the xDS resolver
// (import _ "google.golang.org/grpc/xds"), plaintext. Its bootstrap is the
// GRPC_XDS_BOOTSTRAP_CONFIG environment variable built from --xds-server
// (one xds_servers entry per address, insecure, server_features
// ["xds_v3"]); grpc-go reads that variable when the process starts, so
// the client sets it and re-executes itself once. It makes --rate calls a
// second and prints once a second the share of the answers per backend
// (the "backend" header, or "instance" with --by instance) and the failed
// calls:
//
//	t=12s  v1 90.0%  v2 10.0%  canary 0.0%  errors 0  (n=50)
//
// With --header k=v every --header-every'th call carries that metadata.
//
// Both listen on or dial loopback addresses only, and stop on SIGINT or
// SIGTERM.
//
// # Goroutines
//
// backend: main waits for the signal while grpc.Server.Serve runs on one
// goroutine; GracefulStop (Stop after 2 s) ends it. client: main owns the
// pacing ticker and the per-second report; each call runs on its own
// goroutine, at most --max-inflight at once (a tick finding them all busy
// counts as skipped), each bounded by --call-timeout. On the signal main
// stops issuing calls, waits for those in flight and prints a last line.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/chainstore/chainstore/cmd/internal/cli"
)

func main() { cli.Main(run) }

func commands() cli.Table[cli.RunFunc] {
	return cli.Table[cli.RunFunc]{
		{Name: "backend", Summary: "a gRPC backend answering grpc.health.v1 Check, naming itself in a header", Run: runBackend},
		{Name: "client", Summary: "a proxyless gRPC xDS client printing traffic shares per backend every second", Run: runClient},
	}
}

func usage(w io.Writer) {
	commands().PrintUsage(w, "usage: storedemo COMMAND [FLAGS]\n\ncommands:", 8)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, err := commands().Select(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stderr)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "storedemo: %v\n", err)
		usage(stderr)
		return 2
	}
	return c.Run(ctx, args[1:], stdout, stderr)
}
