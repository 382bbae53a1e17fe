package rpc

import "github.com/chainstore/chainstore/fsm"

// WithLogFormat makes the entries, catalog and ACL services write their
// Raft commands in format f (fsm.LogFormatV0 only during a rolling upgrade
// from a release before log format v1; docs/operations.md).
func WithLogFormat(f fsm.LogFormat) ServicesOption {
	return func(s *Services) {
		p := s.entries.proposer.WithLogFormat(f)
		s.entries.proposer, s.catalog.proposer, s.acl.proposer = p, p, p
	}
}
