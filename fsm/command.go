package fsm

import (
	"encoding/binary"
	"fmt"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
)

// Op is the one-byte type of a replicated command. The high bit
// (IgnoreUnknownFlag) marks a command that replicas which do not know the
// operation may skip; the low seven bits name the operation.
type Op uint8

// Operations. Values are part of the Raft log format: never renumber them.
const (
	// OpUpsert writes the whole entry, keeping CreateIndex if it exists.
	OpUpsert Op = 1
	// OpUpsertCAS writes the entry only if the CAS table allows it
	// (CASIndex 0 = create only; docs/discovery-chain.md, Operations and
	// CAS).
	OpUpsertCAS Op = 2
	// OpDelete removes the entry at Key; deleting an absent entry succeeds
	// and changes nothing.
	OpDelete Op = 3
	// OpDeleteCAS removes the entry at Key only if its ModifyIndex equals
	// CASIndex; CASIndex 0 never deletes.
	OpDeleteCAS Op = 4
	// OpNoop changes no entry but is seen by the FSM, so it advances
	// AppliedIndex. Raft's own no-op and barrier logs never reach the FSM
	// (hashicorp/raft prepareLog/applyBatch), so a leader that wants its FSM
	// to have applied "everything up to the commit index" at term start
	// should Apply an OpNoop command rather than call raft.Barrier.
	// EncodeCommand always sets IgnoreUnknownFlag on it, so replicas that
	// predate it skip it.
	OpNoop Op = 5
	// OpRegister creates or replaces a catalog instance (Command.Instance).
	OpRegister Op = 6
	// OpDeregister removes the catalog instance Command.InstanceID; removing
	// an unknown ID succeeds and changes nothing.
	OpDeregister Op = 7
	// OpCheck sets the health of the TTL check of Command.InstanceID to
	// Command.Status with Command.Output.
	OpCheck Op = 8
	// OpCheckExpire marks the TTL check of Command.InstanceID critical,
	// only if the instance is still at ModifyIndex Command.CASIndex (no
	// update raced the leader's decision) and not critical already.
	OpCheckExpire Op = 9
	// OpACLBootstrap stores the first management token (once; see
	// Command.ACLResetIndex). The ACL ops carry their body as JSON
	// (acl.go).
	OpACLBootstrap Op = 10
	// OpACLPolicySet creates or replaces Command.ACLPolicy.
	OpACLPolicySet Op = 11
	// OpACLPolicyDelete removes the policy with ID Command.ACLID.
	OpACLPolicyDelete Op = 12
	// OpACLTokenSet creates or replaces Command.ACLToken.
	OpACLTokenSet Op = 13
	// OpACLTokenDelete removes the token with AccessorID Command.ACLID.
	OpACLTokenDelete Op = 14
	// OpReapTombstones removes the tombstones deleted at or below
	// Command.ReapIndex (tombstone GC, reap.go).
	OpReapTombstones Op = 15

	// IgnoreUnknownFlag marks a command type as safe to skip for replicas
	// that do not know it (rolling upgrades: a newer leader may emit
	// additive commands).
	IgnoreUnknownFlag Op = 0x80
)

// base returns op without IgnoreUnknownFlag.
func (op Op) base() Op { return op &^ IgnoreUnknownFlag }

// String implements fmt.Stringer.
func (op Op) String() string {
	var s string
	switch op.base() {
	case OpUpsert:
		s = "upsert"
	case OpUpsertCAS:
		s = "upsert-cas"
	case OpDelete:
		s = "delete"
	case OpDeleteCAS:
		s = "delete-cas"
	case OpNoop:
		s = "noop"
	case OpRegister:
		s = "register"
	case OpDeregister:
		s = "deregister"
	case OpCheck:
		s = "check"
	case OpCheckExpire:
		s = "check-expire"
	case OpACLBootstrap:
		s = "acl-bootstrap"
	case OpACLPolicySet:
		s = "acl-policy-set"
	case OpACLPolicyDelete:
		s = "acl-policy-delete"
	case OpACLTokenSet:
		s = "acl-token-set"
	case OpACLTokenDelete:
		s = "acl-token-delete"
	case OpReapTombstones:
		s = "reap-tombstones"
	default:
		s = fmt.Sprintf("op(0x%02x)", uint8(op.base()))
	}
	if op&IgnoreUnknownFlag != 0 {
		s += "+ignorable"
	}
	return s
}

