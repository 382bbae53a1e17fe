package cluster

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// GossipCut is a fault-injection hook for tests: while set, the node it is
// given to (Config.TestGossipCut) drops all of its gossip traffic, in and
// out, UDP and TCP, as a firewall rule on the gossip port alone would.
// Raft and gRPC are untouched, so it models a gossip-only partition. The
// zero value is ready (not cut). Production configs leave it nil, and then
// memberlist's own transport is used unchanged.
type GossipCut struct {
	cut atomic.Bool
}

// Set cuts (true) or restores (false) the node's gossip traffic.
func (g *GossipCut) Set(cut bool) { g.cut.Store(cut) }

// Cut reports whether gossip is cut.
func (g *GossipCut) Cut() bool { return g.cut.Load() }

// errGossipCut is what a dial fails with while gossip is cut.
var errGossipCut = errors.New("gossip cut by test hook")

// cutTransport wraps memberlist's network transport and drops everything
// while its GossipCut is set.
type cutTransport struct {
	*memberlist.NetTransport
	gc       *GossipCut
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	// closing is closed when Shutdown starts: the forwarders then drop
	// what they read but keep draining the network transport, whose
	// listeners would otherwise block on an undelivered packet and never
	// let its Shutdown return. done is closed once it has returned.
	closing  chan struct{}
	done     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

var _ memberlist.NodeAwareTransport = (*cutTransport)(nil)

// newCutTransport creates the network transport memberlist would create
// for mlc (filling in the bound port when mlc.BindPort is 0, as
// memberlist does) and wraps it.
func newCutTransport(mlc *memberlist.Config, gc *GossipCut) (*cutTransport, error) {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{mlc.BindAddr},
		BindPort:  mlc.BindPort,
		Logger:    mlc.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("create gossip transport: %w", err)
	}
	if mlc.BindPort == 0 {
		mlc.BindPort = nt.GetAutoBindPort()
		mlc.AdvertisePort = mlc.BindPort
	}
	t := &cutTransport{
		NetTransport: nt,
		gc:           gc,
		packetCh:     make(chan *memberlist.Packet),
		streamCh:     make(chan net.Conn),
		closing:      make(chan struct{}),
		done:         make(chan struct{}),
	}
	t.wg.Go(t.forwardPackets)
	t.wg.Go(t.forwardStreams)
	return t, nil
}

func (t *cutTransport) forwardPackets() {
	in := t.NetTransport.PacketCh()
	for {
		select {
		case <-t.done:
			return
		case p := <-in:
			if t.gc.Cut() {
				continue
			}
			select {
			case t.packetCh <- p:
			case <-t.closing:
			case <-t.done:
				return
			}
		}
	}
}

func (t *cutTransport) forwardStreams() {
	in := t.NetTransport.StreamCh()
	for {
		select {
		case <-t.done:
			return
		case c := <-in:
			if t.gc.Cut() {
				_ = c.Close()
				continue
			}
			select {
			case t.streamCh <- c:
			case <-t.closing:
				_ = c.Close()
			case <-t.done:
				_ = c.Close()
				return
			}
		}
	}
}

// PacketCh implements memberlist.Transport.
func (t *cutTransport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// StreamCh implements memberlist.Transport.
func (t *cutTransport) StreamCh() <-chan net.Conn { return t.streamCh }

// WriteTo implements memberlist.Transport: dropped while cut.
func (t *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.gc.Cut() {
		return time.Now(), nil
	}
	return t.NetTransport.WriteTo(b, addr)
}

// WriteToAddress implements memberlist.NodeAwareTransport: dropped while cut.
func (t *cutTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	if t.gc.Cut() {
		return time.Now(), nil
	}
	return t.NetTransport.WriteToAddress(b, a)
}

// DialTimeout implements memberlist.Transport: fails while cut.
func (t *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.gc.Cut() {
		return nil, errGossipCut
	}
	return t.NetTransport.DialTimeout(addr, timeout)
}

// DialAddressTimeout implements memberlist.NodeAwareTransport: fails
// while cut.
func (t *cutTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.gc.Cut() {
		return nil, errGossipCut
	}
	return t.NetTransport.DialAddressTimeout(a, timeout)
}

// Shutdown implements memberlist.Transport: it stops the forwarding
// goroutines and the network transport.
func (t *cutTransport) Shutdown() error {
	var err error
	t.stopOnce.Do(func() {
		close(t.closing)
		err = t.NetTransport.Shutdown()
		close(t.done)
		t.wg.Wait()
	})
	return err
}
