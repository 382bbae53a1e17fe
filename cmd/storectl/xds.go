package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// xdsCommands is the xds group: one storectl command whose subcommands
// (xdsSubcommands) report the xDS clients and chains of the server at
// --addr (OperatorService.XdsClients and XdsChains). Each server answers
// for itself: clients connected to another server are not listed.
func xdsCommands() commandTable {
	return commandTable{{
		Name:    "xds",
		Summary: "inspect the xDS server of the server at --addr: xds clients|chains [--json]",
		Run:     runXDS,
	}}
}

// Usage lines of the xds subcommands, printed after a usage error.
const (
	xdsClientsUsage = "usage: storectl xds clients [--json]"
	xdsChainsUsage  = "usage: storectl xds chains [--json]"
)

// xdsSubcommands are the subcommands of `storectl xds`.
func xdsSubcommands() commandTable {
	return commandTable{
		{Name: "clients", Summary: "list the connected xDS clients with what each type sent, ACKed and NACKed: clients [--json]", Run: runXDSClients},
		{Name: "chains", Summary: "list the chains the xDS server publishes, with errors and warnings: chains [--json]", Run: runXDSChains},
	}
}

func xdsUsage(w io.Writer) {
	xdsSubcommands().PrintUsage(w, "usage: storectl [--addr host:port[,host:port...]] xds SUBCOMMAND [ARGS]\n\nsubcommands:", 10)
}

// runXDS dispatches to an xds subcommand as runCatalog does to a catalog
// one.
func runXDS(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	global, rest := splitGlobalFlags(args)
	if len(rest) == 0 && slices.ContainsFunc(global, isHelpFlag) {
		rest = []string{"--help"} // `storectl xds --help`
	}
	c, err := xdsSubcommands().Select(rest)
	switch {
	case errors.Is(err, flag.ErrHelp):
		xdsUsage(stderr)
		return 0
	case errors.Is(err, cli.ErrNoCommand):
		xdsUsage(stderr)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "storectl xds: %v\n", err)
		xdsUsage(stderr)
		return 2
	}
	return c.Run(ctx, append(global, rest[1:]...), stdout, stderr)
}

// runXDSQuery is the frame of the xds subcommands: the connection flags
// and --json, no positional argument, then one call rendered by fetch.
func runXDSQuery(ctx context.Context, args []string, stdout, stderr io.Writer, name, usageLine, errPrefix string,
	fetch func(ctx context.Context, c *api.Client, asJSON bool) (output, error),
) int {
	fs, cf := newFlagSet("xds "+name, stderr)
	asJSON := cli.JSONFlag(fs)
	pos, err := cli.ParseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	case len(pos) > 0:
		fmt.Fprintf(stderr, "storectl xds %s: want no arguments, got %s\n%s\n", name, nArgs(len(pos)), usageLine)
		return 2
	}
	return cf.query(ctx, stdout, stderr, errPrefix, func(ctx context.Context, c *api.Client) (output, error) {
		return fetch(ctx, c, *asJSON)
	})
}

func runXDSClients(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runXDSQuery(ctx, args, stdout, stderr, "clients", xdsClientsUsage, "Error listing xDS clients", fetchXDSClients)
}

func runXDSChains(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runXDSQuery(ctx, args, stdout, stderr, "chains", xdsChainsUsage, "Error listing xDS chains", fetchXDSChains)
}

// xdsClientJSON is one ADS stream of `xds clients --json`.
type xdsClientJSON struct {
	NodeID         string        `json:"node_id"`
	UserAgent      string        `json:"user_agent"`
	Peer           string        `json:"peer"`
	StreamID       int64         `json:"stream_id"`
	Delta          bool          `json:"delta"`
	ConnectedSince time.Time     `json:"connected_since,omitzero"`
	Refused        []string      `json:"refused,omitempty"`
	Types          []xdsTypeJSON `json:"types"`
}

