// Command storeagent watches compiled discovery chains on a chainstore
// cluster and keeps local copies current, like consul-template, and keeps
// the local service instances registered in the cluster's catalog, like a
// Consul agent's service definitions:
//
//	storeagent --addr host:port[,host:port...] [--watch web,api [--out DIR] [--exec CMD]] [--services FILE]
//
// At least one of --watch and --services is needed; each works without
// the other. --ca-file, --cert-file and --key-file (or $STORE_CACERT,
// $STORE_CLIENT_CERT, $STORE_CLIENT_KEY) turn on TLS to the servers, as
// for storectl (docs/security.md).
//
// # Watching chains (--watch)
//
// It keeps one Watch stream open to one server, subscribed to every
// chain. For each version it receives it prints one JSON line to stdout,
// {"service":"web","index":N,"hash":"...","chain":{...}} (or with "error"
// for a chain that does not compile). With --out it first writes the same
// JSON to DIR/<service>.json atomically (temporary file + rename; not for
// compile errors, so the last good chain stays in place), so the file is
// current when the line appears; the files are 0600 (private to the
// agent's user) unless --out-world-readable makes them 0644. With --exec
// it then runs CMD through `sh -c`, its output on stderr (stdout keeps
// only the JSON lines). Changes that arrive while CMD runs are coalesced
// into one more run, and CHAIN_SERVICES names every service changed since
// the previous run (space-separated, in the order they changed), so a hook
// never misses one of two services that changed together; CHAIN_SERVICE,
// CHAIN_INDEX and CHAIN_HASH describe the newest change. With
// --exec-per-service it runs CMD once per changed service instead, with
// CHAIN_SERVICE, CHAIN_INDEX, CHAIN_HASH and CHAIN_SERVICES describing that
// one.
//
// When the stream breaks it reconnects with jittered exponential backoff,
// moving on to the next address, and resumes: it sends the index and hash
// it has for each chain, so it gets nothing it already has and never an
// older version. Files and the exec'd program keep the last good chains
// while it is disconnected. A restarted agent with --out resumes the same
// way from the files it wrote: only chains that changed meanwhile are
// printed, written and passed to --exec. When its server says it has no
// leader (quorum lost, or cut off), the agent logs "no leader: ...", keeps
// serving the last chains it has and logs that they may be stale, and
// tries the other servers; with --status-file FILE it also rewrites FILE
// with {"stale":true,"reason":...,"server":...,"since":...}, and again
// with "stale":false once a server with a leader answers. (Should every server stay behind
// the saved index, as after restoring the cluster from an older backup,
// it starts over from the servers' current versions.) Logs go to stderr.
//
// # Registering instances (--services FILE)
//
// FILE lists the instances to register, in JSON:
//
//	{"services": [
//	  {"id": "web-1", "service": "web", "address": "127.0.0.1", "port": 8080,
//	   "meta": {"version": "v1"}, "tags": ["a"], "ttl": "10s"}
//	]}
//
// or in HCL (JSON when the first non-space character is '{'), one
// services block per instance:
//
//	services {
//	  id      = "web-1"
//	  service = "web"
//	  address = "127.0.0.1"
//	  port    = 8080
//	  meta    = { version = "v1" }
//	  tags    = ["a"]
//	  ttl     = "10s"
//	}
//
// The top level has the one key "services", a non-empty list. Each
// instance has exactly these lowercase keys: id (unique in the cluster,
// and in the file), service, address and port (1-65535) are required;
// meta (an object of strings), tags (a list of strings), datacenter (empty
// or the cluster's) and ttl (a Go duration, 100ms to 24h) are optional.
// The names are those of `storectl catalog instances --json`. The file is
// checked at start with the server's rules (the agent exits with status 2
// and a message naming the instance and the key); only the datacenter is
// left to the server.
//
// At start the agent registers every instance (registering an ID again
// replaces that instance). An instance with a ttl has a TTL check, which
// starts critical: the agent sets it passing right after registering and
// again every ttl/3 (80-100% of it, at random) while it runs. When it
// stops (SIGINT, SIGTERM) it deregisters them all, giving up after
// --deregister-timeout. Failed calls are logged and retried with
// jittered backoff (--min-backoff, --max-backoff; a failed check update
// at least every ttl/3), on the next server when one goes away, so a
// leader election or a server restart only delays them. An update that
// finds the instance gone (deregistered by someone else) registers it
// again. An instance the server refuses (invalid) is logged as an error
// and left alone; the agent keeps running for the others.
//
// # Goroutines
//
// main runs run, which runs the watch client (api.ChainWatchClient.Run) on
// the main goroutine until SIGINT/SIGTERM (without --watch it just waits
// for them); the client calls back on that goroutine to print and write
// files. With --exec one more goroutine (execRunner.loop) runs CMD; run
// stops and joins it before returning. With --services, registrar.run
// runs on its own goroutine with one goroutine per instance (registrar.keep);
// when the watch ends, run cancels them, joins them, then deregisters the
// instances (one goroutine per instance, joined, within
// --deregister-timeout) before returning.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/cmd/internal/cli"
)

