package fsm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
)

// Wire format of the catalog commands (after the type byte; strings are a
// uvarint length and the bytes):
//
//	OpRegister:    v1 (type byte 0x12, command_v1.go): the
//	               raftlogv1.Instance protobuf; v0 (type byte OpRegister,
//	               read only): the instance as JSON (encoding/json of
//	               catalog.Instance)
//	OpDeregister:  instance ID
//	OpCheck:       instance ID, status (1 byte), output
//	OpCheckExpire: instance ID, expected ModifyIndex (uvarint)
//
// None of them carries IgnoreUnknownFlag: a replica that skipped them would
// hold a different catalog.

// isCatalogOp reports whether op (flag stripped) is a catalog command.
func isCatalogOp(op Op) bool {
	switch op.base() {
	case OpRegister, OpDeregister, OpCheck, OpCheckExpire:
		return true
	}
	return false
}

// encodeCatalogCommand encodes a catalog command for EncodeCommand.
func encodeCatalogCommand(c Command) ([]byte, error) {
	op := c.Op.base()
	if c.Entry != nil || c.Key != (chain.Key{}) {
		return nil, fmt.Errorf("encode %s with an entry or key: %w", op, ErrMalformedCommand)
	}
	if op != OpCheckExpire && c.CASIndex != 0 {
		return nil, fmt.Errorf("encode %s with CASIndex %d: %w", op, c.CASIndex, ErrMalformedCommand)
	}
	if op != OpCheck && (c.Status != 0 || c.Output != "") {
		return nil, fmt.Errorf("encode %s with a status: %w", op, ErrMalformedCommand)
	}
	b := []byte{byte(op)}
	if op == OpRegister {
		if c.Instance == nil || c.InstanceID != "" {
			return nil, fmt.Errorf("encode register: want an instance and no ID: %w", ErrMalformedCommand)
		}
		return encodeRegisterV1(c.Instance)
	}
	if c.Instance != nil || c.InstanceID == "" {
		return nil, fmt.Errorf("encode %s: want an instance ID and no instance: %w", op, ErrMalformedCommand)
	}
	b = appendString(b, c.InstanceID)
	switch op {
	case OpCheck:
		if !c.Status.Valid() {
			return nil, fmt.Errorf("encode check of %q: status %d: %w", c.InstanceID, c.Status, ErrMalformedCommand)
		}
		b = append(b, byte(c.Status))
		b = appendString(b, c.Output)
	case OpCheckExpire:
		b = binary.AppendUvarint(b, c.CASIndex)
	}
	return b, nil
}

// decodeCatalogCommand decodes the body of a catalog command.
func decodeCatalogCommand(op Op, rest []byte) (Command, error) {
	c := Command{Op: op}
	bad := func(format string, args ...any) (Command, error) {
		return Command{Op: op}, fmt.Errorf("decode %s: %s: %w", op, fmt.Sprintf(format, args...), ErrMalformedCommand)
	}
	if op == OpRegister {
		var in catalog.Instance
		if err := decodeJSONExact(rest, &in); err != nil {
			return bad("instance: %v", err)
		}
		c.Instance = &in
		return c, nil
	}
	id, rest, ok := readString(rest)
	if !ok || id == "" {
		return bad("bad instance ID")
	}
	c.InstanceID = id
	switch op {
	case OpCheck:
		if len(rest) < 1 || !catalog.Health(rest[0]).Valid() {
			return bad("bad status")
		}
		c.Status = catalog.Health(rest[0])
		if c.Output, rest, ok = readString(rest[1:]); !ok {
			return bad("bad output")
		}
	case OpCheckExpire:
		v, n := binary.Uvarint(rest)
		if n <= 0 {
			return bad("bad index")
		}
		c.CASIndex, rest = v, rest[n:]
	}
	if len(rest) != 0 {
		return bad("%d trailing bytes", len(rest))
	}
	return c, nil
}

// decodeJSONExact decodes b, which must hold exactly one JSON value, into
// v, refusing unknown fields and any byte after the value. (Checking
// json.Decoder.More is not enough: it reports false for a stray '}' or ']',
// and it ignores trailing white space, which json.Marshal never writes.)
func decodeJSONExact(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if off := dec.InputOffset(); off != int64(len(b)) {
		return fmt.Errorf("%d trailing bytes after the JSON value", int64(len(b))-off)
	}
	return nil
}
