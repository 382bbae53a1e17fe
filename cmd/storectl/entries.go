package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/rpc"
	"github.com/chainstore/chainstore/rpc/configpb"
)

// addrEnv names the environment variable holding the default --addr.
const addrEnv = "STORE_ADDR"

// entryCommands are the commands that talk to a running cluster.
func entryCommands() map[string]command {
	return map[string]command{
		"put":     {summary: "write a config entry: put [--cas --modify-index N] FILE|-", run: runPut},
		"get":     {summary: "read a config entry: get KIND NAME", run: runGet},
		"list":    {summary: "list the names of the entries of a kind: list KIND", run: runList},
		"delete":  {summary: "delete a config entry: delete [--cas --modify-index N] KIND NAME", run: runDelete},
		"members": {summary: "list the servers known to gossip", run: runMembers},
		"peers":   {summary: "list the Raft peers (ID, address, leader/follower, voter)", run: runPeers},
		"status":  {summary: "show the Raft status of the server at --addr", run: runStatus},
	}
}

// clientFlags are the connection flags every cluster command takes.
type clientFlags struct {
	addr    string
	timeout time.Duration
}

// newFlagSet returns a flag set with the connection flags registered.
func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *clientFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &clientFlags{}
	def := os.Getenv(addrEnv)
	if def == "" {
		def = rpc.DefaultAddr
	}
	fs.StringVar(&cf.addr, "addr", def, "server gRPC addresses, host:port[,host:port...]; the next is tried when one is down (env "+addrEnv+")")
	fs.DurationVar(&cf.timeout, "timeout", 15*time.Second, "deadline of each request")
	return fs, cf
}

// parseArgs parses flags that may appear before, between or after the
// positional arguments, and returns the positional ones.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// dial creates a client for the --addr servers.
func (cf *clientFlags) dial() (*rpc.Client, error) {
	cfg := rpc.DefaultClientConfig()
	cfg.Addrs = rpc.SplitAddrs(cf.addr)
	cfg.CallTimeout = cf.timeout
	return rpc.NewClient(cfg)
}

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

func (rf *readFlags) options() (*configpb.QueryOptions, error) {
	o := &configpb.QueryOptions{MinIndex: rf.index}
	switch {
	case rf.stale && rf.consistent:
		return nil, errors.New("--stale and --consistent cannot be used together")
	case rf.stale:
		o.Consistency = configpb.Consistency_CONSISTENCY_STALE
	case rf.consistent:
		o.Consistency = configpb.Consistency_CONSISTENCY_CONSISTENT
	}
	if rf.wait > 0 {
		o.Wait = durationpb.New(rf.wait)
	}
	return o, nil
}

// casFlags are the check-and-set options of put and delete.
type casFlags struct {
	cas         bool
	modifyIndex uint64
}

func addCASFlags(fs *flag.FlagSet) *casFlags {
	cf := &casFlags{}
	fs.BoolVar(&cf.cas, "cas", false, "check-and-set: only write if the entry's ModifyIndex equals --modify-index (0: only if it does not exist)")
	fs.Uint64Var(&cf.modifyIndex, "modify-index", 0, "the ModifyIndex expected by --cas")
	return cf
}

func runPut(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("put", stderr)
	cas := addCASFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "Must provide exactly one positional argument to specify the config entry to write")
		return 1
	}
	data, err := readInput(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "Failed to load data: %v\n", err)
		return 1
	}
	e, err := chain.DecodeEntry(data)
	if err != nil {
		fmt.Fprintf(stderr, "Failed to decode config entry input: %v\n", err)
		return 1
	}
	kind, name := e.GetKind(), e.GetName()
	body, err := chain.EncodeEntry(e)
	if err != nil {
		fmt.Fprintf(stderr, "Failed to decode config entry input: %v\n", err)
		return 1
	}
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error writing config entry %q / %q: %v\n", kind, name, err)
		return 1
	}
	defer c.Close()
	var resp *configpb.ApplyResponse
	err = retryIdempotent(ctx, !cas.cas, stderr, func(ctx context.Context) error {
		var err error
		resp, err = c.Apply(ctx, &configpb.ApplyRequest{Entry: body, Cas: cas.cas, ModifyIndex: cas.modifyIndex})
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "Error writing config entry %q / %q: %s\n", kind, name, rpc.ErrorText(err))
		return 1
	}
	if !resp.GetApplied() {
		fmt.Fprintf(stderr, "Config entry %q / %q not updated\n", kind, name)
		return 1
	}
	fmt.Fprintf(stdout, "Config entry written: %s/%s\n", kind, name)
	return 0
}

// writeRetryWindow bounds how long a plain put or delete is retried while
// the cluster elects a new leader: a few election timeouts.
const writeRetryWindow = 10 * time.Second