// xdsTypeJSON is one resource type of an xdsClientJSON.
type xdsTypeJSON struct {
	TypeURL         string    `json:"type_url"`
	Type            string    `json:"type"`
	Names           []string  `json:"names"`
	SentVersion     string    `json:"sent_version"`
	SentAt          time.Time `json:"sent_at,omitzero"`
	AckedVersion    string    `json:"acked_version"`
	AckedAt         time.Time `json:"acked_at,omitzero"`
	NACKs           uint64    `json:"nacks"`
	LastNACKError   string    `json:"last_nack_error,omitempty"`
	LastNACKVersion string    `json:"last_nack_version,omitempty"`
	LastNACKAt      time.Time `json:"last_nack_at,omitzero"`
}

func fetchXDSClients(ctx context.Context, c *api.Client, asJSON bool) (output, error) {
	resp, err := c.XdsClients(ctx, &chainstorev1.XdsClientsRequest{})
	if err != nil {
		return output{}, err
	}
	if asJSON {
		out := make([]xdsClientJSON, 0, len(resp.GetClients()))
		for _, cl := range resp.GetClients() {
			j := xdsClientJSON{
				NodeID: cl.GetNodeId(), UserAgent: cl.GetUserAgent(), Peer: cl.GetPeer(), StreamID: cl.GetStreamId(), Delta: cl.GetDelta(),
				ConnectedSince: asTime(cl.GetConnectedSince()), Refused: cl.GetRefused(), Types: make([]xdsTypeJSON, 0, len(cl.GetTypes())),
			}
			for _, t := range cl.GetTypes() {
				j.Types = append(j.Types, xdsTypeJSON{
					TypeURL: t.GetTypeUrl(), Type: xdsTypeName(t.GetTypeUrl()), Names: nonNil(t.GetNames()),
					SentVersion: t.GetSentVersion(), SentAt: asTime(t.GetSentAt()),
					AckedVersion: t.GetAckedVersion(), AckedAt: asTime(t.GetAckedAt()),
					NACKs: t.GetNacks(), LastNACKError: t.GetLastNackError(), LastNACKVersion: t.GetLastNackVersion(), LastNACKAt: asTime(t.GetLastNackAt()),
				})
			}
			out = append(out, j)
		}
		return output{json: out}, nil
	}
	if len(resp.GetClients()) == 0 {
		return output{note: "No xDS clients connected to " + servedBy(resp.GetMeta())}, nil
	}
	// One row per client and resource type; the client's columns are
	// written on its first row only.
	rows := [][]string{{"Node ID", "User agent", "Peer", "Connected", "Stream", "Type", "Names", "Sent", "ACKed", "Last NACK"}}
	var notes []string
	for _, cl := range resp.GetClients() {
		stream := strconv.FormatInt(cl.GetStreamId(), 10)
		if cl.GetDelta() {
			stream += " delta"
		}
		head := []string{orDash(cl.GetNodeId()), orDash(cl.GetUserAgent()), orDash(cl.GetPeer()), formatTime(cl.GetConnectedSince()), stream}
		blank := []string{"", "", "", "", ""}
		if len(cl.GetTypes()) == 0 {
			rows = append(rows, append(head, "-", "-", "-", "-", "-"))
		}
		for i, t := range cl.GetTypes() {
			row := blank
			if i == 0 {
				row = head
			}
			rows = append(rows, append(slices.Clone(row), xdsTypeName(t.GetTypeUrl()), joinNames(t.GetNames()),
				orDash(t.GetSentVersion()), orDash(t.GetAckedVersion()), nackSummary(t)))
		}
		if len(cl.GetRefused()) > 0 {
			notes = append(notes, fmt.Sprintf("Node %s (stream %s): listeners refused, the server follows too many chains: %s",
				orDash(cl.GetNodeId()), stream, strings.Join(cl.GetRefused(), ", ")))
		}
	}
	out := tableOutput(2, rows)
	out.note = strings.Join(notes, "\n")
	return out, nil
}

// xdsChainJSON is one chain of `xds chains --json`.
type xdsChainJSON struct {
	Service       string    `json:"service"`
	Index         uint64    `json:"index"`
	Hash          string    `json:"hash"`
	PublishedHash string    `json:"published_hash"`
	Error         string    `json:"error,omitempty"`
	Warnings      []string  `json:"warnings"`
	Services      []string  `json:"services"`
	Updated       time.Time `json:"updated,omitzero"`
}

