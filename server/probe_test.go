package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/tlstest"
	"github.com/chainstore/chainstore/server"
)

// TestStatusProber: the leader's probe answers for a live server with the
// expected node ID, over plain gRPC and over mutual TLS with ACLs, and
// fails for another ID, a dead address or the wrong credentials.
func TestStatusProber(t *testing.T) {
	skipInShort(t)
	probe := func(p cluster.Prober, id, addr string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return p.Probe(ctx, id, addr)
	}

	t.Run("plain", func(t *testing.T) {
		s := servertest.StartSingle(t)
		p := server.NewStatusProber(nil)
		if err := probe(p, s.Server().NodeID(), s.Addr()); err != nil {
			t.Errorf("Probe(live server) = %v, want nil", err)
		}
		if err := probe(p, "another-id", s.Addr()); err == nil || !strings.Contains(err.Error(), "answered as node ID") {
			t.Errorf("Probe(wrong ID) = %v, want an error naming the ID", err)
		}
		s.Stop()
		if err := probe(p, s.Server().NodeID(), s.Addr()); err == nil {
			t.Error("Probe(stopped server) = nil, want an error")
		}
	})

	t.Run("mutual TLS and ACLs", func(t *testing.T) {
		pki := tlstest.New(t, "dc1")
		s := servertest.StartSingle(t, servertest.Secure(pki, nil))
		p := server.NewStatusProber(pki.Configurator("s-prober").OutgoingServer())
		if err := probe(p, s.Server().NodeID(), s.Addr()); err != nil {
			t.Errorf("Probe(live TLS server) = %v, want nil", err)
		}
		if err := probe(server.NewStatusProber(nil), s.Server().NodeID(), s.Addr()); err == nil {
			t.Error("Probe(TLS server, no TLS) = nil, want an error")
		}
	})
}
