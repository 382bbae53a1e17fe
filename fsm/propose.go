package fsm

import (
	"context"
	"fmt"
)

// Applier is what a Proposer needs from the Raft node (raftnode.Node):
// submit one encoded command and wait for its commit. resp is what this
// FSM's Apply returned for it.
type Applier interface {
	Apply(ctx context.Context, cmd []byte) (resp any, index uint64, err error)
}

// Proposer submits typed commands through Raft and unwraps this FSM's
// typed results, so command encoding and result decoding live next to
// the FSM that defines both.
type Proposer struct {
	raft   Applier
	format LogFormat
}

// NewProposer returns a Proposer that applies through r, writing the
// current log format.
func NewProposer(r Applier) *Proposer { return &Proposer{raft: r} }

// WithLogFormat returns a Proposer like p that writes commands in format
// f (see LogFormatV0).
func (p *Proposer) WithLogFormat(f LogFormat) *Proposer {
	return &Proposer{raft: p.raft, format: f}
}

// Apply encodes cmd, applies it through Raft and returns the FSM's
// result. A rejection by the FSM (an invalid entry, graph validation) is
// returned as the error, with the result's Index; a CAS check that did
// not pass is a result with Applied false and no error. Errors of the
// Raft node (not the leader, unknown outcome, ...) pass through as they
// are, so callers match them with errors.Is against raftnode's sentinels.
func (p *Proposer) Apply(ctx context.Context, cmd Command) (ApplyResult, error) {
	data, err := EncodeCommandFormat(cmd, p.format)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("encode %s command: %w", cmd.Op, err)
	}
	resp, index, err := p.raft.Apply(ctx, data)
	if err != nil {
		return ApplyResult{Index: index}, err
	}
	res, ok := resp.(ApplyResult)
	if !ok {
		return ApplyResult{Index: index}, fmt.Errorf("apply %s at index %d: FSM returned %T, want fsm.ApplyResult", cmd.Op, index, resp)
	}
	if res.Err != nil {
		return res, res.Err
	}
	return res, nil
}
