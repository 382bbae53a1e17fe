// Command storebench is chainstore's load tool, in the spirit of etcd's
// benchmark tool: it drives a running cluster through the gRPC API and
// prints throughput and latency percentiles.
//
//	storebench put   --addr 127.0.0.1:8502 --clients 64 --conns 8 --total 20000 --entry-size 256 --keys 1000
//	storebench get   --clients 64 --total 50000 --consistency consistent
//	storebench cas   --clients 16 --total 5000 --keys 1
//	storebench watch --watchers 1000 --chains 10 --writes 100
//	storebench suite --json results.json   # the standard set of `make bench`
//
// Every command takes --addr (comma-separated gRPC addresses; default the
// local cluster of scripts/cluster.sh), --conns, --clients, --to
// (leader|any: send requests to the leader, or spread connections over all
// servers), --json FILE (write the results as JSON) and --progress
// (auto|on|off; auto draws a bar on stderr when it is a terminal and the
// run lasts more than a second).
//
// # Goroutines
//
// main runs one command at a time on the main goroutine. A command starts
// one goroutine per client (or per watcher, plus the writer) and waits for
// all of them before summarising; the progress bar has one drawing
// goroutine that stop() joins. Cancelling the context (SIGINT) ends every
// loop; connections are closed before main returns.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/chainstore/chainstore/rpc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "storebench:", err)
		os.Exit(1)
	}
}

// command is one subcommand.
type command struct {
	summary string
	// flags registers the command's own flags and returns the function
	// that runs it once they are parsed.
	flags func(fs *flag.FlagSet) func(ctx context.Context, b *env) ([]*Result, error)
}

func commands() map[string]command {
	return map[string]command{
		"put":   {summary: "write entries (plain upserts)", flags: putFlags},
		"get":   {summary: "read entries in one consistency mode", flags: getFlags},
		"cas":   {summary: "contended check-and-set writes", flags: casFlags},
		"watch": {summary: "chain watchers: time from write to delivery", flags: watchFlags},
		"suite": {summary: "the standard set of make bench, printed as a table", flags: suiteFlags},
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
}

func (o *commonOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.addrs, "addr", "127.0.0.1:8502,127.0.0.1:8512,127.0.0.1:8522", "comma-separated gRPC addresses of the servers")
	fs.IntVar(&o.conns, "conns", 1, "number of gRPC connections (clients share them round-robin)")
	fs.IntVar(&o.clients, "clients", 1, "number of concurrent clients (one request at a time each)")
	fs.StringVar(&o.to, "to", "leader", "leader: connect to the leader; any: spread connections over every server")
	fs.StringVar(&o.jsonPath, "json", "", "write the results as JSON to this file")
	fs.StringVar(&o.progress, "progress", "auto", "progress bar on stderr: auto, on or off")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "deadline of one request")
}

func (o *commonOpts) validate() error {
	switch {
	case len(rpc.SplitAddrs(o.addrs)) == 0:
		return errors.New("--addr: at least one address is needed")
	case o.conns < 1:
		return fmt.Errorf("--conns must be at least 1, got %d", o.conns)
	case o.clients < 1:
		return fmt.Errorf("--clients must be at least 1, got %d", o.clients)
	case o.to != "leader" && o.to != "any":
		return fmt.Errorf("--to must be leader or any, got %q", o.to)
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
	fmt.Fprintln(w, "usage: storebench <command> [flags]   (storebench <command> -h for its flags)")
	fmt.Fprintln(w, "commands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-6s %s\n", n, cmds[n].summary)
	}
}

// run parses args and runs one command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return flag.ErrHelp
	}
	cmd, ok := commands()[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	fs := flag.NewFlagSet("storebench "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &env{stdout: stdout, stderr: stderr}
	e.opts.register(fs)
	runCmd := cmd.flags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := e.opts.validate(); err != nil {
		return err
	}
	switch e.opts.progress {
	case "on":
		e.showProgress = true
	case "auto":
		if f, ok := stderr.(*os.File); ok {
			e.showProgress = isTerminal(f)
		}
	}
	all, err := runCmd(ctx, e)
	var results []*Result
	for _, r := range all {
		if r != nil {
			results = append(results, r)
			printResult(stdout, r)
		}
	}
	if len(results) > 1 {
		fmt.Fprintln(stdout)
		printTable(stdout, results)
	}
	if e.opts.jsonPath != "" && len(results) > 0 {
		if jerr := writeJSON(e.opts.jsonPath, results); jerr != nil {
			return errors.Join(err, jerr)
		}
	}
	return err
}
