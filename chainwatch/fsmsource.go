package chainwatch

import (
	"context"

	"github.com/chainstore/chainstore/fsm"
)

// FSMSource adapts the replicated store's state machine to a Source.
func FSMSource(f *fsm.FSM) Source { return fsmSource{f: f} }

type fsmSource struct{ f *fsm.FSM }

var _ Source = fsmSource{}

func (s fsmSource) View() View                                       { return s.f.Store().View() }
func (s fsmSource) FeedHead() *fsm.FeedItem                          { return s.f.Feed().Head() }
func (s fsmSource) AppliedIndex() uint64                             { return s.f.AppliedIndex() }
func (s fsmSource) WaitForIndex(ctx context.Context, i uint64) error { return s.f.WaitForIndex(ctx, i) }
