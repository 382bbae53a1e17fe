package server

import (
	"crypto/tls"

	"github.com/chainstore/chainstore/cluster"
)

// Hooks for the external tests of this package (package server_test).

// Errors returns the channel on which s's goroutines report a failure
// (what Run waits for).
func (s *Server) Errors() <-chan error { return s.errCh }

// RaftFailure is the error a server reports when its Raft node failed.
type RaftFailure = raftFailure

// NewStatusProber is newStatusProber (the leader's dead-server probe).
func NewStatusProber(tlsCfg *tls.Config) cluster.Prober { return newStatusProber(tlsCfg) }
