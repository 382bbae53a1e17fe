// Command storebench is chainstore's load tool, in the spirit of etcd's
// benchmark tool: it drives a running cluster through the gRPC API and
// prints throughput and latency percentiles.
//
//	storebench put   --addr 127.0.0.1:8502 --clients 64 --conns 8 --total 20000 --entry-size 256 --keys 1000
//	storebench get   --clients 64 --total 50000 --consistency consistent
//	storebench cas   --clients 16 --total 5000 --keys 1
//	storebench watch --watchers 1000 --chains 10 --writes 100
//	storebench catalog-register --clients 64 --conns 8 --duration 10s --instances 1000
//	storebench xds-route   --clients 100 --flips 10 --mode router
//	storebench xds-clients --addr 127.0.0.1:8502 --streams 5000 --server-pid PID
//	storebench suite --json results.json   # the standard set of `make bench`
//	storebench compare --old a.json,b.json --new c.json,d.json
//
// Every command takes --addr (comma-separated gRPC addresses; default the
// local cluster of scripts/cluster.sh), --conns, --clients, --to
// (leader|any|follower: send requests to the leader, spread connections
// over all servers, or over the followers only), --json FILE (write the results as JSON) and --progress
// (auto|on|off; auto draws a bar on stderr when it is a terminal and the
// run lasts more than a second), --token (ACL SecretID sent with the
// chainstore API calls and the metrics scrape; env STORE_TOKEN) and
// --http-addrs (the servers' HTTP addresses; default each --addr port + 1,
// "off" for none). put scrapes every server's Prometheus metrics before
// and after the run and reports the server CPU and heap allocations per
// committed write (servercost.go).
//
// # Goroutines
//
// main runs one command at a time on the main goroutine. A command starts
// one goroutine per client (put, get, cas; get and cas first write their
// entries with up to 16 goroutines) or per watcher (watch, whose writes
// are sent from the main goroutine) or per xDS client / ADS stream
// (xds-route, xds-clients, whose writes and polling run on the main
// goroutine; xds-route also runs the gRPC servers of its backends) and
// waits for all of them before summarising; each progress bar has one drawing goroutine that stop()
// joins. Cancelling the context (SIGINT) ends every loop; connections are
// closed before main returns.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/chainstore/chainstore/cmd/internal/cli"
)

func main() {
	cli.Main(func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		return exitCode(run(ctx, args, stdout, stderr), stderr)
	})
}

// exitCode maps run's error to the exit code, printing the error: 0 for
// none or a help request, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "storebench:", err)
	return 1
}

// benchFlags registers a command's own flags and returns the function
// that runs it once they are parsed.
type benchFlags func(fs *flag.FlagSet) func(ctx context.Context, b *env) ([]*Result, error)

func commands() cli.Table[benchFlags] {
	return cli.Table[benchFlags]{
		{Name: "put", Summary: "write entries (plain upserts)", Run: putFlags},
		{Name: "get", Summary: "read entries in one consistency mode", Run: getFlags},
		{Name: "cas", Summary: "contended check-and-set writes", Run: casFlags},
		{Name: "watch", Summary: "chain watchers: time from write to delivery", Run: watchFlags},
		{Name: "catalog-register", Summary: "catalog writers registering/updating instances for a duration", Run: catalogFlags},
		{Name: "xds-route", Summary: "stock grpc-go xDS clients: time for a route flip to move the traffic", Run: xdsRouteFlags},
		{Name: "xds-clients", Summary: "raw ADS streams on one server: push fan-out and memory per stream", Run: xdsClientsFlags},
		{Name: "suite", Summary: "the standard set of make bench, printed as a table", Run: suiteFlags},
	}
}

// commonOpts are the flags every command takes.
type commonOpts struct {
	addrs    string
	conns    int
	clients  int
	to       string
	jsonPath string
	progress string
	timeout  time.Duration
	token    string
	// httpAddrs are the servers' HTTP addresses scraped for server cost
	// (servercost.go); empty: derived from addrs (gRPC port + 1).
	httpAddrs string
}

