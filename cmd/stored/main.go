// Command stored is a chainstore server: one voter of a Raft-replicated
// config-entry store, found by its peers through gossip and serving the
// gRPC API.
//
//	stored --node n1 --data-dir .cluster/n1 \
//	  --raft-addr 127.0.0.1:8300 --gossip-addr 127.0.0.1:8301 --grpc-addr 127.0.0.1:8502 \
//	  --join 127.0.0.1:8311,127.0.0.1:8321 --bootstrap-expect 3
//
// With --ca-file, --cert-file and --key-file it speaks TLS on gRPC and
// mutual TLS on Raft; --encrypt encrypts gossip; SIGHUP reloads the
// certificate files. Bound to a non-loopback address it refuses to start
// without both unless --insecure (docs/security.md).
//
// SIGINT or SIGTERM makes it leave the cluster gracefully: stop serving
// gRPC (in-flight calls finish, with a deadline), hand leadership to
// another voter, leave gossip (so the leader removes it from the Raft
// configuration at once), then stop Raft. Restarted with the same
// --data-dir it resumes with its persisted node ID, log and snapshots and
// rejoins through --join.
//
// # Goroutines
//
// main parses flags and calls run, which builds a server.Server and calls
// its Run on the main goroutine. Server.Start starts four goroutines, all
// joined by Server.Stop: the Raft failure watch, the chain hub's Run, the
// gRPC Serve loop and cluster.Run (see package server for what ends
// each). raftnode, memberlist and grpc-go own their internal goroutines
// and stop them in Shutdown / Leave / Stop. Server.Run returns after
// Stop, when ctx is done (a signal) or when one of the goroutines fails.
// run also starts the SIGHUP watcher (certificate reload), stopped and
// joined before it returns (security.go). With --pprof-addr, run starts
// one more goroutine, the pprof HTTP server, and stops and joins it before
// returning (debug.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/cmd/internal/cli"
	"github.com/chainstore/chainstore/server"
)

func main() {
	if isRecover(os.Args[1:]) {
		os.Exit(runRecover(os.Args[1:], os.Stdout, os.Stderr))
	}
	cfg, dbg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if errors.Is(err, errVersion) {
		printVersion(os.Stdout)
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stored:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, dbg)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stored:", err)
		os.Exit(1)
	}
}

// run builds the server from cfg and runs it until ctx is done.
func run(ctx context.Context, cfg server.Config, dbg debugOptions) error {
	logger := newLogger(cfg, os.Stderr)
	var live atomic.Pointer[server.Server] // set once built, for the TLS reload hook
	stopReload := watchSIGHUP(&reloader{args: os.Args[1:], logger: logger, stderr: os.Stderr, current: cfg,
		hooks: []reloadHook{tlsReloadHook(&live)}}) // config.go, security.go
	defer stopReload()
	_, stopDebug, err := startDebug(dbg, logger) //nolint:contextcheck // the returned stop runs after ctx is done (that is how run ends) and bounds the pprof server's Shutdown with its own timeout
	if err != nil {
		return err
	}
	defer stopDebug()
	srv, err := server.New(cfg, logger) //nolint:contextcheck // New starts Raft, whose leadership work uses its own contexts, bounded by its timeouts

	if err != nil {
		return err
	}
	if err := mountUI(srv, cfg); err != nil { //nolint:contextcheck // on failure mountUI stops the server, which bounds its shutdown with its own timeouts
		return err
	}
	live.Store(srv)
	return srv.Run(ctx)
}

// newLogger returns the hclog logger cfg asks for.
func newLogger(cfg server.Config, w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       cfg.NodeName,
		Level:      hclog.LevelFromString(cfg.LogLevel),
		JSONFormat: cfg.LogJSON,
		Output:     w,
	})
}

// parseFlags turns the command line into a server.Config (defaults from
// server.DefaultConfig) and the debug options, and validates them.
func parseFlags(args []string, stderr io.Writer) (server.Config, debugOptions, error) {
	cfg := server.DefaultConfig()
	fs := flag.NewFlagSet("stored", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var join string
	fs.StringVar(&cfg.NodeName, "node", cfg.NodeName, "node name, unique in the cluster")
	fs.StringVar(&cfg.Datacenter, "datacenter", cfg.Datacenter, "datacenter name")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the node ID, Raft log and snapshots")
	fs.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "Raft bind address host:port")
	fs.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "Raft address other servers dial (default: --raft-addr)")
	fs.StringVar(&cfg.GossipAddr, "gossip-addr", cfg.GossipAddr, "gossip (memberlist) bind address host:port")
	fs.StringVar(&cfg.GossipAdvertise, "gossip-advertise", "", "gossip address other servers use (default: --gossip-addr)")
	fs.StringVar(&cfg.GRPCAddr, "grpc-addr", cfg.GRPCAddr, "gRPC bind address host:port")
	fs.StringVar(&cfg.GRPCAdvertise, "grpc-advertise", "", "gRPC address other servers forward to (default: --grpc-addr)")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "", "Consul-compatible HTTP API bind address host:port (docs/http-api.md; off when empty)")
	fs.StringVar(&join, "join", "", "comma-separated gossip addresses of servers to join")
	fs.IntVar(&cfg.BootstrapExpect, "bootstrap-expect", cfg.BootstrapExpect, "number of servers to wait for before bootstrapping a new cluster (0: never bootstrap)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "trace, debug, info, warn or error")
	fs.BoolVar(&cfg.LogJSON, "log-json", cfg.LogJSON, "log as JSON lines")
	fs.BoolVar(&cfg.ACLEnabled, "acl-enabled", cfg.ACLEnabled, "enforce ACL tokens on every request (docs/acl.md)")
	fs.StringVar(&cfg.ACLDefaultPolicy, "acl-default-policy", "deny", "with --acl-enabled, what no rule covers: deny or allow")
	fs.Var(&cfg.RaftLogFormat, "raft-log-format", "Raft command format this server writes as leader: v1, or v0 only while upgrading from a release before v1 (docs/operations.md, Rolling upgrade)")
	fs.DurationVar(&cfg.TombstoneGC.TTL, "tombstone-ttl", cfg.TombstoneGC.TTL, "keep the tombstones of deleted entries at least this long before the leader reaps them")
	registerLogStoreFlag(fs, &cfg) // logstore.go
	sec := registerSecurityFlags(fs, &cfg)
	testHooks := registerTestFlags(fs)
	dbg := registerDebugFlags(fs)
	file := registerFileFlags(fs) // config.go
	cli.HideFlags(fs, testFlagPrefix)
	if err := fs.Parse(args); err != nil {
		return server.Config{}, debugOptions{}, err
	}
	if file.showVersion {
		return server.Config{}, debugOptions{}, errVersion
	}
	if err := file.applyConfigFile(fs); err != nil {
		return server.Config{}, debugOptions{}, err
	}
	if fs.NArg() > 0 {
		return server.Config{}, debugOptions{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for _, j := range strings.Split(join, ",") {
		if j = strings.TrimSpace(j); j != "" {
			cfg.Join = append(cfg.Join, j)
		}
	}
	sec.apply(&cfg)
	if err := testHooks.apply(&cfg); err != nil {
		return server.Config{}, debugOptions{}, err
	}
	if err := cfg.Validate(); err != nil {
		return server.Config{}, debugOptions{}, err
	}
	if err := dbg.validate(); err != nil {
		return server.Config{}, debugOptions{}, err
	}
	return cfg, *dbg, nil
}
