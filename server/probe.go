package server

import (
	"context"
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/cluster"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// probeMaxRecv bounds a probe's response (a StatusResponse is tiny).
const probeMaxRecv = 1 << 20

// statusProber is the cluster.Prober the leader uses before it removes a
// server that gossip reports failed or left: an OperatorService.Status
// call to the server's gRPC address, over the credentials the RPC
// forwarder dials other servers with (mutual TLS with a server
// certificate of this datacenter, when TLS is on). The server answers if
// the call succeeds and reports the expected node ID, or if it is refused
// by the server's ACLs (PermissionDenied or Unauthenticated: the server
// process is up and reachable, it only will not tell an anonymous caller
// its status; with TLS its server certificate was checked at the
// handshake). Anything else (cannot connect, deadline, another node ID)
// is "does not answer".
type statusProber struct {
	creds credentials.TransportCredentials
}

var _ cluster.Prober = (*statusProber)(nil)

func newStatusProber(tlsCfg *tls.Config) *statusProber {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	return &statusProber{creds: creds}
}

// prober returns the prober for this server's security settings.
func (sec *security) prober() cluster.Prober {
	if sec.tls != nil {
		return newStatusProber(sec.tls.OutgoingServer())
	}
	return newStatusProber(nil)
}

// Probe implements cluster.Prober. It dials a fresh connection (probes
// are rare: only for a server already due for removal) and closes it.
func (p *statusProber) Probe(ctx context.Context, id, grpcAddr string) error {
	conn, err := grpc.NewClient(grpcAddr,
		grpc.WithTransportCredentials(p.creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(probeMaxRecv)),
	)
	if err != nil {
		return fmt.Errorf("probe %s: create connection: %w", grpcAddr, err)
	}
	defer func() { _ = conn.Close() }()
	resp, err := chainstorev1.NewOperatorServiceClient(conn).Status(ctx, &chainstorev1.StatusRequest{})
	switch status.Code(err) {
	case codes.OK:
		if got := resp.GetNodeId(); got != id {
			return fmt.Errorf("probe %s: answered as node ID %q, want %q", grpcAddr, got, id)
		}
		return nil
	case codes.PermissionDenied, codes.Unauthenticated:
		return nil // refused by its ACLs: up and reachable
	default:
		return fmt.Errorf("probe %s: %w", grpcAddr, err)
	}
}