// knownOp reports whether DecodeCommand understands op (flag stripped).
func knownOp(op Op) bool {
	switch op.base() {
	case OpUpsert, OpUpsertCAS, OpDelete, OpDeleteCAS, OpNoop, OpReapTombstones:
		return true
	}
	return isCatalogOp(op) || isACLOp(op)
}

// Command is one replicated state-machine command.
//
// Upserts carry Entry (Key is derived from it; a non-zero Key must match).
// Deletes carry Key and no Entry. CASIndex is used only by the CAS ops and
// by OpCheckExpire. The catalog ops carry Instance (OpRegister) or
// InstanceID, plus Status and Output for OpCheck.
type Command struct {
	Op       Op
	Entry    chain.Entry
	Key      chain.Key
	CASIndex uint64

	Instance   *catalog.Instance
	InstanceID string
	Status     catalog.Health
	Output     string

	// ACL commands: the policy or token to store, the ID to delete, and for
	// a bootstrap the reset index that allows a second one.
	ACLPolicy     *ACLPolicy
	ACLToken      *ACLToken
	ACLID         string
	ACLResetIndex uint64
	// ReapIndex is the index of OpReapTombstones.
	ReapIndex uint64
}

// ApplyResult is what the FSM returns for every command log (it becomes
// raft's ApplyFuture.Response on the leader).
//
//   - Applied=true, Err=nil: the command took effect (a delete of an absent
//     entry also reports Applied=true).
//   - Applied=false, Err=nil: a CAS check failed (or an ignorable unknown
//     command was skipped); nothing changed.
//   - Err != nil: the command was rejected and nothing changed. Err is the
//     *chain.GraphError or *chain.ValidationError as the chain package
//     returned it, or wraps ErrUnknownOp, ErrMalformedCommand or ErrInternal.
type ApplyResult struct {
	Index   uint64
	Applied bool
	Err     error
}

// Wire format (docs/design.md, Raft log command format; all integers
// unsigned varints, strings are a varint length followed by the bytes).
// Byte 0 is the type byte: an Op (possibly with IgnoreUnknownFlag) or, in
// log format v1, a type byte of its own for each command whose v0 body is
// JSON (command_v1.go). The type byte alone says which format follows.
//
//	v1 (written by EncodeCommand):
//	0x10 upsert:      raftlogv1.Upsert protobuf (entry, no CAS index)
//	0x11 upsert-cas:  raftlogv1.Upsert protobuf (CAS index, entry)
//	0x12 register:    raftlogv1.Instance protobuf (catalog_command.go)
//	0x13-0x17 ACL:    raftlogv1.ACLCommand protobuf (acl.go)
//	v0 (read only; written by servers before log format v1):
//	OpUpsert:    canonical entry JSON (chain.EncodeEntry) to the end
//	OpUpsertCAS: CASIndex, canonical entry JSON to the end
//	OpRegister, OpACL*: JSON bodies (catalog_command.go, acl.go)
//	both (binary since v0):
//	OpDelete:    kind, name
//	OpDeleteCAS: CASIndex, kind, name
//	OpNoop:      empty body
//	OpReapTombstones: reap index (always sent with IgnoreUnknownFlag)
//	OpDeregister, OpCheck, OpCheckExpire: catalog_command.go
//
// The v0 decoders reject trailing bytes, so each command has exactly one
// v0 encoding per entry JSON; the v1 encoder writes deterministic
// protobuf, and the v1 decoders refuse unknown fields.