func fetchXDSChains(ctx context.Context, c *api.Client, asJSON bool) (output, error) {
	resp, err := c.XdsChains(ctx, &chainstorev1.XdsChainsRequest{})
	if err != nil {
		return output{}, err
	}
	if asJSON {
		out := make([]xdsChainJSON, 0, len(resp.GetChains()))
		for _, ch := range resp.GetChains() {
			out = append(out, xdsChainJSON{
				Service: ch.GetService(), Index: ch.GetIndex(), Hash: ch.GetHash(), PublishedHash: ch.GetPublishedHash(),
				Error: ch.GetError(), Warnings: nonNil(ch.GetWarnings()), Services: nonNil(ch.GetServices()), Updated: asTime(ch.GetUpdated()),
			})
		}
		return output{json: out}, nil
	}
	if len(resp.GetChains()) == 0 {
		return output{note: "No chains followed by " + servedBy(resp.GetMeta()) + ": no xDS client asked for one"}, nil
	}
	rows := [][]string{{"Service", "Index", "Hash", "Published", "Warnings", "Error"}}
	for _, ch := range resp.GetChains() {
		rows = append(rows, []string{ch.GetService(), strconv.FormatUint(ch.GetIndex(), 10), orDash(shortHash(ch.GetHash())),
			publishedState(ch), strconv.Itoa(len(ch.GetWarnings())), orDash(oneLine(ch.GetError()))})
	}
	return tableOutput(2, rows), nil
}

// publishedState says which version of ch is published: the newest
// ("yes"), none, or an older one (its short hash).
func publishedState(ch *chainstorev1.XdsChain) string {
	switch p := ch.GetPublishedHash(); {
	case p == "":
		return "none"
	case p == ch.GetHash():
		return "yes"
	default:
		return "older " + shortHash(p)
	}
}

// xdsTypeNames are the short names of the xDS resource types gRPC uses.
var xdsTypeNames = map[string]string{
	"type.googleapis.com/envoy.config.listener.v3.Listener":              "LDS",
	"type.googleapis.com/envoy.config.route.v3.RouteConfiguration":       "RDS",
	"type.googleapis.com/envoy.config.cluster.v3.Cluster":                "CDS",
	"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": "EDS",
}

// xdsTypeName is LDS, RDS, CDS or EDS for their type URLs, the URL
// without its type.googleapis.com/ prefix for any other.
func xdsTypeName(url string) string {
	if n, ok := xdsTypeNames[url]; ok {
		return n
	}
	return strings.TrimPrefix(url, "type.googleapis.com/")
}

// maxTableNames is how many resource names a table cell lists.
const maxTableNames = 3

// joinNames lists names for a table cell: at most maxTableNames, then
// how many more; "-" for none.
func joinNames(names []string) string {
	if len(names) == 0 {
		return "-"
	}
	if len(names) <= maxTableNames {
		return strings.Join(names, ",")
	}
	return fmt.Sprintf("%s (+%d)", strings.Join(names[:maxTableNames], ","), len(names)-maxTableNames)
}

// nackSummary is the Last NACK cell of a type: "-" if none, else the
// rejected version, the error (on one line) and the count when above 1.
func nackSummary(t *chainstorev1.XdsTypeStatus) string {
	if t.GetNacks() == 0 {
		return "-"
	}
	s := orDash(t.GetLastNackVersion()) + ": " + oneLine(t.GetLastNackError())
	if n := t.GetNacks(); n > 1 {
		s += fmt.Sprintf(" (%d NACKs)", n)
	}
	return s
}

// oneLine joins the lines of s with "; " so that it fits a table cell.
func oneLine(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// shortHash abbreviates a chain hash for a table.
func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// formatTime is ts in UTC, to the second; "-" when unset.
func formatTime(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().UTC().Format(time.RFC3339)
}

// asTime is ts in UTC, the zero time when unset.
func asTime(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime().UTC()
}

// servedBy names the server a response came from, for a note.
func servedBy(meta *chainstorev1.QueryMeta) string {
	if n := meta.GetServedBy(); n != "" {
		return "server " + n
	}
	return "this server"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// nonNil makes a nil list an empty one, printed [] in JSON.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
