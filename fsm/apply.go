package fsm

import (
	"fmt"

	"github.com/chainstore/chainstore/chain"
)

// casAllows implements the CAS table (docs/discovery-chain.md, Operations
// and CAS) for upsert-cas:
// 0 = create only; N > 0 = only if the entry exists with ModifyIndex N.
func casAllows(cas uint64, existing *StoredEntry) bool {
	if cas == 0 {
		return existing == nil
	}
	return existing != nil && existing.ModifyIndex == cas
}

// applyUpsert handles OpUpsert and OpUpsertCAS: Prepare the entry
// (defensive: the leader validated it before Raft), check the CAS table,
// run graph validation against the batch's current state with the entry
// substituted in, and only then write. Any rejection leaves the state
// unchanged.
func (f *FSM) applyUpsert(w *writer, index uint64, cmd Command) ApplyResult {
	res := ApplyResult{Index: index}
	e := cmd.Entry
	if e == nil {
		res.Err = fmt.Errorf("apply %s at index %d without entry: %w", cmd.Op, index, ErrMalformedCommand)
		return res
	}
	what := commandWhat{cmd.Op, cmd.Key} // formatted only if logged
	if err := f.validate(index, what, func() error { return chain.Prepare(e) }); err != nil {
		f.logger.Warn("rejecting invalid entry (the leader should have caught it)",
			"index", index, "command", what.String(), "error", err)
		res.Err = err
		return res
	}
	key := chain.KeyOf(e.GetKind(), e.GetName())
	v := w.view()
	existing := v.entry(key)
	if cmd.Op == OpUpsertCAS && !casAllows(cmd.CASIndex, existing) {
		return res
	}
	err := f.validate(index, what, func() error {
		return chain.ValidateWrite(v, chain.Change{Key: key, Entry: e})
	})
	if err != nil {
		f.logger.Debug("rejecting write that fails graph validation", "index", index, "command", what.String(), "error", err)
		res.Err = err
		return res
	}
	createIndex := index
	if existing != nil {
		createIndex = existing.CreateIndex
	}
	w.put(newStoredEntry(e, createIndex, index), index)
	res.Applied = true
	return res
}

// applyDelete handles OpDelete and OpDeleteCAS. A plain delete of an
// absent entry succeeds and changes nothing (no tombstone, no index bump).
// delete-cas with index 0 never deletes; with N it deletes only an entry
// whose ModifyIndex is N. A delete that would break a remaining chain is
// rejected by graph validation.
func (f *FSM) applyDelete(w *writer, index uint64, cmd Command) ApplyResult {
	res := ApplyResult{Index: index}
	key := chain.KeyOf(cmd.Key.Kind, cmd.Key.Name)
	v := w.view()
	existing := v.entry(key)
	if cmd.Op == OpDeleteCAS && (cmd.CASIndex == 0 || !casAllows(cmd.CASIndex, existing)) {
		return res
	}
	if existing == nil {
		res.Applied = true
		return res
	}
	what := commandWhat{cmd.Op, key}
	err := f.validate(index, what, func() error {
		return chain.ValidateWrite(v, chain.Change{Key: key})
	})
	if err != nil {
		f.logger.Debug("rejecting delete that fails graph validation", "index", index, "command", what.String(), "error", err)
		res.Err = err
		return res
	}
	w.remove(existing, index)
	res.Applied = true
	return res
}

// commandWhat names a command in logs and errors ("upsert
// service-defaults/web"); it is built on every apply but formatted only
// on the rare paths that log or fail.
type commandWhat struct {
	op  Op
	key chain.Key
}

func (w commandWhat) String() string { return w.op.String() + " " + w.key.String() }

// applyNoop handles OpNoop: nothing changes, but the log's index advances
// AppliedIndex like every other log.
func applyNoop(_ *writer, index uint64, _ Command) ApplyResult {
	return ApplyResult{Index: index, Applied: true}
}