// retryIdempotent runs a write, and when idempotent (a plain upsert or
// delete, not CAS) retries it with backoff, for at most writeRetryWindow,
// while it fails in a way a retry can cure: no server reachable
// (codes.Unavailable) or a lost connection between a follower and the
// leader after the write was forwarded (an unknown outcome). Repeating a
// plain upsert or delete that was applied changes nothing and reports
// success, so the user sees one clean answer through a leader failover.
// A CAS write is never retried: its unknown outcome is reported.
func retryIdempotent(ctx context.Context, idempotent bool, stderr io.Writer, call func(context.Context) error) error {
	deadline := time.Now().Add(writeRetryWindow)
	delay := 100 * time.Millisecond
	for {
		err := call(ctx)
		if err == nil || !idempotent || ctx.Err() != nil || !retryable(err) || time.Now().Add(delay).After(deadline) {
			return err
		}
		fmt.Fprintf(stderr, "Retrying in %s: %s\n", delay, rpc.ErrorText(err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		delay = min(2*delay, time.Second)
	}
}

// retryable reports whether a failed idempotent write may be retried.
func retryable(err error) bool {
	return status.Code(err) == codes.Unavailable || rpc.ErrorReason(err) == rpc.ReasonUnknownOutcome
}

// readInput reads a file, or stdin for "-".
func readInput(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

func runGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("get", stderr)
	rf := addReadFlags(fs, true)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "Must specify the kind and the name: storectl get KIND NAME")
		return 1
	}
	kind, name := pos[0], pos[1]
	opts, err := rf.options()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error reading config entry %q / %q: %v\n", kind, name, err)
		return 1
	}
	defer c.Close()
	resp, err := c.Get(ctx, &configpb.GetRequest{Kind: kind, Name: name, Options: opts})
	if err != nil {
		fmt.Fprintf(stderr, "Error reading config entry %q / %q: %s\n", kind, name, rpc.ErrorText(err))
		return 1
	}
	if !resp.GetFound() {
		fmt.Fprintf(stderr, "Error reading config entry %q / %q: Config entry not found for %q / %q\n", kind, name, kind, name)
		return 1
	}
	out, err := entryJSON(resp.GetEntry(), resp.GetCreateIndex(), resp.GetModifyIndex())
	if err != nil {
		fmt.Fprintf(stderr, "Error reading config entry %q / %q: %v\n", kind, name, err)
		return 1
	}
	stdout.Write(out)
	return 0
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

func runList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("list", stderr)
	rf := addReadFlags(fs, true)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "Must specify the kind: storectl list KIND")
		return 1
	}
	kind := pos[0]
	opts, err := rf.options()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error listing config entries for kind %q: %v\n", kind, err)
		return 1
	}
	defer c.Close()
	resp, err := c.List(ctx, &configpb.ListRequest{Kind: kind, Options: opts})
	if err != nil {
		fmt.Fprintf(stderr, "Error listing config entries for kind %q: %s\n", kind, rpc.ErrorText(err))
		return 1
	}
	if !rf.json {
		for _, e := range resp.GetEntries() {
			fmt.Fprintln(stdout, e.GetName())
		}
		return 0
	}
	items := make([]json.RawMessage, 0, len(resp.GetEntries()))
	for _, e := range resp.GetEntries() {
		js, err := entryJSON(e.GetEntry(), e.GetCreateIndex(), e.GetModifyIndex())
		if err != nil {
			fmt.Fprintf(stderr, "Error listing config entries for kind %q: %v\n", kind, err)
			return 1
		}
		items = append(items, js)
	}
	return printJSON(stdout, stderr, items)
}

func runDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("delete", stderr)
	cas := addCASFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 2 {
		fmt.Fprintln(stderr, "Must specify the kind and the name: storectl delete KIND NAME")
		return 1
	}
	kind, name := pos[0], pos[1]
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error deleting config entry %q / %q: %v\n", kind, name, err)
		return 1
	}
	defer c.Close()
	var resp *configpb.DeleteResponse
	err = retryIdempotent(ctx, !cas.cas, stderr, func(ctx context.Context) error {
		var err error
		resp, err = c.Delete(ctx, &configpb.DeleteRequest{Kind: kind, Name: name, Cas: cas.cas, ModifyIndex: cas.modifyIndex})
		return err
	})
	if err != nil {
		fmt.Fprintf(stderr, "Error deleting config entry %q / %q: %s\n", kind, name, rpc.ErrorText(err))
		return 1
	}
	if !resp.GetDeleted() {
		fmt.Fprintf(stderr, "Config entry %q / %q not deleted\n", kind, name)
		return 1
	}
	fmt.Fprintf(stdout, "Config entry deleted: %s/%s\n", kind, name)
	return 0
}

