package server

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/hashicorp/memberlist"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/rpc"
	"github.com/chainstore/chainstore/tlsutil"
)

// ErrInsecure is returned by New for a server that would listen on a
// non-loopback address without TLS or gossip encryption.
var ErrInsecure = errors.New("refusing to start without TLS and a gossip key on a non-loopback address")

// security holds what the TLS and gossip-encryption settings give each
// layer (docs/security.md). Its zero parts mean "off".
type security struct {
	tls     *tlsutil.Configurator
	keyring *memberlist.Keyring
}

// setupSecurity loads the certificates and the gossip keyring and refuses
// an unprotected server on a non-loopback address unless cfg.Insecure.
func setupSecurity(cfg Config) (*security, error) {
	sec := &security{}
	if cfg.TLS != nil {
		tc := *cfg.TLS
		tc.Datacenter = cfg.Datacenter
		var err error
		if sec.tls, err = tlsutil.NewConfigurator(tc); err != nil {
			return nil, fmt.Errorf("load TLS files: %w", err)
		}
	}
	kr, err := cluster.LoadKeyring(cfg.DataDir, cfg.Encrypt)
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	sec.keyring = kr
	if cfg.Insecure || (sec.tls != nil && sec.keyring != nil) {
		return sec, nil
	}
	for _, a := range []string{cfg.RaftAddr, cfg.GossipAddr, cfg.GRPCAddr, cfg.RaftAdvertise, cfg.GossipAdvertise, cfg.GRPCAdvertise, cfg.HTTPAddr} {
		if a != "" && !isLoopback(a) {
			var missing []string
			if sec.tls == nil {
				missing = append(missing, "TLS (--ca-file, --cert-file, --key-file)")
			}
			if sec.keyring == nil {
				missing = append(missing, "a gossip key (--encrypt)")
			}
			return nil, fmt.Errorf("%w: %s is not loopback and %s not set; pass --insecure to run unprotected anyway",
				ErrInsecure, a, strings.Join(missing, " and "))
		}
	}
	return sec, nil
}

// isLoopback reports whether the host of addr is a loopback IP or
// "localhost" (an unspecified or other address is not).
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (sec *security) raft(rc *raftnode.Config) {
	if sec.tls != nil {
		rc.TLS = sec.tls
	}
}

func (sec *security) cluster(cc *cluster.Config) {
	cc.Keyring = sec.keyring
	if sec.tls != nil {
		cc.VerifyServer = sec.tls.VerifyServerAt
	}
}

func (sec *security) rpc(rc *rpc.ServerConfig) {
	if sec.tls != nil {
		rc.ForwardTLS = sec.tls.OutgoingServer()
	}
}

func (sec *security) grpcOptions() []grpc.ServerOption {
	if sec.tls == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(sec.tls.IncomingGRPC()))}
}

// TLS returns the server's TLS configurator, nil without TLS. The HTTP
// API uses its IncomingHTTPS.
func (s *Server) TLS() *tlsutil.Configurator { return s.tls }

// ReloadTLS reads the CA, certificate and key files again (cmd/stored
// calls it on SIGHUP). New connections use the new files; on error the
// old ones stay in use.
func (s *Server) ReloadTLS() error {
	if s.tls == nil {
		return errors.New("TLS is not enabled on this server")
	}
	if err := s.tls.Reload(); err != nil {
		return fmt.Errorf("reload TLS: %w", err)
	}
	s.logger.Info("TLS certificates reloaded", "subject", s.tls.Leaf().Subject.CommonName, "not_after", s.tls.Leaf().NotAfter)
	return nil
}

// keyring adapts the cluster's gossip keyring for the operator RPCs: a
// change is applied to memberlist and persisted in the data dir.
type keyring struct {
	c       *cluster.Cluster
	dataDir string
}

var _ rpc.Keyring = keyring{}

func (k keyring) Keys() []string { return k.c.Keys() }

func (k keyring) Change(op cluster.KeyringOp, key string) error {
	return k.c.ChangeKeyring(k.dataDir, op, key)
}

// RefusedMembers returns the gossip members this server, as leader,
// refused to adopt (name -> reason): identity conflicts and, with TLS,
// members without a server certificate for their name.
func (s *Server) RefusedMembers() map[string]string { return s.cluster.Refused() }

// Members returns the gossip members this server knows (cluster.Members).
func (s *Server) Members() []cluster.Member { return s.cluster.Members() }
