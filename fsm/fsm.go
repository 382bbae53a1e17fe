package fsm

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/internal/failpoint"
)

// ApplyJournal is called once for every command log the FSM applies, in
// log order, after the batch containing it has committed. cmd is the
// decoded command (for an undecodable command only Op is set, to the raw
// type byte). It runs on the FSM goroutine: it must be fast and must not
// call back into Apply or Restore.
type ApplyJournal func(index, term uint64, cmd Command, res ApplyResult)

// Option configures optional FSM behaviour.
type Option func(*FSM)

// WithApplyJournal installs a journal hook (used by the fault-test suite
// to record every command each node applied).
func WithApplyJournal(fn ApplyJournal) Option {
	return func(f *FSM) { f.journal = fn }
}

// applyFunc applies one decoded command inside the batch transaction.
type applyFunc func(w *writer, index uint64, cmd Command) ApplyResult

// FSM is chainstore's Raft state machine. It implements raft.FSM and
// raft.BatchingFSM. See the package documentation for the goroutine and
// locking model.
type FSM struct {
	logger  hclog.Logger
	journal ApplyJournal
	// handlers is the dispatch table, keyed by Op without
	// IgnoreUnknownFlag. Built in New; read-only afterwards.
	handlers map[Op]applyFunc
	feed     *Feed

	// storeMu guards store. Lock order: storeMu is never held while taking
	// waitMu or the feed's lock, nor while calling out.
	storeMu sync.RWMutex
	store   *Store

	// waitMu guards waitCh and serialises writes of applied. applied is
	// atomic so AppliedIndex never blocks.
	waitMu  sync.Mutex
	waitCh  chan struct{} // closed and replaced whenever applied changes
	applied atomic.Uint64
}

var (
	_ raft.FSM         = (*FSM)(nil)
	_ raft.BatchingFSM = (*FSM)(nil)
)

// New returns an FSM with an empty store. logger may be nil.
func New(logger hclog.Logger, opts ...Option) *FSM {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	f := &FSM{
		logger: logger.Named("fsm"),
		feed:   newFeed(),
		store:  newStore(),
		waitCh: make(chan struct{}),
	}
	f.handlers = map[Op]applyFunc{
		OpUpsert:    f.applyUpsert,
		OpUpsertCAS: f.applyUpsert,
		OpDelete:    f.applyDelete,
		OpDeleteCAS: f.applyDelete,
		OpNoop:      applyNoop,

		OpRegister:    f.applyRegister,
		OpDeregister:  applyDeregister,
		OpCheck:       applyCheck,
		OpCheckExpire: applyCheckExpire,

		OpACLBootstrap:    applyACLBootstrap,
		OpACLPolicySet:    applyACLPolicySet,
		OpACLPolicyDelete: applyACLPolicyDelete,
		OpACLTokenSet:     applyACLTokenSet,
		OpACLTokenDelete:  applyACLTokenDelete,
		OpReapTombstones:  applyReap,
	}
	for _, o := range opts {
		o(f)
	}
	return f
}

// Store returns the current store. A Restore replaces it (and closes the
// old one's AbandonCh), so long-lived readers re-fetch it after AbandonCh
// fires.
func (f *FSM) Store() *Store {
	f.storeMu.RLock()
	defer f.storeMu.RUnlock()
	return f.store
}

// Feed returns the change feed. It lives as long as the FSM; restores
// publish a Reset change-set on it.
func (f *FSM) Feed() *Feed { return f.feed }

// AppliedIndex returns the index of the last log the FSM has applied (or
// restored). It only counts logs raft hands to the FSM: commands and
// configuration changes, not raft's internal no-op and barrier logs.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// WaitForIndex blocks until AppliedIndex() >= idx or ctx is done (then it
// returns an error wrapping ctx.Err()). It wakes on the broadcast channel
// the FSM closes after every batch; it never polls.
//
// Note that raft's internal no-op and barrier logs never reach the FSM, so
// idx should be the index of a command or configuration log (see OpNoop).
func (f *FSM) WaitForIndex(ctx context.Context, idx uint64) error {
	for {
		f.waitMu.Lock()
		ch := f.waitCh
		f.waitMu.Unlock()
		applied := f.applied.Load()
		if applied >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for applied index %d (at %d): %w", idx, applied, ctx.Err())
		}
	}
}

