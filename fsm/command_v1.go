package fsm

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	raftlogv1 "github.com/chainstore/chainstore/proto/chainstore/raftlog/v1"
)

// Log format v1 (docs/design.md, Raft log command format): the commands
// whose v0 body is JSON get type bytes of their own, followed by a
// protobuf message of proto/chainstore/raftlog/v1. The type byte alone
// says which format a command is in, so DecodeCommand reads both and a
// data dir may hold both. EncodeCommand writes v1 only.
//
// None of these type bytes carries IgnoreUnknownFlag: a replica that does
// not know them (a server older than format v1) must not skip a write the
// others apply; it rejects the command and logs
// "REJECTING UNDECODABLE COMMAND" (docs/operations.md, Upgrades).
//
// The wire values are private: Command.Op is always the logical operation
// (OpUpsert, not wireUpsertV1), so handlers, journals and callers never
// see the format.
const (
	wireUpsertV1            Op = 16 // raftlogv1.Upsert, cas_index 0
	wireUpsertCASV1         Op = 17 // raftlogv1.Upsert
	wireRegisterV1          Op = 18 // raftlogv1.Instance
	wireACLBootstrapV1      Op = 19 // raftlogv1.ACLCommand (token, reset_index)
	wireACLPolicySetV1      Op = 20 // raftlogv1.ACLCommand (policy)
	wireACLPolicyDeleteV1   Op = 21 // raftlogv1.ACLCommand (id)
	wireACLTokenSetV1       Op = 22 // raftlogv1.ACLCommand (token)
	wireACLTokenDeleteV1    Op = 23 // raftlogv1.ACLCommand (id)
	firstWireV1, lastWireV1    = wireUpsertV1, wireACLTokenDeleteV1
)

// logicalOp maps a v1 type byte (flag stripped) to the operation it
// carries; any other value is returned as is.
func logicalOp(op Op) Op {
	switch op {
	case wireUpsertV1:
		return OpUpsert
	case wireUpsertCASV1:
		return OpUpsertCAS
	case wireRegisterV1:
		return OpRegister
	case wireACLBootstrapV1:
		return OpACLBootstrap
	case wireACLPolicySetV1:
		return OpACLPolicySet
	case wireACLPolicyDeleteV1:
		return OpACLPolicyDelete
	case wireACLTokenSetV1:
		return OpACLTokenSet
	case wireACLTokenDeleteV1:
		return OpACLTokenDelete
	}
	return op
}

// wireV1 is the inverse of logicalOp for the operations that have a v1
// type byte.
func wireV1(op Op) (Op, bool) {
	for w := firstWireV1; w <= lastWireV1; w++ {
		if logicalOp(w) == op {
			return w, true
		}
	}
	return 0, false
}

// marshalV1 appends the v1 type byte of op and m's encoding. Marshal is
// deterministic (sorted map keys), so one command has one encoding.
func marshalV1(op Op, m proto.Message) ([]byte, error) {
	w, ok := wireV1(op)
	if !ok {
		panic(fmt.Sprintf("fsm: no v1 type byte for %s", op))
	}
	size := proto.Size(m)
	b := make([]byte, 1, 1+size)
	b[0] = byte(w)
	b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(b, m)
	if err != nil {
		// Only invalid UTF-8 in a string field gets here; the JSON
		// decoders never produce it.
		return nil, fmt.Errorf("encode %s: %w: %w", op, ErrMalformedCommand, err)
	}
	return b, nil
}

// unmarshalV1 decodes body into m, refusing unknown fields anywhere in
// it: a field this code does not know would be dropped here but applied
// by a newer replica, so the replicas would diverge (fields are therefore
// only added together with a new type byte).
func unmarshalV1(op Op, body []byte, m proto.Message) error {
	if err := proto.Unmarshal(body, m); err != nil {
		return fmt.Errorf("decode %s: %w: %w", op, ErrMalformedCommand, err)
	}
	if hasUnknownFields(m.ProtoReflect()) {
		return fmt.Errorf("decode %s: unknown fields (a newer log format?): %w", op, ErrMalformedCommand)
	}
	return nil
}

// hasUnknownFields reports whether m or any message inside it holds
// fields its descriptor does not declare.
func hasUnknownFields(m protoreflect.Message) bool {
	if len(m.GetUnknown()) > 0 {
		return true
	}
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					found = hasUnknownFields(mv.Message())
					return !found
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				l := v.List()
				for i := 0; i < l.Len() && !found; i++ {
					found = hasUnknownFields(l.Get(i).Message())
				}
			}
		case fd.Message() != nil:
			found = hasUnknownFields(v.Message())
		}
		return !found
	})
	return found
}

