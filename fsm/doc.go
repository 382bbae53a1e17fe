// Package fsm is chainstore's replicated state machine: the Raft FSM, the
// in-memory indexed store of config entries it maintains, and the change
// feed that tells the fan-out layer what each applied batch touched.
//
// # Usage
//
// raftnode creates the FSM with New and hands it to raft as a
// raft.BatchingFSM. Writers encode a Command with EncodeCommand and submit
// the bytes through Raft; the leader gets the ApplyResult back as the
// ApplyFuture's response. Readers use FSM.Store() (Get, List, View) and
// watch AbandonCh in addition to the watch channels they get, because a
// Restore replaces the whole store. The fan-out layer walks the Feed.
// WaitForIndex gives read-your-writes and ReadIndex-style waits.
//
// # Commands
//
// A command is one type byte followed by a small binary header or, for
// upserts, catalog registrations and ACL commands, a protobuf body of
// proto/chainstore/raftlog/v1 under a type byte of its own (log format
// v1, command_v1.go; upserts use the direct wire codec of entrywire*.go).
// DecodeCommand also reads log format v0, where those bodies were JSON
// (upserts: the canonical entry JSON of chain.EncodeEntry, decoded with
// chain.DecodeCanonical); EncodeCommand writes v1, EncodeCommandFormat
// either (docs/design.md, Raft log command format). The dispatch table is built in New as a field of
// the FSM; there is no global registry. A type byte with IgnoreUnknownFlag
// set that this binary does not know is skipped (a newer leader may emit
// additive commands during a rolling upgrade).
//
// Any other unknown type, and any command body that does not decode, yields
// an ApplyResult whose Err wraps ErrUnknownOp or ErrMalformedCommand, and is
// logged at error level; it does not panic, unlike Consul's FSM. Reasons:
//
//   - Content validation (chain.Prepare) happens on the leader before Raft,
//     and the only producer of command bytes is EncodeCommand, so an
//     undecodable command is not a user error that reaches the log in
//     normal operation.
//   - Decoding is a pure function of the log bytes, so every replica running
//     the same code rejects the same command the same way: the rejection is
//     a deterministic no-op and the replicas do not diverge. (Graph
//     validation failures are handled exactly like that too.)
//   - A panic would not heal anything: the log entry is committed and is
//     re-applied on every restart, so a panicking replica crash-loops until
//     an operator intervenes, and a bad entry can take down every server at
//     once. Library code must not panic on input.
//   - The remaining risk is version skew (an old replica rejecting a
//     non-ignorable command a newer one applies). That is prevented by
//     upgrade discipline (new ops ship with IgnoreUnknownFlag, or are only
//     emitted once every server is upgraded) and made visible by the loud
//     "REJECTING UNDECODABLE COMMAND" log line and by comparing Store.Hash
//     across replicas.
//
// A panic inside validation code (a compiler bug, cf. hashicorp/consul#8466)
// is recovered and returned as an ErrInternal result, for the same reason.
//
// # Apply semantics
//
// Upserts replace the whole entry, keep CreateIndex and set ModifyIndex to
// the log index. upsert-cas and delete-cas follow the CAS table of
// docs/discovery-chain.md, Operations and CAS (index 0: create only;
// delete-cas with 0 never deletes); a failed check
// returns Applied=false with no error. Deleting an absent entry succeeds
// and changes nothing. Every upsert and delete that would change the store
// is graph-validated first (chain.ValidateWrite over a View of the batch's
// current state with the change overlaid); a rejected command leaves the
// state unchanged and returns the *chain.GraphError. Deletes leave a
// tombstone (key, deletion index) that a re-create removes.
//
// One raft batch is one memdb write transaction and at most one ChangeSet.
// Each command in the batch sees the effects of the commands before it, and
// a rejected command does not affect the others.
//
// # Indexes
//
// Get returns the entry's own ModifyIndex (or its tombstone's index);
// List returns a per-kind index (highest index that changed that kind);
// View.Index is the applied Raft index. No single-entry read ever uses a
// table-wide index.
//
// # Goroutines
//
// The package starts no goroutines of its own and has nothing to stop.
//
//   - Raft's FSM goroutine calls Apply, ApplyBatch, Snapshot and Restore,
//     one at a time. It is the only writer of the store, the applied index
//     and the feed.
//   - Raft's snapshot goroutine calls fsmSnapshot.Persist, concurrently with
//     Apply; it reads a frozen memdb read transaction, so it needs no lock.
//   - Any goroutine may call Store, AppliedIndex, WaitForIndex, Feed and the
//     read methods of Store, View and FeedItem. Readers are never waited on
//     by the writer: wake-ups are broadcast by closing channels (memdb watch
//     channels, the WaitForIndex channel, FeedItem.Ready, AbandonCh).
//   - The ApplyJournal hook runs on the FSM goroutine after each batch.
//
// Locks: FSM.storeMu guards the current *Store pointer (held only to read
// or swap it); FSM.waitMu guards the WaitForIndex channel; Feed.mu
// serialises appends. None is held while another is taken, or while
// calling out, so there is no lock order to respect. memdb's internal
// writer lock is taken only by the FSM goroutine.
package fsm
