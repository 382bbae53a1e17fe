package cluster

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Config configures a Cluster. Build it from DefaultConfig, set the fields
// marked required, and check it with Validate (New does too). It is copied
// by New and immutable afterwards.
type Config struct {
	// NodeName is this server's unique gossip name (default: hostname).
	NodeName string
	// NodeID is the Raft server ID, normally from LoadOrCreateNodeID.
	// Required.
	NodeID string
	// Datacenter: only servers of the same datacenter are bootstrapped
	// together and reconciled into Raft (default "dc1").
	Datacenter string
	// Label is the memberlist cluster label. Every gossip packet carries it
	// and packets with another label are dropped, so two clusters whose
	// servers can reach each other never merge. Servers of one cluster must
	// share it; give every cluster on a network its own (default
	// "chainstore"). At most 255 bytes.
	Label string

	// BindAddr and BindPort: the IP and port memberlist listens on, UDP and
	// TCP (default 0.0.0.0:8301). BindPort 0 picks a free port (tests);
	// GossipAddr reports it.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort: the address other servers use to
	// reach this one. AdvertiseAddr "" picks one from BindAddr (a private
	// IP when binding 0.0.0.0); AdvertisePort 0 means the bound port.
	AdvertiseAddr string
	AdvertisePort int

	// Join lists gossip addresses ("host:port"; the port defaults to
	// BindPort) of other servers. Run keeps trying them, with backoff from
	// JoinRetryMin to JoinRetryMax, until one answers, so servers can start
	// in any order; it tries again whenever this server finds itself alone.
	Join         []string
	JoinRetryMin time.Duration // default 1s
	JoinRetryMax time.Duration // default 30s

	// RaftAddr is this server's Raft transport address and GRPCAddr its
	// gRPC address, both "host:port" as other servers dial them. Required.
	RaftAddr string
	GRPCAddr string

	// BootstrapExpect > 0 makes this server bootstrap Raft once it sees that
	// many alive servers of its datacenter (with the same BootstrapExpect)
	// and none reports Raft state. 0 never bootstraps: the server waits to
	// be added by a leader. Never set it on replacement servers.
	BootstrapExpect int

	// ReconcileInterval is the period of the leader's full reconcile pass,
	// on top of the passes triggered by leadership and membership changes
	// (default 60s, as Consul).
	ReconcileInterval time.Duration

	// DeadServerTimeout is how long a server must have been failed or left
	// (continuously, as seen by this node's gossip) or unknown to gossip
	// before the leader removes it from the Raft configuration. A server
	// that leaves gracefully keeps its voter slot for this long too, so a
	// restart (`scripts/cluster.sh stop N; start N`, a rolling upgrade)
	// never shrinks the configuration.
	//
	// Default 30s. Gossip already needs about 5-25s (LAN timings, 3-5
	// servers) to declare a crashed server failed, so a removal happens
	// roughly 35-55s after a crash. That rides out a process restart or a
	// quick reboot, which then rejoins with its slot intact instead of
	// costing two configuration changes and a snapshot install. Removing a
	// failed voter sooner buys nothing: it does not improve fault tolerance
	// (3 voters with 1 failed and 2 voters both tolerate no further
	// failure); it only makes room for a replacement, which may be added
	// before the removal anyway. Removals are also bounded by the quorum
	// guard, whatever the timeout.
	DeadServerTimeout time.Duration

	// ServerStabilizationTime is how long a new server stays a non-voter
	// after it is alive in gossip before the leader promotes it to voter
	// (autopilot.go). 0 adds new servers as voters at once. Default 10s,
	// as Consul's autopilot.
	ServerStabilizationTime time.Duration

	// Gossip holds memberlist's failure-detector and gossip timings.
	Gossip GossipConfig

	// VerifyServer, when not nil (TLS mode), is called by the leader
	// before it makes a gossip member a Raft voter (or bootstraps with
	// it): it must prove that the server at raftAddr holds a server
	// certificate for nodeName (tlsutil.Configurator.VerifyServerAt). A
	// member that fails it is refused and logged.
	VerifyServer func(ctx context.Context, nodeName, raftAddr string) error

	// Prober, when not nil, is asked by the leader whether a server that
	// gossip reports left, failed or unknown for DeadServerTimeout still
	// answers over the network (probe.go). One that answers is kept and
	// its dead timer restarts, so a gossip-only partition never removes a
	// healthy voter. nil trusts gossip alone. The server wires a gRPC
	// OperatorService.Status call.
	Prober Prober

	// TestGossipCut, when not nil, lets a test cut this node's gossip
	// traffic alone (gossipcut.go). Leave it nil outside tests.
	TestGossipCut *GossipCut

	// Keyring is memberlist's gossip encryption keyring (see keyring.go);
	// nil gossips in plain text.
	Keyring *memberlist.Keyring
}