// upsertBufSize is the initial capacity of an encoded upsert: most
// entries fit, so the buffer is allocated once.
const upsertBufSize = 640

// encodeUpsertV1 encodes an upsert or upsert-cas of e.
func encodeUpsertV1(op Op, cas uint64, e chain.Entry) ([]byte, error) {
	w, _ := wireV1(op)
	b := make([]byte, 1, upsertBufSize)
	b[0] = byte(w)
	b, err := encodeUpsertWire(b, cas, e)
	if err != nil {
		return nil, fmt.Errorf("encode %s of %s/%s: %w: %w", op, e.GetKind(), e.GetName(), ErrMalformedCommand, err)
	}
	return b, nil
}

// decodeUpsertV1 decodes the body of wireUpsertV1 or wireUpsertCASV1 (op
// is the logical operation).
func decodeUpsertV1(op Op, body []byte) (Command, error) {
	cas, e, err := decodeUpsertWire(body)
	if err != nil {
		return Command{Op: op}, fmt.Errorf("decode %s: %w: %w", op, ErrMalformedCommand, err)
	}
	if op == OpUpsert && cas != 0 {
		return Command{Op: op}, fmt.Errorf("decode %s: CAS index %d: %w", op, cas, ErrMalformedCommand)
	}
	if e == nil {
		return Command{Op: op}, fmt.Errorf("decode %s: no entry: %w", op, ErrMalformedCommand)
	}
	return Command{Op: op, Entry: e, Key: chain.KeyOf(e.GetKind(), e.GetName()), CASIndex: cas}, nil
}

// encodeRegisterV1 encodes a catalog register of in.
func encodeRegisterV1(in *catalog.Instance) ([]byte, error) {
	return marshalV1(OpRegister, &raftlogv1.Instance{
		Id:         in.ID,
		Service:    in.Service,
		Address:    in.Address,
		Port:       int64(in.Port),
		Meta:       in.Meta,
		Tags:       in.Tags,
		Datacenter: in.Datacenter,
		TtlNanos:   int64(in.TTL),
	})
}

func decodeRegisterV1(body []byte) (Command, error) {
	var m raftlogv1.Instance
	if err := unmarshalV1(OpRegister, body, &m); err != nil {
		return Command{Op: OpRegister}, err
	}
	return Command{Op: OpRegister, Instance: &catalog.Instance{
		ID:         m.Id,
		Service:    m.Service,
		Address:    m.Address,
		Port:       int(m.Port),
		Meta:       nilIfEmpty(m.Meta),
		Tags:       nilIfEmptySlice(m.Tags),
		Datacenter: m.Datacenter,
		TTL:        time.Duration(m.TtlNanos),
	}}, nil
}

// encodeACLV1 encodes an ACL command whose body checkACLBody accepted.
func encodeACLV1(op Op, b aclBody) ([]byte, error) {
	m := &raftlogv1.ACLCommand{Id: b.ID, ResetIndex: b.ResetIndex}
	if p := b.Policy; p != nil {
		m.Policy = &raftlogv1.ACLPolicy{Id: p.ID, Name: p.Name, Description: p.Description, Rules: p.Rules, CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex}
	}
	if t := b.Token; t != nil {
		m.Token = &raftlogv1.ACLToken{AccessorId: t.AccessorID, SecretHash: t.SecretHash, Description: t.Description, Policies: t.Policies, CreateIndex: t.CreateIndex, ModifyIndex: t.ModifyIndex}
	}
	return marshalV1(op, m)
}

// decodeACLV1 decodes the body of an ACL command into aclBody, for
// checkACLBody.
func decodeACLV1(op Op, body []byte) (aclBody, error) {
	var m raftlogv1.ACLCommand
	if err := unmarshalV1(op, body, &m); err != nil {
		return aclBody{}, err
	}
	b := aclBody{ID: m.Id, ResetIndex: m.ResetIndex}
	if p := m.Policy; p != nil {
		b.Policy = &ACLPolicy{ID: p.Id, Name: p.Name, Description: p.Description, Rules: p.Rules, CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex}
	}
	if t := m.Token; t != nil {
		b.Token = &ACLToken{AccessorID: t.AccessorId, SecretHash: t.SecretHash, Description: t.Description, Policies: nilIfEmptySlice(t.Policies), CreateIndex: t.CreateIndex, ModifyIndex: t.ModifyIndex}
	}
	return b, nil
}

// nilIfEmpty and nilIfEmptySlice turn an empty map or slice into nil (the
// canonical JSON omits both, and the v0 decoders return nil).
func nilIfEmpty[M ~map[K]V, K comparable, V any](m M) M {
	if len(m) == 0 {
		return nil
	}
	return m
}

func nilIfEmptySlice[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}
