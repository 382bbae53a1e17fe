package server

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/chainwatch"
	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/health"
	"github.com/chainstore/chainstore/httpapi"
	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/rpc"
	"github.com/chainstore/chainstore/tlsutil"
	"github.com/chainstore/chainstore/tombgc"
	"github.com/chainstore/chainstore/xdsserver"
)

// Config is everything a Server needs. The identity and address fields come
// from flags; Raft, Cluster and RPC carry the tuning of each layer (tests
// shrink their timeouts) and New fills in their identity fields.
type Config struct {
	NodeName   string
	Datacenter string
	DataDir    string
	// Bind and advertise addresses (host:port). An empty advertise address
	// means the bind address; port 0 binds a free port (tests).
	RaftAddr, RaftAdvertise     string
	GossipAddr, GossipAdvertise string
	GRPCAddr, GRPCAdvertise     string
	// HTTPAddr is where the Consul-compatible HTTP API (package httpapi)
	// listens; empty serves no HTTP.
	HTTPAddr string
	// Join lists gossip addresses of servers to join.
	Join []string
	// BootstrapExpect is the number of servers to wait for before
	// bootstrapping a new cluster; 0 never bootstraps.
	BootstrapExpect int
	LogLevel        string
	LogJSON         bool

	// GRPCStopTimeout bounds the graceful gRPC stop (in-flight calls) at
	// shutdown; LeaveTimeout bounds the gossip leave.
	GRPCStopTimeout, LeaveTimeout time.Duration

	Raft    raftnode.Config
	Cluster cluster.Config
	RPC     rpc.ServerConfig
	// Hub and Chains configure the discovery-chain watch service.
	Hub chainwatch.Config
	// Health configures the TTL check monitor.
	Health health.Config
	// TombstoneGC configures the leader's tombstone garbage collection.
	TombstoneGC tombgc.Config
	// XDS configures the xDS server for proxyless gRPC clients (its
	// version prefix defaults to one derived from NodeName).
	XDS    xdsserver.Config
	Chains rpc.ChainServerConfig
	// HTTP configures the HTTP API (New sets its Datacenter and body limit
	// from Datacenter and RPC.MaxEntrySize).
	HTTP httpapi.Config
	// FSMOptions are extra FSM options (the test hooks of cmd/stored).
	FSMOptions []fsm.Option
	// RaftLogFormat is the format this server writes Raft commands in when
	// it leads (--raft-log-format; zero: v1). v0 is only for a rolling
	// upgrade from a release before log format v1 (docs/operations.md).
	RaftLogFormat fsm.LogFormat

	// ACLEnabled turns ACL enforcement on (--acl-enabled); ACLDefaultPolicy
	// ("deny" or "allow"; "" means deny; --acl-default-policy) decides
	// what no rule covers. They set RPC.ACL and the xDS server's checks;
	// the bootstrap reset file is <DataDir>/acl-bootstrap-reset
	// (docs/acl.md).
	ACLEnabled       bool
	ACLDefaultPolicy string
	// TLS, when not nil, turns on TLS for gRPC (clients and forwarding)
	// and mutual TLS for Raft; its Datacenter is set from Datacenter.
	TLS *tlsutil.Config
	// Encrypt is the initial base64 gossip key (--encrypt); a keyring
	// persisted in DataDir wins over it (see cluster.LoadKeyring).
	Encrypt string
	// Insecure lets a server bound to a non-loopback address start
	// without TLS or a gossip key (see checkSecure).
	Insecure bool
}

// DefaultConfig returns the defaults of the stored flags and the production
// tuning of every layer.
func DefaultConfig() Config {
	return Config{
		NodeName:        "n1",
		Datacenter:      "dc1",
		DataDir:         "data",
		RaftAddr:        "127.0.0.1:8300",
		GossipAddr:      "127.0.0.1:8301",
		GRPCAddr:        "127.0.0.1:8502",
		LogLevel:        "info",
		GRPCStopTimeout: 5 * time.Second,
		LeaveTimeout:    5 * time.Second,
		Raft:            raftnode.DefaultConfig(),
		Cluster:         cluster.DefaultConfig(),
		RPC:             rpc.DefaultServerConfig(),
		Hub:             chainwatch.DefaultConfig(),
		Health:          health.DefaultConfig(),
		TombstoneGC:     tombgc.DefaultConfig(),
		XDS:             xdsserver.DefaultConfig(),
		Chains:          rpc.DefaultChainServerConfig(),
		HTTP:            httpapi.DefaultConfig(),
	}
}

// Validate reports the first invalid field of the stored-level settings;
// each layer validates its own config when it is built.
func (c Config) Validate() error {
	switch {
	case c.NodeName == "":
		return errors.New("--node must be set")
	case c.Datacenter == "":
		return errors.New("--datacenter must be set")
	case c.DataDir == "":
		return errors.New("--data-dir must be set")
	case c.ACLDefaultPolicy != "" && c.ACLDefaultPolicy != rpc.ACLPolicyAllow && c.ACLDefaultPolicy != rpc.ACLPolicyDeny:
		return fmt.Errorf("--acl-default-policy must be allow or deny, got %q", c.ACLDefaultPolicy)
	case c.BootstrapExpect < 0:
		return fmt.Errorf("--bootstrap-expect must not be negative, got %d", c.BootstrapExpect)
	case c.GRPCStopTimeout <= 0 || c.LeaveTimeout <= 0:
		return errors.New("GRPCStopTimeout and LeaveTimeout must be positive")
	}
	for name, a := range map[string]string{"--raft-addr": c.RaftAddr, "--gossip-addr": c.GossipAddr, "--grpc-addr": c.GRPCAddr} {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("%s %q: %w", name, a, err)
		}
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return fmt.Errorf("--http-addr %q: %w", c.HTTPAddr, err)
		}
	}
	if !c.RaftLogFormat.Valid() {
		return fmt.Errorf("--raft-log-format %s: %w", c.RaftLogFormat, fsm.ErrUnknownLogFormat)
	}
	if c.TombstoneGC.TTL <= 0 {
		return fmt.Errorf("--tombstone-ttl must be positive, got %s", c.TombstoneGC.TTL)
	}
	if hclog.LevelFromString(c.LogLevel) == hclog.NoLevel {
		return fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", c.LogLevel)
	}
	return nil
}
