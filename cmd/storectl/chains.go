package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/xds/grpccheck"
)

// chainCommands are the commands that read compiled chains from a server.
func chainCommands() commandTable {
	return commandTable{
		{
			Name:    "chain",
			Summary: "print a service's compiled discovery chain from the server, or (--check grpc) what gRPC clients ignore in it: chain [--datacenter DC] [--check grpc] SERVICE",
			Run:     runChain,
		},
		{
			Name:    "watch",
			Summary: "print each new version of the services' chains as a JSON line: watch SERVICE...",
			Run:     runWatch,
		},
	}
}

// overrideFlags are the chain selection flags of chain and watch.
type overrideFlags struct {
	datacenter, protocol, meshGateway string
	connectTimeout                    time.Duration
}

func addOverrideFlags(fs *flag.FlagSet) *overrideFlags {
	of := &overrideFlags{}
	fs.StringVar(&of.datacenter, "datacenter", "", "datacenter to compile the chain for (default: the server's)")
	fs.StringVar(&of.protocol, "override-protocol", "", "protocol override, as an upstream's protocol setting")
	fs.DurationVar(&of.connectTimeout, "override-connect-timeout", 0, "connect timeout override, e.g. 7s")
	fs.StringVar(&of.meshGateway, "override-mesh-gateway", "", "mesh-gateway mode override: none, local or remote")
	return of
}

func (of *overrideFlags) watched(service string) api.WatchedChain {
	return api.WatchedChain{
		Service: service, Datacenter: of.datacenter, OverrideProtocol: of.protocol,
		OverrideConnectTimeout: of.connectTimeout, OverrideMeshGatewayMode: of.meshGateway,
	}
}

func (of *overrideFlags) ref(service string) *chainstorev1.ChainRef {
	r := &chainstorev1.ChainRef{Service: service, Datacenter: of.datacenter}
	if of.protocol != "" || of.connectTimeout != 0 || of.meshGateway != "" {
		r.Overrides = &chainstorev1.ChainOverrides{Protocol: of.protocol, MeshGatewayMode: of.meshGateway}
		if of.connectTimeout != 0 {
			r.Overrides.ConnectTimeout = durationpb.New(of.connectTimeout)
		}
	}
	return r
}

// checkGRPC is the only --check of `storectl chain`: the features of the
// chain that proxyless gRPC clients ignore or cannot match (grpccheck).
const checkGRPC = "grpc"

// runChain prints {"Chain": ...} exactly as `storectl compile` does, from
// the chain the server compiled from its replicated entries; with --check
// grpc, the chain's grpccheck warnings instead.
func runChain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("chain", stderr)
	of := addOverrideFlags(fs)
	rf := addReadFlags(fs, false)
	check := fs.String("check", "", `instead of the chain, print one line per feature of it that proxyless gRPC clients ignore or cannot match; the only check is "grpc"`)
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) != 1 || pos[0] == "" {
		fmt.Fprintln(stderr, "usage: storectl chain [--datacenter DC] [--override-protocol P] [--override-connect-timeout D] [--override-mesh-gateway MODE] [--stale|--consistent] [--check grpc] SERVICE")
		return 2
	}
	checkSet := false
	fs.Visit(func(f *flag.Flag) { checkSet = checkSet || f.Name == "check" })
	if checkSet && *check != checkGRPC {
		fmt.Fprintf(stderr, "storectl chain: unknown --check %q (the only check is %q)\n", *check, checkGRPC)
		return 2
	}
	service := pos[0]
	opts, err := rf.options()
	if err != nil {
		fmt.Fprintf(stderr, "storectl chain: %v\n", err)
		return 2
	}
	c, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "Error reading discovery chain %q: %v\n", service, err)
		return 1
	}
	defer func() { _ = c.Close() }()
	resp, err := chainstorev1.NewChainServiceClient(c.Conn()).GetChain(ctx, &chainstorev1.GetChainRequest{Chain: of.ref(service), Options: opts})
	if err != nil {
		if api.ErrorReason(err) == api.ReasonChainCompileError {
			fmt.Fprintf(stderr, "Error compiling discovery chain %q: %s\n", service, api.ErrorText(err))
		} else {
			fmt.Fprintf(stderr, "Error reading discovery chain %q: %s\n", service, api.ErrorText(err))
		}
		return 1
	}
	if checkSet {
		return printGRPCCheck(stdout, stderr, service, resp.GetVersion().GetChain())
	}
	// Marshal(struct{Chain}) is `{"Chain":` + Marshal(chain) + `}`, so
	// indenting that gives byte for byte what `storectl compile` prints.
	raw := append(append([]byte(`{"Chain":`), resp.GetVersion().GetChain()...), '}')
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		fmt.Fprintf(stderr, "storectl chain: bad chain from server: %v\n", err)
		return 1
	}
	out.WriteByte('\n')
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return 1
	}
	return 0
}