func (o *commonOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.addrs, "addr", "127.0.0.1:8502,127.0.0.1:8512,127.0.0.1:8522", "comma-separated gRPC addresses of the servers")
	fs.IntVar(&o.conns, "conns", 1, "number of gRPC connections (clients share them round-robin)")
	fs.IntVar(&o.clients, "clients", 1, "number of concurrent clients (one request at a time each)")
	fs.StringVar(&o.to, "to", "leader", "leader: connect to the leader; any: spread connections over every server; follower: spread them over the followers (every write is forwarded)")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.progress, "progress", "auto", "progress bar on stderr: auto, on or off")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of one request")
	cli.TokenFlag(fs, &o.token)
	fs.Lookup("token").Usage = "ACL token (SecretID) sent with the chainstore API calls and the metrics scrape (env " + cli.TokenEnv + ")"
	fs.StringVar(&o.httpAddrs, "http-addrs", "", "comma-separated HTTP addresses of every server, scraped for server CPU and allocations per write (put); default: each --addr with its port + 1; off: no scrape")
}

func (o *commonOpts) validate() error {
	if _, err := cli.ParseAddrs(o.addrs); err != nil {
		return err
	}
	if _, err := metricsAddrs(o.httpAddrs, o.addrs); err != nil {
		return err
	}
	switch {
	case o.conns < 1:
		return fmt.Errorf("--conns must be at least 1, got %d", o.conns)
	case o.clients < 1:
		return fmt.Errorf("--clients must be at least 1, got %d", o.clients)
	case o.to != "leader" && o.to != "any" && o.to != "follower":
		return fmt.Errorf("--to must be leader, any or follower, got %q", o.to)
	case o.progress != "auto" && o.progress != "on" && o.progress != "off":
		return fmt.Errorf("--progress must be auto, on or off, got %q", o.progress)
	case o.timeout <= 0:
		return fmt.Errorf("--timeout must be positive, got %s", o.timeout)
	}
	return nil
}

// env is what a running command gets: its options and output streams.
type env struct {
	opts   commonOpts
	stdout io.Writer
	stderr io.Writer
	// showProgress is the resolved --progress setting.
	showProgress bool
}

func usage(w io.Writer) {
	commands().PrintUsage(w, "usage: storebench <command> [flags]   (storebench <command> -h for its flags)\ncommands:", 6)
	// compare takes no cluster flags, so run dispatches it before the table.
	fmt.Fprintf(w, "  %-6s %s\n", "compare", "old against new: medians and ratios of --json files (scripts/bench-compare.sh)")
}

// run parses args and runs one command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "compare" {
		return runCompare(args[1:], stdout, stderr)
	}
	cmd, err := commands().Select(args)
	if err != nil {
		usage(stderr)
		return err
	}
	e, runCmd, err := parseCommand(cmd, args[1:], stdout, stderr)
	if err != nil {
		return err
	}
	results, err := runCmd(ctx, e)
	return report(e, results, err)
}

// parseCommand parses the common flags and cmd's own and returns the
// environment and the function that runs cmd.
func parseCommand(cmd cli.Command[benchFlags], args []string, stdout, stderr io.Writer) (*env, func(context.Context, *env) ([]*Result, error), error) {
	fs := flag.NewFlagSet("storebench "+cmd.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &env{stdout: stdout, stderr: stderr}
	e.opts.register(fs)
	runCmd := cmd.Run(fs)
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := e.opts.validate(); err != nil {
		return nil, nil, err
	}
	switch e.opts.progress {
	case "on":
		e.showProgress = true
	case "auto":
		if f, ok := stderr.(*os.File); ok {
			e.showProgress = isTerminal(f)
		}
	}
	return e, runCmd, nil
}

// report prints the results of a command (nil ones are skipped), a table
// when there are several, and writes --json; it returns runErr joined
// with a --json write error.
func report(e *env, all []*Result, runErr error) error {
	var results []*Result
	for _, r := range all {
		if r != nil {
			results = append(results, r)
			printResult(e.stdout, r)
		}
	}
	if len(results) > 1 {
		fmt.Fprintln(e.stdout)
		printTable(e.stdout, results)
		printCostTable(e.stdout, results)
		printAbsoluteAims(e.stdout, results)
	}
	if e.opts.jsonPath != "" && len(results) > 0 {
		if jerr := writeJSON(e.opts.jsonPath, results); jerr != nil {
			return errors.Join(runErr, jerr)
		}
	}
	return runErr
}
