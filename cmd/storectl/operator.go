package main

import (
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// operatorCommands are the commands that read the cluster's state from
// the OperatorService.
func operatorCommands() commandTable {
	return commandTable{
		{Name: "members", Summary: "list the servers known to gossip", Run: runMembers},
		{Name: "peers", Summary: "list the Raft peers (ID, address, leader/follower, voter)", Run: runPeers},
		{Name: "status", Summary: "show the Raft status of the server at --addr", Run: runStatus},
	}
}

// runOperatorQuery is the frame of members, peers and status: the
// connection flags and --json (positional arguments are ignored), then
// one call whose result render turns into a table or, with --json, a
// value to print as JSON.
func runOperatorQuery(ctx context.Context, args []string, stdout, stderr io.Writer, name, errPrefix string,
	render func(ctx context.Context, c *api.Client, asJSON bool) (output, error),
) int {
	fs, cf := newFlagSet(name, stderr)
	asJSON := cli.JSONFlag(fs)
	if _, err := cli.ParseInterspersed(fs, args); err != nil {
		return 2
	}
	return cf.query(ctx, stdout, stderr, errPrefix, func(ctx context.Context, c *api.Client) (output, error) {
		return render(ctx, c, *asJSON)
	})
}

func runMembers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOperatorQuery(ctx, args, stdout, stderr, "members", "Error listing members", fetchMembers)
}

func runPeers(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOperatorQuery(ctx, args, stdout, stderr, "peers", "Error listing peers", fetchPeers)
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOperatorQuery(ctx, args, stdout, stderr, "status", "Error reading status", fetchStatus)
}

// memberJSON is one server of `members --json`.
type memberJSON struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	Datacenter string `json:"datacenter"`
	GossipAddr string `json:"gossip_addr"`
	RaftAddr   string `json:"raft_addr"`
	GRPCAddr   string `json:"grpc_addr"`
	Status     string `json:"status"`
}

func fetchMembers(ctx context.Context, c *api.Client, asJSON bool) (output, error) {
	resp, err := c.Members(ctx, &chainstorev1.MembersRequest{})
	if err != nil {
		return output{}, err
	}
	if asJSON {
		out := make([]memberJSON, 0, len(resp.GetMembers()))
		for _, m := range resp.GetMembers() {
			out = append(out, memberJSON{m.GetName(), m.GetId(), m.GetDatacenter(), m.GetGossipAddr(), m.GetRaftAddr(), m.GetGrpcAddr(), m.GetStatus()})
		}
		return output{json: out}, nil
	}
	rows := [][]string{{"Node", "ID", "Gossip", "Raft", "gRPC", "Status", "DC"}}
	for _, m := range resp.GetMembers() {
		rows = append(rows, []string{m.GetName(), m.GetId(), m.GetGossipAddr(), m.GetRaftAddr(), m.GetGrpcAddr(), m.GetStatus(), m.GetDatacenter()})
	}
	return tableOutput(2, rows), nil
}

// peerJSON is one peer of `peers --json`.
type peerJSON struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Address string `json:"address"`
	State   string `json:"state"`
	Leader  bool   `json:"leader"`
	Voter   bool   `json:"voter"`
}

func fetchPeers(ctx context.Context, c *api.Client, asJSON bool) (output, error) {
	resp, err := c.Peers(ctx, &chainstorev1.PeersRequest{})
	if err != nil {
		return output{}, err
	}
	if asJSON {
		out := make([]peerJSON, 0, len(resp.GetPeers()))
		for _, p := range resp.GetPeers() {
			out = append(out, peerJSON{p.GetName(), p.GetId(), p.GetAddress(), peerState(p), p.GetLeader(), p.GetVoter()})
		}
		return output{json: out}, nil
	}
	rows := [][]string{{"Node", "ID", "Address", "State", "Voter"}}
	for _, p := range resp.GetPeers() {
		rows = append(rows, []string{p.GetName(), p.GetId(), p.GetAddress(), peerState(p), strconv.FormatBool(p.GetVoter())})
	}
	return tableOutput(2, rows), nil
}

func peerState(p *chainstorev1.Peer) string {
	if p.GetLeader() {
		return "leader"
	}
	return "follower"
}

// statusJSON is `status --json`.
type statusJSON struct {
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
}

func fetchStatus(ctx context.Context, c *api.Client, asJSON bool) (output, error) {
	st, err := c.Status(ctx, &chainstorev1.StatusRequest{})
	if err != nil {
		return output{}, err
	}
	if asJSON {
		return output{json: statusJSON{st.GetNode(), st.GetNodeId(), st.GetDatacenter(), st.GetState(), st.GetIsLeader(), st.GetLeader(),
			st.GetLeaderId(), st.GetLeaderGrpcAddr(), st.GetTerm(), st.GetCommitIndex(), st.GetAppliedIndex(), st.GetLastLogIndex()}}, nil
	}
	var rows [][]string
	for _, row := range [][2]string{
		{"Node", st.GetNode()},
		{"ID", st.GetNodeId()},
		{"Datacenter", st.GetDatacenter()},
		{"State", st.GetState()},
		{"Leader", statusLeader(st)},
		{"Is leader", strconv.FormatBool(st.GetIsLeader())},
		{"Term", strconv.FormatUint(st.GetTerm(), 10)},
		{"Commit index", strconv.FormatUint(st.GetCommitIndex(), 10)},
		{"Applied index", strconv.FormatUint(st.GetAppliedIndex(), 10)},
		{"Last log index", strconv.FormatUint(st.GetLastLogIndex(), 10)},
	} {
		rows = append(rows, []string{row[0] + ":", strings.TrimSpace(row[1])})
	}
	return tableOutput(1, rows), nil
}

// statusLeader describes the leader a status names: its name (or ID, or
// "(none)") and its gRPC address.
func statusLeader(st *chainstorev1.StatusResponse) string {
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
	return leader
}
