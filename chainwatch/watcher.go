package chainwatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"time"
)

// EventKind says what a Watcher event is.
type EventKind uint8

// The events a Watcher emits.
const (
	// EventSubscribed: subscription ID is open.
	EventSubscribed EventKind = iota + 1
	// EventUpdate: Version is a version of subscription ID the client does
	// not have.
	EventUpdate
	// EventReset: the client must discard what it holds for subscription
	// ID; an EventUpdate with the current version follows.
	EventReset
	// EventProgress: the stream was idle for a progress interval; every
	// subscription is current as of Index.
	EventProgress
	// EventUnsubscribed: subscription ID is closed (Err set: refused).
	EventUnsubscribed
)

// String implements fmt.Stringer.
func (k EventKind) String() string {
	switch k {
	case EventSubscribed:
		return "subscribed"
	case EventUpdate:
		return "update"
	case EventReset:
		return "reset"
	case EventProgress:
		return "progress"
	case EventUnsubscribed:
		return "unsubscribed"
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one message for a Watcher's client.
type Event struct {
	Kind    EventKind
	ID      uint64   // subscription id (all kinds but EventProgress)
	Version *Version // EventUpdate
	Index   uint64   // EventProgress
	Err     error    // EventUnsubscribed when the server refused the subscription
}

// Refused reports whether err, returned by Watcher.Add, refuses only that
// subscription (the Watcher has queued an EventUnsubscribed carrying it
// and the stream can go on). Any other error means the stream cannot be
// served by this server.
func Refused(err error) bool {
	return errors.Is(err, ErrInvalidChain) || errors.Is(err, ErrTooManyChains) ||
		errors.Is(err, ErrTooManySubscriptions) || errors.Is(err, ErrDuplicateSubscription)
}

// Watcher multiplexes any number of chain subscriptions for one client
// stream. Add and Remove may be called from any goroutine; Next must be
// called from a single goroutine (the stream's sender), which it blocks
// until there is something to send. A Watcher holds, per subscription,
// only the last version it looked at, so a slow client skips intermediate
// versions and costs no memory for them.
type Watcher struct {
	hub *Hub
	cfg WatcherConfig

	wake chan struct{} // capacity 1: poked by Add, Remove and Close

	mu       sync.Mutex // protects the fields below; never held while blocking
	order    []*watch   // open subscriptions, scanned round-robin from next (a slice, not a map: it is small and memory per stream matters)
	next     int
	reserved []uint64 // ids of Adds in flight (counted against the cap)
	control  []Event  // queued Subscribed/Unsubscribed events, at most maxControl()
	overflow bool     // the client sent more requests than it read answers
	closed   bool
	// progressDue: RequestProgress was called; Next returns a Progress
	// event once nothing else is queued.
	progressDue bool

	// Owned by the goroutine calling Next.
	timer *time.Timer
	cases []reflect.SelectCase // only used with more than maxStaticSubs subscriptions
}

// maxStaticSubs is the number of subscriptions Next can wait on with a
// plain select; beyond it, it uses reflect.Select (slower, and it grows
// the goroutine's stack).
const maxStaticSubs = 4

// watch is one subscription of a Watcher. Fields after sub are guarded by
// Watcher.mu.
type watch struct {
	id    uint64
	sub   *Subscription
	epoch uint64   // the epoch of the versions this client has
	seen  *Version // the last version examined
	hash  string   // hash of the version the client has ("" for none)
}

// NewWatcher returns a Watcher reading hub.
func NewWatcher(hub *Hub, cfg WatcherConfig) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid watcher config: %w", err)
	}
	w := &Watcher{
		hub:  hub,
		cfg:  cfg,
		wake: make(chan struct{}, 1),
	}
	w.timer = time.NewTimer(w.progressDelay())
	hub.watchers.Add(1)
	return w, nil
}

