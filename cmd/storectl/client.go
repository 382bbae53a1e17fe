package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/cmd/internal/cli"
)

// clientFlags are the connection flags every cluster command takes.
type clientFlags struct {
	addr    string
	token   string
	timeout time.Duration
	tls     *cli.TLSFlags
}

// newFlagSet returns a flag set with the connection flags registered.
func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *clientFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &clientFlags{}
	cli.AddrFlag(fs, &cf.addr, "server gRPC addresses, host:port[,host:port...]; the next is tried when one is down")
	fs.DurationVar(&cf.timeout, "timeout", 15*time.Second, "deadline of each request")
	cli.TokenFlag(fs, &cf.token)
	cf.tls = cli.RegisterTLSFlags(fs)
	return fs, cf
}

// dial creates a client for the --addr servers.
func (cf *clientFlags) dial() (*api.Client, error) {
	cfg := api.DefaultClientConfig()
	cfg.Addrs = api.SplitAddrs(cf.addr)
	cfg.CallTimeout = cf.timeout
	cfg.Token = cf.token
	cfg.TLS = cf.tls.API()
	return api.NewClient(cfg)
}

// output is what a read command prints on success: text as it is, or,
// when json is set, json as indented JSON; note, if set, goes to stderr
// on a line of its own (e.g. that a table would have no rows).
type output struct {
	text []byte
	json any
	note string
}

func (o output) print(stdout, stderr io.Writer) int {
	if o.note != "" {
		fmt.Fprintln(stderr, o.note)
	}
	if o.json != nil {
		return cli.PrintJSON(stdout, stderr, o.json)
	}
	_, _ = stdout.Write(o.text)
	return 0
}

// tableOutput returns an output printing the table rows (see cli.WriteTable).
func tableOutput(padding int, rows [][]string) output {
	var b bytes.Buffer
	_ = cli.WriteTable(&b, padding, rows)
	return output{text: b.Bytes()}
}

// query is the frame of the read commands: dial the --addr servers, call
// the server, print the result; a failure is printed as
// "<errPrefix>: <error>" and gives exit code 1. call's errors are shown
// with api.ErrorText: the server's text for a status error, Error() for
// the others (an entry that is missing or not a JSON object).
func (cf *clientFlags) query(ctx context.Context, stdout, stderr io.Writer, errPrefix string,
	call func(context.Context, *api.Client) (output, error),
) int {
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", errPrefix, err)
		return 1
	}
	defer func() { _ = c.Close() }()
	out, err := call(ctx, c)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", errPrefix, api.ErrorText(err))
		return 1
	}
	return out.print(stdout, stderr)
}
