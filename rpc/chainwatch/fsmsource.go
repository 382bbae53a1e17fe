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
func (s fsmSource) FeedHead() FeedItem                               { return fsmFeedItem{s.f.Feed().Head()} }
func (s fsmSource) AppliedIndex() uint64                             { return s.f.AppliedIndex() }
func (s fsmSource) WaitForIndex(ctx context.Context, i uint64) error { return s.f.WaitForIndex(ctx, i) }

type fsmFeedItem struct{ it *fsm.FeedItem }

func (i fsmFeedItem) Ready() <-chan struct{} { return i.it.Ready() }
func (i fsmFeedItem) Next() FeedItem         { return fsmFeedItem{i.it.Next()} }
func (i fsmFeedItem) Change() ChangeSet {
	c := i.it.Change()
	return ChangeSet{Index: c.Index, Keys: c.Keys, Reset: c.Reset}
}
