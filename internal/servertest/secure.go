package servertest

import (
	"encoding/base64"
	"testing"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/tlstest"
	"github.com/chainstore/chainstore/server"
	"github.com/chainstore/chainstore/tlsutil"
)

// TestGossipKey is the gossip key of secure test clusters (32 bytes).
var TestGossipKey = base64.StdEncoding.EncodeToString([]byte("chainstore-test-gossip-key-32byt"))

// Secure returns a mutate function (for NewCluster) that runs every node
// in secure mode: a server certificate for its name from pki, client
// certificates required on gRPC, mutual TLS on Raft and gossip encrypted
// with TestGossipKey. then, if not nil, runs after it.
func Secure(pki *tlstest.PKI, then func(*server.Config)) func(*server.Config) {
	return func(cfg *server.Config) {
		f := pki.Server(cfg.NodeName)
		tc := tlsutil.DefaultConfig()
		tc.CAFile, tc.CertFile, tc.KeyFile = pki.CAFile, f.Cert, f.Key
		cfg.TLS = &tc
		cfg.Encrypt = TestGossipKey
		if then != nil {
			then(cfg)
		}
	}
}

// ClientTLS returns the client TLS settings of a fresh client certificate
// from pki.
func ClientTLS(pki *tlstest.PKI) api.TLSConfig {
	f := pki.Client()
	return api.TLSConfig{CAFile: pki.CAFile, CertFile: f.Cert, KeyFile: f.Key}
}

// NewTLSClient is NewClient with TLS settings.
func NewTLSClient(tb testing.TB, t api.TLSConfig, addrs ...string) *api.Client {
	tb.Helper()
	cfg := api.DefaultClientConfig()
	cfg.Addrs = addrs
	cfg.TLS = t
	cl, err := api.NewClient(cfg)
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}
