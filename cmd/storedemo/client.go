package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and the xDS balancers

	"github.com/chainstore/chainstore/cmd/internal/cli"
)

// Environment variables of the bootstrap. grpc-go reads them once, when
// the process starts (internal/envconfig), so the client sets
// bootstrapEnv and re-executes itself; reexecEnv marks the second run.
const (
	bootstrapEnv     = "GRPC_XDS_BOOTSTRAP_CONFIG"
	bootstrapFileEnv = "GRPC_XDS_BOOTSTRAP" // takes precedence in grpc-go: removed
	reexecEnv        = "STOREDEMO_REEXEC"
)

type clientOpts struct {
	target      string
	xdsServers  []string
	rate        int
	header      []string // key, value; nil without --header
	headerEvery int
	show        []string
	by          string
	callTimeout time.Duration
	maxInflight int
	duration    time.Duration
}

func parseClientFlags(args []string, stderr io.Writer) (*clientOpts, error) {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &clientOpts{}
	fs.StringVar(&o.target, "target", "xds:///web", "the target to dial, xds:///<service>")
	servers := fs.String("xds-server", "", "chainstore gRPC addresses serving xDS, host:port[,host:port...] (loopback; required unless "+bootstrapEnv+" is set)")
	fs.IntVar(&o.rate, "rate", 50, "calls per second, 1-1000")
	header := fs.String("header", "", "metadata KEY=VALUE sent on every --header-every'th call, e.g. x-canary=1")
	fs.IntVar(&o.headerEvery, "header-every", 5, "send --header on every Nth call")
	show := fs.String("show", "", "backends always shown, in this order, e.g. v1,v2,canary (others are added as they answer)")
	fs.StringVar(&o.by, "by", "backend", "count answers by the \"backend\" or the \"instance\" response header")
	fs.DurationVar(&o.callTimeout, "call-timeout", 2*time.Second, "deadline of each call")
	fs.IntVar(&o.maxInflight, "max-inflight", 64, "most calls in flight; a tick finding them all busy is skipped")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: run until SIGINT or SIGTERM)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case !strings.HasPrefix(o.target, "xds:///") || len(o.target) == len("xds:///"):
		return nil, fmt.Errorf("--target %q: want xds:///<service>", o.target)
	case o.rate < 1 || o.rate > 1000:
		return nil, fmt.Errorf("--rate %d: want 1-1000", o.rate)
	case o.headerEvery < 1:
		return nil, fmt.Errorf("--header-every %d: want 1 or more", o.headerEvery)
	case o.by != backendHeader && o.by != instanceHeader:
		return nil, fmt.Errorf("--by %q: want %s or %s", o.by, backendHeader, instanceHeader)
	case o.callTimeout <= 0 || o.maxInflight < 1 || o.duration < 0:
		return nil, errors.New("--call-timeout and --max-inflight must be positive, --duration not negative")
	}
	if *header != "" {
		k, v, ok := strings.Cut(*header, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--header %q: want KEY=VALUE", *header)
		}
		o.header = []string{strings.ToLower(k), v}
	}
	if *show != "" {
		o.show = strings.Split(*show, ",")
	}
	if *servers != "" {
		addrs, err := cli.ParseAddrs(*servers)
		if err != nil {
			return nil, fmt.Errorf("--xds-server: %w", err)
		}
		for _, a := range addrs {
			if err := checkLoopback(a); err != nil {
				return nil, fmt.Errorf("--xds-server: %w", err)
			}
		}
		o.xdsServers = addrs
	} else if os.Getenv(bootstrapEnv) == "" {
		return nil, errors.New("--xds-server is required (or set " + bootstrapEnv + ")")
	}
	return o, nil
}

// bootstrapConfig is the xDS bootstrap of a client with node ID nodeID
// whose management servers are addrs, in order.
func bootstrapConfig(addrs []string, nodeID string) (string, error) {
	type server struct {
		URI      string              `json:"server_uri"`
		Creds    []map[string]string `json:"channel_creds"`
		Features []string            `json:"server_features"`
	}
	cfg := struct {
		Servers []server `json:"xds_servers"`
		Node    struct {
			ID       string            `json:"id"`
			Locality map[string]string `json:"locality"`
		} `json:"node"`
	}{}
	for _, a := range addrs {
		cfg.Servers = append(cfg.Servers, server{URI: a, Creds: []map[string]string{{"type": "insecure"}}, Features: []string{"xds_v3"}})
	}
	cfg.Node.ID = nodeID
	cfg.Node.Locality = map[string]string{}
	b, err := json.Marshal(cfg)
	return string(b), err
}

