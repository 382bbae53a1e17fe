package chaos

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/chainstore/chainstore/chain"
)

// Infinity is the return time of an operation whose outcome is unknown
// (docs/reliability.md, Client outcomes): the checker may place it
// anywhere after its call.
const Infinity = int64(math.MaxInt64)

// OpKind is the kind of a client operation.
type OpKind uint8

// Client operations of the workload.
const (
	OpGet    OpKind = iota + 1 // linearizable read of one entry
	OpPut                      // plain upsert
	OpCAS                      // upsert-cas on ModifyIndex (Expect; 0 = create only)
	OpDelete                   // plain delete
)

// String implements fmt.Stringer.
func (k OpKind) String() string {
	switch k {
	case OpGet:
		return "get"
	case OpPut:
		return "put"
	case OpCAS:
		return "cas"
	case OpDelete:
		return "delete"
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// IsWrite reports whether the operation may change state.
func (k OpKind) IsWrite() bool { return k != OpGet }

// Outcome classifies how a call ended (docs/reliability.md, Client
// outcomes).
type Outcome uint8

// Outcomes.
const (
	// OutcomeOK: the server answered; the output fields are valid.
	OutcomeOK Outcome = iota + 1
	// OutcomeFail: a definite failure; nothing was or will be applied
	// (rejected before proposal: invalid, not leader, no leader).
	OutcomeFail
	// OutcomeUnknown: the call may or may not have taken effect (timeout,
	// unavailable after send, UNKNOWN_OUTCOME). Return is Infinity.
	OutcomeUnknown
)

// String implements fmt.Stringer.
func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeFail:
		return "fail"
	case OutcomeUnknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Operation is one client call: input, output and its interval on the
// recorder's monotonic clock (nanoseconds since the history started).
type Operation struct {
	ID     int       // unique in the history
	Client int       // logical client: one call at a time; retired after an unknown outcome
	Kind   OpKind    `json:"kind"`
	Key    chain.Key `json:"key"`
	// Value is the globally unique value written (put, cas).
	Value string `json:"value,omitempty"`
	// Expect is the ModifyIndex a CAS expects (0: create only).
	Expect uint64 `json:"expect,omitempty"`

	Call   int64 `json:"call"`
	Return int64 `json:"return"` // Infinity when Outcome is OutcomeUnknown

	Outcome Outcome `json:"outcome"`
	// Applied: a put/cas/delete took effect (false: CAS check failed).
	Applied bool `json:"applied,omitempty"`
	// Found and Got: what a get observed.
	Found bool   `json:"found,omitempty"`
	Got   string `json:"got,omitempty"`
	// Index: for a get, the entry's ModifyIndex (or deletion index); for a
	// write, the new Raft index when applied, the entry's current index
	// when a CAS failed.
	Index uint64 `json:"index,omitempty"`
	// Server is the node that answered, when known (diagnostics only).
	Server string `json:"server,omitempty"`
	Err    string `json:"err,omitempty"`
	// Resolved is set by Check (resolveOps) when an unknown write was
	// found applied in the journals (its Index then comes from there).
	Resolved bool `json:"resolved,omitempty"`
}

// String renders the operation for violation messages.
func (o Operation) String() string {
	in := fmt.Sprintf("%s(%s", o.Kind, o.Key)
	switch o.Kind {
	case OpPut:
		in += ", " + o.Value
	case OpCAS:
		in += fmt.Sprintf(", %s, expect=%d", o.Value, o.Expect)
	}
	in += ")"
	ret := "inf"
	if o.Return != Infinity {
		ret = fmt.Sprintf("%.3fms", float64(o.Return)/1e6)
	}
	out := o.Outcome.String()
	if o.Outcome == OutcomeOK {
		switch o.Kind {
		case OpGet:
			if o.Found {
				out = fmt.Sprintf("found %s @%d", o.Got, o.Index)
			} else {
				out = fmt.Sprintf("not found @%d", o.Index)
			}
		default:
			out = fmt.Sprintf("applied=%v @%d", o.Applied, o.Index)
		}
	} else if o.Err != "" {
		out += ": " + o.Err
	}
	return fmt.Sprintf("#%d c%d [%.3fms, %s] %s -> %s", o.ID, o.Client, float64(o.Call)/1e6, ret, in, out)
}

// JournalRecord is one line of a node's apply journal, written by the FSM
// hook of a test build (cmd/stored --test-apply-journal): one record per
// command applied to the state machine, and one per snapshot restore.
type JournalRecord struct {
	Node string `json:"node,omitempty"`
	// Type is "apply" or "restore".
	Type  string `json:"type"`
	Index uint64 `json:"index"`
	Term  uint64 `json:"term,omitempty"`
	// Op is the fsm.Op name: upsert, upsert-cas, delete, delete-cas, noop.
	Op  string    `json:"op,omitempty"`
	Key chain.Key `json:"key,omitempty"`
	// Value is the workload's unique value of the written entry (ValueOf),
	// "" for deletes and foreign entries.
	Value string `json:"value,omitempty"`
	// Entry is the canonical JSON of the written entry (upserts).
	Entry json.RawMessage `json:"entry,omitempty"`
	// CASIndex is the command's expected index (CAS ops).
	CASIndex uint64 `json:"cas_index,omitempty"`
	// Applied: the command changed the store (false: CAS check failed or
	// the entry was rejected by graph validation, see Err).
	Applied bool   `json:"applied"`
	Err     string `json:"err,omitempty"`
	// Hash is the store hash after the record (fsm.Store.Hash), optional.
	Hash string `json:"hash,omitempty"`
}

// Journal record types.
const (
	RecordApply   = "apply"
	RecordRestore = "restore"
)

// sameCommand reports whether two records at one index describe the same
// command and the same result (State Machine Safety).
func (r JournalRecord) sameCommand(o JournalRecord) bool {
	if r.Type == RecordRestore || o.Type == RecordRestore {
		// A restore carries only the resulting state.
		return r.Hash == "" || o.Hash == "" || r.Hash == o.Hash
	}
	if r.Op != o.Op || r.Key != o.Key || r.Value != o.Value || r.CASIndex != o.CASIndex ||
		r.Applied != o.Applied || r.Err != o.Err {
		return false
	}
	if len(r.Entry) > 0 && len(o.Entry) > 0 && string(r.Entry) != string(o.Entry) {
		return false
	}
	return r.Hash == "" || o.Hash == "" || r.Hash == o.Hash
}

// WatchEvent is one message a watching agent received for a subscription.
type WatchEvent struct {
	Time int64 `json:"time"`
	// Reset: the server told the client to discard what it held
	// (SubscriptionReset); the version that follows may repeat an index.
	Reset bool   `json:"reset,omitempty"`
	Index uint64 `json:"index,omitempty"`
	Hash  string `json:"hash,omitempty"`
	// Chain is the compiled chain JSON; Error the compile error.
	Chain  json.RawMessage `json:"chain,omitempty"`
	Error  string          `json:"error,omitempty"`
	Server string          `json:"server,omitempty"`
}

// WatchSession is everything one agent received for one chain, across
// reconnects (the agent resumes with its last index and hash).
type WatchSession struct {
	Agent   string       `json:"agent"`
	Service string       `json:"service"`
	Events  []WatchEvent `json:"events"`
}

// NodeFinal is a node's state after the run, when it converged.
type NodeFinal struct {
	Node         string `json:"node"`
	AppliedIndex uint64 `json:"applied_index"`
	Hash         string `json:"hash,omitempty"`
}

// History is everything recorded in one fault run.
type History struct {
	Name     string                     `json:"name"`
	Ops      []Operation                `json:"ops"`
	Watches  []WatchSession             `json:"watches,omitempty"`
	Journals map[string][]JournalRecord `json:"journals,omitempty"`
	Finals   []NodeFinal                `json:"finals,omitempty"`
}

// Recorder records operations from concurrent clients against one
// monotonic clock. It is safe for concurrent use.
type Recorder struct {
	start time.Time

	mu      sync.Mutex // protects ops, nextID, nextCli
	ops     []Operation
	nextID  int
	nextCli int
}

// NewRecorder starts a history clock now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now()}
}

// Now is the recorder's clock: nanoseconds since the recorder started,
// from the monotonic clock.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// NewClient returns a fresh logical client ID.
func (r *Recorder) NewClient() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.nextCli
	r.nextCli++
	return id
}

// Pending is an operation that has been called and not returned.
type Pending struct {
	r  *Recorder
	op Operation
}

// Begin records the call of op (its ID and Call are set here). The caller
// must call End exactly once.
func (r *Recorder) Begin(op Operation) *Pending {
	r.mu.Lock()
	op.ID = r.nextID
	r.nextID++
	r.mu.Unlock()
	op.Call = r.Now()
	return &Pending{r: r, op: op}
}

// End records the return with the output fields of out (Outcome, Applied,
// Found, Got, Index, Server, Err). An unknown outcome gets Return =
// Infinity.
func (p *Pending) End(out Operation) Operation {
	op := p.op
	op.Return = p.r.Now()
	op.Outcome = out.Outcome
	op.Applied = out.Applied
	op.Found = out.Found
	op.Got = out.Got
	op.Index = out.Index
	op.Server = out.Server
	op.Err = out.Err
	if op.Outcome == OutcomeUnknown {
		op.Return = Infinity
	}
	p.r.mu.Lock()
	p.r.ops = append(p.r.ops, op)
	p.r.mu.Unlock()
	return op
}

// Ops returns the recorded operations sorted by ID.
func (r *Recorder) Ops() []Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Operation(nil), r.ops...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