// Config is the agent's parsed command line.
type Config struct {
	Addrs []string
	// Services are the services whose chains to watch (--watch).
	Services   []string
	Datacenter string
	OutDir     string
	Exec       string
	// ExecPerService runs --exec once per changed service instead of once
	// per batch of changes (--exec-per-service).
	ExecPerService bool
	// OutWorldReadable writes --out files 0644 instead of 0600
	// (--out-world-readable).
	OutWorldReadable bool
	// StatusFile, if set, is rewritten with the watch status (stale or
	// not, and why) each time it changes (--status-file).
	StatusFile string
	LogLevel   string
	// ServicesFile is the --services file; Instances are the instances
	// it lists (loaded by parseFlags).
	ServicesFile string
	Instances    []catalog.Instance
	// DeregisterTimeout bounds the deregistration of the instances when
	// the agent stops.
	DeregisterTimeout time.Duration
	// Watch tunes the client (backoff, timeouts); Addrs and Chains are
	// filled from the fields above.
	Watch api.ChainWatchConfig
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	if len(c.Services) == 0 && c.ServicesFile == "" {
		return errors.New("nothing to do: give --watch (chains to watch), --services (instances to register) or both")
	}
	if len(c.Services) == 0 && (c.OutDir != "" || c.Exec != "") {
		return errors.New("--out and --exec need --watch")
	}
	if c.ExecPerService && c.Exec == "" {
		return errors.New("--exec-per-service needs --exec")
	}
	if c.StatusFile != "" && len(c.Services) == 0 {
		return errors.New("--status-file needs --watch")
	}
	if c.OutWorldReadable && c.OutDir == "" {
		return errors.New("--out-world-readable needs --out")
	}
	if c.ServicesFile != "" {
		// The watch client checks its own settings; the registrar uses
		// the backoffs too.
		switch {
		case c.DeregisterTimeout <= 0:
			return fmt.Errorf("--deregister-timeout must be positive, got %s", c.DeregisterTimeout)
		case c.Watch.MinBackoff <= 0 || c.Watch.MaxBackoff < c.Watch.MinBackoff:
			return fmt.Errorf("--min-backoff (%s) must be positive and at most --max-backoff (%s)", c.Watch.MinBackoff, c.Watch.MaxBackoff)
		}
	}
	for _, s := range c.Services {
		if c.OutDir != "" && !safeFileName(s) {
			return fmt.Errorf("service %q cannot be used as a file name in --out", s)
		}
	}
	if hclog.LevelFromString(c.LogLevel) == hclog.NoLevel {
		return fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", c.LogLevel)
	}
	return nil
}