func runMembers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("members", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return 2
	}
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error listing members: %v\n", err)
		return 1
	}
	defer c.Close()
	resp, err := c.Members(ctx, &configpb.MembersRequest{})
	if err != nil {
		fmt.Fprintf(stderr, "Error listing members: %s\n", rpc.ErrorText(err))
		return 1
	}
	if *asJSON {
		type member struct {
			Name       string `json:"name"`
			ID         string `json:"id"`
			Datacenter string `json:"datacenter"`
			GossipAddr string `json:"gossip_addr"`
			RaftAddr   string `json:"raft_addr"`
			GRPCAddr   string `json:"grpc_addr"`
			Status     string `json:"status"`
		}
		out := make([]member, 0, len(resp.GetMembers()))
		for _, m := range resp.GetMembers() {
			out = append(out, member{m.GetName(), m.GetId(), m.GetDatacenter(), m.GetGossipAddr(), m.GetRaftAddr(), m.GetGrpcAddr(), m.GetStatus()})
		}
		return printJSON(stdout, stderr, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tID\tGossip\tRaft\tgRPC\tStatus\tDC")
	for _, m := range resp.GetMembers() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.GetName(), m.GetId(), m.GetGossipAddr(), m.GetRaftAddr(), m.GetGrpcAddr(), m.GetStatus(), m.GetDatacenter())
	}
	tw.Flush()
	return 0
}

func runPeers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("peers", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return 2
	}
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error listing peers: %v\n", err)
		return 1
	}
	defer c.Close()
	resp, err := c.Peers(ctx, &configpb.PeersRequest{})
	if err != nil {
		fmt.Fprintf(stderr, "Error listing peers: %s\n", rpc.ErrorText(err))
		return 1
	}
	if *asJSON {
		type peer struct {
			Name    string `json:"name"`
			ID      string `json:"id"`
			Address string `json:"address"`
			State   string `json:"state"`
			Leader  bool   `json:"leader"`
			Voter   bool   `json:"voter"`
		}
		out := make([]peer, 0, len(resp.GetPeers()))
		for _, p := range resp.GetPeers() {
			out = append(out, peer{p.GetName(), p.GetId(), p.GetAddress(), peerState(p), p.GetLeader(), p.GetVoter()})
		}
		return printJSON(stdout, stderr, out)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Node\tID\tAddress\tState\tVoter")
	for _, p := range resp.GetPeers() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", p.GetName(), p.GetId(), p.GetAddress(), peerState(p), p.GetVoter())
	}
	tw.Flush()
	return 0
}

func peerState(p *configpb.Peer) string {
	if p.GetLeader() {
		return "leader"
	}
	return "follower"
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("status", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return 2
	}
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error reading status: %v\n", err)
		return 1
	}
	defer c.Close()
	st, err := c.Status(ctx, &configpb.StatusRequest{})
	if err != nil {
		fmt.Fprintf(stderr, "Error reading status: %s\n", rpc.ErrorText(err))
		return 1
	}
	if *asJSON {
		return printJSON(stdout, stderr, struct {
			Node           string `json:"node"`
			NodeID         string `json:"node_id"`
			Datacenter     string `json:"datacenter"`
			State          string `json:"state"`
			IsLeader       bool   `json:"is_leader"`
			Leader         string `json:"leader"`
			LeaderID       string `json:"leader_id"`
			LeaderGRPCAddr string `json:"leader_grpc_addr"`
			Term           uint64 `json:"term"`
			CommitIndex    uint64 `json:"commit_index"`
			AppliedIndex   uint64 `json:"applied_index"`
			LastLogIndex   uint64 `json:"last_log_index"`
		}{st.GetNode(), st.GetNodeId(), st.GetDatacenter(), st.GetState(), st.GetIsLeader(), st.GetLeader(),
			st.GetLeaderId(), st.GetLeaderGrpcAddr(), st.GetTerm(), st.GetCommitIndex(), st.GetAppliedIndex(), st.GetLastLogIndex()})
	}
	leader := st.GetLeader()
	switch {
	case st.GetLeaderId() == "":
		leader = "(none)"
	case leader == "":
		leader = st.GetLeaderId()
	}
	if a := st.GetLeaderGrpcAddr(); a != "" {
		leader += " (" + a + ")"
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 1, ' ', 0)
	for _, row := range [][2]string{
		{"Node", st.GetNode()},
		{"ID", st.GetNodeId()},
		{"Datacenter", st.GetDatacenter()},
		{"State", st.GetState()},
		{"Leader", leader},
		{"Is leader", strconv.FormatBool(st.GetIsLeader())},
		{"Term", strconv.FormatUint(st.GetTerm(), 10)},
		{"Commit index", strconv.FormatUint(st.GetCommitIndex(), 10)},
		{"Applied index", strconv.FormatUint(st.GetAppliedIndex(), 10)},
		{"Last log index", strconv.FormatUint(st.GetLastLogIndex(), 10)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], strings.TrimSpace(row[1]))
	}
	tw.Flush()
	return 0
}

// printJSON writes v as indented JSON.
func printJSON(stdout, stderr io.Writer, v any) int {
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		fmt.Fprintf(stderr, "Error encoding JSON: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", out)
	return 0
}