// EncodeCommand encodes c as one type byte plus body, in log format v1. It
// fails (wrapping
// ErrMalformedCommand or ErrUnknownOp) on a nil entry for an upsert, a Key
// that does not match the entry, a delete without kind or name, or a
// CASIndex on a non-CAS op.
func EncodeCommand(c Command) ([]byte, error) {
	op := c.Op
	if !knownOp(op) {
		return nil, fmt.Errorf("encode command type 0x%02x: %w", uint8(op), ErrUnknownOp)
	}
	if op.base() == OpReapTombstones {
		return encodeReap(c)
	}
	if c.ReapIndex != 0 {
		return nil, fmt.Errorf("encode %s with ReapIndex: %w", op, ErrMalformedCommand)
	}
	if isCatalogOp(op) {
		if c.ACLPolicy != nil || c.ACLToken != nil || c.ACLID != "" || c.ACLResetIndex != 0 {
			return nil, fmt.Errorf("encode %s with ACL fields: %w", op, ErrMalformedCommand)
		}
		return encodeCatalogCommand(c)
	}
	if isACLOp(op) {
		return encodeACLCommand(c)
	}
	if c.ACLPolicy != nil || c.ACLToken != nil || c.ACLID != "" || c.ACLResetIndex != 0 {
		return nil, fmt.Errorf("encode %s with ACL fields: %w", op, ErrMalformedCommand)
	}
	if c.Instance != nil || c.InstanceID != "" || c.Status != 0 || c.Output != "" {
		return nil, fmt.Errorf("encode %s with catalog fields: %w", op, ErrMalformedCommand)
	}
	cas := op.base() == OpUpsertCAS || op.base() == OpDeleteCAS
	if !cas && c.CASIndex != 0 {
		return nil, fmt.Errorf("encode %s with CASIndex %d: %w", op, c.CASIndex, ErrMalformedCommand)
	}
	switch op.base() {
	case OpNoop:
		if c.Entry != nil || c.Key != (chain.Key{}) {
			return nil, fmt.Errorf("encode noop with entry or key: %w", ErrMalformedCommand)
		}
		return []byte{byte(op | IgnoreUnknownFlag)}, nil

	case OpUpsert, OpUpsertCAS:
		if c.Entry == nil {
			return nil, fmt.Errorf("encode %s without entry: %w", op, ErrMalformedCommand)
		}
		k := chain.KeyOf(c.Entry.GetKind(), c.Entry.GetName())
		if c.Key != (chain.Key{}) && chain.KeyOf(c.Key.Kind, c.Key.Name) != k {
			return nil, fmt.Errorf("encode %s of %s with key %s: %w", op, k, c.Key, ErrMalformedCommand)
		}
		return encodeUpsertV1(op.base(), c.CASIndex, c.Entry)

	default: // OpDelete, OpDeleteCAS
		if c.Entry != nil {
			return nil, fmt.Errorf("encode %s with an entry: %w", op, ErrMalformedCommand)
		}
		k := chain.KeyOf(c.Key.Kind, c.Key.Name)
		if _, err := chain.ParseKind(string(k.Kind)); err != nil {
			return nil, fmt.Errorf("encode %s of %s: %w: %w", op, k, ErrMalformedCommand, err)
		}
		if k.Name == "" {
			return nil, fmt.Errorf("encode %s of kind %s without name: %w", op, k.Kind, ErrMalformedCommand)
		}
		b := make([]byte, 0, 1+binary.MaxVarintLen64+2*binary.MaxVarintLen32+len(k.Kind)+len(k.Name))
		b = append(b, byte(op))
		if cas {
			b = binary.AppendUvarint(b, c.CASIndex)
		}
		b = appendString(b, string(k.Kind))
		b = appendString(b, k.Name)
		return b, nil
	}
}