// setApplied stores idx as the applied index and wakes WaitForIndex.
func (f *FSM) setApplied(idx uint64) {
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	f.applied.Store(idx)
	close(f.waitCh)
	f.waitCh = make(chan struct{})
}

// Apply implements raft.FSM. It is ApplyBatch of one log.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// journalRecord is a journal call deferred until the batch committed.
type journalRecord struct {
	index, term uint64
	cmd         Command
	res         ApplyResult
}

// ApplyBatch implements raft.BatchingFSM. The whole batch is one memdb
// write transaction and produces at most one ChangeSet. Each command is
// validated against the transaction's state as left by the commands before
// it, so a rejected command affects nothing else. Command logs get an
// ApplyResult; other logs (configuration changes) get nil, but their index
// still advances AppliedIndex.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	if len(logs) == 0 {
		return out
	}
	w := newWriter(f.Store())
	var journal []journalRecord
	var last uint64
	for i, l := range logs {
		last = max(last, l.Index)
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, res := f.applyCommand(w, l)
		out[i] = res
		if f.journal != nil {
			journal = append(journal, journalRecord{l.Index, l.Term, cmd, res})
		}
	}
	w.setApplied(last)
	failpoint.Hit(failpoint.FSMApplyBeforeCommit)
	w.txn.Commit()
	failpoint.Hit(failpoint.FSMApplyAfterCommit)
	f.setApplied(last)
	keys, services := w.changedKeys(), w.changedServices()
	failpoint.Hit(failpoint.FSMApplyBeforeNotify)
	if len(keys) > 0 || len(services) > 0 {
		f.feed.publish(ChangeSet{Index: last, Keys: keys, Services: services})
	}
	failpoint.Hit(failpoint.FSMApplyAfterNotify)
	for _, j := range journal {
		f.journal(j.index, j.term, j.cmd, j.res)
	}
	return out
}

// applyCommand decodes and dispatches one command log.
func (f *FSM) applyCommand(w *writer, l *raft.Log) (Command, ApplyResult) {
	if len(l.Data) == 0 {
		err := fmt.Errorf("decode command at index %d: empty: %w", l.Index, ErrMalformedCommand)
		f.logUndecodable(l, err)
		return Command{}, ApplyResult{Index: l.Index, Err: err}
	}
	raw := Op(l.Data[0])
	h, ok := f.handlers[logicalOp(raw.base())]
	if !ok {
		if raw&IgnoreUnknownFlag != 0 {
			f.logger.Warn("skipping unknown command type flagged as ignorable (newer leader?)",
				"index", l.Index, "type", fmt.Sprintf("0x%02x", uint8(raw)))
			return Command{Op: raw}, ApplyResult{Index: l.Index}
		}
		err := fmt.Errorf("apply command type 0x%02x at index %d: %w", uint8(raw), l.Index, ErrUnknownOp)
		f.logUndecodable(l, err)
		return Command{Op: raw}, ApplyResult{Index: l.Index, Err: err}
	}
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		f.logUndecodable(l, err)
		return Command{Op: raw}, ApplyResult{Index: l.Index, Err: err}
	}
	return cmd, h(w, l.Index, cmd)
}

// logUndecodable logs a command this replica cannot apply. Every replica
// running the same code rejects it alike, but one running different code
// might not: this is the signal that replicas may diverge.
func (f *FSM) logUndecodable(l *raft.Log, err error) {
	f.logger.Error("REJECTING UNDECODABLE COMMAND: replicas running a different version may diverge",
		"index", l.Index, "term", l.Term, "bytes", len(l.Data), "error", err)
}

// validate runs graph validation (chain.ValidateWrite via the writer's
// view, plus the caller's checks) and converts a panic in validation code
// into an ErrInternal result, so a compiler bug rejects one write instead
// of crashing every replica (hashicorp/consul#8466).
func (f *FSM) validate(index uint64, what commandWhat, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f.logger.Error("panic while validating command; rejecting it", "index", index, "command", what.String(), "panic", r)
			err = fmt.Errorf("validate %s at index %d: panic %v: %w", what, index, r, ErrInternal)
		}
	}()
	return fn()
}