// GossipConfig is the subset of memberlist.Config timings this package
// exposes. DefaultGossipConfig mirrors memberlist.DefaultLANConfig;
// LocalGossipConfig mirrors memberlist.DefaultLocalConfig (loopback tests).
// See memberlist's Config for the meaning of each field.
type GossipConfig struct {
	TCPTimeout              time.Duration
	IndirectChecks          int
	RetransmitMult          int
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	PushPullInterval        time.Duration
	ProbeInterval           time.Duration
	ProbeTimeout            time.Duration
	GossipInterval          time.Duration
	GossipNodes             int
	GossipToTheDeadTime     time.Duration
	// DeadNodeReclaimTime lets a failed server come back under the same
	// name from a new address after this long (0: never, as memberlist).
	// Default 30s, as Consul.
	DeadNodeReclaimTime time.Duration
}

// Defaults.
const (
	DefaultDatacenter        = "dc1"
	DefaultLabel             = "chainstore"
	DefaultBindPort          = 8301
	DefaultReconcileInterval = 60 * time.Second
	DefaultDeadServerTimeout = 30 * time.Second
	// DefaultServerStabilizationTime is ServerStabilizationTime's default.
	DefaultServerStabilizationTime = 10 * time.Second
)

// DefaultConfig returns a Config with every optional field set. NodeID,
// RaftAddr and GRPCAddr must still be filled in.
func DefaultConfig() Config {
	hostname, _ := os.Hostname() // empty on error: Validate reports it
	return Config{
		NodeName:          hostname,
		Datacenter:        DefaultDatacenter,
		Label:             DefaultLabel,
		BindAddr:          "0.0.0.0",
		BindPort:          DefaultBindPort,
		JoinRetryMin:      time.Second,
		JoinRetryMax:      30 * time.Second,
		ReconcileInterval: DefaultReconcileInterval,
		DeadServerTimeout: DefaultDeadServerTimeout,
		Gossip:            DefaultGossipConfig(),

		ServerStabilizationTime: DefaultServerStabilizationTime,
	}
}

// DefaultGossipConfig returns memberlist's LAN timings (probe every 1s,
// probe timeout 500ms, suspicion multiplier 4, gossip every 200ms to 3
// nodes, push/pull every 30s) plus a 30s DeadNodeReclaimTime.
func DefaultGossipConfig() GossipConfig {
	return gossipFrom(memberlist.DefaultLANConfig())
}

// LocalGossipConfig returns memberlist's loopback timings, for tests.
func LocalGossipConfig() GossipConfig {
	return gossipFrom(memberlist.DefaultLocalConfig())
}

func gossipFrom(m *memberlist.Config) GossipConfig {
	return GossipConfig{
		TCPTimeout:              m.TCPTimeout,
		IndirectChecks:          m.IndirectChecks,
		RetransmitMult:          m.RetransmitMult,
		SuspicionMult:           m.SuspicionMult,
		SuspicionMaxTimeoutMult: m.SuspicionMaxTimeoutMult,
		PushPullInterval:        m.PushPullInterval,
		ProbeInterval:           m.ProbeInterval,
		ProbeTimeout:            m.ProbeTimeout,
		GossipInterval:          m.GossipInterval,
		GossipNodes:             m.GossipNodes,
		GossipToTheDeadTime:     m.GossipToTheDeadTime,
		DeadNodeReclaimTime:     30 * time.Second,
	}
}

// Validate reports the first problem with c, wrapped around
// ErrInvalidConfig. It never changes c.
func (c Config) Validate() error {
	for _, check := range []func() error{c.validateIdentity, c.validateNetwork, c.validateTimings, c.Gossip.validate, c.validateMetaSize} {
		if err := check(); err != nil {
			return fmt.Errorf("cluster config: %w", err)
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrInvalidConfig)...)
}

func (c Config) validateIdentity() error {
	switch {
	case c.NodeName == "":
		return invalid("NodeName is empty")
	case c.NodeID == "":
		return invalid("NodeID is empty")
	case strings.TrimSpace(c.NodeID) != c.NodeID:
		return invalid("NodeID %q has leading or trailing space", c.NodeID)
	case c.Datacenter == "":
		return invalid("Datacenter is empty")
	case c.Label == "":
		return invalid("Label is empty (it keeps separate clusters from merging)")
	case len(c.Label) > 255:
		return invalid("Label is %d bytes, at most 255", len(c.Label))
	case c.BootstrapExpect < 0:
		return invalid("BootstrapExpect %d is negative", c.BootstrapExpect)
	case c.BootstrapExpect > 64:
		return invalid("BootstrapExpect %d is implausibly large (at most 64)", c.BootstrapExpect)
	}
	return nil
}

func (c Config) validateNetwork() error {
	if net.ParseIP(c.BindAddr) == nil {
		return invalid("BindAddr %q is not an IP address", c.BindAddr)
	}
	if c.AdvertiseAddr != "" && net.ParseIP(c.AdvertiseAddr) == nil {
		return invalid("AdvertiseAddr %q is not an IP address", c.AdvertiseAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return invalid("BindPort %d out of range", c.BindPort)
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return invalid("AdvertisePort %d out of range", c.AdvertisePort)
	}
	for i, j := range c.Join {
		if strings.TrimSpace(j) == "" {
			return invalid("Join[%d] is empty", i)
		}
	}
	for _, a := range []struct{ name, addr string }{{"RaftAddr", c.RaftAddr}, {"GRPCAddr", c.GRPCAddr}} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return invalid("%s %q is not host:port (%v)", a.name, a.addr, err)
		}
	}
	return nil
}