// DecodeCommand decodes bytes produced by EncodeCommand, in log format v1
// or v0. The returned Command's Op is the logical operation with
// IgnoreUnknownFlag stripped, Key is normalized with chain.KeyOf, and
// upsert entries are decoded from the protobuf body (v1) or with
// chain.DecodeCanonical (v0), not yet normalized or validated. Unknown types wrap ErrUnknownOp (the
// returned Command still carries the raw type byte in Op); anything else
// undecodable wraps ErrMalformedCommand. It never panics.
func DecodeCommand(b []byte) (Command, error) {
	if len(b) == 0 {
		return Command{}, fmt.Errorf("decode command: empty: %w", ErrMalformedCommand)
	}
	raw := Op(b[0])
	if w := raw.base(); w >= firstWireV1 && w <= lastWireV1 {
		return decodeV1(logicalOp(w), b[1:])
	}
	if !knownOp(raw) {
		return Command{Op: raw}, fmt.Errorf("decode command type 0x%02x: %w", b[0], ErrUnknownOp)
	}
	op := raw.base()
	if isCatalogOp(op) {
		return decodeCatalogCommand(op, b[1:])
	}
	if isACLOp(op) {
		return decodeACLCommand(op, b[1:])
	}
	if op == OpReapTombstones {
		return decodeReap(b[1:])
	}
	c := Command{Op: op}
	rest := b[1:]
	if op == OpUpsertCAS || op == OpDeleteCAS {
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return Command{Op: op}, fmt.Errorf("decode %s: bad CAS index: %w", op, ErrMalformedCommand)
		}
		c.CASIndex = v
		rest = rest[n:]
	}
	switch op {
	case OpNoop:
		if len(rest) != 0 {
			return Command{Op: op}, fmt.Errorf("decode noop: %d trailing bytes: %w", len(rest), ErrMalformedCommand)
		}
	case OpUpsert, OpUpsertCAS:
		if len(rest) == 0 {
			return Command{Op: op}, fmt.Errorf("decode %s: no entry: %w", op, ErrMalformedCommand)
		}
		e, err := chain.DecodeCanonical(rest)
		if err != nil {
			return Command{Op: op}, fmt.Errorf("decode %s entry: %w: %w", op, ErrMalformedCommand, err)
		}
		if e == nil {
			return Command{Op: op}, fmt.Errorf("decode %s: nil entry: %w", op, ErrMalformedCommand)
		}
		c.Entry = e
		c.Key = chain.KeyOf(e.GetKind(), e.GetName())
	case OpDelete, OpDeleteCAS:
		kind, rest2, ok := readString(rest)
		if !ok {
			return Command{Op: op}, fmt.Errorf("decode %s: bad kind: %w", op, ErrMalformedCommand)
		}
		name, rest3, ok := readString(rest2)
		if !ok {
			return Command{Op: op}, fmt.Errorf("decode %s: bad name: %w", op, ErrMalformedCommand)
		}
		if len(rest3) != 0 {
			return Command{Op: op}, fmt.Errorf("decode %s: %d trailing bytes: %w", op, len(rest3), ErrMalformedCommand)
		}
		k := chain.KeyOf(chain.Kind(kind), name)
		if _, err := chain.ParseKind(string(k.Kind)); err != nil {
			return Command{Op: op}, fmt.Errorf("decode %s: %w: %w", op, ErrMalformedCommand, err)
		}
		if k.Name == "" {
			return Command{Op: op}, fmt.Errorf("decode %s: empty name: %w", op, ErrMalformedCommand)
		}
		c.Key = k
	}
	return c, nil
}

// decodeV1 decodes the body of a log format v1 command carrying the
// logical operation op.
func decodeV1(op Op, body []byte) (Command, error) {
	switch {
	case op == OpUpsert || op == OpUpsertCAS:
		return decodeUpsertV1(op, body)
	case op == OpRegister:
		return decodeRegisterV1(body)
	case isACLOp(op):
		b, err := decodeACLV1(op, body)
		if err != nil {
			return Command{Op: op}, err
		}
		return aclCommand(op, b)
	}
	panic(fmt.Sprintf("fsm: v1 type byte for %s has no decoder", op))
}

// appendString appends a varint length and s.
func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readString reads what appendString wrote. ok is false if b is too short.
func readString(b []byte) (s string, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, false
	}
	end := k + int(n)
	return string(b[k:end]), b[end:], true
}