// safeFileName accepts names that make a plain file name in --out.
func safeFileName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`) && !strings.HasPrefix(s, ".")
}

func main() { cli.Main(run) }

// parseFlags builds the Config from the command line.
func parseFlags(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("storeagent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{Watch: api.DefaultChainWatchConfig()}
	var addrs string
	cli.AddrFlag(fs, &addrs, "server gRPC addresses, host:port[,host:port...], tried in order")
	cli.TokenFlag(fs, &cfg.Watch.Token)
	tlsFlags := cli.RegisterTLSFlags(fs)
	watch := fs.String("watch", "", "comma-separated services whose chains to watch")
	fs.StringVar(&cfg.Datacenter, "datacenter", "", "datacenter to compile the chains for (default: the server's)")
	fs.StringVar(&cfg.OutDir, "out", "", "directory to write <service>.json files into")
	fs.StringVar(&cfg.Exec, "exec", "", "command to run (via sh -c) after changes; CHAIN_SERVICES lists every service changed since the last run (space-separated), CHAIN_SERVICE/CHAIN_INDEX/CHAIN_HASH describe the newest")
	fs.BoolVar(&cfg.ExecPerService, "exec-per-service", false, "run --exec once per changed service, in the order they changed (CHAIN_SERVICES then names just that one)")
	fs.StringVar(&cfg.StatusFile, "status-file", "", "JSON `FILE` rewritten when the chains become stale (the server has no leader, or none answers) or current again")
	fs.BoolVar(&cfg.OutWorldReadable, "out-world-readable", false, "write --out files 0644 (readable by every local user) instead of 0600")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level on stderr: trace, debug, info, warn, error")
	fs.DurationVar(&cfg.Watch.MinBackoff, "min-backoff", cfg.Watch.MinBackoff, "shortest delay before a reconnection or a retried catalog call")
	fs.DurationVar(&cfg.Watch.MaxBackoff, "max-backoff", cfg.Watch.MaxBackoff, "longest delay before a reconnection or a retried catalog call")
	fs.DurationVar(&cfg.Watch.IdleTimeout, "idle-timeout", cfg.Watch.IdleTimeout, "reconnect elsewhere when a server sends nothing for this long")
	fs.DurationVar(&cfg.Watch.ProbeAfter, "probe-after", cfg.Watch.ProbeAfter, "probe a server that sent nothing for this long, and leave it when the probe gets no answer within 1 s (a frozen server); 0 disables (one small call per interval while idle)")
	fs.StringVar(&cfg.ServicesFile, "services", "", "JSON or HCL `FILE` listing the instances to register while the agent runs")
	fs.DurationVar(&cfg.DeregisterTimeout, "deregister-timeout", 5*time.Second, "longest time spent deregistering the --services instances on exit")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg.Addrs = api.SplitAddrs(addrs)
	cfg.Watch.TLS = tlsFlags.API()
	cfg.Services = api.SplitAddrs(*watch) // the same comma-list rules
	if err := cfg.Validate(); err != nil {
		return cfg, err
	}
	if cfg.ServicesFile != "" {
		instances, err := loadServicesFile(cfg.ServicesFile)
		if err != nil {
			return cfg, fmt.Errorf("--services %s: %w", cfg.ServicesFile, err)
		}
		cfg.Instances = instances
	}
	return cfg, nil
}

// run is the agent; it returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "storeagent: %v\n", err)
		return 2
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "storeagent", Output: stderr, Level: hclog.LevelFromString(cfg.LogLevel)})
	var watch *api.ChainWatchClient
	if len(cfg.Services) > 0 {
		if cfg.OutDir != "" {
			if err := os.MkdirAll(cfg.OutDir, outDirMode(cfg)); err != nil {
				fmt.Fprintf(stderr, "storeagent: create --out directory: %v\n", err)
				return 1
			}
		}
		wc := cfg.Watch
		wc.Addrs = cfg.Addrs
		for _, s := range cfg.Services {
			wc.Chains = append(wc.Chains, api.WatchedChain{Service: s, Datacenter: cfg.Datacenter})
		}
		if watch, err = api.NewChainWatchClient(wc, logger); err != nil {
			fmt.Fprintf(stderr, "storeagent: %v\n", err)
			return 2
		}
	}
	var reg *registrar
	if len(cfg.Instances) > 0 {
		cc := api.DefaultClientConfig()
		cc.Addrs = cfg.Addrs
		cc.Token = cfg.Watch.Token
		cc.TLS = cfg.Watch.TLS
		client, err := api.NewClient(cc)
		if err != nil {
			fmt.Fprintf(stderr, "storeagent: %v\n", err)
			return 2
		}
		defer func() { _ = client.Close() }()
		reg = newRegistrar(client, cfg.Instances, cfg, logger)
	}

	// The registrar runs until the watch ends (or, without --watch, until
	// the agent is stopped), then deregisters the instances.
	var wg sync.WaitGroup
	if reg != nil {
		regCtx, stopReg := context.WithCancel(ctx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			reg.run(regCtx)
		}()
		defer func() {
			stopReg()
			wg.Wait()
			reg.deregisterAll(ctx)
		}()
		logger.Info("registering instances", "count", len(cfg.Instances), "file", cfg.ServicesFile, "servers", cfg.Addrs)
	}
	if watch == nil {
		<-ctx.Done()
		return 0
	}
	return runWatch(ctx, watch, cfg, stdout, stderr, logger)
}

// runWatch runs the chain watch until ctx is done and returns the exit
// code.
func runWatch(ctx context.Context, client *api.ChainWatchClient, cfg Config, stdout, stderr io.Writer, logger hclog.Logger) int {
	if cfg.OutDir != "" {
		loadSaved(client, cfg, logger)
	}
	client.OnStatus(func(st api.WatchStatus) { reportStatus(st, cfg, logger) })
	a := &agent{cfg: cfg, stdout: stdout, logger: logger}
	if cfg.Exec != "" {
		a.exec = newExecRunner(cfg.Exec, cfg.ExecPerService, stderr, logger)
		a.exec.start(ctx)
		defer a.exec.stop()
	}
	logger.Info("watching chains", "services", cfg.Services, "servers", cfg.Addrs)
	if err := client.Run(ctx, a.handle); err != nil {
		logger.Error("watch failed", "error", err)
		return 1
	}
	return 0
}

// loadSaved seeds the client with the versions an earlier run wrote to
// --out, so that a restarted agent resumes: it receives (prints, writes,
// runs --exec for) only the chains that changed meanwhile. A missing,
// unreadable or foreign file is skipped: that chain starts from the
// server's current version, which then overwrites the file.
func loadSaved(client *api.ChainWatchClient, cfg Config, logger hclog.Logger) {
	for _, service := range cfg.Services {
		path := filepath.Join(cfg.OutDir, service+".json")
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			logger.Warn("cannot read saved chain; starting from the server's version", "path", path, "error", err)
			continue
		}
		var saved struct {
			Service string          `json:"service"`
			Index   uint64          `json:"index"`
			Hash    string          `json:"hash"`
			Chain   json.RawMessage `json:"chain"`
		}
		if err := json.Unmarshal(data, &saved); err != nil || saved.Service != service || len(saved.Chain) == 0 {
			logger.Warn("saved chain file is not one this agent wrote; starting from the server's version", "path", path)
			continue
		}
		ev := api.ChainEvent{Service: service, Index: saved.Index, Hash: saved.Hash, Chain: saved.Chain}
		if client.SetLast(ev) {
			logger.Info("resuming from saved chain", "service", service, "index", saved.Index, "path", path)
		}
	}
}

// agent handles received versions.
type agent struct {
	cfg    Config
	stdout io.Writer
	logger hclog.Logger
	exec   *execRunner
}

// handle writes the file (good versions only), then prints the line, then
// triggers the command: when a line appears the file is already in place.
func (a *agent) handle(e api.ChainEvent) {
	line, err := e.JSONLine()
	if err != nil {
		a.logger.Error("cannot encode version", "service", e.Service, "error", err)
		return
	}
	line = append(line, '\n')
	if e.Error != "" {
		a.logger.Warn("chain does not compile; keeping the last good one", "service", e.Service, "index", e.Index, "error", e.Error)
	} else if a.cfg.OutDir != "" {
		path := filepath.Join(a.cfg.OutDir, e.Service+".json")
		if err := writeFileAtomic(path, line, outFileMode(a.cfg)); err != nil {
			a.logger.Error("cannot write chain file", "path", path, "error", err)
		}
	}
	if _, err := a.stdout.Write(line); err != nil {
		a.logger.Error("cannot write to stdout", "error", err)
	}
	if e.Error == "" && a.exec != nil {
		a.exec.trigger(e)
	}
}

// writeFileAtomic replaces path with data: it writes a temporary file in
// the same directory, syncs it, then renames it over path, so readers see
// the old or the new content, never a partial file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	if err := os.Chmod(f.Name(), mode); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("rename to %s: %w", path, err)
	}
	return nil
}
