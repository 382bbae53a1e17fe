package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// readFlags are the options of read commands.
type readFlags struct {
	json       bool
	stale      bool
	consistent bool
	index      uint64
	wait       time.Duration
}

func addReadFlags(fs *flag.FlagSet, blocking bool) *readFlags {
	rf := &readFlags{}
	fs.BoolVar(&rf.json, "json", false, "print JSON")
	fs.BoolVar(&rf.stale, "stale", false, "let any server answer from its own state (faster, may miss recent writes)")
	fs.BoolVar(&rf.consistent, "consistent", false, "linearizable read; the default already is, the flag only makes it explicit")
	if blocking {
		fs.Uint64Var(&rf.index, "index", 0, "block until the result's index is greater than this")
		fs.DurationVar(&rf.wait, "wait", 0, "longest time to block with --index (server default 5m, max 10m)")
	}
	return rf
}

func (rf *readFlags) options() (*chainstorev1.QueryOptions, error) {
	o := &chainstorev1.QueryOptions{MinIndex: rf.index}
	switch {
	case rf.stale && rf.consistent:
		return nil, errors.New("--stale and --consistent cannot be used together")
	case rf.stale:
		o.Consistency = chainstorev1.Consistency_CONSISTENCY_STALE
	case rf.consistent:
		o.Consistency = chainstorev1.Consistency_CONSISTENCY_CONSISTENT
	}
	if rf.wait > 0 {
		o.Wait = durationpb.New(rf.wait)
	}
	return o, nil
}

// entryQuery is one blocking-query command (get, list): the flags,
// positional arguments and query options are handled by run, the call
// and its output by fetch.
type entryQuery struct {
	name string
	// nargs is the number of positional arguments; argsErr is printed
	// when there are not that many.
	nargs   int
	argsErr string
	// errPrefix starts every error message, given the positional arguments.
	errPrefix func(pos []string) string
	fetch     func(ctx context.Context, c *api.Client, q queryArgs) (output, error)
	// bodies adds --bodies (list).
	bodies bool
}

// queryArgs is what fetch gets from the command line.
type queryArgs struct {
	pos  []string
	opts *chainstorev1.QueryOptions
	json bool
}

// bodiesUsage documents list's --bodies.
const bodiesUsage = "print the entries themselves as JSON (the same as --json); without it list prints names only"

func (eq entryQuery) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet(eq.name, stderr)
	rf := addReadFlags(fs, true)
	var bodies bool
	if eq.bodies {
		fs.BoolVar(&bodies, "bodies", false, bodiesUsage)
	}
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != eq.nargs {
		fmt.Fprintln(stderr, eq.argsErr)
		return 1
	}
	opts, err := rf.options()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	q := queryArgs{pos: pos, opts: opts, json: rf.json || bodies}
	return cf.query(ctx, stdout, stderr, eq.errPrefix(pos), func(ctx context.Context, c *api.Client) (output, error) {
		return eq.fetch(ctx, c, q)
	})
}

var getQuery = entryQuery{
	name:      "get",
	nargs:     2,
	argsErr:   "Must specify the kind and the name: storectl get KIND NAME",
	errPrefix: func(pos []string) string { return fmt.Sprintf("Error reading config entry %q / %q", pos[0], pos[1]) },
	fetch:     fetchEntry,
}

var listQuery = entryQuery{
	name:      "list",
	nargs:     1,
	argsErr:   "Must specify the kind: storectl list KIND",
	errPrefix: func(pos []string) string { return fmt.Sprintf("Error listing config entries for kind %q", pos[0]) },
	fetch:     fetchList,
	bodies:    true,
}

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return getQuery.run(ctx, args, stdout, stderr)
}

func runList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return listQuery.run(ctx, args, stdout, stderr)
}

// notFoundError is get's error for an entry that does not exist.
type notFoundError struct{ kind, name string }

func (e notFoundError) Error() string {
	return fmt.Sprintf("Config entry not found for %q / %q", e.kind, e.name)
}

// fetchEntry reads one entry; it prints as JSON with or without --json.
func fetchEntry(ctx context.Context, c *api.Client, q queryArgs) (output, error) {
	kind, name := q.pos[0], q.pos[1]
	resp, err := c.Get(ctx, &chainstorev1.GetRequest{Kind: kind, Name: name, Options: q.opts})
	if err != nil {
		return output{}, err
	}
	if !resp.GetFound() {
		return output{}, notFoundError{kind, name}
	}
	out, err := entryJSON(resp.GetEntry(), resp.GetCreateIndex(), resp.GetModifyIndex())
	return output{text: out}, err
}

// fetchList lists a kind page by page: names only, one a line, or with
// --json (--bodies) a JSON array of the entries.
func fetchList(ctx context.Context, c *api.Client, q queryArgs) (output, error) {
	req := &chainstorev1.ListRequest{Kind: q.pos[0], Options: q.opts, NamesOnly: !q.json}
	var names bytes.Buffer
	var items []json.RawMessage
	err := c.ListPages(ctx, req, func(resp *chainstorev1.ListResponse) error {
		for _, e := range resp.GetEntries() {
			if !q.json {
				fmt.Fprintln(&names, e.GetName())
				continue
			}
			js, err := entryJSON(e.GetEntry(), e.GetCreateIndex(), e.GetModifyIndex())
			if err != nil {
				return err
			}
			items = append(items, js)
		}
		return nil
	})
	if err != nil {
		return output{}, err
	}
	if !q.json {
		return output{text: names.Bytes()}, nil
	}
	if items == nil {
		items = []json.RawMessage{}
	}
	return output{json: items}, nil
}

// entryJSON renders an entry's canonical JSON with its indexes appended,
// indented, keeping the server's key order.
func entryJSON(entry []byte, createIndex, modifyIndex uint64) ([]byte, error) {
	trimmed := bytes.TrimSpace(entry)
	if len(trimmed) < 2 || trimmed[0] != '{' || trimmed[len(trimmed)-1] != '}' {
		return nil, fmt.Errorf("server sent an entry that is not a JSON object: %.40q", entry)
	}
	var b bytes.Buffer
	b.Write(trimmed[:len(trimmed)-1])
	if len(bytes.TrimSpace(trimmed[1:len(trimmed)-1])) > 0 {
		b.WriteByte(',')
	}
	fmt.Fprintf(&b, `"CreateIndex":%d,"ModifyIndex":%d}`, createIndex, modifyIndex)
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "    "); err != nil {
		return nil, fmt.Errorf("format entry JSON: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