// printGRPCCheck prints one line per grpccheck warning of the compiled
// chain raw (JSON, as the server sends it), or a line saying there is
// none.
func printGRPCCheck(stdout, stderr io.Writer, service string, raw []byte) int {
	warnings, err := grpcWarnings(raw)
	if err != nil {
		fmt.Fprintf(stderr, "storectl chain: %v\n", err)
		return 1
	}
	var out bytes.Buffer
	for _, w := range warnings {
		fmt.Fprintln(&out, w)
	}
	if len(warnings) == 0 {
		fmt.Fprintf(&out, "No features of chain %q are ignored by proxyless gRPC clients\n", service)
	}
	if _, err := stdout.Write(out.Bytes()); err != nil {
		return 1
	}
	return 0
}

// grpcWarnings decodes a compiled chain's JSON and lists what proxyless
// gRPC clients ignore or cannot match in it.
func grpcWarnings(raw []byte) ([]grpccheck.Warning, error) {
	var c chain.CompiledChain
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("bad chain from server: %w", err)
	}
	return grpccheck.Warnings(&c), nil
}

// chainKinds are the kinds whose entry named after a service shapes that
// service's chain (service-defaults through its protocol).
var chainKinds = []chain.Kind{chain.KindServiceDefaults, chain.KindServiceRouter, chain.KindServiceSplitter, chain.KindServiceResolver}

// warnGRPC runs after a put of entry e was applied: when e shapes the
// chain named after it, it prints each grpccheck warning of that chain
// (as the server now compiles it, read with the default consistency) on
// stderr. It only informs: a failure to read the chain is one note on
// stderr, never a failed put.
func warnGRPC(ctx context.Context, c *api.Client, stderr io.Writer, e chain.Entry) {
	if !slices.Contains(chainKinds, chain.Kind(e.GetKind())) {
		return
	}
	service := e.GetName()
	resp, err := chainstorev1.NewChainServiceClient(c.Conn()).GetChain(ctx, &chainstorev1.GetChainRequest{
		Chain: &chainstorev1.ChainRef{Service: service},
	})
	var warnings []grpccheck.Warning
	if err == nil {
		warnings, err = grpcWarnings(resp.GetVersion().GetChain())
	}
	if err != nil {
		fmt.Fprintf(stderr, "Note: chain %q not checked for proxyless gRPC clients: %s\n", service, api.ErrorText(err))
		return
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "Warning: chain %q: %s\n", service, w)
	}
}

// runWatch prints one JSON line per received chain version (the lines
// storeagent prints) until interrupted, or until --count versions.
func runWatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("watch", stderr)
	of := addOverrideFlags(fs)
	count := fs.Int("count", 0, "exit after printing this many versions (0: run until interrupted)")
	pos, err := cli.ParseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) == 0 {
		fmt.Fprintln(stderr, "usage: storectl watch [--datacenter DC] [--count N] SERVICE...")
		return 2
	}
	cfg := api.DefaultChainWatchConfig()
	cfg.Addrs = api.SplitAddrs(cf.addr)
	cfg.Token = cf.token
	cfg.TLS = cf.tls.API()
	for _, s := range pos {
		cfg.Chains = append(cfg.Chains, of.watched(s))
	}
	client, err := api.NewChainWatchClient(cfg, newStderrLogger(stderr))
	if err != nil {
		fmt.Fprintf(stderr, "storectl watch: %v\n", err)
		return 2
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	printed, failed := 0, false
	err = client.Run(ctx, func(e api.ChainEvent) {
		line, err := e.JSONLine()
		if err == nil {
			_, err = stdout.Write(append(line, '\n'))
		}
		if err != nil {
			fmt.Fprintf(stderr, "storectl watch: %v\n", err)
			failed = true
			cancel()
			return
		}
		printed++
		if *count > 0 && printed >= *count {
			cancel()
		}
	})
	if err != nil || failed {
		return 1
	}
	return 0
}

// newStderrLogger logs reconnections and refusals (warnings and errors)
// to stderr, leaving stdout to the JSON lines.
func newStderrLogger(stderr io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "storectl", Output: stderr, Level: hclog.Warn})
}