// Add opens subscription id to the chain named by key. lastIndex and
// lastHash describe the version the client already has (0 and "" for
// none): if the current version has that hash nothing is sent, and if
// this server has not applied lastIndex Add waits for it, at most
// ResumeWait, and then fails with ErrBehind, so no version older than the
// client's is ever sent.
//
// On success an EventSubscribed is queued. For a refused subscription
// (see Refused) an EventUnsubscribed with the error is queued and the
// error returned. Other errors (ErrBehind, ErrStopped, ErrWatcherClosed,
// ctx's) mean the stream should end.
func (w *Watcher) Add(ctx context.Context, id uint64, key ChainKey, lastIndex uint64, lastHash string) error {
	w.mu.Lock()
	inUse := slices.Contains(w.reserved, id) || w.indexLocked(id) >= 0
	switch {
	case w.closed:
		w.mu.Unlock()
		return ErrWatcherClosed
	case id == 0 || inUse:
		w.mu.Unlock()
		return w.Refuse(id, fmt.Errorf("%w: %d", ErrDuplicateSubscription, id))
	case len(w.order)+len(w.reserved) >= w.cfg.MaxSubscriptions:
		w.mu.Unlock()
		return w.Refuse(id, fmt.Errorf("%w (limit %d)", ErrTooManySubscriptions, w.cfg.MaxSubscriptions))
	}
	w.reserved = append(w.reserved, id)
	w.mu.Unlock()

	if lastIndex > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.cfg.ResumeWait)
		defer cancel()
	}
	sub, err := w.hub.Subscribe(ctx, key, lastIndex)

	w.mu.Lock()
	if i := slices.Index(w.reserved, id); i >= 0 {
		w.reserved = slices.Delete(w.reserved, i, i+1)
	}
	if err == nil && w.closed {
		sub.Close()
		err = ErrWatcherClosed
	}
	if err != nil {
		w.mu.Unlock()
		if Refused(err) {
			return w.Refuse(id, err)
		}
		return err
	}
	wt := &watch{id: id, sub: sub, epoch: sub.Current().Epoch, hash: lastHash}
	w.order = append(w.order, wt)
	err = w.queueLocked(Event{Kind: EventSubscribed, ID: id})
	w.mu.Unlock()
	w.poke()
	return err
}

// Refuse queues an EventUnsubscribed for id carrying err and returns err:
// for a subscription request the caller rejected before Add (a malformed
// chain reference), so the client gets the same answer as for one Add
// refused.
func (w *Watcher) Refuse(id uint64, err error) error {
	w.mu.Lock()
	if qerr := w.queueLocked(Event{Kind: EventUnsubscribed, ID: id, Err: err}); qerr != nil {
		err = qerr
	}
	w.mu.Unlock()
	w.poke()
	return err
}

// Remove closes subscription id and queues an EventUnsubscribed (also for
// an id that is not open, so the client always gets an answer). It does
// not cancel an Add of the same id still in flight on another goroutine.
func (w *Watcher) Remove(id uint64) { w.Drop(id, nil) }

// Drop is Remove with a reason: the EventUnsubscribed carries err (for a
// subscription the server ends, such as one whose chain the caller may no
// longer read).
func (w *Watcher) Drop(id uint64, err error) {
	w.mu.Lock()
	var wt *watch
	if i := w.indexLocked(id); i >= 0 {
		wt = w.order[i]
		w.order = slices.Delete(w.order, i, i+1)
		if w.next > i {
			w.next--
		}
	}
	_ = w.queueLocked(Event{Kind: EventUnsubscribed, ID: id, Err: err}) // an overflow ends the stream in Next
	w.mu.Unlock()
	if wt != nil {
		wt.sub.Close()
	}
	w.poke()
}

// maxControl bounds the queue of unanswered requests, so a client that
// sends requests without reading the answers cannot grow server memory.
func (w *Watcher) maxControl() int { return 2*w.cfg.MaxSubscriptions + 16 }

// queueLocked queues a Subscribed/Unsubscribed event, or marks the
// Watcher overflowed (Next then fails with ErrRequestBacklog).
func (w *Watcher) queueLocked(ev Event) error {
	if len(w.control) >= w.maxControl() {
		w.overflow = true
		return ErrRequestBacklog
	}
	w.control = append(w.control, ev)
	return nil
}

// indexLocked returns the position of subscription id in order, or -1.
func (w *Watcher) indexLocked(id uint64) int {
	return slices.IndexFunc(w.order, func(wt *watch) bool { return wt.id == id })
}

// Len returns the number of open subscriptions.
func (w *Watcher) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.order)
}

// Close closes every subscription; Next then returns ErrWatcherClosed. It
// is idempotent.
func (w *Watcher) Close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	w.hub.watchers.Add(-1)
	order := w.order
	w.order, w.control = nil, nil
	w.mu.Unlock()
	for _, wt := range order {
		wt.sub.Close()
	}
	w.timer.Stop()
	w.poke()
}

