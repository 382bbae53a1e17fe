package server

import (
	"fmt"
	"net"
	"net/http"

	"github.com/chainstore/chainstore/httpapi"
	"github.com/chainstore/chainstore/metrics"
	"github.com/chainstore/chainstore/rpc"
)

// newHTTP binds the HTTP API's listener and builds it over the rpc
// services (in-process, through rpc.Local). It does nothing when
// cfg.HTTPAddr is empty.
func (s *Server) newHTTP(rpcCfg rpc.ServerConfig) error {
	if s.cfg.HTTPAddr == "" {
		return nil
	}
	hc := s.cfg.HTTP
	hc.Datacenter = s.cfg.Datacenter
	hc.MaxBodySize = int64(rpcCfg.MaxEntrySize)
	// With TLS on, the HTTP API is HTTPS with the server's certificate
	// (and, with VerifyIncoming, client certificates required), reloaded
	// with the others.
	if s.tls != nil && hc.TLS == nil {
		hc.TLS = s.tls.IncomingHTTPS()
	}
	// A blocking query may wait MaxQueryWait plus 1/16 jitter; the write
	// deadline must not cut it off.
	if need := rpcCfg.MaxQueryWait + rpcCfg.MaxQueryWait/16 + rpcCfg.DefaultCallTimeout; hc.WriteTimeout < need {
		hc.WriteTimeout = need
	}
	var err error
	s.http, err = httpapi.New(hc, rpc.NewLocal(rpcCfg, s.rpc, s.logger.Named("http")), s.raft, s.logger.Named("http"))
	if err != nil {
		return err
	}
	s.http.HandleMetrics(s.metrics.Handler())
	s.http.Observe(s.metrics.ObserveHTTP)
	s.httpLis, err = net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP address %s: %w", s.cfg.HTTPAddr, err)
	}
	return nil
}

// Metrics returns the server's metrics registry (served by the HTTP API
// as /v1/agent/metrics).
func (s *Server) Metrics() *metrics.Registry { return s.metrics }

// HTTPAddr returns the bound HTTP API address ("" when it serves none).
func (s *Server) HTTPAddr() string {
	if s.httpLis == nil {
		return ""
	}
	return s.httpLis.Addr().String()
}

// Mount serves h under prefix on the HTTP API's listener (the web UI
// under "/ui/"). Call it before Start. It fails when the server serves no
// HTTP, or for a prefix under /v1/ or one already mounted.
func (s *Server) Mount(prefix string, h http.Handler) error {
	if s.http == nil {
		return fmt.Errorf("mount %s: the server serves no HTTP (set --http-addr)", prefix)
	}
	return s.http.Mount(prefix, h)
}