func (c Config) validateTimings() error {
	switch {
	case c.ReconcileInterval <= 0:
		return invalid("ReconcileInterval %v must be positive", c.ReconcileInterval)
	case c.DeadServerTimeout <= 0:
		return invalid("DeadServerTimeout %v must be positive", c.DeadServerTimeout)
	case c.ServerStabilizationTime < 0:
		return invalid("ServerStabilizationTime %v must not be negative", c.ServerStabilizationTime)
	case c.JoinRetryMin <= 0:
		return invalid("JoinRetryMin %v must be positive", c.JoinRetryMin)
	case c.JoinRetryMax < c.JoinRetryMin:
		return invalid("JoinRetryMax %v is below JoinRetryMin %v", c.JoinRetryMax, c.JoinRetryMin)
	}
	return nil
}

func (g GossipConfig) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"TCPTimeout", g.TCPTimeout}, {"PushPullInterval", g.PushPullInterval}, {"ProbeInterval", g.ProbeInterval},
		{"ProbeTimeout", g.ProbeTimeout}, {"GossipInterval", g.GossipInterval}, {"GossipToTheDeadTime", g.GossipToTheDeadTime},
	} {
		if d.v <= 0 {
			return invalid("Gossip.%s %v must be positive", d.name, d.v)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{
		{"IndirectChecks", g.IndirectChecks}, {"RetransmitMult", g.RetransmitMult}, {"SuspicionMult", g.SuspicionMult},
		{"SuspicionMaxTimeoutMult", g.SuspicionMaxTimeoutMult}, {"GossipNodes", g.GossipNodes},
	} {
		if n.v <= 0 {
			return invalid("Gossip.%s %d must be positive", n.name, n.v)
		}
	}
	switch {
	case g.ProbeTimeout > g.ProbeInterval:
		return invalid("Gossip.ProbeTimeout %v exceeds ProbeInterval %v", g.ProbeTimeout, g.ProbeInterval)
	case g.DeadNodeReclaimTime < 0:
		return invalid("Gossip.DeadNodeReclaimTime %v is negative", g.DeadNodeReclaimTime)
	}
	return nil
}

// validateMetaSize checks that the largest metadata this node can gossip
// fits memberlist's limit (memberlist panics otherwise).
func (c Config) validateMetaSize() error {
	m := c.localMeta(true)
	m.Leaving = true
	m.BootstrapHash = ^uint64(0)
	if n := len(m.encode()); n > metaMaxSize {
		return invalid("node metadata would be %d bytes, at most %d (shorten NodeID, Datacenter, RaftAddr or GRPCAddr)", n, metaMaxSize)
	}
	return nil
}

// localMeta is this node's metadata for the given Raft state.
func (c Config) localMeta(hasState bool) nodeMeta {
	return nodeMeta{
		ID:              c.NodeID,
		Datacenter:      c.Datacenter,
		RaftAddr:        c.RaftAddr,
		GRPCAddr:        c.GRPCAddr,
		HasState:        hasState,
		BootstrapExpect: c.BootstrapExpect,
	}
}

// memberlistConfig builds the memberlist configuration. Delegates are set by
// New. memberlist logs go through logger (hclog), levels inferred from
// memberlist's "[DEBUG]"-style prefixes.
func (c Config) memberlistConfig(logger hclog.Logger) *memberlist.Config {
	m := memberlist.DefaultLANConfig()
	m.Name = c.NodeName
	m.Label = c.Label
	m.BindAddr = c.BindAddr
	m.BindPort = c.BindPort
	m.AdvertiseAddr = c.AdvertiseAddr
	m.AdvertisePort = c.AdvertisePort
	if m.AdvertisePort == 0 {
		// memberlist would advertise port 0 with an explicit address; with
		// BindPort 0 it fills in the bound port itself.
		m.AdvertisePort = c.BindPort
	}
	g := c.Gossip
	m.TCPTimeout = g.TCPTimeout
	m.IndirectChecks = g.IndirectChecks
	m.RetransmitMult = g.RetransmitMult
	m.SuspicionMult = g.SuspicionMult
	m.SuspicionMaxTimeoutMult = g.SuspicionMaxTimeoutMult
	m.PushPullInterval = g.PushPullInterval
	m.ProbeInterval = g.ProbeInterval
	m.ProbeTimeout = g.ProbeTimeout
	m.GossipInterval = g.GossipInterval
	m.GossipNodes = g.GossipNodes
	m.GossipToTheDeadTime = g.GossipToTheDeadTime
	m.DeadNodeReclaimTime = g.DeadNodeReclaimTime
	if c.Keyring != nil {
		m.Keyring = c.Keyring
		m.GossipVerifyIncoming, m.GossipVerifyOutgoing = true, true
	}
	m.LogOutput = nil
	m.Logger = logger.Named("memberlist").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	return m
}