// ensureBootstrap makes sure grpc-go read want as its bootstrap: if the
// environment of this process does not hold it, it re-executes the
// program with it (not returning on success).
func ensureBootstrap(want string) error {
	_, fileSet := os.LookupEnv(bootstrapFileEnv)
	if os.Getenv(bootstrapEnv) == want && !fileSet {
		return nil
	}
	if os.Getenv(reexecEnv) != "" {
		return errors.New("the bootstrap environment did not survive re-executing")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("re-execute with the bootstrap: %w", err)
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != bootstrapEnv && k != bootstrapFileEnv && k != reexecEnv {
			env = append(env, kv)
		}
	}
	env = append(env, bootstrapEnv+"="+want, reexecEnv+"=1")
	// The same program with the same arguments: only the environment changes.
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("re-execute with the bootstrap: %w", err)
	}
	return nil
}

func runClient(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseClientFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "storedemo client: %v\n", err)
		return 2
	}
	if o.xdsServers != nil {
		// The node ID names the process; it survives the re-exec (same pid).
		cfg, err := bootstrapConfig(o.xdsServers, fmt.Sprintf("storedemo-client-%d", os.Getpid()))
		if err == nil {
			err = ensureBootstrap(cfg)
		}
		if err != nil {
			fmt.Fprintf(stderr, "storedemo client: %v\n", err)
			return 1
		}
	}
	conn, err := grpc.NewClient(o.target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintf(stderr, "storedemo client: %v\n", err)
		return 1
	}
	defer func() { _ = conn.Close() }()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	hdr := "none"
	if o.header != nil {
		hdr = fmt.Sprintf("%s=%s on every %d. call", o.header[0], o.header[1], o.headerEvery)
	}
	fmt.Fprintf(stdout, "client: %s via xDS %s, %d calls/s, header %s\n", o.target, strings.Join(o.xdsServers, ","), o.rate, hdr)
	callLoop(ctx, healthpb.NewHealthClient(conn), o, stdout)
	return 0
}

// callLoop makes o.rate calls a second until ctx is done, printing a
// report line every second, then waits for the calls in flight and prints
// the last (partial) window.
func callLoop(ctx context.Context, hc healthpb.HealthClient, o *clientOpts, stdout io.Writer) {
	sh := newShares(o.show)
	start := time.Now()
	pace := time.NewTicker(time.Second / time.Duration(o.rate))
	defer pace.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	sem := make(chan struct{}, o.maxInflight)
	var wg sync.WaitGroup
	// Calls outlive the signal by at most callTimeout, so their answers
	// count instead of failing as cancelled.
	callCtx := context.WithoutCancel(ctx)
	calls := 0
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			fmt.Fprintf(stdout, "%s  (last, partial)\n", sh.report(time.Since(start)))
			return
		case <-tick.C:
			fmt.Fprintln(stdout, sh.report(time.Since(start)))
		case <-pace.C:
			select {
			case sem <- struct{}{}:
			default:
				sh.skip()
				continue
			}
			calls++
			var md []string
			if o.header != nil && calls%o.headerEvery == 0 {
				md = o.header
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				name, err := call(callCtx, hc, o.callTimeout, o.by, md)
				if err != nil {
					sh.failed(err.Error())
					return
				}
				sh.answered(name)
			}()
		}
	}
}

// call makes one Health.Check with the metadata pairs md and returns the
// value of the response header by.
func call(ctx context.Context, hc healthpb.HealthClient, timeout time.Duration, by string, md []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if len(md) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, md...)
	}
	var hdr metadata.MD
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr)); err != nil {
		if st, ok := status.FromError(err); ok {
			return "", fmt.Errorf("%s: %s", st.Code(), st.Message())
		}
		return "", err
	}
	if v := hdr.Get(by); len(v) == 1 {
		return v[0], nil
	}
	return "", fmt.Errorf("response without a single %q header", by)
}
