package servertest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/server"
)

// Port allocation. A node keeps its addresses across a restart, so a test
// can crash a server and start it again as the same Raft peer. With port
// 0 the kernel would pick those ports from its ephemeral range, and while
// the node is down it may hand the same port to any outgoing connection
// of the machine (other test packages run at the same time), so the
// restart fails with "address already in use". Ports below the ephemeral
// range are never handed out by the kernel: pickPort probes one there
// that is free for TCP and UDP (gossip uses both) and returns it.

// fallbackEphemeralLow is the start of Linux's default ephemeral range.
const fallbackEphemeralLow = 32768

// pickPort returns a loopback port below the ephemeral range that is free
// now, or 0 (let the kernel choose) if none is found after many tries.
func pickPort() int {
	hi := ephemeralLow()
	lo := max(hi/2, 1024)
	for range 200 {
		p := lo + rand.IntN(hi-lo)
		if portFree(p) {
			return p
		}
	}
	return 0
}

// addr returns 127.0.0.1 with a port from pickPort.
func addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(pickPort())) }

// portFree reports whether p can be bound on loopback for TCP and UDP.
func portFree(p int) bool {
	a := fmt.Sprintf("127.0.0.1:%d", p)
	l, err := net.Listen("tcp", a)
	if err != nil {
		return false
	}
	defer func() { _ = l.Close() }()
	u, err := net.ListenPacket("udp", a)
	if err != nil {
		return false
	}
	_ = u.Close()
	return true
}

// ephemeralLow reads the start of the kernel's ephemeral port range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallbackEphemeralLow
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return fallbackEphemeralLow
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo < 4096 {
		return fallbackEphemeralLow
	}
	return lo
}

// newServer builds a server from cfg. On a node's first start a failure
// is retried (up to three more times) with newly picked ports: another
// test process may bind a port between pickPort's probe and the server's
// own bind. Restarts keep their ports and are not retried.
func newServer(tb testing.TB, cfg *server.Config, logger hclog.Logger, first bool) (*server.Server, error) {
	tb.Helper()
	for attempt := 0; ; attempt++ {
		srv, err := server.New(*cfg, logger)
		if err == nil || !first || attempt == 3 {
			return srv, err
		}
		tb.Logf("start %s failed (%v); retrying with other ports", cfg.NodeName, err)
		cfg.RaftAddr, cfg.GossipAddr, cfg.GRPCAddr = addr(), addr(), addr()
		if cfg.HTTPAddr != "" {
			cfg.HTTPAddr = addr()
		}
	}
}