// RequestProgress makes Next return a Progress event soon (after any
// queued event), as if the stream had been idle: the caller has something
// to say in it (the rpc layer: this server lost or regained its leader).
// Safe to call from any goroutine.
func (w *Watcher) RequestProgress() {
	w.mu.Lock()
	w.progressDue = true
	w.mu.Unlock()
	w.poke()
}

func (w *Watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Next blocks until there is an event for the client and returns it:
// queued Subscribed/Unsubscribed events first, then the newest version of
// any subscription the client does not have (round-robin), then a
// Progress event when the stream was idle for a progress interval. It
// returns ctx's error when ctx is done, ErrStopped when the hub stopped,
// ErrRequestBacklog when the client sent requests faster than it read
// the answers, and ErrWatcherClosed after Close.
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return Event{}, ErrWatcherClosed
		}
		if w.overflow {
			w.mu.Unlock()
			return Event{}, ErrRequestBacklog
		}
		ev, ok := w.popLocked()
		if ok {
			w.mu.Unlock()
			w.timer.Reset(w.progressDelay())
			return ev, nil
		}
		if w.progressDue {
			w.progressDue = false
			w.mu.Unlock()
			return w.progress(), nil
		}
		if len(w.order) <= maxStaticSubs {
			var subs [maxStaticSubs]<-chan struct{} // nil channels never fire
			for i, wt := range w.order {
				if wt.seen != nil {
					subs[i] = wt.seen.superseded
				}
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return Event{}, ctx.Err()
			case <-w.hub.done:
				return Event{}, ErrStopped
			case <-w.timer.C:
				return w.progress(), nil
			case <-w.wake:
			case <-subs[0]:
			case <-subs[1]:
			case <-subs[2]:
			case <-subs[3]:
			}
			continue
		}
		w.buildCasesLocked(ctx)
		w.mu.Unlock()

		chosen, _, _ := reflect.Select(w.cases)
		w.cases = w.cases[:0] // drop the channel references until the next wait
		switch chosen {
		case 0:
			return Event{}, ctx.Err()
		case 1:
			return Event{}, ErrStopped
		case 2: // wake: Add, Remove or Close
		case 3:
			return w.progress(), nil
		default: // a version was superseded
		}
	}
}

// progress returns a Progress event and restarts the idle timer.
func (w *Watcher) progress() Event {
	w.timer.Reset(w.progressDelay())
	return Event{Kind: EventProgress, Index: w.hub.Index()}
}

// popLocked returns the next event, if any.
func (w *Watcher) popLocked() (Event, bool) {
	if len(w.control) > 0 {
		ev := w.control[0]
		w.control[0] = Event{}
		w.control = w.control[1:]
		if len(w.control) == 0 {
			w.control = nil // release the backing array of an idle stream
		}
		return ev, true
	}
	n := len(w.order)
	for i := 0; i < n; i++ {
		j := (w.next + i) % n
		wt := w.order[j]
		v := wt.sub.Current()
		if v == wt.seen {
			continue
		}
		if v.Epoch != wt.epoch {
			// The store was restored: whatever the client holds may not
			// compare with this server's versions any more.
			wt.epoch, wt.hash, wt.seen = v.Epoch, "", nil
			w.next = j
			return Event{Kind: EventReset, ID: wt.id}, true
		}
		if wt.seen != nil && v.seq > wt.seen.seq+1 {
			w.hub.skipped.Add(v.seq - wt.seen.seq - 1)
		}
		wt.seen = v
		if v.Hash == wt.hash {
			continue
		}
		wt.hash = v.Hash
		w.next = (j + 1) % n
		w.hub.deliveries.Add(1)
		return Event{Kind: EventUpdate, ID: wt.id, Version: v}, true
	}
	return Event{}, false
}

// buildCasesLocked prepares the select: ctx, hub stop, wake, progress
// timer, then the Superseded channel of each subscription's last-seen
// version.
func (w *Watcher) buildCasesLocked(ctx context.Context) {
	w.cases = w.cases[:0]
	w.cases = append(w.cases,
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w.hub.Done())},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w.wake)},
		reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w.timer.C)},
	)
	for _, wt := range w.order {
		if wt.seen != nil {
			w.cases = append(w.cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(wt.seen.superseded)})
		}
	}
}

// progressDelay is the progress interval plus random jitter.
func (w *Watcher) progressDelay() time.Duration {
	d := w.cfg.ProgressInterval
	if j := int64(float64(d) * w.cfg.ProgressJitter); j > 0 {
		d += time.Duration(rand.Int64N(j))
	}
	return d
}
