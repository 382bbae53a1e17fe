package fsm

import (
	"sync"
	"sync/atomic"

	"github.com/chainstore/chainstore/chain"
)

// ChangeSet describes one applied Raft batch that changed the store.
//
// Index is the last Raft index of the batch: once AppliedIndex() >= Index,
// every store read reflects the change. Keys are the keys whose entries
// were created, replaced or deleted, sorted by (kind, name) and deduped;
// rejected, CAS-failed and no-op commands (a delete of an absent key)
// contribute nothing. Reset is true when a Restore replaced the whole
// store: Keys is then empty, indexes may have gone backwards, and readers
// must resynchronise everything they derived from the store.
type ChangeSet struct {
	Index uint64
	Keys  []chain.Key
	// Services are the catalog services whose instances (or their health)
	// changed, sorted.
	Services []string
	Reset    bool
}

// Feed is the FSM's change feed: a singly linked list of ChangeSets with
// one writer (the FSM goroutine) and any number of readers. Readers hold
// a *FeedItem, wait on its Ready channel and then step to Next. Appending
// closes the previous item's Ready channel, which wakes every waiting
// reader at once; the writer never blocks on, or even knows about,
// readers. The Feed only references the newest item, so items no reader
// holds are garbage-collected. A reader that holds an old item keeps the
// items after it alive: readers must keep up or start again from Head.
type Feed struct {
	mu   sync.Mutex // serialises publish (only the FSM goroutine calls it)
	head atomic.Pointer[FeedItem]
}

// FeedItem is one element of the Feed.
type FeedItem struct {
	change ChangeSet
	ready  chan struct{}
	next   atomic.Pointer[FeedItem]
}

func newFeed() *Feed {
	f := &Feed{}
	// The first item is an empty sentinel so Head never returns nil.
	f.head.Store(&FeedItem{ready: make(chan struct{})})
	return f
}

// Head returns the newest item. Its own Change is already applied; a
// reader that starts here waits on Ready and processes Next().Change()
// onward.
func (f *Feed) Head() *FeedItem { return f.head.Load() }

// publish appends cs and wakes readers waiting on the previous item.
func (f *Feed) publish(cs ChangeSet) {
	item := &FeedItem{change: cs, ready: make(chan struct{})}
	f.mu.Lock()
	defer f.mu.Unlock()
	prev := f.head.Load()
	prev.next.Store(item)
	f.head.Store(item)
	close(prev.ready)
}

// Ready returns a channel closed once Next is available.
func (it *FeedItem) Ready() <-chan struct{} { return it.ready }

// Next returns the following item, or nil if Ready is not yet closed.
func (it *FeedItem) Next() *FeedItem { return it.next.Load() }

// Change returns the item's change-set. The sentinel item at the start
// of a Feed has a zero ChangeSet. Keys is shared: do not modify it.
func (it *FeedItem) Change() ChangeSet { return it.change }
